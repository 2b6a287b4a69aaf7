package zmtp

import (
	"context"
	"sync"
	"time"
)

const (
	// queueMinCap is the smallest ring a send queue allocates, at its
	// first message; it doubles as messages wait, up to what SendHWM
	// needs.
	queueMinCap = 16
)

// sendQueue is the send queue of a Dealer or of one Router connection:
// at most hwm entries (messages and Flush markers) wait in it. Its ring
// grows on demand, from nothing to what the waiting entries need, and
// shrinks back when the queue empties while it held less than a quarter
// of its ring since it last emptied: a socket with a large SendHWM costs
// what it queues, not its HWM. Senders push from any goroutine; one
// writer at a time takes (the connection's writer goroutine).
type sendQueue struct {
	hwm  int
	wake chan struct{} // one token when entries arrive and the writer waits

	mu      sync.Mutex
	buf     []outMsg // ring; len is a power of two or 0
	head, n int
	peak    int           // the most entries held since the queue last emptied
	waiting bool          // the writer found the queue empty and waits on wake
	room    chan struct{} // closed when entries are taken, made by a sender that waits for room
	db      *drainBound   // Options.SendBound; nil when off
}

func newSendQueue(hwm int) *sendQueue {
	return &sendQueue{hwm: hwm, wake: make(chan struct{}, 1)}
}

// newSendQueueBound is newSendQueue with the byte bound b (off when
// b.Target <= 0).
func newSendQueueBound(hwm int, b SendBound) *sendQueue {
	q := newSendQueue(hwm)
	if b.Target > 0 {
		q.db = newDrainBound(b)
	}
	return q
}

// full reports whether a message may not be queued now (mu held): hwm
// entries wait, or the bound's octets do while an entry waits (an empty
// queue takes any message).
func (q *sendQueue) full() bool {
	if q.n >= q.hwm {
		return true
	}
	return q.db != nil && q.n > 0 && q.db.over()
}

// push queues m if there is room (full) and reports whether it did.
func (q *sendQueue) push(m outMsg) bool {
	q.mu.Lock()
	if q.full() {
		q.mu.Unlock()
		return false
	}
	q.putAndWake(m)
	return true
}

// putAndWake queues m, then unlocks (wakeUnlock).
func (q *sendQueue) putAndWake(m outMsg) {
	q.put(m)
	q.wakeUnlock()
}

