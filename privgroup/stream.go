package privgroup

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/google/uuid"
)

// A stream chunk is the plaintext of one data message: an 8-octet
// big-endian word whose top bit marks the last chunk and whose other 63
// bits are the stream offset of the chunk's first octet, then the data.
// Stream overhead per message is Overhead + ChunkHeaderSize = 37 octets.
const (
	ChunkHeaderSize  = 8
	DefaultChunkSize = 16 << 10
	chunkEOF         = 1 << 63
)

// ErrGap is wrapped by every *GapError.
var ErrGap = errors.New("privgroup: stream gap")

// GapError reports data of a stream that was lost or could not be
// authenticated and was skipped: Bytes octets of the stream, in Messages
// messages (counting messages that never arrived and messages discarded as
// unauthenticated). The Reader goes on after it. Bytes is exact. Messages
// is exact when the Receiver settled the hole; when the Reader gave up
// waiting first (its epoch was dropped, or a reorder window of data was
// ready behind it), the messages that never arrived are counted in a later
// GapError if the Receiver settles them later, and not at all if it
// dropped the epoch.
type GapError struct {
	Messages uint64
	Bytes    uint64
}

func (e *GapError) Error() string {
	return fmt.Sprintf("privgroup: stream: %d octets lost in %d messages", e.Bytes, e.Messages)
}

// Unwrap returns ErrGap.
func (e *GapError) Unwrap() error { return ErrGap }

// WriterOptions configure a Writer.
type WriterOptions struct {
	// ChunkSize is the most stream octets per message
	// (1..MaxPlaintext-ChunkHeaderSize; DefaultChunkSize when 0).
	ChunkSize int
	// OnRotate, when set, lets the Writer rotate the Sender's epoch when
	// RotationDue: after sending the old epoch's last batch record it calls
	// OnRotate, which must deliver KeyFor(m) to each current member before
	// it returns. Without it the caller rotates.
	OnRotate func(*Sender) error
	// Keep, when set, seals every message into a new slice that send may
	// keep (and hand on without a copy); otherwise the Writer reuses one
	// buffer and send must not keep the slice.
	Keep bool
}

// Writer chunks a byte stream into sealed data messages and batch records
// and hands each, in order, to send. send must not keep the slice after it
// returns (unless WriterOptions.Keep). The Writer assembles each chunk inside the one record buffer it
// keeps and seals it there: Write's data is copied once, into the record
// that send gets. Flush ends a batch (call it at the end of a video frame: the
// receiver releases data only once a batch record covers it); Close sends
// the last chunk, marked as the end, and its batch record. A Writer is not
// safe for concurrent use.
type Writer struct {
	s    *Sender
	send func([]byte) error
	opts WriterOptions
	// rec is the record being assembled: room for the data-message header,
	// the chunk (ChunkHeaderSize + data, len(rec) - DataHeaderSize octets
	// so far) and, within its capacity, room for the tag.
	rec   []byte
	small [BatchRecordSize]byte // batch records
	off   uint64
	err   error
	done  bool
}

var _ io.WriteCloser = (*Writer)(nil)

// NewWriter returns a Writer that seals through s and sends through send.
func NewWriter(s *Sender, send func([]byte) error, opts WriterOptions) (*Writer, error) {
	if opts.ChunkSize == 0 {
		opts.ChunkSize = DefaultChunkSize
	}
	if opts.ChunkSize < 1 || opts.ChunkSize > MaxPlaintext-ChunkHeaderSize {
		return nil, errf("privgroup: new writer: %w: ChunkSize %d, want 1..%d", ErrInvalidOptions, opts.ChunkSize, MaxPlaintext-ChunkHeaderSize)
	}
	if s == nil || send == nil {
		return nil, errf("privgroup: new writer: %w: nil sender or send func", ErrInvalidOptions)
	}
	w := &Writer{s: s, send: send, opts: opts}
	w.newRecord()
	return w, nil
}

// newRecord gives the Writer an empty record buffer for the next chunk.
func (w *Writer) newRecord() {
	w.rec = make([]byte, DataHeaderSize+ChunkHeaderSize, ChunkHeaderSize+w.opts.ChunkSize+Overhead)
}

