package trust_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/keystore"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

// *keystore.Identity is what a node signs with.
var _ trust.Signer = (*keystore.Identity)(nil)

func genKey(t testing.TB, n byte) curve.PublicKey {
	t.Helper()
	pub, _, err := curve.GenerateKeyPair(rand.NewChaCha8([32]byte{n}))
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// TestDerivationsMatch keeps trust's copies of the UUID derivation and the
// fingerprint equal to zre's and keystore's.
func TestDerivationsMatch(t *testing.T) {
	st, err := trust.Open(t.TempDir(), trust.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for n := range byte(20) {
		k := genKey(t, n)
		if trust.Fingerprint(k) != keystore.Fingerprint(k) {
			t.Fatalf("fingerprint of %s: %s, keystore says %s", k, trust.Fingerprint(k), keystore.Fingerprint(k))
		}
		v, err := st.Admit(context.Background(), trust.Observation{UUID: zre.UUIDFromKey(k), Key: k}, time.Now())
		if err != nil || !v.Allow || !v.Record.Bound {
			t.Fatalf("key-derived UUID not seen as bound: %+v, %v", v, err)
		}
	}
	k := genKey(t, 99)
	v, err := st.Admit(context.Background(), trust.Observation{UUID: uuid.New(), Key: k}, time.Now())
	if err != nil || v.Record.Bound {
		t.Fatalf("random UUID seen as bound: %+v, %v", v, err)
	}
}

// A node admits peers with its trust store, once per connection or HELLO.
func ExampleStore_Admit() {
	home, _ := os.MkdirTemp("", "zyre-example")
	defer os.RemoveAll(home)
	st, _ := trust.Open(home, trust.Options{})
	ctx, now := context.Background(), time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

	alice, _, _ := curve.GenerateKeyPair(rand.NewChaCha8([32]byte{1}))
	v, _ := st.Admit(ctx, trust.Observation{UUID: zre.UUIDFromKey(alice), Name: "alice", Key: alice}, now)
	fmt.Println("alice:", v.Allow, v.New, v.Record.State)

	// Someone else claims alice's UUID.
	mallory, _, _ := curve.GenerateKeyPair(rand.NewChaCha8([32]byte{2}))
	v, _ = st.Admit(ctx, trust.Observation{UUID: zre.UUIDFromKey(alice), Name: "alice", Key: mallory}, now)
	fmt.Println("impostor:", v.Allow, v.KeyChange != nil)
	// Output:
	// alice: true true tofu
	// impostor: false true
}

// Statements are signed with the node's identity and exchanged in the
// group zyre-trust.
func ExampleStore_Sign() {
	home, _ := os.MkdirTemp("", "zyre-example")
	defer os.RemoveAll(home)
	ks, _ := keystore.Open(filepath.Join(home, "bob"), keystore.Options{Logger: quiet()})
	bob, err := ks.Init(context.Background(), keystore.InitOptions{Name: "bob", Protection: keystore.Protection{Plaintext: true}})
	if err != nil {
		fmt.Println(err)
		return
	}
	bobStore, _ := trust.Open(filepath.Join(home, "bob"), trust.Options{})
	carol, _, _ := curve.GenerateKeyPair(rand.NewChaCha8([32]byte{3}))
	stmt, _ := bobStore.Sign(context.Background(), bob, &trust.Vouch{Key: carol, UUID: zre.UUIDFromKey(carol), Name: "carol"})

	// Alice verified bob by pairing, so his vouch introduces carol.
	alice, _ := trust.Open(filepath.Join(home, "alice"), trust.Options{})
	alice.MarkVerified(context.Background(), bob.CurveKey, bob.UUID, bob.Name, "qr", bob.SigningKey)
	a, err := alice.Apply(context.Background(), stmt.Raw)
	fmt.Println(a.Honoured, err)
	v, _ := alice.Admit(context.Background(), trust.Observation{UUID: zre.UUIDFromKey(carol), Name: "carol", Key: carol}, time.Now())
	fmt.Println("carol:", v.Allow, v.Record.State)
	// Output:
	// true <nil>
	// carol: true introduced
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
