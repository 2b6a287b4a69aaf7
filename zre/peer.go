package zre

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/zmtp"
	"github.com/zyre-go/zyre/zre/zremsg"
)

// link is our outgoing connection to one peer: a DEALER in the node, a
// recorder in tests. Send must not block (zmtp.Dealer.Send). A link that can
// also wait for room in its queue implements contextSender
// (zmtp.Dealer.SendContext).
type link interface {
	Send(frames ...[]byte) error
	Close() error
}

// contextSender is a link with a send that waits for room.
type contextSender interface {
	SendContext(ctx context.Context, frames ...[]byte) error
}

// peer is one remote node as the state knows it. Only the state goroutine
// touches it, except for tx and, while tx is open, link and sentSeq: see tx.
type peer struct {
	id       uuid.UUID
	name     string
	endpoint string // where our DEALER connects: tcp://host:port
	headers  []Header
	link     link // nil once disconnected
	ready    bool // a HELLO was accepted and the link is up
	entered  bool // an Enter event was emitted (so Exit will be)
	status   uint8
	sentSeq  uint16 // sequence of the last message we sent
	wantSeq  uint16 // sequence of the last message we accepted
	groups   map[string]bool
	// key is the peer's long-term key in secure mode: from the beacon we
	// dialled, then the one its HELLO was authenticated with (zero in
	// plain mode).
	key curve.PublicKey

	evasiveAt, silentAt, expiredAt time.Time
	evasive, silent                bool      // the event of the current episode was sent
	unreadySince                   time.Time // reap: when it was first seen without an accepted HELLO
	goodbyeAt, inboxClosedAt       time.Time // a port-0 beacon, its inbox connection closed (exit.go)

	probedAt    time.Time  // when probe last pinged it (another UUID claimed its endpoint)
	helloSentAt time.Time  // when we last said HELLO to it
	helloFrom   string     // the remote address its accepted HELLO came from (restartPeer)
	answeredAt  time.Time  // when we last answered a second HELLO of its (restartPeer)
	pendingSrc  netip.Addr // valid while it counts against the pending caps (dialled on a beacon from there, no HELLO yet)
	pendingIdx  int        // its index in state.pendingList while pendingSrc is valid

	// opened: the loop opened tx (at Enter) and has not closed it.
	// Loop-owned.
	opened  bool
	tx      tx
	timer   int       // index in the state's timer heap, -1 when not in it (reap)
	timerAt time.Time // when reap looks at it next
}

// tx is the sending side of a peer once it entered: the application's
// goroutines (Whisper, Shout and their Context variants) send on it
// directly, without the loop, and so does the loop.
//
// Its lock is mu; a wait for it that a context can end (lockContext)
// sleeps on wake, a channel made only while someone waits (a channel per
// peer cost 96 octets a link). Whoever holds it owns link and sentSeq for the send: the
// sequence number is taken and the frames queued on the link in one step,
// so the numbers reach the wire in order. The loop writes link and sentSeq
// only while tx is closed (before open, after close), which orders its
// writes with every sender's reads.
//
// A sender that waits for room in a full queue (WhisperContext) holds mu
// while it waits. The loop never waits: when it cannot take mu, or the
// queue is full, its message (PING, PING-OK, JOIN, LEAVE, GOODBYE, a trust
// message) goes to pending, and whoever holds mu next sends the pending
// messages first, in order — a waiting sender waits for room for them too —
// so they are neither lost to senders that keep the queue full nor
// reordered; the loop tries again at each reap. Non-blocking senders
// (Whisper) do not wait behind a waiting sender: while one waits
// (waiting > 0) or loop messages are pending, the queue is full for them
// and they fail at once with zmtp.ErrPeerNotResponding.
type tx struct {
	mu      sync.Mutex
	open    bool // guarded by mu: application messages may be sent
	waiting atomic.Int32
	stats   *counters // set by open

	wakeMu  sync.Mutex    // guards wake
	wake    chan struct{} // closed at the next release of mu; nil when nobody waits
	waiters atomic.Int32  // goroutines in lockContext that may sleep on wake

	pendingMu sync.Mutex // guards pending; never held while waiting
	pending   []*zremsg.Msg
	npending  atomic.Int32
	added     atomic.Uint64 // messages ever added to pending
}

