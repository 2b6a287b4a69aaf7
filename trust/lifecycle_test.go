package trust

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// exchange delivers every statement of each store's logs to the others,
// in the order given, until nothing new is applied: the gossip's effect.
func exchange(t *testing.T, stores ...*Store) {
	t.Helper()
	for round := 0; ; round++ {
		if round > 10 {
			t.Fatal("no convergence")
		}
		applied := 0
		for _, from := range stores {
			logs, err := from.Logs()
			if err != nil {
				t.Fatal(err)
			}
			for _, to := range stores {
				if to == from {
					continue
				}
				for _, l := range logs {
					for _, st := range l.Statements {
						_, err := to.Apply(ctx, st.Raw)
						switch {
						case err == nil:
							applied++
						case errors.Is(err, ErrReplay), errors.Is(err, ErrUnknownSigner), errors.Is(err, ErrGap):
						default:
							t.Fatalf("apply: %v", err)
						}
					}
				}
			}
		}
		if applied == 0 {
			return
		}
	}
}

func stateOf(t *testing.T, s *Store, p testPeer) State {
	t.Helper()
	r, ok, err := s.Lookup(p.key)
	if err != nil || !ok {
		t.Fatalf("no record of %s: %v", p.name, err)
	}
	return r.State
}

// TestUnrevokeConverges: a mistaken revocation is withdrawn by its
// signer; every node that honoured it gives the key back its state, and a
// revocation by another signer still stands where it counts.
func TestUnrevokeConverges(t *testing.T) {
	alice, bob, dave, phone := newPeer(1, "alice"), newPeer(2, "bob"), newPeer(3, "dave"), newPeer(4, "phone")
	// alice's and bob's stores: each verified the other and the phone.
	sa, sb := newTestStore(t), newTestStore(t)
	mustVerify(t, sa, bob)
	mustVerify(t, sa, phone)
	mustVerify(t, sb, alice)
	mustVerify(t, sb, phone)
	// alice revokes the phone by mistake.
	if _, err := sa.Sign(ctx, alice, &Revoke{Key: phone.key, Reason: "thought it lost"}); err != nil {
		t.Fatal(err)
	}
	exchange(t, sa, sb)
	if stateOf(t, sa, phone) != StateRevoked || stateOf(t, sb, phone) != StateRevoked {
		t.Fatal("the revocation did not spread")
	}
	// Pairing it again does not bring it back: only its revoker can.
	if _, err := sb.MarkVerified(ctx, phone.key, phone.id, "phone", "qr", nil); !errors.Is(err, ErrRevoked) {
		t.Fatalf("re-pairing a revoked key = %v", err)
	}
	// bob cannot withdraw alice's revocation.
	if _, err := sb.Sign(ctx, bob, &Unrevoke{Key: phone.key}); !errors.Is(err, ErrConflict) {
		t.Fatalf("unrevoke by another signer = %v", err)
	}
	// alice withdraws it: both stores give the phone back its state.
	if _, err := sa.Sign(ctx, alice, &Unrevoke{Key: phone.key, Reason: "found it"}); err != nil {
		t.Fatal(err)
	}
	exchange(t, sa, sb)
	for _, s := range []*Store{sa, sb} {
		if got := stateOf(t, s, phone); got != StateVerified {
			t.Fatalf("phone is %s after the revocation was withdrawn", got)
		}
		if v := mustAdmit(t, s, phone.obs(), t0); !v.Allow {
			t.Fatalf("phone refused: %s", v.Reason)
		}
	}
	// A withdrawn revocation does not come back when the store re-reads
	// the logs (a policy change honours stored revocations again).
	p, _ := sb.Policy()
	p.Introductions = false
	if err := sb.SetPolicy(ctx, p); err != nil {
		t.Fatal(err)
	}
	if got := stateOf(t, sb, phone); got != StateVerified {
		t.Fatalf("phone is %s after a policy change", got)
	}
	// Two revokers: withdrawing one leaves the other's standing.
	mustVerify(t, sb, dave)
	sd := newTestStore(t)
	mustVerify(t, sd, phone)
	if _, err := sa.Sign(ctx, alice, &Revoke{Key: phone.key, Reason: "again"}); err != nil {
		t.Fatal(err)
	}
	if _, err := sd.Sign(ctx, dave, &Revoke{Key: phone.key, Reason: "dave too"}); err != nil {
		t.Fatal(err)
	}
	exchange(t, sa, sb, sd)
	if _, err := sa.Sign(ctx, alice, &Unrevoke{Key: phone.key}); err != nil {
		t.Fatal(err)
	}
	exchange(t, sa, sb, sd)
	r, _, _ := sb.Lookup(phone.key)
	if r.State != StateRevoked || r.RevokedBy != dave.key {
		t.Fatalf("at bob's: %s by %s, want revoked by dave", r.State, Fingerprint(r.RevokedBy))
	}
	// It is all on disk: another process reads the same.
	s2 := openStore(t, sb.path[:len(sb.path)-len(FileName)], Options{})
	onDisk(t, sb)
	if r2, _, _ := s2.Lookup(phone.key); r2.State != StateRevoked || r2.RevokedBy != dave.key {
		t.Fatalf("on disk: %+v", r2)
	}
}

