package zre

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/zre/zremsg"
)

// Secure mode checks every HELLO with the claim, the trust store and
// SecureConfig.Authorize. Those may block (a file, a network, a user's
// prompt) or call the node back, so the node runs them on a goroutine of
// their own (Node.checkOffLoop) and never on its loop; meanwhile what the
// peer sends after its HELLO is held, in order, and handled once the
// verdict came back (onVerdict). The hold is bounded: past maxHeldMsgs
// messages or maxHeldBytes octets for one peer, maxHeldTotal octets for all,
// or Config.Expired without a verdict, the HELLO and what followed are
// dropped (the peer then starts over, as one whose HELLO was lost).
//
// The checks themselves are bounded too: a hold dropped at Config.Expired
// leaves its check running (an Authorize that waits for a user, say), and
// a stranger could send a HELLO again on each of its connections every
// Expired, each starting one more goroutine (and one more prompt). At most
// maxChecks checks run at once; a HELLO beyond is dropped (counted in
// Stats.MessagesDropped) as one lost, until a verdict comes back.

const (
	maxHeldMsgs  = 1024
	maxHeldBytes = 4 << 20
	maxHeldTotal = 32 << 20
	maxChecks    = 256
)

// heldPeer is a HELLO being checked off the loop and what its sender sent
// after it. token tells its verdict from that of an earlier HELLO.
type heldPeer struct {
	token uint64
	since time.Time
	msgs  []heldMsg // the HELLO first
	bytes int
}

type heldMsg struct {
	in inboxMsg
	m  *zremsg.Msg
}

// held returns a held message: a copy of m, which is the loop's decoding
// space (state.rx), rewritten at the next message.
func held(in inboxMsg, m *zremsg.Msg) heldMsg {
	c := *m
	return heldMsg{in, &c}
}

// verdict is the result of the checks of one HELLO, sent back to the loop.
type verdict struct {
	id    uuid.UUID
	token uint64
	key   curve.PublicKey
	err   error
}

func frameBytes(fs [][]byte) int {
	n := 0
	for _, f := range fs {
		n += len(f)
	}
	return n
}

// startHold holds id's messages from this HELLO on and starts its checks.
func (s *state) startHold(id uuid.UUID, in inboxMsg, m *zremsg.Msg, pk PeerKey) {
	if s.checking >= maxChecks {
		s.stats.messagesDropped.Add(1)
		s.log.Debug("zre: too many HELLOs being checked: dropped", "peer", DefaultName(id), "checks", s.checking)
		return
	}
	if s.held == nil {
		s.held = make(map[uuid.UUID]*heldPeer)
	}
	s.checking++
	s.heldSeq++
	h := &heldPeer{token: s.heldSeq, since: s.clock, msgs: []heldMsg{held(in, m)}, bytes: frameBytes(in.frames)}
	s.held[id] = h
	s.heldBytes += h.bytes
	s.checkOffLoop(id, h.token, pk)
}

// hold queues a message of a peer whose HELLO is being checked.
func (s *state) hold(id uuid.UUID, h *heldPeer, in inboxMsg, m *zremsg.Msg) {
	n := frameBytes(in.frames)
	if len(h.msgs) >= maxHeldMsgs || h.bytes+n > maxHeldBytes || s.heldBytes+n > maxHeldTotal {
		s.stats.messagesDropped.Add(uint64(len(h.msgs)) + 1)
		s.unhold(id, h)
		s.log.Warn("zre: too much from a peer whose HELLO is being checked: dropped", "peer", DefaultName(id), "messages", len(h.msgs)+1, "octets", h.bytes+n)
		return
	}
	h.msgs = append(h.msgs, held(in, m))
	h.bytes += n
	s.heldBytes += n
}

// dropHolds forgets every hold (the node stops).
func (s *state) dropHolds() {
	clear(s.held)
	s.heldBytes = 0
}

func (s *state) unhold(id uuid.UUID, h *heldPeer) {
	delete(s.held, id)
	s.heldBytes -= h.bytes
}

// onVerdict acts on the checks of a held HELLO: the HELLO and what
// followed it are handled in order, or dropped with a Refused event.
func (s *state) onVerdict(v verdict, now time.Time) {
	s.checking-- // every check started sends its verdict, late or not
	if s.stopped {
		return
	}
	s.clock = now
	h := s.held[v.id]
	if h == nil || h.token != v.token {
		return // dropped meanwhile
	}
	s.unhold(v.id, h)
	hello := h.msgs[0]
	s.afterCheck(v.err, hello.in.identity, v.key)
	if v.err != nil {
		s.stats.messagesDropped.Add(uint64(len(h.msgs)))
		s.report(&Refused{EventHeader: EventHeader{Peer: v.id, Name: hello.m.Name}, Key: v.key, Stage: StageHello, Addr: hello.in.from(), Reason: v.err})
		s.helloRefused(v.id, v.key, hello.m.Name, hello.m.Headers, hello.in.identity) // denied.go
		return
	}
	s.sec.hellos.forget(v.key)
	s.handle(v.id, hello.m, hello.in, now, &v.key)
	for i, hm := range h.msgs[1:] {
		if nh := s.held[v.id]; nh != nil {
			// A second HELLO among them went off the loop in turn.
			for _, rest := range h.msgs[1+i:] {
				s.hold(v.id, nh, rest.in, rest.m)
			}
			return
		}
		s.handle(v.id, hm.m, hm.in, now, nil)
	}
}

// expireHeld drops the holds whose verdict did not come within
// Config.Expired (an Authorize that hangs).
func (s *state) expireHeld(now time.Time) {
	for id, h := range s.held {
		if now.Sub(h.since) >= s.cfg.Expired {
			s.stats.messagesDropped.Add(uint64(len(h.msgs)))
			s.unhold(id, h)
			s.log.Warn("zre: no verdict on a HELLO: dropped", "peer", DefaultName(id), "err", fmt.Errorf("checks still running after %v", s.cfg.Expired))
		}
	}
}

// checkOffLoop runs the checks of a HELLO (secure.check: the claim, the
// trust store, SecureConfig.Authorize) on a goroutine of its own and sends
// the verdict to the loop. The goroutine is counted in n.wg: Close waits
// for it, and cancels the context it gives Authorize.
func (n *Node) checkOffLoop(id uuid.UUID, token uint64, pk PeerKey) {
	if !n.sec.mayBlock() {
		// Without Authorize and a trust store the checks are a lookup in
		// the pins: done here, on the loop, and the verdict taken at once.
		// No goroutine, and a burst of HELLOs (a thousand nodes starting)
		// never reaches maxChecks.
		err := n.sec.check(n.ctx, pk, n.sendReport)
		n.st.onVerdict(verdict{id: id, token: token, key: pk.Key, err: err}, n.now())
		return
	}
	n.wg.Add(1) // on the loop, which n.wg counts: never after Close's Wait began
	go func() {
		defer n.wg.Done()
		err := n.sec.check(n.ctx, pk, n.sendReport)
		select {
		case n.verdicts <- verdict{id: id, token: token, key: pk.Key, err: err}:
		case <-n.quit:
		}
	}()
}

// sendReport hands an event raised by a check off the loop (Refused,
// KeyChanged) to the loop, which reports it; when the channel is full it
// is dropped and a refusal counted.
func (n *Node) sendReport(e Event) {
	select {
	case n.sec.reports <- e:
	default:
		if _, ok := e.(*Refused); ok {
			n.stats.peersRefused.Add(1)
		}
	}
}