// Write seals p into chunks; a partial chunk waits for more data, Flush or
// Close.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.done {
		return 0, errf("privgroup: stream write: %w", ErrClosed)
	}
	n := 0
	full := cap(w.rec) - TagSize
	for len(p) > 0 {
		k := copy(w.rec[len(w.rec):full], p)
		w.rec = w.rec[:len(w.rec)+k]
		p = p[k:]
		if len(w.rec) == full {
			if sent, err := w.emit(false); err != nil {
				if sent { // what failed came after the chunk went out
					n += k
				}
				return n, err
			}
		}
		n += k
	}
	return n, nil
}

// emit seals and sends the current chunk, then a batch record or a
// rotation when due; sent says whether the chunk went out.
func (w *Writer) emit(last bool) (sent bool, err error) {
	if err := w.sendChunk(last); err != nil {
		return false, err
	}
	return true, w.afterChunk(last)
}

func (w *Writer) sendChunk(last bool) error {
	data := w.chunkData()
	hdr := w.off
	if last {
		hdr |= chunkEOF
	}
	binary.BigEndian.PutUint64(w.rec[DataHeaderSize:], hdr)
	rec := w.rec[:len(w.rec)+TagSize]
	if err := w.s.sealInPlace(rec); err != nil {
		return w.fail(err)
	}
	if err := w.send(rec); err != nil {
		return w.fail(errf("privgroup: stream send: %w", err))
	}
	w.off += uint64(data)
	if w.opts.Keep { // send has the record now
		w.newRecord()
	} else {
		w.rec = w.rec[:DataHeaderSize+ChunkHeaderSize]
	}
	return nil
}

// afterChunk sends a batch record or rotates when due, after a chunk.
func (w *Writer) afterChunk(last bool) error {
	now := w.s.opts.Now() // one clock read for both checks below
	if last || w.s.batchDueAt(now) {
		if err := w.sendBatch(); err != nil {
			return err
		}
	}
	if !last && w.opts.OnRotate != nil && w.s.rotationDueAt(now) {
		// The old epoch's last batch record goes out even when the new
		// epoch could not be made: it authenticates what was sent.
		rec, err := w.s.Rotate(w.smallBuf())
		if len(rec) > 0 {
			if serr := w.send(rec); serr != nil && err == nil {
				err = errf("privgroup: stream send: %w", serr)
			}
		}
		if err != nil {
			return w.fail(err)
		}
		if err := w.opts.OnRotate(w.s); err != nil {
			return w.fail(errf("privgroup: stream rotate: %w", err))
		}
	}
	return nil
}

func (w *Writer) sendBatch() error {
	rec, err := w.s.Batch(w.smallBuf())
	if err != nil {
		return w.fail(err)
	}
	if len(rec) == 0 {
		return nil
	}
	if err := w.send(rec); err != nil {
		return w.fail(errf("privgroup: stream send: %w", err))
	}
	return nil
}

// smallBuf is an empty slice to seal a batch record into: w.small, or a
// new one that send may keep.
func (w *Writer) smallBuf() []byte {
	if w.opts.Keep {
		return make([]byte, 0, BatchRecordSize)
	}
	return w.small[:0]
}

// chunkData is the number of stream octets in the chunk being assembled.
func (w *Writer) chunkData() int { return len(w.rec) - DataHeaderSize - ChunkHeaderSize }

// Buffered returns the octets of the partial chunk: a Write that does not
// fill the chunk (ChunkSize minus Buffered) seals and sends nothing.
func (w *Writer) Buffered() int { return w.chunkData() }

func (w *Writer) fail(err error) error {
	w.err = err
	return err
}

// Flush sends the partial chunk, if any, and a batch record covering
// everything sent, so the receiver can release it.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return errf("privgroup: stream flush: %w", ErrClosed)
	}
	if w.chunkData() > 0 {
		if _, err := w.emit(false); err != nil {
			return err
		}
	}
	return w.sendBatch()
}

