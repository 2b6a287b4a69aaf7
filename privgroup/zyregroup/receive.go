package zyregroup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/privgroup"
	"github.com/zyre-go/zyre/zre"
)

// Receiving: the node's events, the senders' keys, their records' queues
// and the Readers.
type receiving struct {
	r       *privgroup.Receiver
	keyIDs  map[privgroup.KeyID]uuid.UUID
	senders map[uuid.UUID]*senderState
	queues  map[uuid.UUID]*queue
	gone    map[uuid.UUID]struct{} // dropped, not back since: a Reader of one ends at once
	readers map[uuid.UUID]int      // open Readers per sender (an old one may read a replaced queue)
	changed chan struct{}          // closed and replaced when a sender key arrives
	from    uuid.UUID              // the peer whose WHISPER is being handled
}

type senderState struct {
	key    curve.PublicKey
	keyIDs []privgroup.KeyID // oldest first; at most 3 (as the Receiver)
}

func (rv *receiving) init(r *privgroup.Receiver) {
	rv.r, rv.keyIDs, rv.senders = r, map[privgroup.KeyID]uuid.UUID{}, map[uuid.UUID]*senderState{}
	rv.queues, rv.gone, rv.readers = map[uuid.UUID]*queue{}, map[uuid.UUID]struct{}{}, map[uuid.UUID]int{}
	rv.changed = make(chan struct{})
}

// Handle acts on one event of the node and reports whether it consumed
// it: a WHISPER carrying a sender key of this group or a key request, a
// SHOUT in this group carrying a privgroup record (one we hold no key for
// makes us ask its trusted shouter for the key). JOIN, LEAVE, EXIT and
// OVERFLOW are acted on (a key for a trusted joiner; a rotation when a
// member leaves) but not consumed. Handle waits for the Group's goroutine,
// never for a peer, and never panics on hostile content; a SHOUT it hands
// over without waiting (unless OnOpaque is set): whatever is asked of the
// Group afterwards sees it.
//
// Ownership: an event Handle consumed is the Group's. Its header fields
// stay the caller's to read, but its content must no longer be used: the
// Group hands the content's buffers back to the node (Shout.Release,
// Whisper.Release) once it is done with them — at once for a sender key,
// a key request, or a record it drops or cannot open yet (after OnOpaque
// returned), and for a queued record once the sender's Reader has opened
// it into a buffer of its own. An event Handle did not consume stays the
// caller's, content included, released or not as the caller sees fit.
func (g *Group) Handle(ev zre.Event) bool {
	s, shout := ev.(*zre.Shout)
	if shout && (s.Group != g.group || len(s.Content) != 1 || len(s.Content[0]) == 0) {
		return false
	}
	if shout && g.opts.OnOpaque == nil {
		if _, err := privgroup.ParseHeader(s.Content[0]); errors.Is(err, privgroup.ErrVersion) || g.done.Err() != nil {
			return false
		}
		select {
		case g.calls <- call{f: func() {
			// Consumed whatever handle says: the event is the Group's.
			if _, _, kept := g.handle(s); !kept {
				g.release(s)
			}
		}}:
			return true
		case <-g.exited:
			return false
		}
	}
	var consumed, kept bool
	var opaque []byte
	if g.do(func() { consumed, opaque, kept = g.handle(ev) }) != nil {
		return false
	}
	if opaque != nil && g.opts.OnOpaque != nil {
		g.opts.OnOpaque(s.Peer, opaque) // it must not keep opaque
	}
	if consumed && !kept {
		g.release(ev)
	}
	return consumed
}

// releaser is a node's event whose content may be handed back
// (zre.Shout, zre.Whisper).
type releaser interface{ Release() }

// release hands ev's content back to the node (see Handle): ev must be
// consumed and nothing of its content kept. Any goroutine.
func (g *Group) release(ev zre.Event) {
	if r, ok := ev.(releaser); ok {
		r.Release()
		g.released.Add(1)
	}
}

// handle is Handle on the Group's goroutine. kept: a SHOUT's record went
// to its sender's queue, whose Reader releases the event (see Handle).
func (g *Group) handle(ev zre.Event) (consumed bool, opaque []byte, kept bool) {
	if g.closing {
		return false, nil, false
	}
	switch e := ev.(type) {
	case *zre.Shout:
		return g.onShout(e)
	case *zre.Whisper:
		return g.onWhisper(e.Peer, e.Content), nil, false
	case *zre.Join:
		if e.Group == g.group && e.Peer != g.self {
			delete(g.rcv.gone, e.Peer)
			if q := g.rcv.queues[e.Peer]; q != nil && q.Closed() {
				g.rcv.queues[e.Peer] = g.newQueue() // back with the keys we hold: for a new Reader
			}
			if _, ok := g.send.members[e.Peer]; !ok {
				g.giveKey(e.Peer, true)
			}
		}
	case *zre.Leave:
		if e.Group == g.group {
			g.memberGone(e.Peer)
		}
	case *zre.Exit:
		g.memberGone(e.Peer)
	case *zre.Overflow:
		g.resync()
	}
	return false, nil, false
}

