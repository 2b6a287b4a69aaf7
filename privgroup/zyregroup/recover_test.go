package zyregroup

// Records go only to the members given our key (usertry4 #3: a stranger
// who joined the ZRE group received every record). A member that lacks a
// key used to learn of it from a record it could not open, and asked; it
// no longer receives records before the key, so each case gets the key
// another way. Each test here failed before.

import (
	"bytes"
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/zre"
)

// missKey waits until m's node, in the group without a Group, got from's
// key WHISPER (which goes nowhere: no Group reads it).
func missKey(t *testing.T, m, from *member) {
	t.Helper()
	deadline := time.After(eventTimeout)
	for {
		select {
		case ev := <-m.n.Events():
			if w, ok := ev.(*zre.Whisper); ok && w.Peer == from.n.UUID() && len(w.Content) == 4 && string(w.Content[0]) == WhisperPrefix {
				return
			}
		case <-deadline:
			t.Fatalf("%s: no key WHISPER from %s", m.name, from.name)
		}
	}
}

// readsWhole checks that reader, holding sender's key, reads a stream of
// sender's whole.
func readsWhole(t *testing.T, reader, sender *member) {
	t.Helper()
	rd, s := readStream(t, reader, sender)
	streamExact(t, sender, rd, s, randomBytes(30000, 11))
	if len(s.gaps) != 0 {
		t.Fatalf("%s read with gaps %v", reader.name, s.gaps)
	}
}

// A Group attached after its node joined the group (the members' keys came
// before it) asks the trusted members there for their keys at once, before
// anyone sends a record.
func TestAttachAfterJoinAsksForKeys(t *testing.T) {
	port := testBeaconPort()
	a, b := newNode(t, "alice", port, false), newNode(t, "bob", port, false)
	trusted := trustKeys(a, b)
	if err := b.n.Join(group); err != nil {
		t.Fatal(err)
	}
	a.attach(group, Options{Trusted: trusted})
	missKey(t, b, a)
	b.attach(group, Options{Trusted: trusted})
	b.awaitSender(a)
	if st := a.g.Stats(); st.Records != 0 || b.g.Stats().KeyRequests == 0 {
		t.Fatalf("alice %+v, bob %+v: want bob to ask, with no record sent", st, b.g.Stats())
	}
	readsWhole(t, b, a)
}

// A member whose node restarted (same key, so the same UUID) and joined
// the group before its Group was attached gets the sender's key without a
// record.
func TestRestartedMemberGetsKey(t *testing.T) {
	port := testBeaconPort()
	a, old := newNode(t, "alice", port, false), newNode(t, "bob", port, false)
	trusted := trustKeys(a, old)
	a.attach(group, Options{Trusted: trusted})
	old.attach(group, Options{Trusted: trusted})
	old.awaitSender(a)
	waitFor(t, "bob a member of alice's", func() bool { return contains(a.g.Members(), old.n.UUID()) })
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	if err := old.n.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	b := newNodeKey(t, "bob", port, false, 100*time.Millisecond, old.sk)
	if err := b.n.Join(group); err != nil {
		t.Fatal(err)
	}
	missKey(t, b, a)
	b.attach(group, Options{Trusted: trusted})
	b.awaitSender(a)
	readsWhole(t, b, a)
}