// Close sends the last chunk (possibly empty) marked as the end of the
// stream, and its batch record. It does not close the Sender. A second
// Close returns nil.
func (w *Writer) Close() error {
	if w.done {
		return nil
	}
	if w.err != nil {
		return w.err
	}
	_, err := w.emit(true)
	w.done = true
	return err
}

// Reader reassembles the stream of one sender, in order, from the records
// that recv returns (the node hands it the group's records from that
// sender). It releases data only once a batch record signed by the sender
// covers it. Records that fail to open (forged, replayed, stale, not from
// this sender) are dropped and counted (Dropped); lost or unauthenticated
// data is skipped with a *GapError, after which reading goes on. A hole
// that the Receiver will never settle does not stall it: it reports the
// gap when the Receiver has dropped the hole's epoch, or when a reorder
// window (Options.Window) of authenticated chunks is ready behind the hole,
// so it holds at most that many and a batch. Read returns io.EOF after the
// chunk marked as the end, and passes on any error of recv. The Reader
// keeps no reference to a record recv returned: it has opened it (into a
// buffer of its own) before it calls recv again or Read returns, so recv
// may hand the storage of the previous record back then. A Reader is not
// safe for concurrent use; the Receiver may be shared with other Readers.
type Reader struct {
	r      *Receiver
	sender uuid.UUID
	recv   func() ([]byte, error)

	// waiting: chunks opened but not yet settled, by epoch<<32|counter.
	waiting map[uint64]chunk
	// ready: authenticated chunks by stream offset.
	ready     map[uint64]chunk
	free      [][]byte
	freeBytes int

	expected uint64 // stream offset of the next octet to return
	cur      chunk  // the chunk being returned
	curOff   int
	lostMsgs uint64
	eof      bool
	dropped  uint64
}

type chunk struct {
	off  uint64
	last bool
	data []byte
	buf  []byte
}

var _ io.Reader = (*Reader)(nil)

// NewReader returns a Reader of sender's stream through r.
func NewReader(r *Receiver, sender uuid.UUID, recv func() ([]byte, error)) *Reader {
	return &Reader{
		r: r, sender: sender, recv: recv,
		waiting: map[uint64]chunk{}, ready: map[uint64]chunk{},
	}
}

// Dropped returns how many records the Reader dropped because they did not
// open or were not from its sender.
func (rd *Reader) Dropped() uint64 { return rd.dropped }

