package zyregroup

import (
	"bytes"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zyre-go/zyre/privgroup"
)

// restart is alice, whose node stops while bob has a Reader open on her
// stream, and the node that starts again with her secret key (so with her
// UUID) and sends into the group anew, from an epoch older than (or equal
// to) the last one bob holds of her.
type restart struct {
	t          *testing.T
	old        *member // alice before the restart (stopped)
	alice, bob *member
	oldRd      *Reader
	oldSink    *sink // nil until oldEnds when the old Reader was left unread
	oldEpoch   uint32
	stop       chan struct{}
	streamDone chan struct{}
	firstWrite atomic.Int64 // unix nanos of the new alice's first Write
}

const (
	oldByte = 0x11 // the octets of alice's stream before the restart
	newByte = 0xa5 // and after
	oldLen  = 10000
)

// restartHow says how alice comes back with an older epoch.
type restartHow struct {
	// burst: rotations in a burst before the restart (each puts her a
	// second ahead of her clock).
	burst int
	// clock: the restarted alice's clock, given her last epoch.
	clock func(oldEpoch uint32) func() time.Time
	// unread: bob does not read alice's first stream before the restart
	// (its records wait in his queue).
	unread bool
	// closeAtEnd: bob closes his Reader of the first stream as soon as it
	// ends (in the goroutine that reads it).
	closeAtEnd bool
}

func minutesBack(uint32) func() time.Time {
	return func() time.Time { return time.Now().Add(-5 * time.Minute) }
}

func newRestart(t *testing.T, how restartHow) *restart {
	t.Helper()
	r := &restart{t: t, stop: make(chan struct{}), streamDone: make(chan struct{})}
	port := testBeaconPort()
	a, b := newNode(t, "alice", port, false), newNode(t, "bob", port, false)
	r.old, r.bob = a, b
	trusted := trustKeys(a, b)
	a.attach(group, Options{Trusted: trusted, ChunkSize: 1000})
	b.attach(group, Options{Trusted: trusted})
	b.awaitSender(a)
	rd, err := b.g.NewReader(a.n.UUID())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rd.Close() })
	r.oldRd = rd
	if !how.unread {
		r.oldSink = drain(rd)
	}
	if how.closeAtEnd {
		go func() { <-r.oldSink.done; rd.Close() }()
	}
	w, err := a.g.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, bytes.Repeat([]byte{oldByte}, oldLen))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if how.burst > 0 {
		// Bob reads the first stream before the burst pushes its epoch
		// out of the three he keeps (found flaky: his Reader had not
		// opened it yet).
		waitFor(t, "bob reading alice's first stream", func() bool { return r.oldSink.len() == oldLen })
	}
	for range how.burst {
		if err := a.g.Rotate(); err != nil {
			t.Fatal(err)
		}
	}
	shoutMarker(a, b, "before the restart") // all of it reached bob's Group
	r.oldEpoch = a.g.Epoch()

	// Alice's node stops in the middle of her stream, and starts again.
	a.n.Close()
	a.g.Close()
	var crypto privgroup.Options
	if how.clock != nil {
		crypto.Now = how.clock(r.oldEpoch)
	}
	r.alice = newNodeKey(t, "alice", port, false, 100*time.Millisecond, a.sk)
	if r.alice.n.UUID() != a.n.UUID() {
		t.Fatalf("the restarted node has UUID %s, want %s", r.alice.n.UUID(), a.n.UUID())
	}
	r.alice.attach(group, Options{Trusted: trusted, ChunkSize: 1000, Crypto: crypto})
	if e := r.alice.g.Epoch(); e > r.oldEpoch {
		t.Fatalf("the restarted alice starts at epoch %d, after %d", e, r.oldEpoch)
	}
	waitFor(t, "the restarted alice giving bob her key", func() bool { return contains(r.alice.g.Members(), b.n.UUID()) })
	return r
}

// startStream starts the new alice's stream: a chunk, flushed, every 10 ms
// until stopStream.
func (r *restart) startStream() {
	r.t.Cleanup(r.stopStream)
	go func() {
		defer close(r.streamDone)
		w, err := r.alice.g.NewWriter()
		if err != nil {
			r.t.Error(err)
			return
		}
		defer w.Close()
		chunk := bytes.Repeat([]byte{newByte}, 1000)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if _, err := w.Write(chunk); err != nil {
				r.t.Error(err)
				return
			}
			r.firstWrite.CompareAndSwap(0, time.Now().UnixNano())
			if err := w.Flush(); err != nil {
				r.t.Error(err)
				return
			}
			select {
			case <-r.stop:
				return
			case <-tick.C:
			}
		}
	}()
}

func (r *restart) stopStream() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.streamDone
}

// oldEnds reads bob's Reader of alice's first stream to its end, which
// must be all of what she sent and then io.ErrUnexpectedEOF (her node
// stopped before she ended it).
func (r *restart) oldEnds() {
	r.t.Helper()
	if r.oldSink == nil {
		r.oldSink = drain(r.oldRd)
	}
	if err := r.oldSink.wait(r.t, r.oldRd); !errors.Is(err, io.ErrUnexpectedEOF) {
		r.t.Fatalf("bob's Reader of alice's first stream ended with %v, want io.ErrUnexpectedEOF", err)
	}
	if !bytes.Equal(r.oldSink.bytes(), bytes.Repeat([]byte{oldByte}, oldLen)) || len(r.oldSink.gaps) != 0 {
		r.t.Fatalf("bob read %d octets of alice's first stream with gaps %v, want its %d; %+v %+v", r.oldSink.len(), r.oldSink.gaps, oldLen, r.bob.g.Stats(), r.bob.g.ReceiverStats())
	}
}

