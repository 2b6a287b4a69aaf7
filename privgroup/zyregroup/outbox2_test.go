package zyregroup

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/privgroup"
	"github.com/zyre-go/zyre/zre"
)

// The privgroup Writer rotates the Sender (epoch e+1) before it waits,
// unlocked, for the old epoch's last record to reach a slow member; only
// then does OnRotate's distributeLocked run. A peer given e+1 during that
// wait (a key request, a JOIN, another rotation's distribute) that
// distributeLocked then passes over (revoked before Recheck ran, or no
// longer in the group before its LEAVE is handled) reads nothing written
// after: the Group rotates once more before it seals anything (found by
// review: it was removed from the members without a rotation, and kept
// reading).
func TestRemovedHolderOfCurrentKeyReadsNothingAfter(t *testing.T) {
	for _, how := range []string{"revoked", "left"} {
		t.Run(how, func(t *testing.T) { onRotateDropsHolder(t, how) })
	}
}

func onRotateDropsHolder(t *testing.T, how string) {
	d := newDeliverGroup(t, func(p, x uuid.UUID) []uuid.UUID { return []uuid.UUID{p, x} }, func(o *Options) {
		o.Crypto.MaxMessages = 1 // the Writer rotates after its first chunk
		o.Crypto.BatchInterval = time.Hour
		o.RecheckInterval = time.Hour
		o.ChunkSize = 1000
	})
	blockBatch := true
	d.node.mu.Lock()
	d.node.refuse = func(peer uuid.UUID, content [][]byte) bool {
		if peer != d.p || len(content) != 1 {
			return false
		}
		h, err := privgroup.ParseHeader(content[0])
		return err == nil && h.Kind == privgroup.KindBatch && blockBatch
	}
	d.node.mu.Unlock()
	w, err := d.g.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	wrote := make(chan error, 1)
	go func() { _, err := w.Write(randomBytes(1000, 90)); wrote <- err }()
	waitFor(t, "the Writer waiting on its rotation record", func() bool { return d.g.Stats().SendRetries >= 5 })
	cur := d.g.Epoch()
	// x asks for our key (it may: any member does when it sees a record it
	// cannot open) and takes the current one, e+1.
	d.g.Handle(&zre.Whisper{EventHeader: zre.EventHeader{Peer: d.x}, Content: [][]byte{[]byte(WhisperPrefix), []byte(group)}})
	d.g.snd.Lock()
	hx := d.g.snd.holds[d.x]
	d.g.snd.Unlock()
	if hx != cur {
		t.Fatalf("x holds epoch %d, want %d", hx, cur)
	}
	switch how {
	case "revoked":
		d.revoke(d.x) // OnRevoked's Recheck has not run yet
	case "left":
		d.node.setPeers(d.p) // its LEAVE is not handled yet
	}
	d.node.mu.Lock()
	blockBatch = false
	d.node.mu.Unlock()
	if err := awaitErr(t, "the Write", wrote); err != nil {
		t.Fatal(err)
	}
	switch how {
	case "revoked":
		d.g.Recheck()
	case "left":
		d.g.Handle(&zre.Leave{EventHeader: zre.EventHeader{Peer: d.x}, Group: group})
	}
	if d.g.Epoch() == cur {
		// Show x opens what is written now (captured from p's traffic).
		mark := len(d.node.received(d.p))
		secret := randomBytes(1000, 91)
		if _, err := w.Write(secret); err != nil {
			t.Fatal(err)
		}
		t.Fatalf("x %s holding our current key (epoch %d) and no rotation followed (members %v); x opens %d octets of the chunk written after",
			how, cur, d.g.Members(), d.openAs(t, d.x, d.node.received(d.p)[mark:], secret))
	}
}

