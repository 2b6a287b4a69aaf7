package zmtp

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func qmsg(i int) outMsg { return outMsg{frames: [][]byte{[]byte(fmt.Sprint(i))}} }

func qnum(t *testing.T, m outMsg) int {
	t.Helper()
	var i int
	if _, err := fmt.Sscan(string(m.frames[0]), &i); err != nil {
		t.Fatalf("queued entry %q: %v", m.frames[0], err)
	}
	return i
}

// The ring grows with what waits, never past what SendHWM needs, keeps
// the order, refuses the entry over the HWM, and shrinks back once the
// queue empties after holding little of it.
func TestSendQueueGrowsAndShrinks(t *testing.T) {
	const hwm = 1000
	q := newSendQueue(hwm)
	if n, ring := q.size(); n != 0 || ring != 0 {
		t.Fatalf("new queue: %d entries, ring of %d; want nothing allocated", n, ring)
	}
	for i := range hwm {
		if !q.push(qmsg(i)) {
			t.Fatalf("push %d refused under the HWM", i)
		}
	}
	if q.push(qmsg(hwm)) {
		t.Fatal("push over the HWM accepted")
	}
	if n, ring := q.size(); n != hwm || ring != 1024 {
		t.Fatalf("full queue: %d entries, ring of %d; want %d, 1024", n, ring, hwm)
	}
	var dst [7]outMsg
	next := 0
	for {
		k := q.take(dst[:])
		if k == 0 {
			break
		}
		for _, m := range dst[:k] {
			if got := qnum(t, m); got != next {
				t.Fatalf("took %d, want %d", got, next)
			}
			next++
		}
	}
	if next != hwm {
		t.Fatalf("took %d entries, want %d", next, hwm)
	}
	// A burst kept the ring: the next cycles of a few entries halve it,
	// one halving per time the queue empties, down to queueMinCap.
	rings := []int{}
	for range 10 {
		for i := range 3 {
			q.push(qmsg(i))
		}
		for q.take(dst[:]) > 0 {
		}
		_, ring := q.size()
		rings = append(rings, ring)
	}
	want := []int{512, 256, 128, 64, 32, 16, 16, 16, 16, 16}
	if fmt.Sprint(rings) != fmt.Sprint(want) {
		t.Fatalf("ring sizes after each small cycle %v, want %v", rings, want)
	}
}

// Entries taken and given back go back in front, in their order, and wrap
// around the ring.
func TestSendQueueUnget(t *testing.T) {
	q := newSendQueue(100)
	for i := range 20 {
		q.push(qmsg(i))
	}
	var dst [10]outMsg
	if k := q.take(dst[:]); k != 10 {
		t.Fatalf("took %d, want 10", k)
	}
	for i := 20; i < 30; i++ {
		q.push(qmsg(i))
	}
	q.unget(dst[4:10])
	var got []int
	for {
		k := q.take(dst[:])
		if k == 0 {
			break
		}
		for _, m := range dst[:k] {
			got = append(got, qnum(t, m))
		}
	}
	if len(got) != 26 || got[0] != 4 || got[25] != 29 {
		t.Fatalf("after unget took %v, want 4..29", got)
	}
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("after unget took %v, want 4..29 in order", got)
		}
	}
}

// pushWait waits for room, is woken by a take, and gives up with its
// context's error or the stop channel's.
func TestSendQueuePushWait(t *testing.T) {
	q := newSendQueue(2)
	ctx := testCtx(t)
	q.push(qmsg(0))
	q.push(qmsg(1))
	stop := make(chan struct{})
	errStop := errors.New("stopped")
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := q.pushWait(short, qmsg(2), stop, errStop); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("pushWait on a full queue: %v, want %v", err, context.DeadlineExceeded)
	}
	done := make(chan error, 1)
	go func() { done <- q.pushWait(ctx, qmsg(2), stop, errStop) }()
	var dst [1]outMsg
	if q.take(dst[:]) != 1 || qnum(t, dst[0]) != 0 {
		t.Fatal("take did not return the first entry")
	}
	if err := <-done; err != nil {
		t.Fatalf("pushWait after a take: %v", err)
	}
	go func() { done <- q.pushWait(ctx, qmsg(3), stop, errStop) }()
	close(stop)
	if err := <-done; err != errStop {
		t.Fatalf("pushWait after stop: %v, want %v", err, errStop)
	}
	if n, _ := q.size(); n != 2 {
		t.Fatalf("%d entries, want 2", n)
	}
}

// A writer that found the queue empty gets a token on wake from the next
// push, and only then.
func TestSendQueueWake(t *testing.T) {
	q := newSendQueue(10)
	var dst [4]outMsg
	if q.take(dst[:]) != 0 {
		t.Fatal("took from an empty queue")
	}
	select {
	case <-q.wake:
		t.Fatal("token before any push")
	default:
	}
	q.push(qmsg(0))
	select {
	case <-q.wake:
	default:
		t.Fatal("no token after a push to a waiting writer")
	}
	q.push(qmsg(1)) // the writer is not waiting: no token needed
	select {
	case <-q.wake:
		t.Fatal("token though the writer did not wait")
	default:
	}
	if q.take(dst[:]) != 2 {
		t.Fatal("did not take both entries")
	}
}