// noRefusal checks that bob took the restarted alice's key at once: none
// refused, none asked for.
func (r *restart) noRefusal() {
	r.t.Helper()
	if st := r.bob.g.Stats(); st.KeysRefused != 0 || st.KeyRequests != 0 || st.KeysReceived < 2 {
		r.t.Fatalf("bob refused the restarted alice's key, or asked for it: %+v", st)
	}
}

// The restarted alice's first key is taken at once though its epoch is
// older than (or equal to) the last one bob holds of her, while bob's
// Reader of her first stream is still open: bob reads the new stream whole
// through a new Reader, and the old Reader still reads all that had
// arrived before the restart. (Before, the key was refused until the old
// Reader closed, everything the new alice sent meanwhile was opaque to bob
// and lost, and her key came again only with a record sent after that,
// through a key request, at most one a second: a stream that she sent
// whole while the old Reader was open never reached bob.)
func TestRestartedSenderKeyTaken(t *testing.T) {
	for _, tc := range []struct {
		name string
		how  restartHow
	}{
		{"clock-back", restartHow{clock: minutesBack, unread: true}},
		// (bob reads the first stream before: the burst pushes its epoch
		// out of the three he keeps.)
		{"burst", restartHow{burst: 60}},
		// The same epoch (a restart within the second): the old chain of
		// that epoch goes at once, so bob reads the first stream before.
		{"same-epoch", restartHow{clock: func(e uint32) func() time.Time {
			return func() time.Time { return time.Unix(int64(e), 0) }
		}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRestart(t, tc.how)
			data := randomBytes(20000, 11)
			w, err := r.alice.g.NewWriter()
			if err != nil {
				t.Fatal(err)
			}
			writeAll(t, w, data)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			shoutMarker(r.alice, r.bob, "after the stream")
			r.noRefusal()
			r.oldEnds()
			r.oldRd.Close()
			rd, s := readStream(t, r.bob, r.alice)
			if err := s.wait(t, rd); err != io.EOF || !bytes.Equal(s.bytes(), data) || len(s.gaps) != 0 {
				t.Fatalf("bob read %d of the %d octets of the new stream, gaps %v, end %v", s.len(), len(data), s.gaps, err)
			}
		})
	}
}

// readNew waits for bob to hold the restarted alice's key, opens a Reader
// of her stream and returns when it read some of it: from its start.
func (r *restart) readNew() {
	r.t.Helper()
	r.bob.awaitSender(r.alice)
	_, s := readStream(r.t, r.bob, r.alice)
	waitFor(r.t, "bob reading the restarted alice's stream", func() bool {
		select {
		case <-s.done:
			return true
		default:
		}
		return s.len() > 0
	})
	b := s.bytes()
	if s.len() == 0 || len(s.gaps) != 0 || !bytes.Equal(b, bytes.Repeat([]byte{newByte}, len(b))) {
		r.t.Fatalf("bob's new Reader read %d octets, gaps %v, end %v: want the new stream from its start", len(b), s.gaps, s.err)
	}
}

func since(at int64) time.Duration { return time.Since(time.Unix(0, at)).Round(time.Millisecond) }

// The restarted alice streams without end; bob, whose Reader of her first
// stream ends when her node stops, closes it (a) at once, before or after
// her new key comes, (b) only after a while (as a user starts `zyre stream
// recv` again after it stopped on the error), when about 300 records of
// the new stream have come, or (c) once the new key came. In each case he
// then reads the new stream from its start through a new Reader, none of
// her records lost.
func TestRestartedSenderReaderClosedLate(t *testing.T) {
	for _, tc := range []struct {
		name string
		wait func(r *restart) bool
	}{
		{"a-close-at-once", nil},
		{"b-close-after-a-while", func(r *restart) bool {
			return r.bob.g.Stats().Records >= 300 || r.bob.g.Stats().Opaque >= 300
		}},
		{"c-close-after-the-key", func(r *restart) bool {
			st := r.bob.g.Stats()
			return st.KeysReceived+st.KeysRefused >= 2
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRestart(t, restartHow{clock: minutesBack, closeAtEnd: tc.wait == nil})
			start := time.Now()
			r.startStream()
			r.oldEnds()
			if tc.wait != nil {
				waitFor(t, "bob keeping the old Reader open", func() bool { return tc.wait(r) })
			}
			closed := time.Now()
			r.oldRd.Close()
			r.readNew()
			st := r.bob.g.Stats()
			t.Logf("new alice attached→read %v, first write→read %v, old Reader closed→read %v; bob: keys received %d refused %d, key requests %d, records %d opaque %d",
				time.Since(start).Round(time.Millisecond), since(r.firstWrite.Load()), time.Since(closed).Round(time.Millisecond),
				st.KeysReceived, st.KeysRefused, st.KeyRequests, st.Records, st.Opaque)
			r.noRefusal()
		})
	}
}
