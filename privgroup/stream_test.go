package privgroup

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
)

// queue is an in-memory transport: send copies a record in, recv takes the
// oldest out, io.EOF when empty.
type queue struct{ recs [][]byte }

func (q *queue) send(b []byte) error { q.recs = append(q.recs, bytes.Clone(b)); return nil }

func (q *queue) recv() ([]byte, error) {
	if len(q.recs) == 0 {
		return nil, io.EOF
	}
	b := q.recs[0]
	q.recs = q.recs[1:]
	return b, nil
}

// dispatch is a recv func for to's Reader of from's stream, as the node
// dispatches: sender keys go to to's Receiver, the rest to the stream.
func (q *queue) dispatch(to, from *member) func() ([]byte, error) {
	return func() ([]byte, error) {
		for {
			rec, err := q.recv()
			if err != nil || rec[0] != typeSenderKey {
				return rec, err
			}
			if _, err := to.recv.AddSenderKey(rec, from.pub); err != nil {
				return nil, err
			}
		}
	}
}

func streamPair(t *testing.T, chunk int) (*Sender, *member, *member, *queue, *Writer) {
	t.Helper()
	c := newClock()
	a, b := newMember(t, "a", 1, testOpts(c, 11)), newMember(t, "b", 2, testOpts(c, 12))
	o := testOpts(c, 13)
	o.BatchSize = 8
	s := a.sender(t, o)
	give(t, s, a, b)
	q := &queue{}
	w, err := NewWriter(s, q.send, WriterOptions{ChunkSize: chunk})
	if err != nil {
		t.Fatal(err)
	}
	return s, a, b, q, w
}

