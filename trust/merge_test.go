package trust

import (
	"testing"
	"time"
)

// signed returns the raw statement p signs with body (from a store of its
// own, so the sequence numbers follow p's log there).
func signed(t *testing.T, from *Store, p testPeer, body Body) []byte {
	t.Helper()
	st, err := from.Sign(ctx, p, body)
	if err != nil {
		t.Fatal(err)
	}
	return st.Raw
}

// mergeRace is the set-up of the tests of two processes' changes: the
// node's store (writing only when flushed) and the CLI's, of one home;
// alice is verified and the phone admitted (tofu), on disk.
type mergeRace struct {
	home         string
	node, cli    *Store
	alice, phone testPeer
}

func newMergeRace(t *testing.T) *mergeRace {
	t.Helper()
	home := t.TempDir()
	m := &mergeRace{home: home, node: openStore(t, home, Options{WriteDelay: time.Hour}), cli: openStore(t, home, Options{}),
		alice: newPeer(1, "alice"), phone: newPeer(4, "phone")}
	mustVerify(t, m.node, m.alice)
	mustAdmit(t, m.node, m.phone.obs(), t0)
	onDisk(t, m.node)
	return m
}

// fromAlice applies alice's statement body to the node (not written yet).
func (m *mergeRace) fromAlice(t *testing.T, body Body) {
	t.Helper()
	if _, err := m.node.Apply(ctx, signed(t, newTestStore(t), m.alice, body)); err != nil {
		t.Fatal(err)
	}
}

// flushed writes the node's change and checks that the phone is in state
// want (what says why) in the node and in a store that reads the disk.
func (m *mergeRace) flushed(t *testing.T, want State, what string) {
	t.Helper()
	if err := m.node.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i, s := range []*Store{m.node, openStore(t, m.home, Options{})} {
		if got := stateOf(t, s, m.phone); got != want {
			t.Fatalf("store %d: phone is %s, want %s", i, got, what)
		}
	}
}

// TestMergeKeepsVerification: the node introduces a peer (a vouch from
// the network, not written yet) while the CLI verifies it: the
// verification is not lost when the node writes its change.
func TestMergeKeepsVerification(t *testing.T) {
	m := newMergeRace(t)
	m.fromAlice(t, &Vouch{Key: m.phone.key, UUID: m.phone.id, Name: "phone"})
	if got := stateOf(t, m.node, m.phone); got != StateIntroduced {
		t.Fatalf("phone is %s after alice's vouch", got)
	}
	mustVerify(t, m.cli, m.phone)
	m.flushed(t, StateVerified, "the CLI's verification")
}

// TestForgetDoesNotEraseRevocation: the node honours a revocation from
// the network (not written yet) while the CLI forgets the record (tofu,
// as the CLI read it): the revocation stands.
func TestForgetDoesNotEraseRevocation(t *testing.T) {
	m := newMergeRace(t)
	if _, ok, _ := m.cli.Lookup(m.phone.key); !ok {
		t.Fatal("the CLI does not see the phone")
	}
	m.fromAlice(t, &Revoke{Key: m.phone.key, Reason: "stolen"})
	if _, err := m.cli.Forget(ctx, m.phone.key); err != nil {
		t.Fatal(err)
	}
	m.flushed(t, StateRevoked, "revoked")
}

// TestEvictionKeepsDemotion: a peer introduced by alice falls back to
// tofu when bob's revocation of alice arrives; a flood of new keys evicts
// it before the change is written. It must not come back introduced
// (trusted) from disk.
func TestEvictionKeepsDemotion(t *testing.T) {
	for _, compact := range []bool{false, true} {
		t.Run(map[bool]string{false: "append", true: "after another process compacts"}[compact], func(t *testing.T) {
			testEvictionKeepsDemotion(t, compact)
		})
	}
}

func testEvictionKeepsDemotion(t *testing.T, compact bool) {
	home := t.TempDir()
	node := openStore(t, home, Options{WriteDelay: time.Hour, MaxPeers: 4})
	alice, bob, phone := newPeer(1, "alice"), newPeer(2, "bob"), newPeer(4, "phone")
	mustVerify(t, node, alice)
	mustVerify(t, node, bob)
	vouch := signed(t, newTestStore(t), alice, &Vouch{Key: phone.key, UUID: phone.id, Name: "phone"})
	if _, err := node.Apply(ctx, vouch); err != nil {
		t.Fatal(err)
	}
	if v := mustAdmit(t, node, phone.obs(), t0); !v.Allow || v.Record.State != StateIntroduced {
		t.Fatalf("phone: %+v", v)
	}
	onDisk(t, node)
	rev := signed(t, newTestStore(t), bob, &Revoke{Key: alice.key, Reason: "lost"})
	if _, err := node.Apply(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if got := stateOf(t, node, phone); got != StateTOFU {
		t.Fatalf("phone is %s after its introducer was revoked", got)
	}
	for i := 0; i < 10; i++ {
		mustAdmit(t, node, newPeer(100+i, "").obs(), t0.Add(time.Duration(i+1)*time.Minute))
	}
	if _, ok, _ := node.Lookup(phone.key); ok {
		t.Fatal("phone not evicted by the flood")
	}
	if compact {
		// The CLI, which still reads the phone introduced, compacts.
		if err := openStore(t, home, Options{MaxPeers: 4}).compactNow(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := node.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, home, Options{MaxPeers: 4})
	if r, ok, _ := s2.Lookup(phone.key); ok && r.Trusted() {
		t.Fatalf("phone is %s on disk after its introducer was revoked", r.State)
	}
	if r, ok, _ := node.Lookup(phone.key); ok && r.Trusted() {
		t.Fatalf("phone is %s in the node after its introducer was revoked", r.State)
	}
	if got := stateOf(t, s2, alice); got != StateRevoked {
		t.Fatalf("alice is %s on disk", got)
	}
}
