package zyregroup

import (
	"bytes"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
)

// TestRemovedMemberToldSo: a member that the sender stops trusting (not
// revoked: forgotten, say) no longer receives records, so nothing but a
// notice can end its Reader; it reads what came before, then ends with
// ErrRemoved instead of waiting for a stream that no longer reaches it.
// Trusted again, it gets the key and reads the sender's next stream.
func TestRemovedMemberToldSo(t *testing.T) {
	port := testBeaconPort()
	a, b := newNode(t, "alice", port, false), newNode(t, "bob", port, false)
	var bobTrusted atomic.Bool
	bobTrusted.Store(true)
	a.attach(group, Options{Trusted: func(p uuid.UUID, _ curve.PublicKey) bool { return p != b.n.UUID() || bobTrusted.Load() }})
	b.attach(group, Options{Trust: trustStore(t, a)})
	b.awaitSender(a)
	rd, sink := readStream(t, b, a)

	before := bytes.Repeat([]byte("read before the removal. "), 400)
	w, err := a.g.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, before)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bob reading the first part", func() bool { return sink.len() == len(before) })

	bobTrusted.Store(false)
	a.g.Recheck()
	if err := sink.wait(t, rd); !errors.Is(err, ErrRemoved) {
		t.Fatalf("bob's Reader ended with %v, want ErrRemoved", err)
	}
	if !bytes.Equal(sink.bytes(), before) {
		t.Fatalf("bob read %d octets, want the %d before the removal", sink.len(), len(before))
	}
	if st := a.g.Stats(); st.Dismissed != 1 {
		t.Fatalf("alice's stats %+v: want 1 dismissed", st)
	}
	if st := b.g.Stats(); st.RemovedBy != 1 {
		t.Fatalf("bob's stats %+v: want 1 removal", st)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rd.Close()

	// Trusted again: the next stream reaches bob.
	bobTrusted.Store(true)
	a.g.Recheck()
	waitFor(t, "bob a member again", func() bool { return contains(a.g.Members(), b.n.UUID()) })
	b.awaitSender(a)
	rd2, sink2 := readStream(t, b, a)
	streamExact(t, a, rd2, sink2, []byte("trusted again"))
}
