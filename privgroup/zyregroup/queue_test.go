package zyregroup

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/zyre-go/zyre/zmtp"
)

// The queue hands its records over in bursts: takeAll returns them in
// order and keeps the next ones in the caller's spare array, the limits
// count only what is still queued, and closed is reported once nothing is
// left.
func TestQueueTakeAll(t *testing.T) {
	q := newQueue()
	rec := func(i int) []byte { return []byte{byte(i)} }
	for i := range 3 {
		if !q.push(rec(i), 3, 100) {
			t.Fatalf("push %d refused", i)
		}
	}
	if q.push(rec(3), 3, 100) {
		t.Fatal("a fourth record passed a limit of 3")
	}
	spare := make([][]byte, 0, 8)
	got, closed := q.takeAll(spare)
	if closed || len(got) != 3 || got[0][0] != 0 || got[2][0] != 2 {
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
	if q.push(rec(6), 3, 100) || q.push(make([]byte, 98), 10, 100) {
		t.Fatal("limits not applied to the new records")
	}
	q.close()
	got, closed = q.takeAll(got[:0])
	if closed || len(got) != 3 || got[0][0] != 3 {
		t.Fatalf("takeAll after close: %v closed=%v, want records 3, 4, 5 first", got, closed)
	}
	if got, closed = q.takeAll(got[:0]); !closed || len(got) != 0 {
		t.Fatalf("takeAll of an empty closed queue: %v closed=%v", got, closed)
	}
	// A spare array grown by a burst is let go rather than kept.
	if got, _ := q.takeAll(make([][]byte, 0, 2048)); cap(got) != 0 {
		t.Fatalf("kept a spare of capacity %d", cap(got))
	}
}

// retry retries only a full peer queue, until SendTimeout, and gives up
// when the Group closes.
func TestRetry(t *testing.T) {
	full := fmt.Errorf("shout: %w", zmtp.ErrPeerNotResponding)
	other := errors.New("no such group")
	for _, c := range []struct {
		name    string
		fails   int   // ErrPeerNotResponding this many times, then success
		err     error // or this error at once
		timeout time.Duration
		close   bool
		want    error
		retries uint64
	}{
		{name: "success", want: nil},
		{name: "other error", err: other, want: other},
		{name: "full twice", fails: 2, timeout: time.Minute, want: nil, retries: 2},
		{name: "full until the timeout", fails: 1 << 30, timeout: 20 * time.Millisecond, want: zmtp.ErrPeerNotResponding},
		{name: "closed while retrying", fails: 1 << 30, timeout: time.Minute, close: true, want: ErrClosed},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := &Group{opts: Options{SendTimeout: c.timeout}, done: make(chan struct{})}
			calls := 0
			err := g.retry(func() error {
				calls++
				if c.err != nil {
					return c.err
				}
				if calls <= c.fails {
					if c.close && calls == 3 {
						close(g.done)
					}
					return full
				}
				return nil
			})
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("retry = %v, want %v", err, c.want)
			}
			if c.retries != 0 && g.stats.sendRetries.Load() != c.retries {
				t.Fatalf("%d retries counted, want %d", g.stats.sendRetries.Load(), c.retries)
			}
			if c.err != nil && calls != 1 {
				t.Fatalf("%d calls for an error that is not retried", calls)
			}
		})
	}
}
