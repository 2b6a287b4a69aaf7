package zyregroup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/privgroup"
	"github.com/zyre-go/zyre/zmtp"
	"github.com/zyre-go/zyre/zre"
)

// Sending. A record goes to the group with one non-blocking Shout. A
// member whose full queue refuses it (or a key) gets it, and everything
// after it, through its line: a goroutine hands the line's first item to
// the node's waiting send (WhisperContext, ShoutToContext) and reports back;
// records go with ShoutTo to everyone else meanwhile. So each member gets
// our keys and records in the order we made them, the node's queue does the
// waiting, and nothing on the Group's goroutine waits for a peer. A Writer
// waits while a line is not empty (up to SendTimeout), so it goes no faster
// than its slowest member.

// item is a key WHISPER (key, epoch) or a record (rec, shared, never
// written) waiting for one member.
type item struct {
	key   [][]byte
	epoch uint32
	rec   []byte
}

// line is what waits for one member, oldest first; the first item is in
// flight while cancel is set.
type line struct {
	items  []item
	cancel context.CancelFunc
}

// sent is a sender goroutine's report: it sent l's first item to peer, or
// failed with err.
type sent struct {
	peer uuid.UUID
	l    *line
	it   item
	err  error
}

func eraseKey(it item) {
	if it.key != nil {
		clear(it.key[2])
	}
}

// push adds it to peer's line and starts its sender. A key that no record
// follows is of no use once a newer one follows it: such keys are dropped.
func (g *Group) push(peer uuid.UUID, it item) {
	l := g.send.pend[peer]
	if l == nil {
		l = &line{}
		g.send.pend[peer] = l
	}
	if it.key != nil {
		for n := len(l.items); n > 0 && l.items[n-1].key != nil && (n > 1 || l.cancel == nil); n-- {
			eraseKey(l.items[n-1])
			l.items = l.items[:n-1]
		}
	}
	l.items = append(l.items, it)
	g.startSend(peer, l)
}

// startSend hands l's first item to a goroutine that waits for peer's queue
// for up to SendTimeout, or until the line is dropped. A member no longer
// trusted gets nothing more.
func (g *Group) startSend(peer uuid.UUID, l *line) {
	if g.closing || l.cancel != nil || len(l.items) == 0 {
		return
	}
	if key, ok := g.send.members[peer]; !ok || !g.trusted(peer, key) {
		g.dropLine(peer)
		return
	}
	it := l.items[0]
	ctx, cancel := context.WithTimeout(g.ctx, g.opts.SendTimeout)
	l.cancel = cancel
	g.send.inflight++
	g.st.SendRetries++
	go func() {
		var err error
		if it.key != nil {
			err = g.node.WhisperContext(ctx, peer, it.key...)
		} else {
			err = peerErr(g.node.ShoutToContext(ctx, g.group, []uuid.UUID{peer}, it.rec), peer)
		}
		g.results <- sent{peer, l, it, err} // the Group's goroutine runs until none is in flight
	}()
}

// onSent takes a sender goroutine's report.
func (g *Group) onSent(r sent) {
	sd := &g.send
	sd.inflight--
	r.l.cancel()
	r.l.cancel = nil
	if r.err == nil && r.it.key != nil {
		g.st.KeysSent++
	}
	if sd.pend[r.peer] != r.l { // dropped meanwhile
		eraseKey(r.it)
		return
	}
	switch {
	case r.err == nil:
		delete(sd.stalled, r.peer)
		if r.it.key != nil {
			sd.holds[r.peer] = max(sd.holds[r.peer], r.it.epoch)
		}
	case g.closing:
		return // Close tries it once more
	case errors.Is(r.err, context.DeadlineExceeded) || errors.Is(r.err, zmtp.ErrPeerNotResponding):
		g.st.Undelivered += uint64(len(r.l.items))
		g.log.Warn("zyregroup: sends to a member dropped", "group", g.group, "peer", r.peer, "items", len(r.l.items), "err", r.err)
		if sd.holds[r.peer] == sd.s.Epoch() {
			g.dropLine(r.peer)
			sd.stalled[r.peer] = true
		} else {
			g.removeMember(r.peer) // it never took our current key: no member
		}
		return
	default:
		g.log.Debug("zyregroup: send dropped", "group", g.group, "peer", r.peer, "err", r.err)
	}
	eraseKey(r.it)
	r.l.items[0] = item{}
	if r.l.items = r.l.items[1:]; len(r.l.items) == 0 {
		delete(sd.pend, r.peer)
		return
	}
	g.startSend(r.peer, r.l)
}

