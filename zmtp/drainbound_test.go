package zmtp

import (
	"context"
	"errors"
	"testing"
	"time"
)

func sized(n int) outMsg { return outMsg{frames: [][]byte{make([]byte, n)}} }

// fill pushes msgs of size octets until q refuses one and returns how
// many it took.
func fill(q *sendQueue, size int) int {
	k := 0
	for q.push(sized(size)) {
		k++
		if k > 1e6 {
			panic("the queue never refuses")
		}
	}
	return k
}

// The bound refuses a message once the octets waiting reach MinBytes (no
// rate measured yet), counts what the writer took until it reports it
// written, and makes room when it does.
func TestSendBoundRefusesAtMinBytes(t *testing.T) {
	const size = 16 << 10
	q := newSendQueueBound(1000, SendBound{Target: 100 * time.Millisecond, MinBytes: 64 << 10})
	// 4 messages of 16 KiB and their headers reach 64 KiB: the 5th waits.
	if got := fill(q, size); got != 4 {
		t.Fatalf("queued %d messages of %d octets under a bound of 64 KiB, want 4", got, size)
	}
	var dst [writerBatch]outMsg
	t0 := time.Unix(1000, 0)
	k, _ := q.takeBound(dst[:], 0, t0)
	if k != 4 {
		t.Fatalf("took %d, want 4 (64 KiB budget, one past it)", k)
	}
	// Taken, not written: still counted. The queue holds no entry, so a
	// message is accepted (an empty queue always takes one), then none.
	if !q.push(sized(size)) {
		t.Fatal("a push into an empty queue refused")
	}
	if q.push(sized(size)) {
		t.Fatal("push accepted while the writer holds the bound's octets")
	}
	q.report(4*(size+9), t0.Add(time.Millisecond))
	if got := fill(q, size); got != 3 {
		t.Fatalf("after the writer reported its 4 written: queued %d more, want 3", got)
	}
}

// An empty queue takes a message of any size, even far over the bound;
// the next waits until the writer took and wrote it.
func TestSendBoundEmptyQueueTakesLargeMessage(t *testing.T) {
	q := newSendQueueBound(1000, SendBound{Target: 100 * time.Millisecond, MinBytes: 64 << 10})
	big := sized(8 << 20)
	if !q.push(big) {
		t.Fatal("an 8 MiB message refused by an empty queue")
	}
	if q.push(sized(10)) {
		t.Fatal("a message queued behind 8 MiB over a 64 KiB bound")
	}
	var dst [writerBatch]outMsg
	now := time.Unix(1000, 0)
	if k, _ := q.takeBound(dst[:], 0, now); k != 1 {
		t.Fatalf("took %d, want the one message", k)
	}
	// Taken: the ring is empty again, so a second large one is taken too.
	if !q.push(sized(8 << 20)) {
		t.Fatal("a second 8 MiB message refused by an empty ring")
	}
	if q.push(sized(10)) {
		t.Fatal("a message queued behind 16 MiB over a 64 KiB bound")
	}
	q.report(wireSize(big.frames), now.Add(time.Second))
	if q.push(sized(10)) {
		t.Fatal("a message queued behind 8 MiB over a 64 KiB bound")
	}
	if k, _ := q.takeBound(dst[:], 0, now.Add(time.Second)); k != 1 {
		t.Fatalf("took %d, want the second message", k)
	}
	q.report(wireSize(big.frames), now.Add(2*time.Second))
	if !q.push(sized(10)) {
		t.Fatal("a small message refused by an empty queue")
	}
}

// simulate drives a bounded queue with a fake clock: a producer keeps it
// full (16 KiB messages), a writer drains it at rate octets per second.
// It returns the most octets that waited (queued and held by the writer)
// at any step, and the fake time after steps batches.
func simulate(t *testing.T, q *sendQueue, rate float64, now time.Time, steps int) (peak int64, end time.Time) {
	t.Helper()
	var dst [writerBatch]outMsg
	var done int64
	for range steps {
		fill(q, 16<<10)
		q.mu.Lock()
		peak = max(peak, q.db.bytes)
		q.mu.Unlock()
		k, _ := q.takeBound(dst[:], done, now)
		if k == 0 {
			t.Fatal("the writer found a full queue empty")
		}
		done = 0
		for _, m := range dst[:k] {
			done += wireSize(m.frames)
		}
		now = now.Add(time.Duration(float64(done) / rate * float64(time.Second)))
	}
	q.report(done, now) // the last batch, written
	return peak, now
}

