package zyregroup

import (
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

// item is a key WHISPER (key, epoch) or a record (rec: shared, never
// written) in a line.
type item struct {
	key   [][]byte
	epoch uint32
	rec   []byte
}

// line is what waits for one member, oldest first; the first is in flight
// while cancel is set.
type line struct {
	items  []item
	cancel context.CancelFunc
}

func eraseKey(it item) {
	if it.key != nil {
		clear(it.key[2])
	}
}

// push adds it to peer's line. A waiting key that no record follows is of
// no use once a newer one follows it: it is dropped.
func (g *Group) push(peer uuid.UUID, it item) {
	l := g.send.pend[peer]
	if l == nil {
		l = &line{}
		g.send.pend[peer] = l
	}
	for n := len(l.items); it.key != nil && n > 0 && l.items[n-1].key != nil && (n > 1 || l.cancel == nil); n-- {
		eraseKey(l.items[n-1])
		l.items = l.items[:n-1]
	}
	l.items = append(l.items, it)
	g.startSend(peer, l)
}

// startSend hands l's first item to a goroutine that waits for peer's
// queue (SendTimeout at most). A member no longer trusted gets nothing.
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
		err := ctx.Err() // dropped before this ran (the node would try it at once)
		if err == nil {
			err = g.sendItem(ctx, peer, it)
		}
		g.do(func() { g.onSent(peer, l, it, err) }) // (the Group's goroutine runs while one is in flight)
	}()
}

// sendItem sends it to peer, waiting until ctx ends (nil: not at all).
func (g *Group) sendItem(ctx context.Context, peer uuid.UUID, it item) error {
	switch {
	case it.key != nil && ctx == nil:
		return g.node.Whisper(peer, it.key...)
	case it.key != nil:
		return g.node.WhisperContext(ctx, peer, it.key...)
	case ctx == nil:
		ctx = g.nowait
	}
	return peerErr(g.node.ShoutToOwned(ctx, g.group, []uuid.UUID{peer}, it.rec), peer)
}

// onSent takes a line sender's report. A member given up (SendTimeout)
// stays a member only if it holds our current key.
func (g *Group) onSent(peer uuid.UUID, l *line, it item, err error) {
	sd := &g.send
	sd.inflight--
	l.cancel()
	l.cancel = nil
	if err == nil && it.key != nil {
		g.st.KeysSent++
	}
	switch {
	case sd.pend[peer] != l: // dropped meanwhile
	case err == nil:
		delete(sd.stalled, peer)
		if it.key != nil {
			sd.holds[peer] = max(sd.holds[peer], it.epoch)
		}
	case g.closing:
		return // Close tries it once more
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, zmtp.ErrPeerNotResponding):
		g.st.Undelivered += uint64(len(l.items))
		g.log.Warn("zyregroup: sends to a member dropped", "group", g.group, "peer", peer, "items", len(l.items), "err", err)
		if sd.holds[peer] != sd.s.Epoch() {
			g.removeMember(peer)
			sd.passed[peer] = true // a recheck gives it the key again, if its queue takes it
		} else {
			g.dropLine(peer)
			sd.stalled[peer] = true
		}
		return
	default:
		g.log.Debug("zyregroup: send dropped", "group", g.group, "peer", peer, "err", err)
	}
	eraseKey(it)
	if sd.pend[peer] == l {
		if l.items = l.items[1:]; len(l.items) == 0 {
			delete(sd.pend, peer)
		}
		g.startSend(peer, l)
	}
}

// dropLine drops peer's line, erasing its keys (the one in flight when its
// report comes).
func (g *Group) dropLine(peer uuid.UUID) {
	if l := g.send.pend[peer]; l != nil {
		for i, it := range l.items {
			if i > 0 || l.cancel == nil {
				eraseKey(it)
			} else {
				l.cancel()
			}
		}
		delete(g.send.pend, peer)
	}
}

// peerErr is peer's own error in a *zre.ShoutError (nil when it is not
// named there), or err.
func peerErr(err error, peer uuid.UUID) error {
	var se *zre.ShoutError
	if !errors.As(err, &se) {
		return err
	}
	if i := slices.Index(se.Peers, peer); i < 0 {
		return nil
	} else if i < len(se.Errs) {
		return se.Errs[i]
	}
	return se.Err
}

// shout sends a record to the members without waiting, and without a
// copy: rec is the Group's and nobody changes it. Members with a line get
// it through it, and a member whose queue refuses it gets one. Peers not
// given our key (untrusted, plain nodes, strangers) get nothing; a given-up
// member is not sent it again (one that stops reading must not hold up the
// stream).
func (g *Group) shout(rec []byte) error {
	sd := &g.send
	to := sd.to[:0]
	for p := range sd.members {
		if sd.pend[p] == nil {
			to = append(to, p)
		} else if !sd.stalled[p] { // (a given-up member whose key waits gets none before it)
			g.push(p, item{rec: rec})
		}
	}
	sd.to = to
	err := g.node.ShoutToOwned(g.nowait, g.group, to, rec)
	var se *zre.ShoutError
	if err != nil && !errors.As(err, &se) {
		return err
	}
	for p := range sd.stalled {
		if slices.Contains(to, p) && peerErr(err, p) == nil {
			delete(sd.stalled, p)
		}
	}
	if se == nil {
		return nil
	}
	for i, p := range se.Peers {
		if _, ok := sd.members[p]; ok && !sd.stalled[p] && sd.pend[p] == nil && i < len(se.Errs) && errors.Is(se.Errs[i], zmtp.ErrPeerNotResponding) {
			g.push(p, item{rec: rec})
		}
	}
	return nil
}