// maxPending bounds the loop's messages waiting for a peer that does not
// read; past it the oldest are dropped (Stats.SendErrors). Presence expires
// such a peer long before.
const maxPending = 1024

func newPeer(id uuid.UUID) *peer {
	p := &peer{id: id, groups: make(map[string]bool), timer: -1}
	return p
}

// label is the peer's name for logs and errors: its name once known,
// otherwise the first 6 characters of its UUID.
func (p *peer) label() string {
	if p.name != "" {
		return p.name
	}
	return DefaultName(p.id)
}

// send encodes m with the next sequence number and queues it; the loop
// calls it. The sequence only advances when the message was queued, so a
// refused send leaves no gap at the receiver. Once tx is open, a message
// that cannot go at once (a sender holds tx's lock, or loop messages wait
// already) is left pending (see tx) and send returns nil with queued true;
// Stats.SendErrors counts it if it is dropped later.
func (p *peer) send(m *zremsg.Msg) (queued bool, err error) {
	if !p.opened {
		return false, p.sendLocked(m)
	}
	if p.tryLock() {
		if p.drainLocked(nil) == nil {
			err = p.sendLocked(m)
			if err == nil || !errors.Is(err, zmtp.ErrPeerNotResponding) {
				p.unlock()
				return false, err
			}
		}
		p.addPending(m) // behind the pending ones, or until there is room
		p.unlock()
		return true, nil
	}
	p.addPending(m)
	if p.tryLock() {
		p.drainLocked(nil)
		p.unlock()
	}
	return true, nil
}

// retryPending sends the loop's pending messages if it can without
// waiting (the loop, at reap); it reports whether some are still pending.
func (p *peer) retryPending() bool {
	if p.tx.npending.Load() == 0 {
		return false
	}
	if p.tryLock() {
		p.drainLocked(nil)
		p.unlock()
	}
	return p.tx.npending.Load() > 0
}

func (p *peer) addPending(m *zremsg.Msg) {
	p.tx.pendingMu.Lock()
	if len(p.tx.pending) >= maxPending {
		p.tx.pending[0] = nil
		p.tx.pending = p.tx.pending[1:]
		if p.tx.stats != nil {
			p.tx.stats.sendErrors.Add(1)
		}
	}
	p.tx.pending = append(p.tx.pending, m)
	p.tx.npending.Store(int32(len(p.tx.pending)))
	p.tx.added.Add(1)
	p.tx.pendingMu.Unlock()
}

// sendLocked sends m with the next sequence number; the caller holds tx's
// lock (or tx is not open and the caller is the loop). A GOODBYE closes tx:
// nothing follows it.
func (p *peer) sendLocked(m *zremsg.Msg) error { return p.sendLockedFrames(m, nil) }

// sendLockedFrames is sendLocked with m encoded already when pre is not
// nil: pre is m's frames for this peer alone (its first frame, with the
// sequence number still to write, then m.Content), as shoutFrames makes
// them.
func (p *peer) sendLockedFrames(m *zremsg.Msg, pre [][]byte) error {
	if p.link == nil {
		return errNotConnected
	}
	frames := pre
	if pre != nil {
		zremsg.SetSequence(pre[0], p.sentSeq+1)
	} else {
		m.Sequence = p.sentSeq + 1
		var err error
		if frames, err = m.Frames(); err != nil {
			return err
		}
	}
	if err := p.link.Send(frames...); err != nil {
		return err
	}
	p.sentSeq++
	if m.ID == zremsg.MsgGoodbye {
		p.tx.open = false
	}
	return nil
}