// wakeUnlock unlocks the queue (held by the caller) and wakes the writer
// if it waits.
func (q *sendQueue) wakeUnlock() {
	w := q.waiting
	q.waiting = false
	q.mu.Unlock()
	if w {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// pushWait queues m, waiting while the queue is full. It returns
// ctx.Err() when ctx ends first and errStop when stop is closed first;
// either way m is not queued.
func (q *sendQueue) pushWait(ctx context.Context, m outMsg, stop <-chan struct{}, errStop error) error {
	for {
		q.mu.Lock()
		if !q.full() {
			q.putAndWake(m)
			return nil
		}
		if q.room == nil {
			q.room = make(chan struct{})
		}
		room := q.room
		q.mu.Unlock()
		select {
		case <-room:
		case <-stop:
			return errStop
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// put appends m to the ring, growing it as needed (mu held).
func (q *sendQueue) put(m outMsg) {
	if q.n == len(q.buf) {
		q.resize(max(2*len(q.buf), queueMinCap))
	}
	q.buf[(q.head+q.n)&(len(q.buf)-1)] = m
	q.n++
	q.peak = max(q.peak, q.n)
	if q.db != nil {
		q.db.bytes += wireSize(m.frames)
	}
}

// resize moves the entries into a new ring of size c (a power of two,
// at least q.n) (mu held).
func (q *sendQueue) resize(c int) {
	nb := make([]outMsg, c)
	if q.n > 0 {
		k := copy(nb, q.buf[q.head:min(q.head+q.n, len(q.buf))])
		copy(nb[k:q.n], q.buf)
	}
	q.buf, q.head = nb, 0
}

// take moves up to len(dst) entries, the oldest first, into dst and
// returns how many. When it finds the queue empty it returns 0 and the
// writer must wait on wake before taking again.
func (q *sendQueue) take(dst []outMsg) int {
	q.mu.Lock()
	return q.takeLocked(dst, 0)
}

// takeBound is take on a queue with the byte bound: first it records done
// octets written since the writer's last report, at now (drainBound.done),
// then it takes entries up to takeBudget octets (one at least), so that
// what the writer holds stays small beside the bound.
// It also returns the TCP_NOTSENT_LOWAT the bound wants now (0: none).
func (q *sendQueue) takeBound(dst []outMsg, done int64, now time.Time) (int, int64) {
	q.mu.Lock()
	q.db.done(done, now)
	lowat := q.db.lowat
	return q.takeLocked(dst, takeBudget), lowat
}

// report records done octets written at now without taking (the writer,
// before it waits for more).
func (q *sendQueue) report(done int64, now time.Time) {
	q.mu.Lock()
	q.db.done(done, now)
	if q.room != nil && done > 0 {
		close(q.room)
		q.room = nil
	}
	q.mu.Unlock()
}

// drop removes n octets that the writer took and will never report
// written (its connection ended; it gave the rest back with unget).
func (q *sendQueue) drop(n int64) {
	q.mu.Lock()
	q.db.bytes = max(q.db.bytes-n, 0)
	q.db.restart()
	if q.room != nil {
		close(q.room)
		q.room = nil
	}
	q.mu.Unlock()
}

// takeLocked is take with mu held, which it releases; budget > 0 bounds
// the octets taken after the first entry.
func (q *sendQueue) takeLocked(dst []outMsg, budget int64) int {
	k := 0
	var took int64
	for k < len(dst) && q.n > 0 {
		if budget > 0 {
			if k > 0 && took >= budget {
				break
			}
			took += wireSize(q.buf[q.head].frames)
		}
		i := q.head
		dst[k] = q.buf[i]
		q.buf[i] = outMsg{} // the ring keeps no reference to a taken message
		q.head = (i + 1) & (len(q.buf) - 1)
		q.n--
		k++
	}
	switch {
	case q.n > 0:
	case k == 0:
		q.waiting = true
	default:
		// This take emptied the queue. The ring shrinks by half, down
		// to queueMinCap, each time the queue empties after holding
		// less than a quarter of it; a steady stream keeps its ring.
		q.head = 0
		if len(q.buf) > queueMinCap && q.peak < len(q.buf)/4 {
			q.buf = make([]outMsg, len(q.buf)/2)
		}
		q.peak = 0
	}
	if k > 0 && q.room != nil {
		close(q.room)
		q.room = nil
	}
	q.mu.Unlock()
	return k
}

// unget puts entries the writer took and did not write back at the front
// of the queue, in their order (its connection ended): the next
// connection writes them, as it writes what was never taken. The queue
// may then hold more than hwm entries for a while. With the byte bound,
// their octets are still counted (the writer did not report them): the
// writer reports only those it did not give back.
func (q *sendQueue) unget(ms []outMsg) {
	if len(ms) == 0 {
		return
	}
	q.mu.Lock()
	for q.n+len(ms) > len(q.buf) {
		q.resize(max(2*len(q.buf), queueMinCap))
	}
	for i := len(ms) - 1; i >= 0; i-- {
		q.head = (q.head - 1) & (len(q.buf) - 1)
		q.buf[q.head] = ms[i]
		q.n++
	}
	if q.db != nil {
		q.db.restart()
	}
	q.peak = max(q.peak, q.n)
	q.wakeUnlock()
}

// size returns the number of entries waiting (Dealer.Queued, tests).
func (q *sendQueue) size() (n, ring int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n, len(q.buf)
}