func TestStreamRoundTrip(t *testing.T) {
	for _, chunk := range []int{1, 100, 1024, 64 << 10} {
		_, a, b, q, w := streamPair(t, chunk)
		data := make([]byte, min(200_000, 3000*chunk))
		detRand(9).Read(data)
		r := rand.New(rand.NewPCG(3, 4))
		for p := data; len(p) > 0; {
			n := min(len(p), 1+r.IntN(5000))
			if _, err := w.Write(p[:n]); err != nil {
				t.Fatal(err)
			}
			p = p[n:]
			if r.IntN(10) == 0 {
				if err := w.Flush(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		got, err := io.ReadAll(NewReader(b.recv, a.id, q.recv))
		if err != nil {
			t.Fatalf("chunk %d: ReadAll: %v", chunk, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("chunk %d: got %d octets, want %d (equal prefix %v)", chunk, len(got), len(data), bytes.HasPrefix(data, got))
		}
	}
}

// Data is released only once a batch record covers it: before Flush the
// reader has nothing, after it everything.
func TestStreamReleasesOnlyAuthenticated(t *testing.T) {
	_, a, b, q, w := streamPair(t, 16)
	if _, err := w.Write([]byte("0123456789abcdef0123")); err != nil {
		t.Fatal(err)
	}
	rd := NewReader(b.recv, a.id, q.recv)
	buf := make([]byte, 100)
	if n, err := rd.Read(buf); n != 0 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("before Flush: %d, %v", n, err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	n, err := io.ReadFull(rd, buf[:20])
	if err != nil || string(buf[:n]) != "0123456789abcdef0123" {
		t.Fatalf("after Flush: %q, %v", buf[:n], err)
	}
}

// A lost message is reported as a gap carrying the lost octets and
// messages; reading goes on to the end.
func TestStreamGap(t *testing.T) {
	_, a, b, q, w := streamPair(t, 100)
	data := bytes.Repeat([]byte("0123456789"), 100) // 10 chunks
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// Records: 8 chunks, batch, 2 chunks, final empty chunk, batch. Drop
	// chunk 3 (offset 300).
	if len(q.recs) != 13 {
		t.Fatalf("%d records", len(q.recs))
	}
	q.recs = append(q.recs[:3], q.recs[4:]...)
	rd := NewReader(b.recv, a.id, q.recv)
	var got []byte
	var gaps []*GapError
	buf := make([]byte, 64)
	for {
		n, err := rd.Read(buf)
		got = append(got, buf[:n]...)
		var g *GapError
		if errors.As(err, &g) {
			if !errors.Is(err, ErrGap) {
				t.Fatal("GapError does not wrap ErrGap")
			}
			gaps = append(gaps, g)
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// Chunks 0..7 were one batch: with 3 missing none of them can be
	// authenticated, so the gap is the whole first batch.
	if len(gaps) != 1 || gaps[0].Bytes != 800 || gaps[0].Messages != 8 {
		t.Fatalf("gaps %+v", gaps)
	}
	if !bytes.Equal(got, data[800:]) {
		t.Fatalf("got %q", got)
	}
}

// Records from other senders, forged or replayed records are dropped and
// counted; the stream is intact.
func TestStreamDropsBadRecords(t *testing.T) {
	_, a, b, q, w := streamPair(t, 10)
	if _, err := w.Write([]byte("abcdefghijklmnopqrstuvwxyz")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var recs [][]byte
	for i, r := range q.recs {
		recs = append(recs, r)
		bad := bytes.Clone(r)
		bad[len(bad)-1] ^= 1
		recs = append(recs, bad, []byte{0x11})
		if i == 0 {
			recs = append(recs, r) // replay
		}
	}
	q.recs = recs
	rd := NewReader(b.recv, a.id, q.recv)
	got, err := io.ReadAll(rd)
	if err != nil || string(got) != "abcdefghijklmnopqrstuvwxyz" {
		t.Fatalf("got %q, %v", got, err)
	}
	// Two bad records after each of the 3 chunks, and the replay; the
	// reader stops at the end of the stream, before the 2 after the batch.
	if rd.Dropped() != 7 {
		t.Fatalf("dropped %d, want 7", rd.Dropped())
	}
}

// The writer rotates when due, through OnRotate, and the reader follows
// the stream across epochs.
func TestStreamRotation(t *testing.T) {
	c := newClock()
	a, b := newMember(t, "a", 1, testOpts(c, 11)), newMember(t, "b", 2, testOpts(c, 12))
	o := testOpts(c, 13)
	o.BatchSize, o.MaxMessages = 4, 10
	s := a.sender(t, o)
	give(t, s, a, b)
	q := &queue{}
	rotations := 0
	w, err := NewWriter(s, q.send, WriterOptions{ChunkSize: 7, OnRotate: func(s *Sender) error {
		rotations++
		rec, err := s.KeyFor(b.pub)
		if err != nil {
			return err
		}
		return q.send(rec) // in order, before the next message, as over one connection
	}})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("private stream "), 40) // 600 octets, 86 chunks
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	recv := q.dispatch(b, a)
	got, err := io.ReadAll(NewReader(b.recv, a.id, recv))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("got %d octets, %v", len(got), err)
	}
	if rotations != 8 {
		t.Fatalf("%d rotations, want 8", rotations)
	}
}

func TestNewWriterOptions(t *testing.T) {
	c := newClock()
	a := newMember(t, "a", 1, testOpts(c, 11))
	s := a.sender(t, testOpts(c, 12))
	send := func([]byte) error { return nil }
	for _, tc := range []struct {
		s    *Sender
		send func([]byte) error
		size int
	}{{s, send, -1}, {s, send, MaxPlaintext}, {nil, send, 10}, {s, nil, 10}} {
		if _, err := NewWriter(tc.s, tc.send, WriterOptions{ChunkSize: tc.size}); !errors.Is(err, ErrInvalidOptions) {
			t.Fatalf("NewWriter(%d): %v", tc.size, err)
		}
	}
	// A send error sticks.
	boom := errors.New("boom")
	w, err := NewWriter(s, func([]byte) error { return boom }, WriterOptions{ChunkSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("12345")); !errors.Is(err, boom) {
		t.Fatalf("Write: %v", err)
	}
	if err := w.Flush(); !errors.Is(err, boom) {
		t.Fatalf("Flush: %v", err)
	}
}

// The Reader keeps at most a default batch of free buffers, and at most
// DefaultBatchBytes of them.
func TestReaderBufferPoolBounds(t *testing.T) {
	rd := &Reader{}
	for range DefaultBatchSize + 10 {
		rd.putBuf(make([]byte, 0, 1<<10))
	}
	if len(rd.free) != DefaultBatchSize || rd.freeBytes != DefaultBatchSize<<10 {
		t.Fatalf("kept %d buffers of %d octets, want %d", len(rd.free), rd.freeBytes, DefaultBatchSize)
	}
	b := rd.getBuf(1 << 10)
	if cap(b) != 1<<10 || len(rd.free) != DefaultBatchSize-1 || rd.freeBytes != (DefaultBatchSize-1)<<10 {
		t.Fatalf("getBuf: cap %d, %d left of %d octets", cap(b), len(rd.free), rd.freeBytes)
	}
	if b := rd.getBuf(2 << 10); cap(b) != 2<<10 || len(rd.free) != DefaultBatchSize-1 {
		t.Fatalf("a buffer too small was handed out (cap %d) or dropped", cap(b))
	}
	big := &Reader{}
	for range 10 {
		big.putBuf(make([]byte, 0, 1<<20))
	}
	if big.freeBytes > DefaultBatchBytes || len(big.free) != DefaultBatchBytes>>20 {
		t.Fatalf("kept %d buffers, %d octets, want at most %d octets", len(big.free), big.freeBytes, DefaultBatchBytes)
	}
}

// A hole left by an epoch that is never settled does not stall the Reader:
// when the Receiver drops the epoch (a sender keeps three at most) or a
// whole reorder window of authenticated chunks waits behind the hole, the
// Reader reports the gap and goes on, holding at most Window chunks.
func TestStreamGapAcrossRotations(t *testing.T) {
	for _, tc := range []struct {
		name      string
		forge     bool // a member forges a chunk far ahead, else the epoch's last data message is lost
		rotations int
		window    int // Options.Window of every member, 0 = default
		after     int // octets written after the rotations
	}{
		{"lost message, epoch dropped", false, 3, 0, 80},
		{"forged chunk, epoch dropped", true, 3, 0, 80},
		{"lost message, a window of data after one rotation", false, 1, 64, 7 * 80},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			opts := func(seed uint64) Options {
				o := testOpts(c, seed)
				o.Window = tc.window
				return o
			}
			a, b, mal := newMember(t, "a", 1, opts(11)), newMember(t, "b", 2, opts(12)), newMember(t, "mallory", 3, opts(14))
			o := opts(13)
			o.BatchSize = 4
			s := a.sender(t, o)
			give(t, s, a, b, mal)
			q := &queue{}
			w, err := NewWriter(s, q.send, WriterOptions{ChunkSize: 7})
			if err != nil {
				t.Fatal(err)
			}
			data := make([]byte, 70+tc.after)
			detRand(5).Read(data)
			if _, err := w.Write(data[:70]); err != nil {
				t.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if tc.forge {
				// Far ahead of the sender's counter: its real messages of
				// this epoch fall behind the window, and the forged chunk
				// (offset 0) is never settled.
				fake := forge(t, mal, s.KeyID(), DefaultMaxAhead-1, "\x00\x00\x00\x00\x00\x00\x00\x00evil")
				q.recs = append([][]byte{fake}, q.recs...)
			} else {
				// The data message before the epoch's last batch record.
				n := len(q.recs)
				q.recs = append(q.recs[:n-2], q.recs[n-1])
			}
			for range tc.rotations {
				rec, err := s.Rotate(nil)
				if err != nil {
					t.Fatal(err)
				}
				if len(rec) > 0 {
					q.send(rec)
				}
				k, err := s.KeyFor(b.pub)
				if err != nil {
					t.Fatal(err)
				}
				q.send(k)
			}
			if _, err := w.Write(data[70:]); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			recv := q.dispatch(b, a)
			rd := NewReader(b.recv, a.id, recv)
			window := b.recv.opts.Window
			pos, lost, maxReady := 0, uint64(0), 0
			p := make([]byte, 50)
			for {
				n, err := rd.Read(p)
				if !bytes.Equal(p[:n], data[pos:pos+n]) {
					t.Fatalf("octets %d..%d differ from what was written", pos, pos+n)
				}
				pos += n
				maxReady = max(maxReady, len(rd.ready))
				var g *GapError
				if errors.As(err, &g) {
					pos += int(g.Bytes)
					lost += g.Bytes
					continue
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("Read after %d of %d octets: %v (%d chunks ready, %d waiting)", pos, len(data), err, len(rd.ready), len(rd.waiting))
				}
			}
			if pos != len(data) || lost == 0 || lost > 70 {
				t.Fatalf("read to offset %d of %d, %d octets reported lost", pos, len(data), lost)
			}
			if maxReady > window+o.BatchSize {
				t.Fatalf("%d chunks ready at once, want at most the window %d and a batch %d", maxReady, window, o.BatchSize)
			}
		})
	}
}

// failingRand reads r until fail is set.
type failingRand struct {
	r    io.Reader
	fail atomic.Bool
}

func (f *failingRand) Read(p []byte) (int, error) {
	if f.fail.Load() {
		return 0, errors.New("entropy source failed")
	}
	return f.r.Read(p)
}

// Write reports only the octets of p it got out: a chunk whose send
// failed is not counted (found by review: Write("01234567") whose second
// chunk failed returned 8).
func TestWriterCountsOnlySentOctets(t *testing.T) {
	_, _, _, s := senderPair(t, SuiteChaCha20SHA256)
	calls := 0
	w, err := NewWriter(s, func([]byte) error {
		if calls++; calls == 2 {
			return errors.New("network down")
		}
		return nil
	}, WriterOptions{ChunkSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := w.Write([]byte("01234567")); n != 4 || err == nil {
		t.Fatalf("Write = %d, %v; want 4 and the send's error", n, err)
	}
}

// When the rotation a Writer makes fails (its random source fails), the
// old epoch's last batch record still goes out, so what was sent can be
// authenticated (found by review: the record was dropped).
func TestWriterSendsLastBatchWhenRotationFails(t *testing.T) {
	c := newClock()
	a, b := newMember(t, "a", 1, testOpts(c, 11)), newMember(t, "b", 2, testOpts(c, 12))
	fr := &failingRand{r: detRand(13)}
	o := testOpts(c, 13)
	o.Rand, o.MaxMessages = fr, 3
	s := a.sender(t, o)
	give(t, s, a, b)
	q := &queue{}
	w, err := NewWriter(s, q.send, WriterOptions{ChunkSize: 4, OnRotate: func(*Sender) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	fr.fail.Store(true)
	// The third chunk makes the rotation due, after it went out: all 12
	// octets are written, and the error is the rotation's.
	if n, err := w.Write([]byte("0123456789ab")); n != 12 || err == nil {
		t.Fatalf("Write = %d, %v; want 12 and the rotation's error", n, err)
	}
	auth := 0
	for _, r := range q.recs {
		_, info, err := b.recv.Open(nil, r)
		if err != nil {
			t.Fatal(err)
		}
		auth += len(authenticated(info))
	}
	if auth != 3 {
		t.Fatalf("%d of the 3 chunks sent can be authenticated, want all", auth)
	}
}

// A late record of an older epoch that arrives after the Reader skipped
// past it (its offset is below expected, its batch record lost) waits for
// the rest of the epoch's grace, but it can fill no hole: a later hole at
// the end of the stream is reported, and the tail and io.EOF follow
// (found by review: the Reader counted it as something that could fill
// the hole and stalled on recv).
func TestStreamLateChunkDoesNotHoldAGap(t *testing.T) {
	c := newClock()
	opts := func(seed uint64) Options { o := testOpts(c, seed); o.Window = 64; return o }
	a, b := newMember(t, "a", 1, opts(11)), newMember(t, "b", 2, opts(12))
	o := opts(13)
	o.BatchSize = 4
	s := a.sender(t, o)
	give(t, s, a, b)
	q := &queue{}
	w, err := NewWriter(s, q.send, WriterOptions{ChunkSize: 7})
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 70+490+28+14)
	detRand(5).Read(data)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err = w.Write(data[:70]) // epoch 0: counters 0..9
	must(err)
	must(w.Flush())
	e1 := q.recs
	q.recs = nil
	rec, err := s.Rotate(nil)
	must(err)
	if len(rec) > 0 {
		q.send(rec)
	}
	k, err := s.KeyFor(b.pub)
	must(err)
	q.send(k)
	_, err = w.Write(data[70:560]) // epoch 1: 70 chunks
	must(err)
	must(w.Flush())
	e2a := q.recs
	q.recs = nil
	_, err = w.Write(data[560:588]) // 4 chunks and their batch: all lost
	must(err)
	must(w.Flush())
	q.recs = nil
	_, err = w.Write(data[588:])
	must(err)
	must(w.Close())
	tail := q.recs
	q.recs = nil

	var late []byte
	var in [][]byte
	for _, r := range e1 {
		h, err := ParseHeader(r)
		must(err)
		switch {
		case h.Kind == KindData && h.Counter == 8:
			late = r // arrives late
		case h.Kind == KindBatch && h.Counter == 8:
			// lost
		default:
			in = append(in, r)
		}
	}
	in = append(in, e2a...)
	in = append(in, late)
	in = append(in, tail...)
	q.recs = in
	rd := NewReader(b.recv, a.id, q.dispatch(b, a))
	var gaps []uint64
	got := 0
	p := make([]byte, 64)
	for {
		n, err := rd.Read(p)
		got += n
		var g *GapError
		if errors.As(err, &g) {
			gaps = append(gaps, g.Bytes)
			got += int(g.Bytes)
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d of %d octets, gaps %v: %v (waiting %d, ready %d)", got, len(data), gaps, err, len(rd.waiting), len(rd.ready))
		}
	}
	if got != len(data) || len(gaps) != 2 || gaps[1] != 28 {
		t.Fatalf("read to offset %d of %d with gaps %v; want all of it, the last gap the 28 octets lost", got, len(data), gaps)
	}
}

// TestWriterSealsInPlace checks that a Writer keeps one record-sized
// buffer and seals each chunk in it: the data is copied once, from Write's
// argument into the record, and encrypted where it lies (no chunk buffer
// beside the record buffer). Octets allocated by NewWriter, a full chunk
// and a Flush stay under 1.5 chunks (two buffers were 2 chunks), and the
// records still round-trip.
func TestWriterSealsInPlace(t *testing.T) { forEachSuite(t, testWriterSealsInPlace) }

func testWriterSealsInPlace(t *testing.T, suite Suite) {
	const chunk = MaxPlaintext - ChunkHeaderSize
	_, a, b, s := senderPair(t, suite)
	data := make([]byte, chunk+100)
	for i := range data {
		data[i] = byte(i * 7)
	}
	var records [][]byte
	send := func(rec []byte) error { records = append(records, bytes.Clone(rec)); return nil }
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	w, err := NewWriter(s, send, WriterOptions{ChunkSize: chunk})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data[:chunk]); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	cloned := 0
	for _, r := range records {
		cloned += len(r)
	}
	if got := int(after.TotalAlloc-before.TotalAlloc) - cloned; got > chunk*3/2 {
		t.Errorf("NewWriter and one %d-octet chunk allocated %d octets, want under %d (one record buffer)", chunk, got, chunk*3/2)
	}
	if _, err := w.Write(data[chunk:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rd := NewReader(b.recv, a.id, (&queue{recs: records}).recv)
	got, err := io.ReadAll(rd)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("read %d octets, want the %d written", len(got), len(data))
	}
}

// With Keep, send may keep every slice it gets: each is a new one, the
// Writer never writes to it again, and the kept records read back as the
// stream; without Keep the Writer reuses one buffer.
func TestWriterKeep(t *testing.T) {
	for _, keep := range []bool{false, true} {
		s, a, b, _, _ := streamPair(t, 16)
		var kept, clones [][]byte
		w, err := NewWriter(s, func(rec []byte) error {
			kept, clones = append(kept, rec), append(clones, bytes.Clone(rec))
			return nil
		}, WriterOptions{ChunkSize: 16, Keep: keep})
		if err != nil {
			t.Fatal(err)
		}
		want := bytes.Repeat([]byte("kept, not copied "), 20)
		if _, err := w.Write(want); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		same := 0
		for i := range kept {
			if bytes.Equal(kept[i], clones[i]) {
				same++
			}
		}
		if keep && same != len(kept) || !keep && same == len(kept) {
			t.Fatalf("Keep %v: %d of %d kept records unchanged after the Writer went on", keep, same, len(kept))
		}
		if !keep {
			continue
		}
		q := &queue{recs: kept}
		got, err := io.ReadAll(NewReader(b.recv, a.id, q.recv))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read %q (%v), want %q", got, err, want)
		}
	}
}

// Buffered counts the octets of the partial chunk, which a Write that
// does not fill the chunk adds to without sending anything.
func TestWriterBuffered(t *testing.T) {
	_, _, _, s := senderPair(t, SuiteChaCha20SHA256)
	sent := 0
	w, err := NewWriter(s, func([]byte) error { sent++; return nil }, WriterOptions{ChunkSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		write    string
		buffered int
		sent     bool
	}{{"ab", 2, false}, {"c", 3, false}, {"d", 0, true}, {"efghi", 1, true}} {
		before := sent
		if n, err := w.Write([]byte(c.write)); n != len(c.write) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", c.write, n, err)
		}
		if w.Buffered() != c.buffered || (sent > before) != c.sent {
			t.Fatalf("after Write(%q): Buffered %d, sent %v; want %d, %v", c.write, w.Buffered(), sent > before, c.buffered, c.sent)
		}
	}
	if err := w.Flush(); err != nil || w.Buffered() != 0 {
		t.Fatalf("Flush: %v, Buffered %d", err, w.Buffered())
	}
}