// dropLine drops what waits for peer, erasing its keys (the one in flight
// when its report comes).
func (g *Group) dropLine(peer uuid.UUID) {
	l := g.send.pend[peer]
	if l == nil {
		return
	}
	for i, it := range l.items {
		if i > 0 || l.cancel == nil {
			eraseKey(it)
		}
	}
	if l.cancel != nil {
		l.cancel()
	}
	delete(g.send.pend, peer)
}

// peerErr is peer's own error in a *zre.ShoutError (nil when it is not
// named there), or err.
func peerErr(err error, peer uuid.UUID) error {
	var se *zre.ShoutError
	if !errors.As(err, &se) {
		return err
	}
	switch i := slices.Index(se.Peers, peer); {
	case i < 0:
		return nil
	case i < len(se.Errs):
		return se.Errs[i]
	}
	return se.Err
}

// shout sends a record to the group without waiting for anyone: a member
// with a line gets it through its line, and a member whose queue refuses
// it gets one. Peers that cannot read it (untrusted, or without our key)
// and given-up members are not sent it again: one that stops reading must
// not hold up the stream.
func (g *Group) shout(rec []byte) error {
	sd := &g.send
	var err error
	var to []uuid.UUID
	if len(sd.pend) == 0 {
		if len(sd.stalled) > 0 {
			to = g.node.PeersByGroup(g.group) // to see whether a given-up member takes it
		}
		err = g.node.Shout(g.group, rec)
	} else {
		shared := bytes.Clone(rec)
		for _, p := range g.node.PeersByGroup(g.group) {
			if sd.pend[p] == nil || sd.stalled[p] {
				to = append(to, p)
			}
		}
		for p := range sd.pend {
			if !sd.stalled[p] {
				g.push(p, item{rec: shared})
			}
		}
		if len(to) > 0 {
			err = g.node.ShoutTo(g.group, to, rec)
		}
	}
	var se *zre.ShoutError
	if err != nil && !errors.As(err, &se) {
		return err
	}
	// A given-up member that took it reads again.
	for p := range sd.stalled {
		if slices.Contains(to, p) && (se == nil || !slices.Contains(se.Peers, p)) {
			delete(sd.stalled, p)
		}
	}
	if se == nil {
		return nil
	}
	var own []byte
	for i, p := range se.Peers {
		if _, ok := sd.members[p]; ok && !sd.stalled[p] && sd.pend[p] == nil && i < len(se.Errs) && errors.Is(se.Errs[i], zmtp.ErrPeerNotResponding) {
			if own == nil {
				own = bytes.Clone(rec)
			}
			g.push(p, item{rec: own})
		}
	}
	return nil
}

// backlog reports whether something waits for a member that is not given
// up: the Writer waits for those.
func (g *Group) backlog() bool {
	for p := range g.send.pend {
		if !g.send.stalled[p] {
			return true
		}
	}
	return false
}

// wakeWriter ends the Writer's wait once nothing waits for its members.
func (g *Group) wakeWriter() {
	if len(g.send.drained) > 0 && (g.closing || !g.backlog()) {
		for _, ch := range g.send.drained {
			close(ch)
		}
		g.send.drained = nil
	}
}

// kick starts the batch timer when our messages wait for a batch record.
func (g *Group) kick() {
	if sd := &g.send; sd.s.Pending() > 0 && !sd.armed {
		sd.batch.Reset(sd.interval)
		sd.armed = true
	}
}

func (g *Group) onBatchTimer() {
	sd := &g.send
	if g.closing {
		return
	}
	if sd.s.BatchDue() {
		if rec, err := sd.s.Batch(nil); err == nil && len(rec) > 0 {
			g.shout(rec)
		}
	}
	g.rotateIfDue()
	if at := sd.s.BatchDueAt(); !at.IsZero() {
		sd.batch.Reset(min(max(time.Until(at), time.Millisecond), sd.interval))
		sd.armed = true
	}
}

