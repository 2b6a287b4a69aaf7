package trust_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/keystore"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zmtp"
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

func identityMeta(id uuid.UUID) zmtp.Metadata {
	return zmtp.Metadata{{Name: "Socket-Type", Value: []byte("DEALER")}, {Name: "Identity", Value: append([]byte{1}, id[:]...)}}
}

func TestAuthorizer(t *testing.T) {
	st, err := trust.Open(t.TempDir(), trust.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var verdicts []trust.Verdict
	auth := st.Authorizer(trust.AuthorizerOptions{OnVerdict: func(_ trust.Observation, v trust.Verdict) { verdicts = append(verdicts, v) }})
	ctx := context.Background()
	k1, k2 := genKey(t, 1), genKey(t, 2)
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 49152}
	req := zmtp.AuthRequest{Mechanism: "CURVE", RemoteAddr: addr, PublicKey: k1.Bytes(), Metadata: identityMeta(zre.UUIDFromKey(k1))}
	if err := auth(ctx, req); err != nil {
		t.Fatalf("first connection denied: %v", err)
	}
	if r, ok, _ := st.Lookup(k1); !ok || r.LastAddr != addr.String() {
		t.Fatalf("not pinned with its address: %+v", r)
	}
	// The same UUID with another key: denied, and the node hears of it.
	req.PublicKey = k2.Bytes()
	err = auth(ctx, req)
	if !errors.Is(err, trust.ErrDenied) || !strings.Contains(err.Error(), "key changed") {
		t.Fatalf("impostor = %v", err)
	}
	if kc := verdicts[len(verdicts)-1].KeyChange; kc == nil || kc.Old != k1 || kc.New != k2 {
		t.Fatalf("OnVerdict did not see the key change: %+v", verdicts)
	}
	// A bare 16-octet identity works too; a missing one does not.
	id := uuid.New()
	if err := auth(ctx, zmtp.AuthRequest{Mechanism: "CURVE", PublicKey: genKey(t, 3).Bytes(), Metadata: zmtp.Metadata{{Name: "Identity", Value: id[:]}}}); err != nil {
		t.Fatalf("16-octet identity: %v", err)
	}
	if err := auth(ctx, zmtp.AuthRequest{Mechanism: "CURVE", PublicKey: genKey(t, 4).Bytes()}); !errors.Is(err, trust.ErrDenied) {
		t.Fatalf("no identity = %v", err)
	}
	if err := auth(ctx, zmtp.AuthRequest{Mechanism: "CURVE", PublicKey: []byte{1, 2}, Metadata: identityMeta(id)}); !errors.Is(err, trust.ErrDenied) {
		t.Fatalf("short key = %v", err)
	}
	// NULL connections: only in open mode.
	null := zmtp.AuthRequest{Mechanism: "NULL", Metadata: identityMeta(id)}
	if err := auth(ctx, null); !errors.Is(err, trust.ErrDenied) {
		t.Fatalf("NULL under tofu = %v", err)
	}
	p, _ := st.Policy()
	p.Mode = trust.ModeOpen
	if err := st.SetPolicy(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := auth(ctx, null); err != nil {
		t.Fatalf("NULL under open = %v", err)
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

func TestAuthorizerRevokedAndStrict(t *testing.T) {
	st, err := trust.Open(t.TempDir(), trust.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	auth := st.Authorizer(trust.AuthorizerOptions{})
	k1, k2 := genKey(t, 1), genKey(t, 2)
	if _, err := st.Revoke(ctx, k1, "secret reason"); err != nil {
		t.Fatal(err)
	}
	err = auth(ctx, zmtp.AuthRequest{Mechanism: "CURVE", PublicKey: k1.Bytes(), Metadata: identityMeta(zre.UUIDFromKey(k1))})
	if !errors.Is(err, trust.ErrDenied) || !strings.Contains(err.Error(), "key revoked") || strings.Contains(err.Error(), "secret reason") {
		t.Fatalf("revoked = %v", err)
	}
	p, _ := st.Policy()
	p.Mode = trust.ModeStrict
	st.SetPolicy(ctx, p)
	err = auth(ctx, zmtp.AuthRequest{Mechanism: "CURVE", PublicKey: k2.Bytes(), Metadata: identityMeta(zre.UUIDFromKey(k2))})
	if !errors.Is(err, trust.ErrDenied) || !strings.Contains(err.Error(), "not trusted") {
		t.Fatalf("strict unknown = %v", err)
	}
}