// TestLostKeyStaysRevoked: a key revoked by itself (its device reported
// it lost) can never be withdrawn, by anyone; the device comes back only
// with a new key.
func TestLostKeyStaysRevoked(t *testing.T) {
	s := newTestStore(t)
	phone, newPhone := newPeer(4, "phone"), newPeer(5, "phone")
	knowWithBinding(t, s, phone)
	mustVerify(t, s, phone)
	mustApply(t, s, sign(t, phone, 1, nil, t0, &Revoke{Key: phone.key, Reason: "lost"}).Raw)
	if _, err := s.Apply(ctx, sign(t, phone, 2, mustStmt(t, s, phone, 1), t0, &Unrevoke{Key: phone.key}).Raw); !errors.Is(err, ErrSignerRevoked) {
		t.Fatalf("the lost key withdrawing its own revocation = %v", err)
	}
	if _, err := s.Unrevoke(ctx, phone.key, ""); !errors.Is(err, ErrConflict) {
		t.Fatalf("local unrevoke of a self-revoked key = %v", err)
	}
	if _, err := s.Forget(ctx, phone.key); !errors.Is(err, ErrRevoked) {
		t.Fatalf("forget of a revoked key = %v", err)
	}
	// The device with a new key (a new UUID) pairs as a new peer.
	if _, err := s.MarkVerified(ctx, newPhone.key, newPhone.id, "phone", "qr", nil); err != nil {
		t.Fatal(err)
	}
	if v := mustAdmit(t, s, newPhone.obs(), t0); !v.Allow {
		t.Fatalf("new key: %s", v.Reason)
	}
}

// TestLocalRevokeAndForget: a local revocation is withdrawn locally and
// the record gets its state back; forget removes a passer-by.
func TestLocalRevokeAndForget(t *testing.T) {
	s := newTestStore(t)
	a, b := newPeer(1, "alice"), newPeer(2, "passer-by")
	mustVerify(t, s, a)
	mustAdmit(t, s, b.obs(), t0)
	if _, err := s.Unrevoke(ctx, a.key, ""); !errors.Is(err, ErrNotRevoked) {
		t.Fatalf("unrevoke of a verified key = %v", err)
	}
	if _, err := s.Revoke(ctx, a.key, "oops"); err != nil {
		t.Fatal(err)
	}
	r, err := s.Unrevoke(ctx, a.key, "my mistake")
	if err != nil || r.State != StateVerified || r.RevokeReason != "" {
		t.Fatalf("unrevoke = %+v, %v", r, err)
	}
	if old, err := s.Forget(ctx, b.key); err != nil || old.Name != "passer-by" {
		t.Fatalf("forget = %+v, %v", old, err)
	}
	if _, ok, _ := s.Lookup(b.key); ok {
		t.Fatal("forgotten record still there")
	}
	if _, err := s.Forget(ctx, b.key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("forget twice = %v", err)
	}
	// On disk too.
	s2 := openStore(t, s.path[:len(s.path)-len(FileName)], Options{})
	if _, ok, _ := s2.Lookup(b.key); ok {
		t.Fatal("forgotten record on disk")
	}
	if r, _, _ := s2.Lookup(a.key); r.State != StateVerified {
		t.Fatalf("alice on disk: %s", r.State)
	}
}

