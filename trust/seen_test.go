package trust

import (
	"testing"
	"time"

	"github.com/zyre-go/zyre/curve"
)

// TestFloodDoesNotEvictTalkingPeer: an honest tofu peer admitted once
// keeps talking on its connection (the node reports it with Seen on every
// tick) while a flood of new keys fills the tofu records many times over:
// its pin stays, so a later impostor of its name is still caught.
func TestFloodDoesNotEvictTalkingPeer(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{MaxPeers: 8})
	honest := newPeer(1, "honest")
	o := honest.obs()
	o.UUID = randomUUID(1) // a C node: unbound, pinned by name
	mustAdmit(t, s, o, t0)
	for i := 0; i < 100; i++ {
		mustAdmit(t, s, newPeer(1000+i, "").obs(), t0.Add(time.Duration(i)*time.Second))
		if i%4 == 3 { // a tick every few new keys
			s.Seen([]curve.PublicKey{honest.key})
		}
	}
	if _, ok, _ := s.Lookup(honest.key); !ok {
		t.Fatal("the flood evicted the pin of a peer that keeps talking")
	}
	imp := newPeer(2, "honest")
	io := imp.obs()
	io.UUID = randomUUID(1)
	if v := mustAdmit(t, s, io, t0.Add(time.Hour)); v.Allow || v.KeyChange == nil {
		t.Fatalf("impostor of the pinned peer: %+v", v)
	}
}

// TestSeenSurvivesAnotherProcess: the pin of a peer that keeps talking is
// kept by another process too (the CLI reads the files and evicts by
// LastSeen), and so after its compaction.
func TestSeenSurvivesAnotherProcess(t *testing.T) {
	home := t.TempDir()
	now := t0
	node := openStore(t, home, Options{MaxPeers: 8, Now: func() time.Time { return now }})
	honest := newPeer(1, "honest")
	mustAdmit(t, node, honest.obs(), t0)
	for i := 0; i < 100; i++ {
		now = t0.Add(time.Duration(i+1) * time.Minute)
		mustAdmit(t, node, newPeer(1000+i, "").obs(), now)
		if i%4 == 3 {
			node.Seen([]curve.PublicKey{honest.key})
		}
		if i%10 == 9 {
			onDisk(t, node) // the flood's keys reach the disk (its evictions do not)
		}
	}
	onDisk(t, node)
	cli := openStore(t, home, Options{MaxPeers: 8})
	if err := cli.compactNow(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := cli.Lookup(honest.key); !ok {
		t.Fatal("another process evicted the pin of a peer that keeps talking")
	}
	if err := node.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := node.Lookup(honest.key); !ok {
		t.Fatal("the node lost the pin after another process's compaction")
	}
}

// TestOnRevokedMayFlush: OnRevoked may call Flush (zre.Node.Close does),
// for a revocation made by this process and for one read from another's.
func TestOnRevokedMayFlush(t *testing.T) {
	home := t.TempDir()
	done := make(chan error, 4)
	var s *Store
	s = openStore(t, home, Options{OnRevoked: func([]Record) { done <- s.Flush(ctx) }})
	cli := openStore(t, home, Options{})
	b, c := newPeer(2, "bob"), newPeer(3, "carol")
	mustAdmit(t, s, b.obs(), t0)
	mustAdmit(t, s, c.obs(), t0)
	onDisk(t, s)
	if _, err := s.Revoke(ctx, b.key, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Revoke(ctx, c.key, "y"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if i == 1 {
			s.Flush(ctx) // picks up the CLI's revocation
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Flush from OnRevoked: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Flush from OnRevoked deadlocked")
		}
	}
}