// Read implements io.Reader.
func (rd *Reader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if rd.cur.buf != nil {
			k := copy(p[n:], rd.cur.data[rd.curOff:])
			n += k
			rd.curOff += k
			if rd.curOff < len(rd.cur.data) {
				continue
			}
			rd.expected += uint64(len(rd.cur.data))
			rd.eof = rd.cur.last
			rd.putBuf(rd.cur.buf)
			rd.cur = chunk{}
			continue
		}
		if rd.eof {
			if n > 0 {
				return n, nil
			}
			return 0, io.EOF
		}
		if c, ok := rd.ready[rd.expected]; ok {
			delete(rd.ready, rd.expected)
			rd.cur, rd.curOff = c, 0
			continue
		}
		if n > 0 {
			return n, nil
		}
		if gap := rd.gap(); gap != nil {
			return 0, gap
		}
		msg, err := rd.recv()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if err := rd.take(msg); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// gap returns the gap before the lowest authenticated chunk when nothing
// that could fill it is still waiting, and skips past it.
func (rd *Reader) gap() error {
	if len(rd.ready) == 0 {
		return nil
	}
	low := uint64(1<<64 - 1)
	for off := range rd.ready {
		low = min(low, off)
	}
	if low <= rd.expected {
		// A stale chunk before what was already returned: drop it.
		c := rd.ready[low]
		delete(rd.ready, low)
		rd.putBuf(c.buf)
		return nil
	}
	// An authenticated chunk settles every earlier counter of its epoch;
	// chunks of an older epoch may still be waiting for their batch, but
	// not for ever: not when the Receiver dropped their epoch unsettled
	// (a sender's fourth epoch pushes out its first), nor once a reorder
	// window of authenticated chunks waits behind them (so the Reader holds
	// at most a window and a batch of chunks).
	// A chunk below expected (late, after the Reader skipped past it) can
	// fill nothing.
	if len(rd.ready) < rd.r.opts.Window {
		for key, c := range rd.waiting {
			if c.off >= rd.expected && c.off < low && rd.r.holdsEpoch(rd.sender, uint32(key>>32)) {
				return nil
			}
		}
	}
	for key, c := range rd.waiting {
		if c.off < low {
			delete(rd.waiting, key)
			rd.putBuf(c.buf)
			if c.off >= rd.expected {
				rd.lostMsgs++
			}
		}
	}
	g := &GapError{Messages: rd.lostMsgs, Bytes: low - rd.expected}
	rd.expected = low
	rd.lostMsgs = 0
	return g
}

func (rd *Reader) getBuf(n int) []byte {
	if k := len(rd.free); k > 0 && cap(rd.free[k-1]) >= n {
		b := rd.free[k-1]
		rd.free = rd.free[:k-1]
		rd.freeBytes -= cap(b)
		return b[:0]
	}
	return make([]byte, 0, n)
}

// putBuf keeps b for reuse, up to a default batch of buffers (a batch's
// chunks wait together, and come free together) and its octets.
func (rd *Reader) putBuf(b []byte) {
	if cap(b) > 0 && len(rd.free) < DefaultBatchSize && rd.freeBytes+cap(b) <= DefaultBatchBytes {
		rd.free = append(rd.free, b)
		rd.freeBytes += cap(b)
	}
}

// take opens one record and files what it says.
func (rd *Reader) take(msg []byte) error {
	var buf []byte
	if len(msg) > 0 && msg[0] == typeData {
		buf = rd.getBuf(len(msg))
	}
	pt, info, err := rd.r.Open(buf, msg)
	if err == nil && info.Sender != rd.sender {
		err = errf("privgroup: stream: %w: record from %s, want %s", ErrUnknownKey, info.Sender, rd.sender)
	}
	if err == nil && info.Kind == KindData && len(pt) < ChunkHeaderSize {
		err = errf("privgroup: stream: %w: chunk of %d octets", ErrMalformed, len(pt))
	}
	if err != nil {
		rd.putBuf(buf)
		if errors.Is(err, ErrClosed) {
			return err
		}
		rd.dropped++
		// Settlements (an expired epoch) still count.
		if info.Sender == rd.sender {
			rd.settle(&info)
		}
		return nil
	}
	if info.Kind == KindData {
		hdr := binary.BigEndian.Uint64(pt)
		rd.waiting[uint64(info.Epoch)<<32|uint64(info.Counter)] = chunk{
			off: hdr &^ chunkEOF, last: hdr&chunkEOF != 0, data: pt[ChunkHeaderSize:], buf: pt,
		}
	} else {
		rd.putBuf(buf)
	}
	rd.settle(&info)
	return nil
}

// settle moves the chunks of authenticated ranges to ready and discards
// those of given-up ranges.
func (rd *Reader) settle(info *Info) {
	for _, s := range info.Settlements() {
		if !s.Authenticated {
			rd.lostMsgs += uint64(s.Missing)
		}
		base := uint64(s.Epoch) << 32
		visit := func(key uint64, c chunk) {
			delete(rd.waiting, key)
			if s.Authenticated && c.off+uint64(len(c.data)) > rd.expected || c.last && s.Authenticated {
				rd.ready[c.off] = c
				return
			}
			if !s.Authenticated {
				rd.lostMsgs++
			}
			rd.putBuf(c.buf)
		}
		if uint64(s.Count) <= uint64(len(rd.waiting)) {
			for i := uint64(s.First); i < uint64(s.First)+uint64(s.Count); i++ {
				if c, ok := rd.waiting[base|i]; ok {
					visit(base|i, c)
				}
			}
			continue
		}
		for key, c := range rd.waiting {
			if key >= base|uint64(s.First) && key < base+uint64(s.First)+uint64(s.Count) {
				visit(key, c)
			}
		}
	}
}