// TestTrustedIsNotKnown: a tofu key is admitted but not trusted.
func TestTrustedIsNotKnown(t *testing.T) {
	s := newTestStore(t)
	a, b := newPeer(1, "alice"), newPeer(2, "stranger")
	mustVerify(t, s, a)
	if v := mustAdmit(t, s, b.obs(), t0); !v.Allow || v.Record.Trusted() {
		t.Fatalf("stranger: %+v", v)
	}
	if !s.Trusted(a.id, a.key) || s.Trusted(b.id, b.key) || s.Trusted(b.id, a.key) {
		t.Fatal("Trusted is wrong")
	}
}

// TestOnRevokedMayCallTheStore: OnRevoked runs on the store's goroutine,
// so it may call the store (reads and writes) without deadlock, for a
// revocation made by the user and for one that arrived from the network
// (Apply, the node's loop).
func TestOnRevokedMayCallTheStore(t *testing.T) {
	s := newTestStore(t)
	b, c, d := newPeer(2, "bob"), newPeer(3, "carol"), newPeer(4, "dave")
	mustVerify(t, s, b)
	mustAdmit(t, s, c.obs(), t0)
	mustAdmit(t, s, d.obs(), t0)
	done := make(chan string, 4)
	s.opts.OnRevoked = func(rs []Record) {
		for _, r := range rs {
			if got, ok, err := s.Lookup(r.Key); err != nil || !ok || got.State != StateRevoked {
				done <- "lookup failed"
				return
			}
			if _, err := s.List(); err != nil {
				done <- err.Error()
				return
			}
			if err := s.SetNotes(ctx, r.Key, "seen by OnRevoked"); err != nil {
				done <- err.Error()
				return
			}
			done <- r.Name
		}
	}
	if _, err := s.Revoke(ctx, c.key, "x"); err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, sign(t, b, 1, nil, t0, &Revoke{Key: d.key, Reason: "stolen"}).Raw)
	for _, want := range []string{"carol", "dave"} {
		select {
		case got := <-done:
			if got != want {
				t.Fatalf("OnRevoked: %s, want %s", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("OnRevoked deadlocked")
		}
	}
	if r, _, _ := s.Lookup(d.key); r.Notes != "seen by OnRevoked" {
		t.Fatalf("notes %q", r.Notes)
	}
}

// TestInsecureModeRefused: a store others can read is refused, as
// identity.key is, before anything is read or written.
func TestInsecureModeRefused(t *testing.T) {
	s := newTestStore(t)
	mustAdmit(t, s, newPeer(1, "alice").obs(), t0)
	if err := s.compactNow(ctx); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{s.path, s.jpath} {
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := openStore(t, s.path[:len(s.path)-len(FileName)], Options{}).List()
		if !errors.Is(err, ErrInsecure) || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("%s mode 0644: %v", path, err)
		}
		os.Chmod(path, 0o600)
	}
}

// TestTwoProcessesChangeOneRecord: a node's automatic change (last seen,
// a key change) and a user's change in another process (notes, a
// revocation) to one record, neither having seen the other's: both
// survive, and a revocation always does.
func TestTwoProcessesChangeOneRecord(t *testing.T) {
	home := t.TempDir()
	node := openStore(t, home, Options{WriteDelay: time.Hour})
	cli := openStore(t, home, Options{})
	a, b := newPeer(1, "alice"), newPeer(2, "bob")
	mustAdmit(t, node, a.obs(), t0)
	mustAdmit(t, node, b.obs(), t0)
	onDisk(t, node)
	// The node sees both again later (not written yet: WriteDelay).
	later := t0.Add(2 * time.Hour)
	mustAdmit(t, node, a.obs(), later)
	mustAdmit(t, node, b.obs(), later)
	// Meanwhile the CLI annotates alice and revokes bob.
	if err := cli.SetNotes(ctx, a.key, "from the CLI"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Revoke(ctx, b.key, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := node.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Store{node, openStore(t, home, Options{})} {
		ra, _, _ := s.Lookup(a.key)
		rb, _, _ := s.Lookup(b.key)
		if ra.Notes != "from the CLI" || !ra.LastSeen.Equal(later) {
			t.Fatalf("alice: notes %q, last seen %v", ra.Notes, ra.LastSeen)
		}
		if rb.State != StateRevoked || !rb.LastSeen.Equal(later) {
			t.Fatalf("bob: %s, last seen %v", rb.State, rb.LastSeen)
		}
	}
}
