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

	probedAt    time.Time  // when probe last pinged it (another UUID claimed its endpoint)
	helloSentAt time.Time  // when we last said HELLO to it
	helloFrom   string     // the remote address its accepted HELLO came from (restartPeer)
	pendingSrc  netip.Addr // valid while it counts against the pending caps (dialled on a beacon from there, no HELLO yet)

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
// Its lock is sem, a one-slot channel (so that a wait for it can end with a
// context). Whoever holds it owns link and sentSeq for the send: the
// sequence number is taken and the frames queued on the link in one step,
// so the numbers reach the wire in order. The loop writes link and sentSeq
// only while tx is closed (before open, after close), which orders its
// writes with every sender's reads.
//
// A sender that waits for room in a full queue (WhisperContext) holds sem
// while it waits. The loop never waits for sem: when it cannot take it, its
// message goes to pending, and whoever holds sem sends the pending
// messages, in order, before its own and before letting go of sem.
// Non-blocking senders (Whisper) do not wait behind a waiting sender
// either: while one waits (waiting > 0) the queue is full, and they fail at
// once with zmtp.ErrPeerNotResponding.
type tx struct {
	sem     chan struct{}
	open    bool // guarded by sem: application messages may be sent
	waiting atomic.Int32
	stats   *counters // set by open

	pendingMu sync.Mutex // guards pending; never held while waiting
	pending   []*Msg
	npending  atomic.Int32
}

func newPeer(id uuid.UUID) *peer {
	p := &peer{id: id, groups: make(map[string]bool), timer: -1}
	p.tx.sem = make(chan struct{}, 1)
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
// that cannot take tx's lock at once (a sender waits for room) is queued
// behind that sender and nil is returned; whoever sends it later counts its
// failure in Stats.SendErrors.
func (p *peer) send(m *Msg) error {
	if !p.opened {
		return p.sendLocked(m)
	}
	if p.tryLock() {
		err := p.sendLocked(m)
		p.unlock()
		return err
	}
	p.tx.pendingMu.Lock()
	p.tx.pending = append(p.tx.pending, m)
	p.tx.npending.Add(1)
	p.tx.pendingMu.Unlock()
	if p.tryLock() {
		p.unlock()
	}
	return nil
}

// sendLocked sends m with the next sequence number; the caller holds tx's
// lock (or tx is not open and the caller is the loop).
func (p *peer) sendLocked(m *Msg) error {
	if p.link == nil {
		return errNotConnected
	}
	m.Sequence = p.sentSeq + 1
	frames, err := m.Frames()
	if err != nil {
		return err
	}
	if err := p.link.Send(frames...); err != nil {
		return err
	}
	p.sentSeq++
	return nil
}

// tryLock takes tx's lock if it is free, and then sends what the loop left
// pending.
func (p *peer) tryLock() bool {
	select {
	case p.tx.sem <- struct{}{}:
		p.drainLocked()
		return true
	default:
		return false
	}
}

// lockContext takes tx's lock, waiting until ctx is done.
func (p *peer) lockContext(ctx context.Context) error {
	select {
	case p.tx.sem <- struct{}{}:
	default:
		select {
		case p.tx.sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.drainLocked()
	return nil
}

// unlock sends what the loop left pending, lets go of tx's lock, and takes
// it again if the loop left a message meanwhile.
func (p *peer) unlock() {
	for {
		p.drainLocked()
		<-p.tx.sem
		if p.tx.npending.Load() == 0 {
			return
		}
		select {
		case p.tx.sem <- struct{}{}:
		default:
			return // its holder sends them
		}
	}
}

// drainLocked sends the loop's pending messages; tx's lock is held.
func (p *peer) drainLocked() {
	if p.tx.npending.Load() == 0 {
		return
	}
	p.tx.pendingMu.Lock()
	ms := p.tx.pending
	p.tx.pending = nil
	p.tx.npending.Store(0)
	p.tx.pendingMu.Unlock()
	for _, m := range ms {
		var err error
		if p.tx.open {
			err = p.sendLocked(m)
		} else {
			err = errNotConnected
		}
		if err != nil {
			if p.tx.stats != nil {
				p.tx.stats.sendErrors.Add(1)
			}
			continue
		}
		if m.ID == MsgGoodbye {
			p.tx.open = false // nothing after our GOODBYE
		}
	}
}

// openTx lets the application send to p (the loop, at Enter).
func (p *peer) openTx(stats *counters) {
	if p.opened {
		return
	}
	p.tx.sem <- struct{}{} // free: nobody can send before it is open
	p.tx.stats = stats
	p.tx.open = true
	<-p.tx.sem
	p.opened = true
}

// closeTx stops the application's sends to p (the loop). The link must be
// closed first (or about to be flushed): a sender waiting for room on it
// then returns, and the loop waits for tx's lock only for a send in
// progress.
func (p *peer) closeTx() {
	if !p.opened {
		return
	}
	p.tx.sem <- struct{}{}
	p.drainLocked()
	p.tx.open = false
	<-p.tx.sem
	p.opened = false
}

// errQueueFull is what a non-blocking send returns while another sender
// waits for room in the peer's queue.
var errQueueFull = fmt.Errorf("zre: peer queue full, senders waiting: %w", zmtp.ErrPeerNotResponding)

// sendApp sends an application message (WHISPER, SHOUT) without waiting
// for room: from any goroutine, never from the loop.
func (p *peer) sendApp(m *Msg) error {
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
	return p.sendLocked(m)
}

// pollMin and pollMax bound the pauses of a waiting send on a link that
// cannot wait by itself (a Transport's).
const (
	pollMin = 200 * time.Microsecond
	pollMax = 20 * time.Millisecond
)

// sendAppContext sends an application message, waiting for room in the
// peer's queue until ctx is done: from any goroutine, never from the loop.
func (p *peer) sendAppContext(ctx context.Context, m *Msg) error {
	pause := pollMin
	for {
		if err := p.lockContext(ctx); err != nil {
			return fmt.Errorf("%w (%w)", zmtp.ErrPeerNotResponding, err)
		}
		if !p.tx.open {
			p.unlock()
			return errNotConnected
		}
		err := p.sendLocked(m)
		if err == nil || !errors.Is(err, zmtp.ErrPeerNotResponding) {
			p.unlock()
			return err
		}
		if cs, ok := p.link.(contextSender); ok {
			// Queue full: wait for room, holding the lock so that the
			// sequence number stays ours.
			m.Sequence = p.sentSeq + 1
			frames, ferr := m.Frames()
			if ferr != nil {
				p.unlock()
				return ferr
			}
			p.tx.waiting.Add(1)
			err = cs.SendContext(ctx, frames...)
			p.tx.waiting.Add(-1)
			if err == nil {
				p.sentSeq++
			} else if ctx.Err() != nil {
				err = fmt.Errorf("%w (%w)", zmtp.ErrPeerNotResponding, err)
			}
			p.unlock()
			return err
		}
		// A link that cannot wait: try again after a pause.
		p.unlock()
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
