package privgroup

import (
	"context"
	"io"
	"sync"
)

// Queue holds one sender's records, in order, between the goroutine that
// receives them (from the node's events) and the goroutine of that
// sender's Reader, whose recv func calls Recv. It is bounded in records
// and octets, and closable. Push and Close may run beside Recv; Recv runs
// on one goroutine at a time.
type Queue struct {
	mu                sync.Mutex
	recs              []queued
	bytes             int
	closed            bool
	wake              chan struct{} // capacity 1
	maxRecs, maxBytes int
	release           func(owner any)

	// Recv's: records taken in one go (the next is taken[next]), and the
	// owner of the record Recv returned last.
	taken []queued
	next  int
	held  any
}

type queued struct {
	rec   []byte
	owner any
}

// NewQueue returns an empty Queue that holds at most records records and
// bytes octets of them. release, if not nil, hands a record's owner back
// (on Recv's goroutine) once the Reader is done with the record.
func NewQueue(records, bytes int, release func(owner any)) *Queue {
	return &Queue{wake: make(chan struct{}, 1), maxRecs: records, maxBytes: bytes, release: release}
}

// Push queues rec, which lies in owner's storage (nil for none): Recv
// hands owner to release once the Reader no longer needs rec. It reports
// false, keeping nothing, when the queue is closed or full. Records still
// queued when a Queue is dropped are not released.
func (q *Queue) Push(rec []byte, owner any) bool {
	q.mu.Lock()
	ok := !q.closed && len(q.recs) < q.maxRecs && q.bytes+len(rec) <= q.maxBytes
	if ok {
		q.recs = append(q.recs, queued{rec, owner})
		q.bytes += len(rec)
	}
	q.mu.Unlock()
	if ok {
		q.signal()
	}
	return ok
}

func (q *Queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Close ends the queue: Recv returns what it holds, then io.EOF.
func (q *Queue) Close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

// Closed reports whether Close was called.
func (q *Queue) Closed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

// Recv returns the next record, waiting for one until ctx ends (its
// error), or io.EOF once the queue is closed and empty. It first releases
// the owner of the record it returned last: a Reader is done with a record
// when it asks for the next.
func (q *Queue) Recv(ctx context.Context) ([]byte, error) {
	if q.held != nil && q.release != nil {
		q.release(q.held)
	}
	q.held = nil
	for q.next == len(q.taken) {
		var end bool
		q.taken, end = q.takeAll(q.taken[:0])
		if q.next = 0; len(q.taken) > 0 {
			break
		}
		if end {
			return nil, io.EOF
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	r := q.taken[q.next]
	q.taken[q.next] = queued{}
	q.next++
	q.held = r.owner
	return r.rec, nil
}

// takeAll returns every queued record and queues the next ones in spare
// (an empty slice the caller is done with): the two arrays alternate.
// closed is reported once nothing is left.
func (q *Queue) takeAll(spare []queued) (recs []queued, closed bool) {
	if cap(spare) > 1024 {
		spare = nil // a burst grew it; let it go
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.recs) == 0 {
		return spare, q.closed
	}
	recs, q.recs, q.bytes = q.recs, spare, 0
	return recs, false
}