// The bound follows the rate the writer drains the queue at: rate ×
// Target once measured, down when the link slows and up when it speeds
// up again, never below MinBytes; what waits stays within one message of
// it. The clock is fake: no timing in the test.
func TestSendBoundFollowsDrainRate(t *testing.T) {
	const target = 100 * time.Millisecond
	q := newSendQueueBound(1<<20, SendBound{Target: target, MinBytes: 256 << 10})
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		name string
		rate float64 // octets per second
		want int64   // the bound it settles at
	}{
		{"40 Mbit/s", 5e6, 500e3},
		{"400 Mbit/s", 50e6, 5e6},
		{"4 Mbit/s: MinBytes", 0.5e6, 256 << 10},
		{"80 Mbit/s", 10e6, 1e6},
	} {
		// Long enough for the estimate to settle (3 s of fake time), and
		// for what a faster link queued to drain.
		steps := int(3 * tc.rate / (64 << 10))
		_, now = simulate(t, q, tc.rate, now, steps)
		var limit, bytes int64
		var rate float64
		for i := 0; ; i++ {
			q.mu.Lock()
			limit, rate, bytes = q.db.limit, q.db.rate, q.db.bytes
			q.mu.Unlock()
			if bytes <= limit+16<<10+9 || i == 1000 {
				break
			}
			_, now = simulate(t, q, tc.rate, now, 1)
		}
		if limit < tc.want*95/100 || limit > tc.want*105/100 {
			t.Errorf("%s: bound %d octets (rate %.0f/s), want %d ±5%%", tc.name, limit, rate, tc.want)
		}
		// The kernel's share follows: a quarter of the bound, at least
		// DefaultNotSentLowat.
		q.mu.Lock()
		lowat := q.db.lowat
		q.mu.Unlock()
		if want := max(limit/4, DefaultNotSentLowat); lowat != want {
			t.Errorf("%s: TCP_NOTSENT_LOWAT wanted %d, want %d", tc.name, lowat, want)
		}
		// Once settled, what waits stays within a message (and the
		// writer's batch) of it.
		peak, end := simulate(t, q, tc.rate, now, 50)
		now = end
		if over := peak - limit; over > 16<<10+9 {
			t.Errorf("%s: %d octets waited, %d over the bound %d", tc.name, peak, over, limit)
		}
	}
}

// An idle writer's window ends: a burst after a pause does not count the
// pause as time spent draining (the rate would drop).
func TestSendBoundIdleIsNotSlow(t *testing.T) {
	q := newSendQueueBound(1<<20, SendBound{Target: 100 * time.Millisecond})
	now := time.Unix(1000, 0)
	_, now = simulate(t, q, 5e6, now, 300)
	// Drain it all, then stay idle for 10 s.
	var dst [writerBatch]outMsg
	var done int64
	for {
		k, _ := q.takeBound(dst[:], done, now)
		if k == 0 {
			break
		}
		done = 0
		for _, m := range dst[:k] {
			done += wireSize(m.frames)
		}
		now = now.Add(time.Duration(float64(done) / 5e6 * float64(time.Second)))
	}
	q.report(done, now)
	q.mu.Lock()
	before := q.db.limit
	q.mu.Unlock()
	now = now.Add(10 * time.Second)
	_, _ = simulate(t, q, 5e6, now, 5)
	q.mu.Lock()
	after := q.db.limit
	q.mu.Unlock()
	if after < before*9/10 {
		t.Fatalf("bound %d after an idle 10 s and a burst, was %d: the pause counted as draining", after, before)
	}
}

// Through a Dealer: Send refuses with ErrPeerNotResponding at the bound,
// SendContext waits for room, the first message into an empty queue
// passes however large; with a Router, everything arrives in order.
func TestSendBoundDealer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bound := SendBound{Target: 100 * time.Millisecond, MinBytes: 64 << 10}
	// Nothing listens at first: the Dealer queues.
	r, err := ListenRouter("tcp", "127.0.0.1:0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	addr := r.Addr().String()
	r.Close()
	d, err := DialDealer("tcp", addr, Options{Identity: []byte("d"), SendBound: bound})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	const n = 64
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = make([]byte, 16<<10)
		msgs[i][0] = byte(i)
	}
	msgs[0] = make([]byte, 4<<20) // larger than the bound: passes into an empty queue
	sent := 0
	for ; sent < n; sent++ {
		if err := d.Send(msgs[sent]); err != nil {
			if !errors.Is(err, ErrPeerNotResponding) {
				t.Fatalf("send %d: %v, want ErrPeerNotResponding", sent, err)
			}
			break
		}
	}
	if sent != 1 {
		t.Fatalf("queued %d messages behind 4 MiB with a 64 KiB bound, want 1", sent)
	}
	short, scancel := context.WithTimeout(ctx, 50*time.Millisecond)
	err = d.SendContext(short, msgs[1])
	scancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("SendContext over the bound with nobody reading: %v, want it to wait until its context ends", err)
	}
	// Now a Router listens there: SendContext goes on as it drains.
	r, err = ListenRouter("tcp", addr, Options{SendBound: bound})
	if err != nil {
		t.Fatalf("listening again on %s: %v", addr, err)
	}
	defer r.Close()
	go func() {
		for i := 1; i < n; i++ {
			if err := d.SendContext(ctx, msgs[i]); err != nil {
				t.Errorf("send %d: %v", i, err)
				return
			}
		}
	}()
	for i := range n {
		m, err := r.Recv(ctx)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if len(m.Frames) != 1 || len(m.Frames[0]) != len(msgs[i]) || m.Frames[0][0] != byte(i) {
			t.Fatalf("message %d: got %d octets starting %d, want %d starting %d", i, len(m.Frames[0]), m.Frames[0][0], len(msgs[i]), i)
		}
	}
	// The writer reported everything it wrote: the queue holds no octet.
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	d.sendq.mu.Lock()
	left := d.sendq.db.bytes
	d.sendq.mu.Unlock()
	if left != 0 {
		t.Fatalf("after Flush the bound still counts %d octets", left)
	}
}