// onShout queues a record for its sender's Reader (kept: the queue holds
// s until the Reader opened it); opaque: we lack its key.
func (g *Group) onShout(s *zre.Shout) (consumed bool, opaque []byte, kept bool) {
	peer, rec := s.Peer, s.Content[0]
	h, err := privgroup.ParseHeader(rec)
	if errors.Is(err, privgroup.ErrVersion) {
		return false, nil, false // not a record: a plain SHOUT in the group
	}
	sender, known := g.rcv.keyIDs[h.KeyID]
	switch q := g.rcv.queues[sender]; {
	case err != nil:
		g.st.Malformed++
	case known && sender != peer:
		g.st.Relayed++ // a sender shouts its own records; a copy would take room in its queue
	case !known || q == nil:
		g.st.Opaque++
		g.requestKey(peer)
		return true, rec, false
	case !q.Push(rec, s):
		g.st.QueueDropped++
	default:
		g.st.Records++
		return true, nil, true
	}
	return true, nil, false
}

// onWhisper installs a sender key of this group, or answers a key request.
func (g *Group) onWhisper(peer uuid.UUID, c [][]byte) bool {
	switch {
	case len(c) == 0 || string(c[0]) != WhisperPrefix || len(c) >= 2 && string(c[1]) != g.group:
		return false // (another group's: its Group counts it)
	case len(c) == 2:
		g.answerRequest(peer)
	case len(c) == 4 && len(c[2]) == 0 && string(c[3]) == removedWord:
		g.removedBy(peer)
	case len(c) != 3 && len(c) != 4 || len(c) == 4 && len(c[3]) != 1:
		g.st.Malformed++
		return len(c) >= 2
	default:
		if err := g.addKey(peer, c[2]); err != nil {
			g.st.KeysRefused++
			g.log.Warn("zyregroup: sender key refused", "group", g.group, "peer", peer, "err", err)
		} else if len(c) == 4 {
			g.memberSuites(peer, c[3][0])
		}
	}
	return true
}

func (g *Group) addKey(peer uuid.UUID, rec []byte) error {
	rv := &g.rcv
	from, ok := g.peerKey(peer)
	if !ok {
		return fmt.Errorf("zyregroup: sender key from %s: %w", peer, ErrNoKey)
	}
	rv.from = peer
	ki, err := rv.r.AddSenderKey(rec, from)
	if rv.from = uuid.Nil; err != nil || ki.Duplicate {
		return err
	}
	g.st.KeysReceived++
	delete(rv.gone, ki.Sender)
	ss := rv.senders[ki.Sender]
	if ss == nil || !ss.key.Equal(from) {
		ss = &senderState{key: from}
		rv.senders[ki.Sender] = ss
	}
	for ss.keyIDs = append(ss.keyIDs, ki.KeyID); len(ss.keyIDs) > 3; ss.keyIDs = ss.keyIDs[1:] {
		delete(rv.keyIDs, ss.keyIDs[0])
	}
	rv.keyIDs[ki.KeyID] = ki.Sender
	if q := rv.queues[ki.Sender]; q == nil || q.Closed() {
		rv.queues[ki.Sender] = g.newQueue()
	}
	close(rv.changed)
	rv.changed = make(chan struct{})
	g.log.Debug("zyregroup: sender key", "group", g.group, "sender", ki.Sender, "epoch", ki.Epoch, "counter", ki.Counter)
	return nil
}

// verifySender is the Receiver's VerifySender: the sender of a key must be
// the peer that whispered it, and trusted.
func (g *Group) verifySender(id uuid.UUID, key curve.PublicKey) error {
	if id != g.rcv.from {
		return fmt.Errorf("sender id %s in a key whispered by %s", id, g.rcv.from)
	}
	if !g.trusted(id, key) {
		return fmt.Errorf("%w: %s", ErrUntrusted, id)
	}
	return nil
}

// removedBy takes a sender's notice that it removed us: its Reader reads
// what came before, then ends with ErrRemoved; its keys go once no Reader
// reads it. A notice of a peer whose key we do not hold changes nothing.
func (g *Group) removedBy(peer uuid.UUID) {
	q := g.rcv.queues[peer]
	if q == nil || g.rcv.senders[peer] == nil {
		return
	}
	g.st.RemovedBy++
	g.log.Info("zyregroup: a sender removed this device from the group", "group", g.group, "sender", peer)
	q.removed.Store(true)
	q.Close()
	if g.rcv.readers[peer] == 0 {
		g.dropSender(peer)
	}
}