// sendLockedContext is sendLocked that waits, until ctx is done, for room
// in the link's queue when the link can wait (contextSender); others
// refuse at once as sendLocked does.
func (p *peer) sendLockedContext(ctx context.Context, m *zremsg.Msg) error {
	err := p.sendLocked(m)
	if err == nil || !errors.Is(err, zmtp.ErrPeerNotResponding) {
		return err
	}
	cs, ok := p.link.(contextSender)
	if !ok {
		return err
	}
	// Queue full: wait for room, holding the lock so that the sequence
	// number stays ours.
	m.Sequence = p.sentSeq + 1
	frames, err := m.Frames()
	if err != nil {
		return err
	}
	p.tx.waiting.Add(1)
	err = cs.SendContext(ctx, frames...)
	p.tx.waiting.Add(-1)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w (%w)", zmtp.ErrPeerNotResponding, err)
		}
		return err
	}
	p.sentSeq++
	if m.ID == zremsg.MsgGoodbye {
		p.tx.open = false
	}
	return nil
}

// tryLock takes tx's lock if it is free.
func (p *peer) tryLock() bool { return p.tx.mu.TryLock() }

// lockContext takes tx's lock, waiting until ctx is done.
func (p *peer) lockContext(ctx context.Context) error {
	for {
		if p.tx.mu.TryLock() {
			return nil
		}
		// Register, then try again: a release after our registration
		// closes the wake we hold; one before it let our TryLock in.
		p.tx.wakeMu.Lock()
		if p.tx.wake == nil {
			p.tx.wake = make(chan struct{})
		}
		w := p.tx.wake
		p.tx.waiters.Add(1)
		p.tx.wakeMu.Unlock()
		if p.tx.mu.TryLock() {
			p.tx.waiters.Add(-1)
			return nil
		}
		select {
		case <-w:
			p.tx.waiters.Add(-1)
		case <-ctx.Done():
			p.tx.waiters.Add(-1)
			return ctx.Err()
		}
	}
}

// release lets go of tx's lock and wakes those waiting for it.
func (p *peer) release() {
	p.tx.mu.Unlock()
	if p.tx.waiters.Load() > 0 {
		p.tx.wakeMu.Lock()
		if p.tx.wake != nil {
			close(p.tx.wake)
			p.tx.wake = nil
		}
		p.tx.wakeMu.Unlock()
	}
}

// unlock lets go of tx's lock after trying the pending messages once
// more, and takes it again to send those the loop added meanwhile (the
// loop does not wait for the lock: its holder sends them).
func (p *peer) unlock() {
	for {
		added := p.tx.added.Load()
		p.drainLocked(nil)
		p.release()
		if p.tx.npending.Load() == 0 || p.tx.added.Load() == added {
			return // nothing new: those left wait for room (or the next reap)
		}
		if !p.tryLock() {
			return // its holder sends them
		}
	}
}

// drainLocked sends the loop's pending messages in order; tx's lock is
// held. With ctx nil it stops at a full queue; otherwise it waits for room
// until ctx is done. What it could not send stays pending, first; it
// returns the error that stopped it.
func (p *peer) drainLocked(ctx context.Context) error {
	if p.tx.npending.Load() == 0 {
		return nil
	}
	p.tx.pendingMu.Lock()
	ms := p.tx.pending
	p.tx.pending = nil
	p.tx.pendingMu.Unlock()
	var stop error
	for i, m := range ms {
		var err error
		switch {
		case !p.tx.open:
			err = errNotConnected
		case ctx == nil:
			err = p.sendLocked(m)
		default:
			err = p.sendLockedContext(ctx, m)
		}
		if err != nil && (errors.Is(err, zmtp.ErrPeerNotResponding) || ctx != nil && ctx.Err() != nil) {
			ms, stop = ms[i:], err
			break
		}
		if err != nil && p.tx.stats != nil {
			p.tx.stats.sendErrors.Add(1) // the link is gone: dropped
		}
		ms[i] = nil
	}
	if stop == nil {
		ms = nil
	}
	p.tx.pendingMu.Lock()
	if len(ms) > 0 {
		p.tx.pending = append(ms, p.tx.pending...)
	}
	p.tx.npending.Store(int32(len(p.tx.pending)))
	p.tx.pendingMu.Unlock()
	return stop
}

