package trust

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// testPeer is a peer's identity made deterministically from a number.
type testPeer struct {
	key  curve.PublicKey
	id   uuid.UUID // bound: derived from key
	sign ed25519.PrivateKey
	name string
}

func (p testPeer) Signer() ed25519.PrivateKey { return p.sign }

func (p testPeer) signPub() ed25519.PublicKey { return p.sign.Public().(ed25519.PublicKey) }

// newPeer makes peer number n; the same n gives the same keys.
func newPeer(n int, name string) testPeer {
	var seed [32]byte
	binary.BigEndian.PutUint64(seed[:], uint64(n)+1000)
	r := rand.NewChaCha8(seed)
	pub, _, err := curve.GenerateKeyPair(r)
	if err != nil {
		panic(err)
	}
	s := make([]byte, ed25519.SeedSize)
	io.ReadFull(r, s)
	return testPeer{key: pub, id: keyUUID(pub), sign: ed25519.NewKeyFromSeed(s), name: name}
}

// randomUUID is an unbound UUID, like a C zyre node's.
func randomUUID(n int) uuid.UUID {
	var u uuid.UUID
	binary.BigEndian.PutUint64(u[:], uint64(n)*7919+1)
	u[6] = 0x40 | u[6]&0x0f
	u[8] = 0x80 | u[8]&0x3f
	return u
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testOpts() Options {
	return Options{Now: func() time.Time { return t0 }, Logger: quietLogger()}
}

func openStore(t testing.TB, home string, o Options) *Store {
	t.Helper()
	if o.Now == nil {
		o.Now = testOpts().Now
	}
	if o.Logger == nil {
		o.Logger = quietLogger()
	}
	s, err := Open(home, o)
	if err != nil {
		t.Fatal(err)
	}
	// Writes happen on the store's goroutine: finish them before the test
	// removes its directory.
	t.Cleanup(func() { s.Flush(context.Background()) })
	return s
}

// onDisk flushes s and returns what its files hold.
func onDisk(t testing.TB, s *Store) string {
	t.Helper()
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var out string
	for _, p := range []string{s.path, s.jpath} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		out += string(b) + "\x00"
	}
	return out
}

// revokedCh collects OnRevoked calls, which come on the store's goroutine.
type revokedCh chan []Record

func (c revokedCh) on(rs []Record) { c <- rs }

// next waits for the next OnRevoked call.
func (c revokedCh) next(t testing.TB) []Record {
	t.Helper()
	select {
	case rs := <-c:
		return rs
	case <-time.After(10 * time.Second):
		t.Fatal("no OnRevoked call within 10 s")
		return nil
	}
}

// none checks that no OnRevoked call is pending (after a Flush of the
// change, the call would have been queued already).
func (c revokedCh) none(t testing.TB) {
	t.Helper()
	select {
	case rs := <-c:
		t.Fatalf("unexpected OnRevoked(%v)", rs)
	case <-time.After(50 * time.Millisecond):
	}
}

func newTestStore(t testing.TB) *Store {
	t.Helper()
	return openStore(t, filepath.Join(t.TempDir(), "zyre"), Options{})
}

func (p testPeer) obs() Observation {
	return Observation{UUID: p.id, Name: p.name, Key: p.key, Addr: "tcp://127.0.0.1:5670"}
}

func mustAdmit(t testing.TB, s *Store, o Observation, now time.Time) Verdict {
	t.Helper()
	v, err := s.Admit(context.Background(), o, now)
	if err != nil {
		t.Fatalf("Admit(%s): %v", o.Name, err)
	}
	return v
}

func mustVerify(t testing.TB, s *Store, p testPeer) {
	t.Helper()
	if _, err := s.MarkVerified(context.Background(), p.key, p.id, p.name, "qr", p.signPub()); err != nil {
		t.Fatalf("MarkVerified(%s): %v", p.name, err)
	}
}

func setMode(t testing.TB, s *Store, m Mode) {
	t.Helper()
	p, err := s.Policy()
	if err != nil {
		t.Fatal(err)
	}
	p.Mode = m
	if err := s.SetPolicy(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