func (g *Group) dropSender(peer uuid.UUID) {
	g.gone(peer)
	g.forgetSender(peer)
}

// gone remembers peer as gone until it joins or gives us a key.
func (g *Group) gone(peer uuid.UUID) {
	if len(g.rcv.gone) >= 4096 {
		clear(g.rcv.gone)
	}
	g.rcv.gone[peer] = struct{}{}
}

func (g *Group) forgetSender(peer uuid.UUID) {
	rv := &g.rcv
	if ss := rv.senders[peer]; ss != nil {
		for _, id := range ss.keyIDs {
			delete(rv.keyIDs, id)
		}
	}
	if q := rv.queues[peer]; q != nil {
		q.Close()
	}
	delete(rv.senders, peer)
	delete(rv.queues, peer)
	rv.r.RemoveSender(peer)
}

// Reader is one sender's stream in the group: authenticated data, in
// order. Read returns io.EOF at the end of the sender's stream, a
// *privgroup.GapError for lost or unauthenticated data (reading goes on
// after it), io.ErrUnexpectedEOF when the sender left before ending its
// stream, and an error wrapping ErrClosed after Close.
type Reader struct {
	g      *Group
	sender uuid.UUID
	q      *queue
	rd     *privgroup.Reader
	ctx    context.Context // ended by Close, and by the Group's
	cancel context.CancelFunc
	once   sync.Once
}

var _ io.ReadCloser = (*Reader)(nil)

// NewReader opens the stream of sender (a peer's UUID), also before its
// key arrives. A Reader of a sender that left (or stopped being trusted)
// since we last held its key, and has not joined again, ends at once
// (io.ErrUnexpectedEOF). One Reader per sender at a time.
func (g *Group) NewReader(sender uuid.UUID) (*Reader, error) {
	rd := &Reader{g: g, sender: sender}
	err := g.act(func() error {
		rv := &g.rcv
		_, gone := rv.gone[sender]
		switch rd.q = rv.queues[sender]; {
		case rd.q == nil && gone:
			rd.q = g.newQueue() // its stream is cut: a new queue would never end
			rd.q.Close()
		case rd.q == nil:
			rd.q = g.newQueue()
			rv.queues[sender] = rd.q
		case rd.q.reader:
			return fmt.Errorf("zyregroup: reader of %s in %q: %w", sender, g.group, ErrBusy)
		}
		rd.q.reader = true
		rv.readers[sender]++
		return nil
	})
	if err != nil {
		return nil, err
	}
	rd.ctx, rd.cancel = context.WithCancel(g.done)
	rd.rd = privgroup.NewReader(g.rcv.r, sender, rd.recv)
	return rd, nil
}

// recv hands the privgroup.Reader its next record (the queue releases the
// event of the one before). One held back when the Reader closes is left
// to the garbage collector (Close may run beside Read).
func (rd *Reader) recv() ([]byte, error) {
	rec, err := rd.q.Recv(rd.ctx)
	if err == io.EOF && rd.q.removed.Load() {
		return nil, fmt.Errorf("zyregroup: read: the sender no longer gives this device its key: %w", ErrRemoved)
	}
	if err == nil || err == io.EOF && rd.g.done.Err() == nil {
		return rec, err
	}
	return nil, fmt.Errorf("zyregroup: read: %w", ErrClosed)
}

// Read implements io.Reader.
func (rd *Reader) Read(p []byte) (int, error) { return rd.rd.Read(p) }

// Dropped returns how many records the Reader refused (replayed, forged,
// stale or not from its sender).
func (rd *Reader) Dropped() uint64 { return rd.rd.Dropped() }

// Close ends the Reader; a blocked Read returns. Another Reader of the
// same sender may then be opened.
func (rd *Reader) Close() error {
	rd.once.Do(func() {
		rd.cancel()
		g, rv := rd.g, &rd.g.rcv
		g.do(func() {
			rd.q.reader = false
			if rv.readers[rd.sender]--; rv.readers[rd.sender] <= 0 {
				delete(rv.readers, rd.sender)
				if q := rv.queues[rd.sender]; q != nil && q.Closed() {
					g.forgetSender(rd.sender) // it left while we read: memberGone kept its keys
				}
			}
		})
	})
	return nil
}

// queue is one sender's records for its Reader; reader is set while a
// Reader reads it (on the Group's goroutine).
type queue struct {
	*privgroup.Queue
	reader  bool
	removed atomic.Bool // set before Close: the sender removed us (ErrRemoved)
}

func (g *Group) newQueue() *queue {
	return &queue{Queue: privgroup.NewQueue(g.opts.QueueRecords, g.opts.QueueBytes, func(ev any) { g.release(ev.(zre.Event)) })}
}