// waiting reports whether the line of a member not given up holds anything.
func (g *Group) waiting() bool {
	for p := range g.send.pend {
		if !g.send.stalled[p] {
			return true
		}
	}
	return false
}

// drained returns a channel closed once nothing is waiting, or nil when
// nothing is.
func (g *Group) drained() chan struct{} {
	if !g.waiting() {
		return nil
	}
	ch := make(chan struct{})
	g.send.drained = append(g.send.drained, ch)
	return ch
}

func (g *Group) wakeWriter() {
	if len(g.send.drained) == 0 || !g.closing && g.waiting() {
		return
	}
	for _, ch := range g.send.drained {
		close(ch)
	}
	g.send.drained = nil
}

// kick starts the batch timer when messages wait for a batch record.
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
		g.batch()
	}
	g.rotateNow(g.send.s.RotationDue(), uuid.Nil)
	if at := sd.s.BatchDueAt(); !at.IsZero() {
		sd.batch.Reset(min(max(time.Until(at), time.Millisecond), sd.interval))
		sd.armed = true
	}
}

func (g *Group) batch() {
	if rec, err := g.send.s.Batch(nil); err == nil && len(rec) > 0 {
		g.shout(rec)
	}
}

// closeSending sends a last batch record, tries the lines once more without
// waiting, and erases our keys.
func (g *Group) closeSending() {
	sd := &g.send
	sd.batch.Stop()
	g.batch()
	for p, l := range sd.pend {
		for ; len(l.items) > 0; l.items = l.items[1:] {
			if errors.Is(g.sendItem(nil, p, l.items[0]), zmtp.ErrPeerNotResponding) {
				break
			}
			eraseKey(l.items[0])
		}
		g.st.Undelivered += uint64(len(l.items))
		g.dropLine(p)
	}
	sd.s.Close()
}

// Writer is a byte stream into the group: an io.WriteCloser that seals
// chunks (Options.ChunkSize) and shouts them, with batch records when due,
// on Flush and on Close. One Writer per Group is open at a time. It waits
// while a member's queue is full: it goes at the pace of its slowest
// member not given up (one that takes nothing for SendTimeout).
type Writer struct {
	g      *Group
	mu     sync.Mutex // one Write, Flush or Close at a time, also while one waits
	w      *privgroup.Writer
	closed bool
}

var _ io.WriteCloser = (*Writer)(nil)

// NewWriter opens the Group's stream. Receivers read it with
// NewReader(our UUID); the stream ends at Close.
func (g *Group) NewWriter() (*Writer, error) {
	w := &Writer{g: g}
	err := g.act(func() (err error) {
		if g.send.writer != nil {
			return fmt.Errorf("zyregroup: writer of %q: %w", g.group, ErrBusy)
		}
		w.w, err = privgroup.NewWriter(g.send.s, g.shout, privgroup.WriterOptions{ChunkSize: g.opts.ChunkSize, Keep: true,
			OnRotate: func(*privgroup.Sender) error { g.st.Rotations++; g.distribute(uuid.Nil); return nil }})
		if err != nil {
			return fmt.Errorf("zyregroup: writer of %q: %w", g.group, err)
		}
		g.send.writer = w
		return nil
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// Write seals and sends p one chunk's worth at a time, so that a
// revocation or a member leaving waits for one chunk, not for all of p.
func (w *Writer) Write(p []byte) (n int, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for cs := w.g.opts.ChunkSize; ; {
		room := cs - w.w.Buffered()
		k := min(room, len(p)-n)
		if k < room && !w.closed && w.g.done.Err() == nil && !w.g.send.failing.Load() {
			// Less than fills the chunk: privgroup's Writer keeps it
			// (it seals and sends nothing), with no need of the Group.
			k, err = w.w.Write(p[n:])
			return n + k, err
		}
		wrote := 0
		err = w.op("write", func() (err error) { wrote, err = w.w.Write(p[n : n+k]); return err })
		if n += wrote; err != nil || n == len(p) {
			return n, err
		}
		if f := w.g.opts.betweenWrites; f != nil {
			f()
		}
	}
}

// op runs f on the Group's goroutine, between the rotations a removed
// member made necessary; then it waits for the lines (so each holds about
// a chunk) and, after a wait, rechecks trust.
func (w *Writer) op(name string, f func() error) error {
	g := w.g
	closed := func() error { return fmt.Errorf("zyregroup: %s: %w", name, ErrClosed) }
	if w.closed {
		return closed()
	}
	var drained chan struct{}
	err := g.act(func() error {
		err := g.rotated(name)
		if err == nil {
			err = errors.Join(f(), g.rotated(name))
		}
		if g.kick(); err == nil {
			drained = g.drained()
		}
		return err
	})
	if err == ErrClosed {
		return closed()
	} else if drained == nil {
		return err
	}
	select {
	case <-drained: // (a member that takes nothing for SendTimeout is given up)
	case <-g.done.Done():
		return closed()
	}
	if err = g.act(func() error { g.doRecheck(); return g.rotated(name) }); err == ErrClosed {
		return nil // (closed after the wait)
	}
	return err
}

// Flush sends the partial chunk and a batch record, so receivers can
// release everything written so far.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.op("flush", w.w.Flush)
}

// Close ends the stream (its last chunk carries the end mark); the Group
// may then open another Writer. While rotations fail the Writer stays
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
