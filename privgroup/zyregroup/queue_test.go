package zyregroup

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/zmtp"
)

// The queue hands its records over in bursts: takeAll returns them in
// order and keeps the next ones in the caller's spare array, the limits
// count only what is still queued, and closed is reported once nothing is
// left.
func TestQueueTakeAll(t *testing.T) {
	q := newQueue()
	rec := func(i int) record { return record{rec: []byte{byte(i)}} }
	for i := range 3 {
		if !q.push(rec(i), 3, 100) {
			t.Fatalf("push %d refused", i)
		}
	}
	if q.push(rec(3), 3, 100) {
		t.Fatal("a fourth record passed a limit of 3")
	}
	spare := make([]record, 0, 8)
	got, closed := q.takeAll(spare)
	if closed || len(got) != 3 || got[0].rec[0] != 0 || got[2].rec[0] != 2 {
		t.Fatalf("takeAll: %v closed=%v, want records 0, 1, 2", got, closed)
	}
	// The taken records no longer count against the limits, and the next
	// ones go into the spare array.
	for i := 3; i < 6; i++ {
		if !q.push(rec(i), 3, 100) {
			t.Fatalf("push %d refused after takeAll", i)
		}
	}
	if &q.recs[0] != &spare[:1][0] {
		t.Fatal("the queue did not reuse the spare array")
	}
	if q.push(rec(6), 3, 100) || q.push(record{rec: make([]byte, 98)}, 10, 100) {
		t.Fatal("limits not applied to the new records")
	}
	q.close()
	got, closed = q.takeAll(got[:0])
	if closed || len(got) != 3 || got[0].rec[0] != 3 {
		t.Fatalf("takeAll after close: %v closed=%v, want records 3, 4, 5 first", got, closed)
	}
	if got, closed = q.takeAll(got[:0]); !closed || len(got) != 0 {
		t.Fatalf("takeAll of an empty closed queue: %v closed=%v", got, closed)
	}
	// A spare array grown by a burst is let go rather than kept.
	if got, _ := q.takeAll(make([]record, 0, 2048)); cap(got) != 0 {
		t.Fatalf("kept a spare of capacity %d", cap(got))
	}
}

// A send that a member's full queue refuses waits for it (through the
// node's WhisperContext) until SendTimeout, then the member is given up; a
// send that fails otherwise is not tried again; Close ends the wait.
func TestRetry(t *testing.T) {
	other := errors.New("no such peer")
	for _, c := range []struct {
		name        string
		fails       int   // ErrPeerNotResponding this many times, then success
		err         error // or this error at once
		timeout     time.Duration
		close       bool
		waits       int    // WhisperContext calls
		undelivered uint64 // given up
		holds       bool   // the member took the key
	}{
		{name: "success", holds: true},
		{name: "other error", err: other},
		{name: "full twice", fails: 2, timeout: time.Minute, waits: 1, holds: true},
		{name: "full until the timeout", fails: 1 << 30, timeout: 20 * time.Millisecond, waits: 1, undelivered: 1},
		{name: "closed while waiting", fails: 1 << 30, timeout: time.Minute, close: true, waits: 1, undelivered: 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeGroup(t, 0xff, func(o *Options) { o.SendTimeout = c.timeout })
			node := f.g.node.(*fakeNode)
			calls := 0
			tried := make(chan struct{})
			node.mu.Lock()
			node.refuseWhisper = func(uuid.UUID) error {
				if calls++; calls == 3 {
					close(tried)
				}
				if c.err != nil {
					return c.err
				}
				if calls <= c.fails {
					return fmt.Errorf("zre: whisper: %w", zmtp.ErrPeerNotResponding)
				}
				return nil
			}
			node.mu.Unlock()
			if err := f.g.Rotate(); err != nil {
				t.Fatal(err)
			}
			if c.close {
				<-tried
				f.g.Close()
			}
			waitFor(t, "nothing waiting", func() bool { return f.g.is(func() bool { return len(f.g.send.pend) == 0 }) })
			node.mu.Lock()
			waits, n := node.waits, calls
			node.mu.Unlock()
			st := f.g.Stats()
			holds := f.g.is(func() bool { return f.g.send.holds[f.p] == f.g.send.s.Epoch() })
			if waits != c.waits || st.SendRetries != uint64(c.waits) || st.Undelivered != c.undelivered || holds != c.holds {
				t.Fatalf("%d waits (SendRetries %d), Undelivered %d, holds the key %v; want %d, %d, %v", waits, st.SendRetries, st.Undelivered, holds, c.waits, c.undelivered, c.holds)
			}
			if c.err != nil && n != 1 {
				t.Fatalf("%d tries for an error that is not retried", n)
			}
		})
	}
}