// A member given up because its key waited SendTimeout (its queue was
// full) is offered the key again at each recheck, without being waited for
// (a recheck while its queue is still full changes nothing), and gets
// records only once it took it: it reads what is written after.
func TestGivenUpMemberGetsTheKeyAgain(t *testing.T) {
	d := newDeliverGroup(t, func(p, _ uuid.UUID) []uuid.UUID { return []uuid.UUID{p} }, func(o *Options) {
		o.SendTimeout = 50 * time.Millisecond
	})
	d.node.setFull(d.p, true)
	if err := d.g.Rotate(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "p's key given up", func() bool { return d.g.Stats().Undelivered == 1 && !contains(d.g.Members(), d.p) })
	mark := len(d.node.received(d.p)) // the key of epoch 0, taken at Attach
	w, err := d.g.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(randomBytes(5000, 12)); err != nil { // while p is no member: not sent to it
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	d.g.Recheck() // its queue is still full
	if got := d.node.received(d.p)[mark:]; len(got) != 0 || contains(d.g.Members(), d.p) || len(d.g.pending(d.p)) != 0 {
		t.Fatalf("p, given up without our key, was sent %d keys or records (members %v, %d waiting for it)", len(got), d.g.Members(), len(d.g.pending(d.p)))
	}
	d.node.setFull(d.p, false)
	d.g.Recheck()
	if !contains(d.g.Members(), d.p) {
		t.Fatalf("p not given the key again at the recheck: members %v", d.g.Members())
	}
	tail := randomBytes(7000, 13)
	writeAll(t, w, tail)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if dl := d.node.received(d.p)[mark:]; len(dl) == 0 || !dl[0].whisper {
		t.Fatalf("p's first delivery is not our key (%d deliveries)", len(dl))
	}
	if got, gaps := d.playAs(t, d.p); !bytes.Equal(got, tail) {
		t.Fatalf("p read %d octets (%d gaps), want the %d written after it got the key", len(got), gaps, len(tail))
	}
}

// A peer in the group that was not trusted gets nothing; once trusted (a
// recheck finds it so) it is given our key and asked for its own (we
// refused it), and reads what is written from then on.
func TestPeerTrustedLaterGetsTheKey(t *testing.T) {
	var x uuid.UUID
	var trustX atomic.Bool
	d := newDeliverGroup(t, func(p, xx uuid.UUID) []uuid.UUID { x = xx; return []uuid.UUID{p, xx} }, func(o *Options) {
		trusted := o.Trusted
		o.Trusted = func(id uuid.UUID, k curve.PublicKey) bool { return (id != x || trustX.Load()) && trusted(id, k) }
	})
	w, err := d.g.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	before := randomBytes(5000, 14)
	writeAll(t, w, before)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := d.node.received(d.x); len(got) != 0 || contains(d.g.Members(), d.x) {
		t.Fatalf("x, untrusted, was sent %d keys or records (members %v)", len(got), d.g.Members())
	}
	trustX.Store(true)
	d.g.Recheck()
	if !contains(d.g.Members(), d.x) {
		t.Fatalf("x, trusted now, not given our key at the recheck: members %v", d.g.Members())
	}
	d.node.mu.Lock()
	asked := slices.Contains(d.node.requests, d.x)
	d.node.mu.Unlock()
	if !asked {
		t.Fatal("x, trusted now, was not asked for its key")
	}
	after := randomBytes(7000, 15)
	writeAll(t, w, after)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.playAs(t, d.x); !bytes.Equal(got, after) {
		t.Fatalf("x read %d octets, want the %d written after it was trusted", len(got), len(after))
	}
	if got, gaps := d.playAs(t, d.p); !bytes.Equal(got, append(before, after...)) || gaps != 0 {
		t.Fatalf("p read %d octets with %d gaps, want all %d", len(got), gaps, len(before)+len(after))
	}
}

// The same between two nodes: alice does not trust carol at first (she
// refuses carol's key and gives her none); once her trust decision does, a
// recheck gives carol her key and fetches carol's, and each reads the
// other's stream.
func TestTrustedLaterBetweenNodes(t *testing.T) {
	port := testBeaconPort()
	a, c := newNode(t, "alice", port, false), newNode(t, "carol", port, false)
	var trustCarol atomic.Bool
	both := trustKeys(a, c)
	a.attach(group, Options{RecheckInterval: 50 * time.Millisecond, Trusted: func(p uuid.UUID, k curve.PublicKey) bool {
		return both(p, k) && (k != c.sk.Public() || trustCarol.Load())
	}})
	c.attach(group, Options{Trusted: both})
	waitFor(t, "alice refusing carol's key", func() bool { return a.g.Stats().KeysRefused > 0 })
	if contains(c.g.Senders(), a.n.UUID()) || contains(a.g.Members(), c.n.UUID()) {
		t.Fatal("carol holds alice's key before alice trusts her")
	}
	trustCarol.Store(true)
	c.awaitSender(a)
	a.awaitSender(c)
	readsWhole(t, c, a)
	readsWhole(t, a, c)
}