// openAs opens recs with every key peer was sent and returns how many
// octets of secret it read.
func (d *deliverGroup) openAs(t *testing.T, peer uuid.UUID, recs []delivery, secret []byte) int {
	sk := d.sk[peer]
	r, err := privgroup.NewReceiver(group, &sk, privgroup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, dl := range d.node.received(peer) {
		if dl.whisper && len(dl.content) >= 3 {
			r.AddSenderKey(dl.content[2], d.ourSK.Public())
		}
	}
	n := 0
	for _, dl := range recs {
		if dl.whisper {
			continue
		}
		pt, info, err := r.Open(nil, dl.content[0])
		if err == nil && info.Kind == privgroup.KindData && len(pt) > privgroup.ChunkHeaderSize && bytes.Contains(secret, pt[privgroup.ChunkHeaderSize:]) {
			n += len(pt) - privgroup.ChunkHeaderSize
		}
	}
	return n
}

var _ = fmt.Sprint

// A member given up that reads again is waited for again once it takes
// something, also a record sent to it directly (found by review: only a
// send from its outbox or a key did it, so a member that caught up stayed
// given up until the next rotation: a record its queue refused once was
// lost, and a key it refused once waited while the records of its epoch
// went to it before it).
func TestGivenUpMemberThatReadsAgain(t *testing.T) {
	for _, what := range []string{"record", "key"} {
		t.Run(what, func(t *testing.T) { stalledReadsAgain(t, what) })
	}
}

func stalledReadsAgain(t *testing.T, what string) {
	d := newDeliverGroup(t, func(p, _ uuid.UUID) []uuid.UUID { return []uuid.UUID{p} }, func(o *Options) {
		o.SendTimeout = 100 * time.Millisecond
		o.ChunkSize = 1000
		o.Crypto.BatchInterval = time.Hour
		o.RecheckInterval = time.Hour
	})
	w, err := d.g.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	d.node.setFull(d.p, true)
	if _, err := w.Write(randomBytes(1000, 92)); err != nil { // waits SendTimeout: p given up
		t.Fatal(err)
	}
	waitFor(t, "p stalled", func() bool {
		d.g.snd.Lock()
		defer d.g.snd.Unlock()
		return d.g.snd.stalled[d.p] && len(d.g.snd.out) == 0
	})
	d.node.setFull(d.p, false)
	// p reads again: it takes the next chunks.
	if _, err := w.Write(randomBytes(3000, 93)); err != nil {
		t.Fatal(err)
	}
	d.g.snd.Lock()
	stalled := d.g.snd.stalled[d.p]
	d.g.snd.Unlock()
	t.Logf("p took %d sends since; stalled %v", len(d.node.received(d.p)), stalled)
	once := true
	var first time.Time
	d.node.mu.Lock()
	d.node.refuse = func(peer uuid.UUID, content [][]byte) bool {
		if peer != d.p || !once {
			return false
		}
		switch what {
		case "record":
			if h, err := privgroup.ParseHeader(content[0]); len(content) == 1 && err == nil && h.Kind == privgroup.KindData {
				once = false
				return true
			}
		case "key":
			// Its queue refuses the key for 20 ms (a moment's full
			// queue, then room), or until it has taken the next record.
			if len(content) >= 3 {
				if first.IsZero() {
					first = time.Now()
				}
				return time.Since(first) < 20*time.Millisecond
			}
			if h, err := privgroup.ParseHeader(content[0]); len(content) == 1 && err == nil && h.Kind == privgroup.KindData {
				once = false
			}
		}
		return false
	}
	d.node.mu.Unlock()
	if what == "key" {
		if err := d.g.Rotate(); err != nil { // p's queue refuses its new key once
			t.Fatal(err)
		}
	}
	mark := len(d.node.received(d.p))
	secret := randomBytes(2000, 94)
	if _, err := w.Write(secret); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	d.awaitNothingWaiting(t)
	if n := d.openInOrder(t, d.p, mark, secret); n != len(secret) {
		var order []string
		for _, dl := range d.node.received(d.p)[mark:] {
			if dl.whisper {
				order = append(order, "key")
			} else if h, err := privgroup.ParseHeader(dl.content[0]); err == nil {
				order = append(order, fmt.Sprintf("kind%d", h.Kind))
			}
		}
		t.Fatalf("p, reading again for %d sends, can open %d of %d octets written after one refusal of a %s (received %v; Undelivered %d)",
			mark, n, len(secret), what, order, d.g.Stats().Undelivered)
	}
}

// openInOrder plays what peer was sent in order (each key taken when it
// comes, as its Group would) and returns how many octets of secret it
// opens from the records from index mark on.
func (d *deliverGroup) openInOrder(t *testing.T, peer uuid.UUID, mark int, secret []byte) int {
	sk := d.sk[peer]
	r, err := privgroup.NewReceiver(group, &sk, privgroup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	for i, dl := range d.node.received(peer) {
		if dl.whisper {
			if len(dl.content) >= 3 {
				r.AddSenderKey(dl.content[2], d.ourSK.Public())
			}
			continue
		}
		pt, info, err := r.Open(nil, dl.content[0])
		if i >= mark && err == nil && info.Kind == privgroup.KindData && len(pt) > privgroup.ChunkHeaderSize && bytes.Contains(secret, pt[privgroup.ChunkHeaderSize:]) {
			n += len(pt) - privgroup.ChunkHeaderSize
		}
	}
	return n
}