// openTx lets the application send to p (the loop, at Enter).
func (p *peer) openTx(stats *counters) {
	if p.opened {
		return
	}
	p.tx.mu.Lock() // free: nobody can send before it is open
	p.tx.stats = stats
	p.tx.open = true
	p.release()
	p.opened = true
}

// closeTx stops the application's sends to p (the loop). The link must be
// closed first: a sender waiting for room on it then returns, and the
// loop waits for tx's lock only for a send in progress.
func (p *peer) closeTx() {
	if !p.opened {
		return
	}
	p.tx.mu.Lock()
	p.tx.open = false
	p.tx.pendingMu.Lock()
	p.tx.pending = nil
	p.tx.npending.Store(0)
	p.tx.pendingMu.Unlock()
	p.release()
	p.opened = false
}

// flushPending sends the loop's pending messages (a GOODBYE at Stop),
// waiting for room until ctx is done.
func (p *peer) flushPending(ctx context.Context) {
	if p.lockContext(ctx) != nil {
		return
	}
	p.drainLocked(ctx)
	p.unlock()
}

// errQueueFull is what a non-blocking send returns while another sender
// waits for room in the peer's queue, or the loop's messages wait for it.
var errQueueFull = fmt.Errorf("zre: peer queue full, senders waiting: %w", zmtp.ErrPeerNotResponding)

// sendApp sends an application message (WHISPER, SHOUT) without waiting
// for room: from any goroutine, never from the loop. pre, when not nil, is
// m encoded for this peer (see sendLockedFrames).
func (p *peer) sendApp(m *zremsg.Msg, pre [][]byte) error {
	for !p.tryLock() {
		if p.tx.waiting.Load() > 0 {
			return errQueueFull
		}
		runtime.Gosched() // a send in progress: it takes a few hundred ns
	}
	defer p.unlock()
	if !p.tx.open {
		return errNotConnected
	}
	if p.drainLocked(nil) != nil {
		return errQueueFull
	}
	return p.sendLockedFrames(m, pre)
}

// pollMin and pollMax bound the pauses of a waiting send on a link that
// cannot wait by itself (a transport's: zretest).
const (
	pollMin = 200 * time.Microsecond
	pollMax = 20 * time.Millisecond
)

// sendAppContext sends an application message, waiting for room in the
// peer's queue until ctx is done: from any goroutine, never from the loop.
func (p *peer) sendAppContext(ctx context.Context, m *zremsg.Msg) error {
	pause := pollMin
	for {
		if err := p.lockContext(ctx); err != nil {
			return fmt.Errorf("%w (%w)", zmtp.ErrPeerNotResponding, err)
		}
		if !p.tx.open {
			p.unlock()
			return errNotConnected
		}
		err := p.drainLocked(ctx)
		if err == nil {
			err = p.sendLockedContext(ctx, m)
		}
		p.unlock()
		if err == nil || !errors.Is(err, zmtp.ErrPeerNotResponding) || ctx.Err() != nil {
			return err
		}
		if _, ok := p.link.(contextSender); ok {
			return err
		}
		// A link that cannot wait (a transport's: zretest): try again after a pause.
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		pause = min(2*pause, pollMax)
	}
}

// heard records activity: anything (beacon or message) refreshes the
// evasive and expired timers, only a message refreshes the silent one.
func (p *peer) heard(now time.Time, cfg *Config, message bool) {
	p.evasiveAt = now.Add(cfg.Evasive)
	p.expiredAt = now.Add(cfg.Expired)
	p.evasive = false
	if message {
		p.silentAt = now.Add(cfg.Silent)
		p.silent = false
		p.inboxClosedAt = time.Time{} // it talks: a connection is open (exit.go)
	}
}

// disconnect closes p's link; the application can no longer send to it.
func (p *peer) disconnect() {
	if p.link != nil {
		p.link.Close() // first: a sender waiting for room returns
	}
	p.closeTx()
	p.link = nil
	p.ready = false
}
