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

// TestMergeKeepsVerification: the node introduces a peer (a vouch from
// the network, not written yet) while the CLI verifies it: the
// verification is not lost when the node writes its change.
func TestMergeKeepsVerification(t *testing.T) {
	home := t.TempDir()
	node := openStore(t, home, Options{WriteDelay: time.Hour})
	cli := openStore(t, home, Options{})
	alice, phone := newPeer(1, "alice"), newPeer(4, "phone")
	mustVerify(t, node, alice)
	mustAdmit(t, node, phone.obs(), t0)
	onDisk(t, node)
	vouch := signed(t, newTestStore(t), alice, &Vouch{Key: phone.key, UUID: phone.id, Name: "phone"})
	if _, err := node.Apply(ctx, vouch); err != nil {
		t.Fatal(err)
	}
	if got := stateOf(t, node, phone); got != StateIntroduced {
		t.Fatalf("phone is %s after alice's vouch", got)
	}
	mustVerify(t, cli, phone)
	if err := node.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i, s := range []*Store{node, openStore(t, home, Options{})} {
		if got := stateOf(t, s, phone); got != StateVerified {
			t.Fatalf("store %d: phone is %s, want the CLI's verification", i, got)
		}
	}
}

// TestForgetDoesNotEraseRevocation: the node honours a revocation from
// the network (not written yet) while the CLI forgets the record (tofu,
// as the CLI read it): the revocation stands.
func TestForgetDoesNotEraseRevocation(t *testing.T) {
	home := t.TempDir()
	node := openStore(t, home, Options{WriteDelay: time.Hour})
	cli := openStore(t, home, Options{})
	alice, phone := newPeer(1, "alice"), newPeer(4, "phone")
	mustVerify(t, node, alice)
	mustAdmit(t, node, phone.obs(), t0)
	onDisk(t, node)
	if _, ok, _ := cli.Lookup(phone.key); !ok {
		t.Fatal("the CLI does not see the phone")
	}
	rev := signed(t, newTestStore(t), alice, &Revoke{Key: phone.key, Reason: "stolen"})
	if _, err := node.Apply(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Forget(ctx, phone.key); err != nil {
		t.Fatal(err)
	}
	if err := node.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i, s := range []*Store{node, openStore(t, home, Options{})} {
		if got := stateOf(t, s, phone); got != StateRevoked {
			t.Fatalf("store %d: phone is %s, want revoked", i, got)
		}
	}
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