// closeSending sends a last batch record behind what waits, tries once,
// without waiting, what waits for each member, and erases our keys.
func (g *Group) closeSending() {
	sd := &g.send
	sd.batch.Stop()
	if sd.s.Pending() > 0 {
		if rec, err := sd.s.Batch(nil); err == nil && len(rec) > 0 {
			g.shout(rec)
		}
	}
	for p, l := range sd.pend {
		for len(l.items) > 0 {
			it, err := l.items[0], error(nil)
			if it.key != nil {
				err = g.node.Whisper(p, it.key...)
			} else {
				err = peerErr(g.node.ShoutTo(g.group, []uuid.UUID{p}, it.rec), p)
			}
			if errors.Is(err, zmtp.ErrPeerNotResponding) {
				break
			}
			eraseKey(it)
			l.items = l.items[1:]
		}
		g.st.Undelivered += uint64(len(l.items))
		for _, it := range l.items {
			eraseKey(it)
		}
	}
	clear(sd.pend)
	sd.s.Close()
}

// Writer is a byte stream into the group: an io.WriteCloser that seals
// chunks (Options.ChunkSize) and shouts them, with batch records when due,
// on Flush and on Close. One Writer per Group is open at a time. A Write
// waits while a member's queue is full (up to Options.SendTimeout each
// time; a member that takes nothing for that long is given up).
type Writer struct {
	g *Group
	// mu: one Write, Flush or Close at a time, also while one waits.
	mu     sync.Mutex
	w      *privgroup.Writer // used on the Group's goroutine only
	closed bool
}

var _ io.WriteCloser = (*Writer)(nil)

// NewWriter opens the Group's stream. Receivers read it with
// NewReader(our UUID); the stream ends at Close.
func (g *Group) NewWriter() (*Writer, error) {
	w := &Writer{g: g}
	err := ErrClosed
	g.do(func() {
		switch {
		case g.closing:
		case g.send.writer != nil:
			err = fmt.Errorf("zyregroup: writer of %q: %w", g.group, ErrBusy)
		default:
			w.w, err = privgroup.NewWriter(g.send.s, g.shout, privgroup.WriterOptions{
				ChunkSize: g.opts.ChunkSize,
				OnRotate:  func(*privgroup.Sender) error { g.st.Rotations++; g.distribute(uuid.Nil); return nil },
			})
			if err != nil {
				err = fmt.Errorf("zyregroup: writer of %q: %w", g.group, err)
			} else {
				g.send.writer = w
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// Write seals and sends p, one chunk's worth at a time, so that a
// revocation, a member leaving and the other events wait for one chunk,
// not for all of p: nothing of p after that is sealed under a key the
// member holds.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for {
		var k int
		err := w.op("write", func() (err error) {
			k, err = w.w.Write(p[n : n+min(w.g.opts.ChunkSize, len(p)-n)])
			return err
		})
		n += k
		if err != nil || n == len(p) {
			return n, err
		}
		if f := w.g.opts.betweenWrites; f != nil {
			f()
		}
	}
}

// op runs f on the Group's goroutine, after the rotation that a removed
// member made necessary, if one failed, and after f the one its own
// rotation found necessary. Then it waits while a member's queue is full,
// and after a wait asks the trust decision again before going on: a
// revocation may have come meanwhile.
func (w *Writer) op(name string, f func() error) error {
	g := w.g
	closed := fmt.Errorf("zyregroup: %s: %w", name, ErrClosed)
	if w.closed {
		return closed
	}
	var err error
	var drained chan struct{}
	if g.do(func() {
		if g.closing {
			err = closed
			return
		}
		if err = g.rotated(name); err != nil {
			return
		}
		err = f()
		if rerr := g.rotated(name); err == nil {
			err = rerr
		}
		g.kick()
		if g.backlog() {
			drained = make(chan struct{})
			g.send.drained = append(g.send.drained, drained)
		}
	}) != nil {
		return closed
	}
	if err != nil || drained == nil {
		return err
	}
	t := time.NewTimer(g.opts.SendTimeout)
	defer t.Stop()
	select {
	case <-drained:
	case <-t.C: // what still waits is given up in time
	case <-g.done:
		return closed
	}
	if g.do(func() {
		if !g.closing {
			g.doRecheck()
			err = g.rotated(name)
		}
	}) != nil {
		return closed
	}
	return err
}

// Flush sends the partial chunk and a batch record, so receivers can
// release everything written so far.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.op("flush", func() error { return w.w.Flush() })
}

// Close ends the stream (the last chunk carries the end mark); the Group
// may then open another Writer. While a rotation fails the Writer stays
// open, and Close may be tried again.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	ran := false
	err := w.op("close", func() error { ran = true; return w.w.Close() })
	if ran || errors.Is(err, ErrClosed) {
		w.closed = true
		w.g.do(func() { w.g.send.writer = nil })
	}
	return err
}
