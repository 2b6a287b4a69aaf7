package privgroup

import (
	"context"
	"errors"
	"io"
	"testing"
)

// The queue hands its records over in bursts: takeAll returns them in
// order and keeps the next ones in the caller's spare array, the limits
// count only what is still queued, and closed is reported once nothing is
// left. (Moved from zyregroup with the queue.)
func TestQueueTakeAll(t *testing.T) {
	q := NewQueue(3, 100, nil)
	rec := func(i int) []byte { return []byte{byte(i)} }
	for i := range 3 {
		if !q.Push(rec(i), nil) {
			t.Fatalf("push %d refused", i)
		}
	}
	if q.Push(rec(3), nil) {
		t.Fatal("a fourth record passed a limit of 3")
	}
	spare := make([]queued, 0, 8)
	got, closed := q.takeAll(spare)
	if closed || len(got) != 3 || got[0].rec[0] != 0 || got[2].rec[0] != 2 {
		t.Fatalf("takeAll: %v closed=%v, want records 0, 1, 2", got, closed)
	}
	// The taken records no longer count against the limits, and the next
	// ones go into the spare array.
	for i := 3; i < 6; i++ {
		if !q.Push(rec(i), nil) {
			t.Fatalf("push %d refused after takeAll", i)
		}
	}
	if &q.recs[0] != &spare[:1][0] {
		t.Fatal("the queue did not reuse the spare array")
	}
	if q.Push(rec(6), nil) {
		t.Fatal("limits not applied to the new records")
	}
	if q.maxRecs = 10; q.Push(make([]byte, 98), nil) {
		t.Fatal("octet limit not applied to the new records")
	}
	q.Close()
	got, closed = q.takeAll(got[:0])
	if closed || len(got) != 3 || got[0].rec[0] != 3 {
		t.Fatalf("takeAll after close: %v closed=%v, want records 3, 4, 5 first", got, closed)
	}
	if got, closed = q.takeAll(got[:0]); !closed || len(got) != 0 {
		t.Fatalf("takeAll of an empty closed queue: %v closed=%v", got, closed)
	}
	// A spare array grown by a burst is let go rather than kept.
	if got, _ := q.takeAll(make([]queued, 0, 2048)); cap(got) != 0 {
		t.Fatalf("kept a spare of capacity %d", cap(got))
	}
}

type owner struct{ n int }

// Recv returns the records in order, releases each one's owner when asked
// for the next, waits for a Push, ends with io.EOF after Close once empty
// (Push then refused), and with ctx's error when ctx ends while it waits.
func TestQueueRecv(t *testing.T) {
	var released []int
	q := NewQueue(10, 100, func(o any) { released = append(released, o.(*owner).n) })
	q.Push([]byte("a"), &owner{1})
	q.Push([]byte("b"), nil)
	q.Push([]byte("c"), &owner{3})
	ctx := context.Background()
	for i, want := range []string{"a", "b", "c"} {
		got, err := q.Recv(ctx)
		if err != nil || string(got) != want {
			t.Fatalf("Recv %d: %q, %v; want %q", i, got, err, want)
		}
	}
	if len(released) != 1 || released[0] != 1 {
		t.Fatalf("released %v before the last Recv, want [1]", released)
	}
	go q.Push([]byte("d"), nil) // (before Recv waits, or while)
	if got, err := q.Recv(ctx); err != nil || string(got) != "d" {
		t.Fatalf("Recv after a wait: %q, %v", got, err)
	}
	if len(released) != 2 || released[1] != 3 {
		t.Fatalf("released %v, want [1 3]", released)
	}
	cctx, cancel := context.WithCancel(ctx)
	go cancel()
	if _, err := q.Recv(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Recv with a cancelled context: %v", err)
	}
	q.Push([]byte("e"), nil)
	if q.Closed() {
		t.Fatal("Closed before Close")
	}
	q.Close()
	if !q.Closed() || q.Push([]byte("f"), nil) {
		t.Fatal("Close: not Closed, or Push still taken")
	}
	if got, err := q.Recv(ctx); err != nil || string(got) != "e" {
		t.Fatalf("Recv after Close: %q, %v; want what was queued first", got, err)
	}
	if _, err := q.Recv(ctx); err != io.EOF {
		t.Fatalf("Recv of an empty closed queue: %v, want io.EOF", err)
	}
}
