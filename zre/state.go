package zre

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/netlimit"
	"github.com/zyre-go/zyre/zgossip"
	"github.com/zyre-go/zyre/zmtp"
	"github.com/zyre-go/zyre/zre/zremsg"
)

// Sentinel errors of the node; the errors returned wrap them with details.
var (
	ErrClosed       = errors.New("zre: node closed")
	ErrNotStarted   = errors.New("zre: node not started")
	ErrUnknownPeer  = errors.New("zre: unknown peer")
	ErrSequenceGap  = errors.New("zre: sequence gap")
	ErrProtocol     = errors.New("zre: protocol error")
	ErrBadIdentity  = errors.New("zre: bad identity")
	ErrBadEndpoint  = errors.New("zre: bad endpoint")
	errNotConnected = errors.New("zre: peer not connected")
	errBadGroupName = errors.New("zre: bad group name")
)

// IdentitySize is the size of a DEALER identity: 0x01 and the 16 UUID octets.
const IdentitySize = 17

// Identity returns the DEALER routing identity of a node: 0x01 followed by
// the 16 octets of its UUID, as the C reference sets it.
func Identity(id uuid.UUID) []byte {
	b := make([]byte, IdentitySize)
	b[0] = 1
	copy(b[1:], id[:])
	return b
}

// Stats counts what a node received and dropped since New.
type Stats struct {
	BeaconsReceived uint64 // beacons read, all kinds
	BeaconsOwn      uint64 // our own beacons (dropped)
	BeaconsInvalid  uint64 // not a ZRE beacon of our version (dropped)
	MessagesIn      uint64 // ZRE messages accepted from peers
	MessagesDropped uint64 // inbox messages dropped: bad identity, malformed, unknown peer, before HELLO
	MessagesOut     uint64 // ZRE messages queued to peers
	SendErrors      uint64 // sends refused (peer queue full, not connected)
	SequenceGaps    uint64 // peers dropped for a sequence gap (lost messages)
	ProtocolErrors  uint64 // peers dropped for a protocol error (bad JOIN/LEAVE status, ...)
	HelloTimeouts   uint64 // peers dropped (and dialled again on their next beacon) for sending no HELLO within Config.Expired
	PeersEntered    uint64 // Enter events
	PeersExited     uint64 // Exit events
	EventsDropped   uint64 // events dropped for a slow consumer (all kinds; see Node)
	// MembershipDropped counts the Enter/Exit/Join/Leave events among
	// EventsDropped (each episode is reported by an Overflow event).
	MembershipDropped uint64
	GroupsIgnored     uint64 // JOINs ignored: the peer was in Config.MaxPeerGroups groups
	// Secure mode (see Refused):
	BeaconsRefused uint64 // beacons claiming a UUID with a wrong key, or unbound under RequireBound (ignored)
	PeersRefused   uint64 // connections and HELLOs refused: wrong key, keys disagreeing, unbound, not authorized
	// RefusalsAggregated counts the refusals (among BeaconsRefused and
	// PeersRefused) not reported by a Refused event of their own but by
	// a later one's Count: the per-source bound of refusals.go.
	RefusalsAggregated uint64
	PeersRevoked       uint64 // peers dropped because the trust store revoked their key
	PeersDenied        uint64 // our connections a peer refused in the handshake (every try; see Denied)
	TrustErrors        uint64 // trust messages (zyre-trust) the store refused
	// Hostile input (see Limits):
	EndpointConflicts uint64 // beacons and HELLOs of a UUID claiming the endpoint of another, live peer (which is probed; a beacon's claim is ignored)
	PendingRefused    uint64 // beacons of unknown peers ignored (MaxPendingPerAddr reached, or their endpoint failed to connect lately), and pending peers evicted for a new one at MaxPending
	DialsGivenUp      uint64 // links given up because their connection never completed (two attempts)
	InboxRefused      uint64 // inbox connections closed at once: Limits.MaxConns or MaxConnsPerAddr reached
	InboxRateLimited  uint64 // inbox connections closed at once: Limits.ConnRate exceeded for their address
	InboxUnadmitted   uint64 // inbox connections closed for sending more than PreAdmitBytes before their HELLO was accepted
}

// counters are Stats as atomics: written by the state goroutine, read by
// Stats from any goroutine.
type counters struct {
	beaconsReceived, beaconsOwn, beaconsInvalid             atomic.Uint64
	messagesIn, messagesDropped, messagesOut, sendErrors    atomic.Uint64
	sequenceGaps, protocolErrors, peersEntered, peersExited atomic.Uint64
	eventsDropped, beaconsRefused, peersRefused             atomic.Uint64
	peersRevoked, trustErrors, helloTimeouts                atomic.Uint64
	endpointConflicts, pendingRefused, dialsGivenUp         atomic.Uint64
	inbox                                                   atomic.Pointer[netlimit.Listener] // the inbox's limits, set by Start
	router                                                  atomic.Pointer[zmtp.Router]       // the inbox, set by Start
	membershipDropped, groupsIgnored, peersDenied           atomic.Uint64
	refusalsAggregated                                      atomic.Uint64
}

func (c *counters) snapshot() Stats {
	var in netlimit.Stats
	if l := c.inbox.Load(); l != nil {
		in = l.Stats()
	}
	var unadmitted uint64
	if r := c.router.Load(); r != nil {
		unadmitted = r.Unadmitted()
	}
	return Stats{
		InboxUnadmitted: unadmitted, RefusalsAggregated: c.refusalsAggregated.Load(),
		EndpointConflicts: c.endpointConflicts.Load(), PendingRefused: c.pendingRefused.Load(),
		DialsGivenUp: c.dialsGivenUp.Load(), InboxRefused: in.Refused, InboxRateLimited: in.RateLimited,
		BeaconsReceived: c.beaconsReceived.Load(), BeaconsOwn: c.beaconsOwn.Load(),
		BeaconsInvalid: c.beaconsInvalid.Load(), MessagesIn: c.messagesIn.Load(),
		MessagesDropped: c.messagesDropped.Load(), MessagesOut: c.messagesOut.Load(),
		SendErrors: c.sendErrors.Load(), SequenceGaps: c.sequenceGaps.Load(),
		ProtocolErrors: c.protocolErrors.Load(), PeersEntered: c.peersEntered.Load(),
		PeersExited: c.peersExited.Load(), EventsDropped: c.eventsDropped.Load(),
		BeaconsRefused: c.beaconsRefused.Load(), PeersRefused: c.peersRefused.Load(),
		PeersRevoked: c.peersRevoked.Load(), TrustErrors: c.trustErrors.Load(),
		HelloTimeouts: c.helloTimeouts.Load(), MembershipDropped: c.membershipDropped.Load(),
		GroupsIgnored: c.groupsIgnored.Load(), PeersDenied: c.peersDenied.Load(),
	}
}

// dialFunc opens our outgoing link to a peer's endpoint.
type dialFunc func(endpoint string) (link, error)

// inboxMsg is one message from our inbox: who sent it (the ZMTP Identity
// property) and its frames. PublicKey is the key CURVE authenticated (nil
// in plain mode); secure mode checks it on every message.
type inboxMsg struct {
	identity  []byte
	frames    [][]byte
	remote    string   // the sender's address (a transport's: zretest), or
	addr      net.Addr // the connection's, formatted only when needed
	publicKey []byte
}

// from returns the sender's address for logs and events. Formatting it is
// left until one needs it: most messages never do.
func (in *inboxMsg) from() string {
	if in.remote == "" && in.addr != nil {
		in.remote = in.addr.String()
	}
	return in.remote
}

// state is everything a node knows: its peers, groups and event queue. One
// goroutine owns it (the node's loop; a test in state tests). It never
// blocks: links queue without blocking, and events go to a bounded queue.
type state struct {
	cfg      *Config
	self     uuid.UUID
	endpoint string // our inbox as peers reach it: tcp://host:port
	log      *slog.Logger
	dial     dialFunc
	stats    *counters
	// inboxConnected reports whether a connection with this ZMTP identity
	// is open into our inbox now (exit.go); nil: none is known.
	inboxConnected func(identity []byte) bool
	// admitInbound lifts the inbox's PreAdmit bound for the connection
	// with this ZMTP identity (admitted.go); nil: none.
	admitInbound func(identity []byte)

	status  uint8 // incremented on every JOIN and LEAVE we send
	own     ownGroups
	peers   map[uuid.UUID]*peer
	groups  map[string]*group // groups of peers
	pending map[string]*pendingPeer

	events  []Event // waiting for the loop to put them into evq
	evBase  []Event // events' array, kept for reuse: see appendEvent
	stopped bool

	// clock is the time of what the state is handling (onBeacon,
	// onMessage, reap, connectPeerKey set it).
	clock time.Time
	// Peers dialled on a beacon whose HELLO has not come yet, per beacon
	// source address and in total (Limits.MaxPending...).
	pendingBySrc map[netip.Addr]int
	pendingTotal int
	pendingList  []*peer // the pending peers counted in pendingTotal, for evictPending
	// failed holds endpoints whose link was given up, until when a beacon
	// does not dial them again; bounded by maxFailed.
	failed map[string]time.Time
	// dialing holds the peers whose link has not been seen connected yet:
	// reapDials gives up those that never connect.
	dialing map[*peer]struct{}

	// evq is the buffered channel of Node.Events (nil in state tests); the
	// loop fills it in batches (flushEvents). The slow-consumer policy
	// counts what is in it and in events: see emit.
	evq      chan Event
	evBytes  int     // bytes of the events in events and in evq
	ring     []int32 // sizes of the events put into evq, oldest first
	ringHead int
	ringLen  int
	pushed   uint64 // events put into evq
	// overflow: membership events were dropped and an Overflow event
	// queued; overflowAt is the pushed count once it went into evq.
	overflow   bool
	overflowAt uint64

	emptyGroups int // groups emptied since the last sweep: see groupEmptied
	// txRetry holds the peers whose tx has loop messages pending (reap
	// tries them again).
	txRetry map[*peer]struct{}
	// stopPending: the peers whose GOODBYE (or earlier loop messages)
	// waited for room at stop; Node.Stop sends them before it flushes.
	stopPending []*peer

	// dir is what the application reads without the loop: see directory.
	dir *directory
	// rx is where onMessage decodes each message (reused).
	rx zremsg.Msg
	// timers orders the peers by their next presence deadline (reap).
	timers timerHeap

	// admission decides who may be a peer (admit.go): plain, or secure
	// mode's keys, pins, trust and refusals.
	admission

	gossip   *zgossip.Service    // gossip mode (gossip.go), else nil
	goodbyes map[uuid.UUID]*peer // peers whose port-0 beacon came lately (exit.go)
}

// pendingPeer is a ConnectPeer to an endpoint whose UUID we do not know
// yet: our DEALER is connected and has sent HELLO; the peer's HELLO tells us
// who it is.
type pendingPeer struct {
	endpoint string
	link     link
	sentSeq  uint16
	expires  time.Time
	key      curve.PublicKey // secure mode: the key we authenticate the endpoint by
}

func newState(cfg *Config, endpoint string, dial dialFunc, stats *counters) *state {
	s := &state{
		cfg:      cfg,
		self:     cfg.UUID,
		endpoint: endpoint,
		log:      cfg.Logger.With("node", cfg.Name),
		dial:     dial,
		stats:    stats,
		peers:    make(map[uuid.UUID]*peer),
		groups:   make(map[string]*group),
		pending:  make(map[string]*pendingPeer),

		pendingBySrc: make(map[netip.Addr]int),
		failed:       make(map[string]time.Time),
		dialing:      make(map[*peer]struct{}),
		dir:          newDirectory(),
		txRetry:      make(map[*peer]struct{}),
	}
	s.adm = plainAdmitter{s}
	return s
}

// emit queues an event for the consumer, applying the slow-consumer
// policy (see Node): what waits — in events and in evq — is bounded by
// cfg.EventQueue events and cfg.EventBytes bytes for droppable events; by
// twice the count and a sixteenth more bytes for membership events, past
// which they are dropped too and one Overflow event says so.
func (s *state) emit(e Event) {
	s.reclaim()
	size := eventSize(e)
	n := len(s.events) + len(s.evq)
	if droppable(e) {
		if n >= s.cfg.EventQueue || s.evBytes > 0 && s.evBytes+size > s.cfg.EventBytes {
			s.stats.eventsDropped.Add(1)
			return
		}
	} else if n >= 2*s.cfg.EventQueue || s.evBytes > 0 && s.evBytes+size > s.cfg.EventBytes+s.cfg.EventBytes/16 {
		s.stats.eventsDropped.Add(1)
		s.stats.membershipDropped.Add(1)
		if !s.overflow {
			s.overflow, s.overflowAt = true, 0
			o := &Overflow{EventHeader{Peer: s.self, Name: s.cfg.Name}}
			s.appendEvent(o)
			s.evBytes += eventSize(o)
		}
		return
	}
	s.appendEvent(e)
	s.evBytes += size
}

// appendEvent queues e, reusing the queue's array once it emptied (the
// loop empties it after nearly every message: a new array each time cost
// an allocation per event).
func (s *state) appendEvent(e Event) {
	if len(s.events) == 0 && s.evBase != nil {
		s.events = s.evBase[:0]
	}
	s.events = append(s.events, e)
	if cap(s.events) > cap(s.evBase) && cap(s.events) <= maxEvBase {
		s.evBase = s.events[:0]
	}
}

// maxEvBase: a queue array larger than this (after a burst) is not kept.
const maxEvBase = 1024

// reclaim takes the events the consumer received from evq off the byte
// count: evq is FIFO, so they are the oldest of ring.
func (s *state) reclaim() { s.reclaimTo(len(s.evq)) }

// reclaimTo is reclaim when in of ring's events may still be in evq.
func (s *state) reclaimTo(in int) {
	for s.ringLen > in {
		s.evBytes -= int(s.ring[s.ringHead])
		s.ringHead++
		if s.ringHead == len(s.ring) {
			s.ringHead = 0
		}
		s.ringLen--
	}
	if s.overflow && s.overflowAt > 0 && s.pushed-uint64(in) >= s.overflowAt {
		s.overflow = false // the consumer has it: the next drop tells again
	}
}

// flushEvents puts as many waiting events into evq as it takes without
// blocking (the loop, after each thing it handled).
func (s *state) flushEvents() {
	for len(s.events) > 0 {
		select {
		case s.evq <- s.events[0]:
			s.pushedHead()
		default:
			return
		}
	}
}

// pushedHead records that events[0] went into evq and removes it.
func (s *state) pushedHead() {
	e := s.events[0]
	if s.ring == nil {
		s.ring = make([]int32, cap(s.evq))
	}
	// e went into evq and is not yet in ring; the consumer may have taken
	// it already, and then everything before it.
	s.reclaimTo(max(len(s.evq)-1, 0))
	s.ring[(s.ringHead+s.ringLen)%len(s.ring)] = int32(eventSize(e))
	s.ringLen++
	s.pushed++
	if _, ok := e.(*Overflow); ok {
		s.overflowAt = s.pushed
	}
	s.popEvent()
}

// popEvent removes the first waiting event.
func (s *state) popEvent() {
	s.events[0] = nil
	s.events = s.events[1:]
	if len(s.events) == 0 {
		s.events = nil // (appendEvent reuses evBase)
	}
}

func (s *state) header(p *peer) EventHeader { return EventHeader{Peer: p.id, Name: p.name} }

// hello builds our HELLO; in secure mode its last header is X-PUBLICKEY.
func (s *state) hello() *zremsg.Msg {
	return &zremsg.Msg{
		ID:       zremsg.MsgHello,
		Endpoint: s.endpoint,
		Groups:   s.own.list(),
		Status:   s.status,
		Name:     s.cfg.Name,
		Headers:  s.adm.helloHeaders(s.helloHeaders()), // admit.go, goodbye.go
	}
}

func (s *state) sendTo(p *peer, m *zremsg.Msg) {
	queued, err := p.send(m)
	if queued {
		s.txRetry[p] = struct{}{} // (retried at reap)
	}
	if err != nil {
		s.stats.sendErrors.Add(1)
		s.log.Debug("zre: send failed", "peer", p.label(), "msg", m.ID, "err", err)
		return
	}
	s.stats.messagesOut.Add(1)
}

// How a peer came to be required: the checks differ by how much the claim
// is worth.
type via uint8

const (
	viaBeacon via = iota // a UDP beacon: unauthenticated, anyone can send one
	viaHello             // a HELLO on our inbox
	viaAPI               // ConnectPeer
)

// requirePeer finds or creates the peer with this UUID, connecting to
// endpoint and saying HELLO when it is new (zyre_node_require_peer). key is
// its key in secure mode (checked by the caller), zero in plain mode.
//
// A peer that is alive on its connection (ready, and its link connected;
// in secure mode ready is enough) is never evicted by another UUID
// claiming its endpoint: it is probed instead (see probe), and the claim
// waits until the probe removed it. A beacon making such a claim is
// ignored (requirePeer returns nil); a HELLO gets its peer, unconnected
// until the endpoint is free. Other peers at the endpoint (no HELLO yet,
// or their link down) are removed: the C reference disconnects them.
func (s *state) requirePeer(id uuid.UUID, endpoint string, key curve.PublicKey, how via) *peer {
	if p, ok := s.peers[id]; ok {
		if p.key.IsZero() {
			p.key = key
		}
		if p.link == nil {
			// Disconnected (an endpoint taken over, a failed dial): again,
			// unless a live peer holds the endpoint or it failed lately.
			if live, _ := s.endpointHolders(endpoint, id); live != nil {
				s.probe(live)
				return p
			}
			if how == viaBeacon && s.dialFailedLately(endpoint) {
				return p
			}
			p.endpoint = endpoint
			s.connect(p)
		}
		return p
	}
	live, stale := s.endpointHolders(endpoint, id)
	if live != nil {
		s.stats.endpointConflicts.Add(1)
		s.probe(live)
		if how == viaBeacon {
			s.log.Debug("zre: beacon claims the endpoint of a live peer: ignored", "uuid", uuidString(id), "endpoint", endpoint, "peer", live.label())
			return nil
		}
	}
	for _, old := range stale {
		s.removePeer(old)
	}
	p := newPeer(id)
	p.endpoint = endpoint
	p.key = key
	s.peers[id] = p
	if live != nil {
		return p // a HELLO: the peer exists, our link waits for the endpoint
	}
	if pp, ok := s.pending[endpoint]; ok {
		// ConnectPeer already connected there and said HELLO.
		delete(s.pending, endpoint)
		p.link, p.sentSeq, p.helloSentAt = pp.link, pp.sentSeq, s.clock
		s.dialing[p] = struct{}{}
		return p
	}
	s.connect(p)
	return p
}

// endpointHolders returns the peers other than id whose endpoint is
// endpoint: the one alive on its connection, if any, and the others in
// UUID order. Looked for without sorting every peer: this runs for each new
// peer, and there is almost never one.
func (s *state) endpointHolders(endpoint string, id uuid.UUID) (live *peer, stale []*peer) {
	for _, old := range s.peers {
		if old.id == id || old.endpoint != endpoint {
			continue
		}
		if s.alive(old) {
			live = old
			continue
		}
		stale = append(stale, old)
	}
	slices.SortFunc(stale, comparePeers)
	return live, stale
}

// alive reports whether p is alive on its connection: ready, and its link
// connected. In secure mode a peer that proved its key is not removed on
// an unauthenticated claim even while its link reconnects: ready is enough.
func (s *state) alive(p *peer) bool {
	return p.ready && (s.adm.readyIsLive() || linkConnected(p.link))
}

// probe asks a ready peer that an unauthenticated claim says is gone
// (another UUID claims its endpoint, a port-0 beacon) whether it is still
// there: a PING, and removal after Config.Evasive unless something (its
// beacon, its PING-OK) is heard from it before. A peer that restarted with
// a new UUID on the same port is gone after that, and the new one enters
// on its next beacon: one re-entry. At most one PING per peer per
// Config.Evasive, however many claims arrive.
func (s *state) probe(p *peer) {
	now := s.clock
	if exp := now.Add(s.cfg.Evasive); p.expiredAt.IsZero() || exp.Before(p.expiredAt) {
		p.expiredAt = exp
	}
	if !p.probedAt.IsZero() && now.Sub(p.probedAt) < s.cfg.Evasive {
		return
	}
	p.probedAt = now
	s.log.Debug("zre: unauthenticated claim that a peer is gone: pinging it", "peer", p.label(), "endpoint", p.endpoint)
	s.sendTo(p, &zremsg.Msg{ID: zremsg.MsgPing})
}

// connect opens a link to p.endpoint and says HELLO (sequence 1).
func (s *state) connect(p *peer) {
	l, err := s.adm.dial(p.endpoint, p.key)
	if err != nil {
		s.log.Warn("zre: cannot connect to peer", "peer", p.label(), "endpoint", p.endpoint, "err", err)
		return
	}
	// The loop sets link and sentSeq only while tx is closed; it is open
	// here for a peer that entered without a link (its dial had failed, or
	// its HELLO claimed the endpoint of a live peer). With no link, no
	// sender waits on it: closing is quick.
	reopen := p.opened
	p.closeTx()
	p.link, p.sentSeq = l, 0
	p.helloSentAt = s.clock
	s.dialing[p] = struct{}{}
	s.sendTo(p, s.hello())
	if reopen {
		p.openTx(s.stats) // a link given up, dialled again
	}
	s.log.Debug("zre: connected to peer", "peer", p.label(), "endpoint", p.endpoint)
}

// linkConnected reports whether l completed its handshake; links that
// cannot tell (test fakes) count as connected.
func linkConnected(l link) bool {
	if l == nil {
		return false
	}
	if c, ok := l.(interface{ Connected() bool }); ok {
		return c.Connected()
	}
	return true
}

// removePeer forgets p: Exit event, out of every group, link closed.
func (s *state) removePeer(p *peer) {
	s.leaveAll(p)
	s.uncountPending(p)
	s.dir.remove(p.id)
	p.disconnect()
	delete(s.txRetry, p)
	s.timers.remove(p)
	delete(s.dialing, p)
	delete(s.peers, p.id)
	s.log.Debug("zre: peer removed", "peer", p.label(), "endpoint", p.endpoint)
}

// dropLink closes p's link; the application can no longer send to it
// until connect gives it another.
func (s *state) dropLink(p *peer) {
	if p.link != nil {
		p.link.Close() // first: a sender waiting for room returns
	}
	p.closeTx()
	p.link = nil
	delete(s.dialing, p)
	delete(s.txRetry, p)
}

// leaveAll emits p's Exit if it entered and takes it out of every group.
func (s *state) leaveAll(p *peer) {
	if p.entered {
		s.emit(&Exit{s.header(p)})
		s.stats.peersExited.Add(1)
		p.entered = false
	}
	s.electOnRemove(p) // election.go
	s.gossipForget(p)  // gossip.go
	for name := range p.groups {
		if g := s.groups[name]; g != nil {
			delete(g.peers, p.id)
			s.groupEmptied(g)
		}
	}
	clear(p.groups)
}

// We answer a second HELLO that came over the connection of the peer's
// previous one (the peer's answer to ours, as likely as not) only when our
// last HELLO to it is helloHoldoff old, and one over a new connection (a
// restarted peer dials anew) unless we answered one less than helloMinGap
// ago (see restartPeer).
const (
	helloHoldoff = 10 * time.Second
	helloMinGap  = time.Second
)

// restartPeer handles a second HELLO from a ready peer, which came from
// the remote address from: the peer restarted with the same UUID, or
// dialled us again (it gave up waiting for our HELLO, or its link broke),
// or it answers a second HELLO of ours. Its state starts over: Exit now,
// Enter with the new HELLO's groups (one re-entry).
//
// We answer with a HELLO of our own when the peer may have lost ours: its
// HELLO came over a new connection, or ours is old (helloHoldoff). The
// answer goes over our link as it is, with sequence 1 again (a DEALER
// reconnects by itself to a peer restarted on the same port), or over a
// new link when the endpoint changed or an application sender holds the
// link. A peer answering us does so over its link as it was, the
// connection of its previous HELLO, so we do not answer the answer: two
// nodes never feed each other HELLOs (and helloMinGap bounds them to one
// exchange a second if both keep making new links, as the C reference
// does on every second HELLO).
func (s *state) restartPeer(p *peer, endpoint, from string) {
	s.log.Debug("zre: second HELLO: peer starts over", "peer", p.label(), "endpoint", endpoint, "from", from)
	s.leaveAll(p)
	s.dir.remove(p.id)
	p.ready = false
	p.wantSeq = 0
	if endpoint != p.endpoint || p.link == nil {
		s.dropLink(p) // requirePeer dials the new endpoint and says HELLO
		p.answeredAt = s.clock
		return
	}
	if from != p.helloFrom {
		if !p.answeredAt.IsZero() && s.clock.Sub(p.answeredAt) < helloMinGap {
			return
		}
	} else if !p.helloSentAt.IsZero() && s.clock.Sub(p.helloSentAt) < helloHoldoff {
		return // an answer to ours: tx stays as it is, Enter follows
	}
	p.helloSentAt, p.answeredAt = s.clock, s.clock
	if !p.opened {
		p.sentSeq = 0
		s.sendTo(p, s.hello())
		return
	}
	// The application may be sending on the link: the sequence starts
	// again under tx's lock, which the loop never waits for.
	if !p.tryLock() {
		s.dropLink(p)
		return
	}
	p.tx.pendingMu.Lock()
	p.tx.pending = nil // the loop's messages to the peer before it restarted
	p.tx.npending.Store(0)
	p.tx.pendingMu.Unlock()
	p.sentSeq = 0
	err := p.sendLocked(s.hello())
	p.unlock()
	if err != nil {
		s.stats.sendErrors.Add(1)
		s.dropLink(p) // its queue is stuck: a new link
		return
	}
	s.stats.messagesOut.Add(1)
}

// Pending peers: dialled on a beacon, no HELLO yet. A stranger can send
// beacons with any UUID and port, so what they make us hold is capped.

// admitPending reports whether a beacon from src for a new peer at
// endpoint may dial it: the caps on pending peers and the endpoints that
// failed lately.
//
// The total cap is not first come, first served: beacons are not
// authenticated, so a stranger can send them from any number of source
// addresses and, refreshing them every second, hold every place for as
// long as it likes; a new honest peer would then never be dialled (nor,
// if the stranger floods it too, would it dial us). When the total is
// reached, a beacon from an address below its own cap takes the place of
// a pending peer chosen at random (evictPending), preferring one whose
// link has not connected yet. An honest peer needs its place for a
// handshake and a HELLO, a few milliseconds on a LAN; to keep it out a
// stranger must send MaxPending beacons within those, and it only delays
// it: the peer beacons again a second later. The cap per address stays a
// refusal, so one address cannot take the places of others.
func (s *state) admitPending(src netip.Addr, endpoint string) bool {
	lim := &s.cfg.Limits
	switch {
	case s.dialFailedLately(endpoint),
		lim.MaxPendingPerAddr > 0 && s.pendingBySrc[src] >= lim.MaxPendingPerAddr:
		s.stats.pendingRefused.Add(1)
		return false
	case lim.MaxPending > 0 && s.pendingTotal >= lim.MaxPending:
		s.stats.pendingRefused.Add(1) // the evicted one
		for s.pendingTotal >= lim.MaxPending && len(s.pendingList) > 0 {
			s.evictPending()
		}
	}
	return true
}

// evictPendingSamples is how many pending peers evictPending looks at for
// one whose link has not connected.
const evictPendingSamples = 4

// evictPending removes a pending peer chosen at random, one whose link has
// not completed its handshake if one of a few samples has not.
func (s *state) evictPending() {
	var victim *peer
	for range evictPendingSamples {
		victim = s.pendingList[rand.IntN(len(s.pendingList))]
		if !linkConnected(victim.link) {
			break
		}
	}
	s.log.Debug("zre: pending peer evicted for a new one", "peer", victim.label(), "endpoint", victim.endpoint)
	s.removePeer(victim)
}

func (s *state) countPending(p *peer, src netip.Addr) {
	if p.pendingSrc.IsValid() || p.ready {
		return
	}
	p.pendingSrc = src
	p.pendingIdx = len(s.pendingList)
	s.pendingList = append(s.pendingList, p)
	s.pendingBySrc[src]++
	s.pendingTotal++
}

func (s *state) uncountPending(p *peer) {
	if !p.pendingSrc.IsValid() {
		return
	}
	if n := s.pendingBySrc[p.pendingSrc] - 1; n > 0 {
		s.pendingBySrc[p.pendingSrc] = n
	} else {
		delete(s.pendingBySrc, p.pendingSrc)
	}
	last := len(s.pendingList) - 1
	moved := s.pendingList[last]
	s.pendingList[p.pendingIdx] = moved
	moved.pendingIdx = p.pendingIdx
	s.pendingList[last] = nil
	s.pendingList = s.pendingList[:last]
	s.pendingTotal--
	p.pendingSrc = netip.Addr{}
}

// dialRetryAfter is how long a beacon does not dial an endpoint whose link
// was given up; maxFailed bounds the endpoints remembered (all are
// forgotten when it is reached).
const (
	dialRetryAfter = 10 * time.Second
	maxFailed      = 4096
)

func (s *state) dialFailedLately(endpoint string) bool {
	t, ok := s.failed[endpoint]
	if ok && !s.clock.Before(t) {
		delete(s.failed, endpoint)
		return false
	}
	return ok
}

func (s *state) markFailed(endpoint string) {
	if len(s.failed) >= maxFailed {
		clear(s.failed)
	}
	s.failed[endpoint] = s.clock.Add(dialRetryAfter)
}

// reapDials looks at the links not seen connected yet: one that gave up
// (its connection never completed: a dead or hostile endpoint) is dropped
// and its endpoint not dialled again by a beacon for dialRetryAfter; a
// peer that never said HELLO is forgotten with it (its next beacon may
// bring it back), a ready one stays, unconnected.
func (s *state) reapDials() {
	for p := range s.dialing {
		switch {
		case p.link == nil:
			delete(s.dialing, p)
		case linkGaveUp(p.link):
			s.stats.dialsGivenUp.Add(1)
			s.log.Debug("zre: connection to peer never completed: given up", "peer", p.label(), "endpoint", p.endpoint)
			s.markFailed(p.endpoint)
			if p.ready {
				s.dropLink(p)
			} else {
				s.removePeer(p)
			}
		case linkConnected(p.link):
			delete(s.dialing, p)
		}
	}
}

// linkGaveUp reports whether l stopped trying to connect because its
// connection never completed (see giveUpLink).
func linkGaveUp(l link) bool {
	g, ok := l.(interface{ GaveUp() bool })
	return ok && g.GaveUp()
}

// onBeacon handles one UDP datagram from the beacon service.
func (s *state) onBeacon(payload []byte, from netip.AddrPort, now time.Time) {
	if s.stopped {
		return
	}
	s.clock = now
	s.stats.beaconsReceived.Add(1)
	b, err := ParseBeacon(payload)
	if err == nil {
		err = s.adm.beaconForm(b) // admit.go
	}
	if err != nil {
		s.stats.beaconsInvalid.Add(1)
		s.log.Debug("zre: beacon dropped", "from", from, "err", err)
		return
	}
	if !s.adm.beacon(b, from) {
		return // refused (a forgery of our own UUID among them)
	}
	if b.UUID == s.self {
		s.stats.beaconsOwn.Add(1)
		return
	}
	if b.Stopping() {
		p, ok := s.peers[b.UUID]
		switch {
		case !ok:
		case s.alive(p):
			// Beacons are not authenticated: anyone can send this one with
			// a peer's UUID (and public key). A peer is removed at once
			// when one of its connections has closed too (exit.go);
			// otherwise a peer alive on its connection is asked instead
			// (probe): a PING that a live peer answers (refreshing its
			// timers), and removal after Config.Evasive if nothing is heard
			// from it. (Our peers say GOODBYE over TCP before this beacon,
			// and go at once.)
			if s.beaconGoodbye(p, now) { // exit.go
				return
			}
			s.log.Debug("zre: port-0 beacon for a connected peer: probing it", "peer", p.label())
			s.probe(p)
		default:
			s.log.Debug("zre: peer said goodbye by beacon", "peer", p.label())
			s.removePeer(p)
		}
		return
	}
	addr := from.Addr().Unmap()
	if !addr.IsValid() || addr.IsUnspecified() || addr.IsMulticast() {
		s.stats.beaconsInvalid.Add(1)
		return
	}
	p, ok := s.peers[b.UUID]
	if ok && p.link != nil {
		// The common case, once a second per peer: a known, connected peer.
		// requirePeer would not use the endpoint, so do not build it.
		if p.key.IsZero() {
			p.key = b.PublicKey
		}
	} else {
		endpoint := "tcp://" + netip.AddrPortFrom(addr, b.Port).String()
		if !ok && !s.admitPending(addr, endpoint) {
			return
		}
		if p = s.requirePeer(b.UUID, endpoint, b.PublicKey, viaBeacon); p == nil {
			return
		}
		if !ok {
			s.countPending(p, addr)
		}
	}
	p.heard(now, s.cfg, false)
	if p.silentAt.IsZero() {
		p.silentAt = now.Add(s.cfg.Silent)
	}
}

// dropMsg counts and logs an inbox message we do not act on.
func (s *state) dropMsg(in inboxMsg, err error) {
	s.stats.messagesDropped.Add(1)
	s.log.Debug("zre: inbox message dropped", "remote", in.from(), "err", err)
}

// onMessage handles one message from our inbox (zyre_node_recv_peer).
func (s *state) onMessage(in inboxMsg, now time.Time) {
	if s.stopped {
		return
	}
	s.clock = now
	if len(in.identity) != IdentitySize {
		s.dropMsg(in, fmt.Errorf("%w: %d octets, want %d", ErrBadIdentity, len(in.identity), IdentitySize))
		return
	}
	var id uuid.UUID
	copy(id[:], in.identity[1:])
	if id == s.self {
		s.dropMsg(in, fmt.Errorf("%w: our own UUID", ErrBadIdentity))
		return
	}
	// Decoded into s.rx, not a new Msg each time (an allocation per
	// message): what handles it keeps no pointer to it but a held
	// message's copy (verdict.go).
	m := &s.rx
	defer func() { *m = zremsg.Msg{} }() // no reference to the frames left behind
	if err := m.UnmarshalFrames(in.frames); err != nil {
		s.dropMsg(in, fmt.Errorf("zre: from %s: %w", DefaultName(id), err))
		return
	}
	if m.Version != zremsg.Version {
		// The C reference drops other versions.
		s.dropMsg(in, fmt.Errorf("%w: peer %s: version %d", ErrProtocol, DefaultName(id), m.Version))
		return
	}
	if s.adm.waits(id, in, m) {
		return // its HELLO is being checked off the loop (admit.go)
	}
	s.handle(id, m, in, now, nil)
}

// handle acts on a decoded message from id. checked is the key that the
// checks off the loop (secure mode) accepted for this HELLO, nil before.
func (s *state) handle(id uuid.UUID, m *zremsg.Msg, in inboxMsg, now time.Time, checked *curve.PublicKey) {
	p := s.peers[id]
	if m.ID == zremsg.MsgHello {
		key, ok := s.adm.hello(id, p, m, in, checked) // admit.go
		if !ok {
			return
		}
		if err := checkEndpoint(m.Endpoint); err != nil {
			if p != nil && !p.ready {
				p = nil // (a ready one is dropped: its state is gone with this HELLO)
			}
			s.protocolError(p, id, fmt.Errorf("%w: peer %s: HELLO: %w", ErrProtocol, DefaultName(id), err))
			return
		}
		if p != nil && p.ready {
			s.restartPeer(p, m.Endpoint, in.from())
		}
		p = s.requirePeer(id, m.Endpoint, key, viaHello)
		s.adm.admitted(p, key, m.Endpoint) // admit.go
		p.ready = true
		p.helloFrom = in.from()
		s.uncountPending(p)
		p.wantSeq = 0
	} else if p != nil && p.ready {
		if err := s.adm.sender(p, m, in); err != nil {
			s.dropMsg(in, err)
			return
		}
	}
	if p == nil || !p.ready {
		s.dropMsg(in, fmt.Errorf("%w: %s from %s before its HELLO", ErrUnknownPeer, m.ID, DefaultName(id)))
		return
	}
	// Sequence check (zyre_peer_messages_lost): HELLO is 1, then +1 each,
	// wrapping 65535 to 0.
	want := p.wantSeq + 1
	if m.ID == zremsg.MsgHello {
		want = 1
	}
	if m.Sequence != want {
		s.stats.sequenceGaps.Add(1)
		s.log.Warn("zre: messages lost", "err", fmt.Errorf("%w: peer %s: want %d, got %d", ErrSequenceGap, p.label(), want, m.Sequence))
		s.removePeer(p)
		return
	}
	p.wantSeq = want
	s.stats.messagesIn.Add(1)

	switch m.ID {
	case zremsg.MsgHello:
		p.name = m.Name
		p.entered = true
		p.headers = slices.Clone(m.Headers)
		s.entered(p)
		if s.admitInbound != nil {
			s.admitInbound(in.identity) // admitted.go
		}
		s.emit(&Enter{EventHeader: s.header(p), Headers: slices.Clone(m.Headers), Addr: m.Endpoint})
		s.stats.peersEntered.Add(1)
		s.log.Debug("zre: peer entered", "peer", p.label(), "endpoint", m.Endpoint)
		for _, g := range m.Groups {
			s.joinPeerGroup(p, g)
			s.electOnHelloGroup(g) // election.go
		}
		p.status = m.Status
	case zremsg.MsgWhisper:
		// The frames are this message's own (zmtp gives every message
		// fresh storage; attachedNet.read copies a transport's), so the event
		// takes them without a copy.
		s.emit(&Whisper{EventHeader: s.header(p), Content: m.Content})
	case zremsg.MsgShout:
		if s.reservedGroup(m.Group) {
			s.onTrustMessage(p, m.Content)
			break
		}
		s.emit(&Shout{EventHeader: s.header(p), Group: m.Group, Content: m.Content})
	case zremsg.MsgPing:
		s.sendTo(p, &zremsg.Msg{ID: zremsg.MsgPingOK})
	case zremsg.MsgPingOK:
	case zremsg.MsgJoin, zremsg.MsgLeave:
		// The C reference asserts that the status is the previous one + 1
		// (a wrong one aborts it); we treat it as lost state: drop the peer.
		if m.Status != p.status+1 {
			s.protocolError(p, id, fmt.Errorf("%w: peer %s: %s %q with status %d, want %d", ErrProtocol, p.label(), m.ID, m.Group, m.Status, p.status+1))
			return
		}
		p.status = m.Status
		if m.ID == zremsg.MsgJoin {
			s.joinPeerGroup(p, m.Group)
			s.electOnJoin(m.Group) // election.go
		} else {
			s.leavePeerGroup(p, m.Group)
			s.electOnLeave(p, m.Group) // election.go
		}
	case zremsg.MsgElect:
		s.onElect(p, m, now) // election.go
	case zremsg.MsgLeader:
		s.onLeader(p, m, now) // election.go
	case zremsg.MsgGoodbye:
		s.removePeer(p)
		return
	}
	p.heard(now, s.cfg, true)
}

func (s *state) protocolError(p *peer, id uuid.UUID, err error) {
	s.stats.protocolErrors.Add(1)
	s.log.Warn("zre: dropping peer", "peer", DefaultName(id), "err", err)
	if p != nil {
		s.removePeer(p)
	}
}

// groupEmptied counts a group left without peers; past maxEmptyGroups of
// them they are all forgotten, so that JOIN/LEAVE churn over ever new
// names holds no memory (an empty group is kept a while: it costs little,
// and a JOIN often follows).
func (s *state) groupEmptied(g *group) {
	if len(g.peers) > 0 {
		return
	}
	s.emptyGroups++
	if s.emptyGroups <= maxEmptyGroups {
		return
	}
	for name, g := range s.groups {
		if len(g.peers) == 0 {
			delete(s.groups, name)
		}
	}
	s.emptyGroups = 0
}

// maxEmptyGroups: see groupEmptied.
const maxEmptyGroups = 1024

// entered publishes a peer whose HELLO we accepted: the application can
// find it and send to it.
func (s *state) entered(p *peer) {
	s.dir.add(p, s.peerInfo(p))
	p.openTx(s.stats)
}

func (s *state) joinPeerGroup(p *peer, name string) {
	if !p.groups[name] && len(p.groups) >= s.cfg.MaxPeerGroups {
		// Bounded whatever a peer sends: its further groups are ignored.
		s.stats.groupsIgnored.Add(1)
		s.log.Debug("zre: peer in too many groups: join ignored", "peer", p.label(), "group", name, "max", s.cfg.MaxPeerGroups)
		return
	}
	g := s.groups[name]
	if g == nil {
		g = &group{name: name, peers: make(map[uuid.UUID]*peer)}
		s.groups[name] = g
	}
	g.peers[p.id] = p
	if !p.groups[name] {
		p.groups[name] = true
		s.dir.join(p.id, name)
	}
	if !s.reservedGroup(name) {
		s.emit(&Join{EventHeader: s.header(p), Group: name})
	} else {
		s.trustEnter(p)
	}
}

func (s *state) leavePeerGroup(p *peer, name string) {
	if !p.groups[name] && len(p.groups) >= s.cfg.MaxPeerGroups {
		return // (a join ignored above)
	}
	if g := s.groups[name]; g != nil {
		delete(g.peers, p.id)
		s.groupEmptied(g)
	}
	delete(p.groups, name)
	s.dir.leave(p.id, name)
	if !s.reservedGroup(name) {
		s.emit(&Leave{EventHeader: s.header(p), Group: name})
	}
}

// reap runs the presence timers (zyre_node_ping_peer): expired peers are
// removed, evasive ones get a PING and an Evasive event, silent ones a
// Silent event. It looks only at the peers whose next deadline passed: a
// heap orders them (timerHeap); nothing is sorted.
func (s *state) reap(now time.Time) {
	if s.stopped {
		return
	}
	s.clock = now
	s.adm.tick(now)     // admit.go
	s.electionReap(now) // election.go
	s.exitReap(now)     // exit.go
	s.reapDials()
	if len(s.timers) != len(s.peers) {
		// New peers since the last reap: checked now, as the C reference
		// checks every peer at each reap.
		for _, p := range s.peers {
			if p.timer < 0 {
				s.timers.schedule(p, now)
			}
		}
	}
	for p := range s.txRetry {
		if !p.opened || !p.retryPending() {
			delete(s.txRetry, p)
		}
	}
	for len(s.timers) > 0 && !now.Before(s.timers[0].timerAt) {
		p := s.timers[0]
		if s.reapPeer(p, now) {
			s.timers.schedule(p, s.nextCheck(p, now))
		}
	}
	for ep, pp := range s.pending {
		if !now.Before(pp.expires) || linkGaveUp(pp.link) {
			pp.link.Close()
			delete(s.pending, ep)
			s.log.Debug("zre: no HELLO from endpoint", "endpoint", ep)
		}
	}
}

// reapPeer runs one peer's timers; it returns false when it removed the
// peer.
func (s *state) reapPeer(p *peer, now time.Time) bool {
	if p.ready {
		p.unreadySince = time.Time{}
	} else if p.unreadySince.IsZero() {
		p.unreadySince = now
	} else if now.Sub(p.unreadySince) >= s.cfg.Expired {
		// Its beacons keep it alive, but its HELLO never came: lost
		// with a connection that broke right after the handshake, or
		// refused. Start over: its next beacon dials it again and we
		// say HELLO again; a peer that had us as ready drops us on that
		// second HELLO and dials back, which brings its HELLO.
		s.log.Debug("zre: no HELLO from peer: starting over", "peer", p.label(), "endpoint", p.endpoint)
		s.stats.helloTimeouts.Add(1)
		s.removePeer(p)
		return false
	}
	switch {
	case p.expiredAt.IsZero():
	case !now.Before(p.expiredAt):
		s.log.Debug("zre: peer expired", "peer", p.label(), "endpoint", p.endpoint)
		s.removePeer(p)
		return false
	case !now.Before(p.evasiveAt):
		if !p.evasive {
			p.evasive = true
			if p.ready {
				s.sendTo(p, &zremsg.Msg{ID: zremsg.MsgPing})
				s.emit(&Evasive{s.header(p)})
			}
		}
	case !p.silentAt.IsZero() && !now.Before(p.silentAt):
		if !p.silent && p.ready {
			p.silent = true
			s.emit(&Silent{s.header(p)})
		}
	}
	return true
}

// nextCheck is when reap must look at p again: its earliest deadline
// still ahead, and at the latest min(Evasive, Silent) from now. Deadlines
// move later as we hear from a peer (then reap looks too early, finds
// nothing to do and schedules again); the one that moves earlier — a
// port-0 beacon for a secure peer sets expiry to now + Evasive — never
// moves before that latest check.
func (s *state) nextCheck(p *peer, now time.Time) time.Time {
	next := now.Add(min(s.cfg.Evasive, s.cfg.Silent))
	for _, t := range [...]time.Time{p.expiredAt, p.evasiveAt, p.silentAt} {
		if !t.IsZero() && t.After(now) && t.Before(next) {
			next = t
		}
	}
	if !p.ready && !p.unreadySince.IsZero() {
		if t := p.unreadySince.Add(s.cfg.Expired); t.After(now) && t.Before(next) {
			next = t
		}
	}
	return next
}

// timerHeap is the peers ordered by when reap looks at them next
// (peer.timerAt; UUID order for the same instant, so that reap is
// deterministic). peer.timer is a peer's index, -1 when not in it.
type timerHeap []*peer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if !h[i].timerAt.Equal(h[j].timerAt) {
		return h[i].timerAt.Before(h[j].timerAt)
	}
	return comparePeers(h[i], h[j]) < 0
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].timer, h[j].timer = i, j
}
func (h *timerHeap) Push(x any) {
	p := x.(*peer)
	p.timer = len(*h)
	*h = append(*h, p)
}
func (h *timerHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	p.timer = -1
	return p
}

// schedule puts p in the heap at t, or moves it there.
func (h *timerHeap) schedule(p *peer, t time.Time) {
	p.timerAt = t
	if p.timer >= 0 {
		heap.Fix(h, p.timer)
		return
	}
	heap.Push(h, p)
}

// remove takes p out of the heap if it is in it.
func (h *timerHeap) remove(p *peer) {
	if p.timer >= 0 {
		heap.Remove(h, p.timer)
	}
}

// sortedPeers returns the peers in UUID order, so that what reap does is
// deterministic.
func (s *state) sortedPeers() []*peer {
	ps := make([]*peer, 0, len(s.peers))
	for _, p := range s.peers {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, comparePeers)
	return ps
}

// comparePeers orders peers by UUID without allocating.
func comparePeers(a, b *peer) int { return bytes.Compare(a.id[:], b.id[:]) }

func checkGroup(name string) error {
	if name == "" || len(name) > 255 || strings.IndexByte(name, 0) >= 0 {
		return fmt.Errorf("%w: %q: must be 1 to 255 octets without NUL", errBadGroupName, name)
	}
	return nil
}

// join makes us a member of name and tells every peer.
func (s *state) join(name string) error {
	if err := checkGroup(name); err != nil {
		return err
	}
	if !s.own.add(name) {
		return nil
	}
	s.dir.setOwn(s.own.list())
	s.status++
	for _, p := range s.sortedPeers() {
		s.sendTo(p, &zremsg.Msg{ID: zremsg.MsgJoin, Group: name, Status: s.status})
	}
	s.electOnOwnJoin(name) // election.go
	return nil
}

func (s *state) leave(name string) error {
	if err := checkGroup(name); err != nil {
		return err
	}
	if !s.own.remove(name) {
		return nil
	}
	s.dir.setOwn(s.own.list())
	s.status++
	for _, p := range s.sortedPeers() {
		s.sendTo(p, &zremsg.Msg{ID: zremsg.MsgLeave, Group: name, Status: s.status})
	}
	return nil
}

// whisper is Node.Whisper on the state (tests): see directory.whisper.
func (s *state) whisper(id uuid.UUID, content [][]byte) error {
	return s.dir.whisper(nil, s.stats, id, content)
}

// shout is Node.Shout and Node.ShoutTo on the state (tests): see
// directory.shout.
func (s *state) shout(name string, only []uuid.UUID, content [][]byte) error {
	return s.dir.shout(nil, s.stats, name, only, content)
}

// whisper sends a WHISPER from an application goroutine (or a state test):
// without waiting for room when ctx is nil, waiting until ctx is done
// otherwise. The loop is not involved: see tx.
func (d *directory) whisper(ctx context.Context, stats *counters, id uuid.UUID, content [][]byte) error {
	p, name := d.peerName(id)
	if p == nil {
		return fmt.Errorf("zre: whisper to %s: %w", uuidString(id), ErrUnknownPeer)
	}
	m := &zremsg.Msg{ID: zremsg.MsgWhisper, Content: content}
	var err error
	if ctx == nil {
		err = p.sendApp(m, nil)
	} else {
		err = p.sendAppContext(ctx, m)
	}
	if err != nil {
		stats.sendErrors.Add(1)
		return fmt.Errorf("zre: whisper to %s: %w", name, appErr(err))
	}
	stats.messagesOut.Add(1)
	return nil
}

// appErr is err as the application sees it: a peer that went away while
// we sent is an unknown peer.
func appErr(err error) error {
	if errors.Is(err, errNotConnected) {
		return fmt.Errorf("%w: %w", ErrUnknownPeer, err)
	}
	return err
}

// shout sends a SHOUT to every peer in the group, or to those of only that
// are in it when only is not nil, from an application goroutine (or a state
// test). It walks the group's members as the directory keeps them (no
// sort). With ctx nil it waits for no one; otherwise it first gives the
// SHOUT to every peer that takes it at once, then waits, until ctx is done,
// for those whose queues were full. It returns a *ShoutError naming those
// that did not take it.
func (d *directory) shout(ctx context.Context, stats *counters, name string, only []uuid.UUID, content [][]byte) error {
	if err := checkGroup(name); err != nil {
		return err
	}
	var buf [32]*peer
	members := d.members(buf[:0], name)
	if len(members) == 0 {
		return nil
	}
	m := &zremsg.Msg{ID: zremsg.MsgShout, Group: name, Content: content}
	copies := len(members)
	if only != nil {
		copies = min(copies, len(only))
	}
	enc := newShoutFrames(m, copies) // numbered at each send, under that peer's lock
	var se *ShoutError
	fail := func(p *peer, err error) {
		stats.sendErrors.Add(1)
		err = appErr(err)
		if se == nil {
			se = &ShoutError{Group: name, first: p.label(), Err: err}
		}
		se.Peers = append(se.Peers, p.id)
		se.Errs = append(se.Errs, err)
	}
	var full []*peer
	for _, p := range members {
		if only != nil && !slices.Contains(only, p.id) {
			continue
		}
		err := p.sendApp(m, enc.next())
		switch {
		case err == nil:
			stats.messagesOut.Add(1)
		case ctx != nil && errors.Is(err, zmtp.ErrPeerNotResponding):
			full = append(full, p)
		default:
			fail(p, err)
		}
	}
	for _, p := range full {
		if err := p.sendAppContext(ctx, m); err != nil {
			fail(p, err)
			continue
		}
		stats.messagesOut.Add(1)
	}
	if se == nil {
		return nil
	}
	return se
}

// shoutFrames is a SHOUT encoded once for the peers it goes to. Their
// copies differ only in the sequence number, which each send writes under
// its peer's lock; one array holds every copy's first frame and one every
// copy's frame list, where encoding at each send cost two allocations per
// peer. A copy is never used twice: a peer's queue keeps its frames until
// they are written. The first copy, as encoded, is the model of the others
// (only read after its send, as its socket's writer reads it).
type shoutFrames struct {
	model   []byte   // the first copy's first frame
	content [][]byte // every copy's content frames
	firsts  []byte   // the copies' first frames
	frames  [][]byte // the copies' frame lists
}

// newShoutFrames encodes m for n peers. If it cannot, every next is nil
// and each send encodes m itself (and reports the error as before).
func newShoutFrames(m *zremsg.Msg, n int) shoutFrames {
	size := 0
	if n > 0 {
		size = zremsg.HeaderSize + 1 + len(m.Group)
	}
	firsts, err := m.AppendEncode(make([]byte, 0, n*size))
	if err != nil {
		return shoutFrames{}
	}
	e := shoutFrames{model: firsts, content: m.Content, firsts: firsts}
	e.frames = make([][]byte, 0, n*(1+len(m.Content)))
	return e
}

// next returns the frames of a fresh copy, or nil (see newShoutFrames).
func (e *shoutFrames) next() [][]byte {
	if e.model == nil {
		return nil
	}
	var first []byte
	if len(e.frames) == 0 {
		first = e.model[:len(e.model):len(e.model)] // the model itself
	} else {
		at := len(e.firsts)
		if at+len(e.model) > cap(e.firsts) {
			// More copies than planned: not expected (one per member, and
			// only a member named in only), but then an array of its own.
			e.firsts, at = make([]byte, 0, 4*len(e.model)), 0
		}
		e.firsts = append(e.firsts, e.model...)
		first = e.firsts[at:len(e.firsts):len(e.firsts)]
	}
	at := len(e.frames)
	e.frames = append(e.frames, first)
	e.frames = append(e.frames, e.content...)
	return e.frames[at:len(e.frames):len(e.frames)]
}

// ShoutError reports the peers of a group that did not take a SHOUT (their
// queues were full, say); every other peer of the group took it. Errs[i]
// is why Peers[i] did not (errors.Is(Errs[i], zmtp.ErrPeerNotResponding)
// for a full queue). Err is the first of them, and errors.Is looks through
// it. Peers come in the group's order (the order the node keeps its
// members in, not sorted). To try again without sending the others a
// second copy, use Node.ShoutTo or Node.ShoutToContext with the peers
// worth it.
type ShoutError struct {
	Group string
	Peers []uuid.UUID
	Errs  []error
	Err   error
	first string // the first peer's label, for the message
}

func (e *ShoutError) Error() string {
	who, more := e.first, ""
	if who == "" && len(e.Peers) > 0 {
		who = e.Peers[0].String()
	}
	if len(e.Peers) > 1 {
		more = fmt.Sprintf(" (and %d more peers)", len(e.Peers)-1)
	}
	return fmt.Sprintf("zre: shout to %s in %q%s: %v", who, e.Group, more, e.Err)
}

// Unwrap returns Err.
func (e *ShoutError) Unwrap() error { return e.Err }

// connectPeer is ConnectPeer: with a UUID, the same as a beacon from it;
// without, a pending connection that the peer's HELLO resolves.
func (s *state) connectPeer(id uuid.UUID, endpoint string, now time.Time) error {
	return s.connectPeerKey(id, endpoint, curve.PublicKey{}, now)
}

// connectPeerKey is connectPeer with the key that authenticates the
// endpoint in secure mode.
func (s *state) connectPeerKey(id uuid.UUID, endpoint string, key curve.PublicKey, now time.Time) error {
	if err := checkEndpoint(endpoint); err != nil {
		return err
	}
	if endpoint == s.endpoint || id == s.self {
		return fmt.Errorf("%w: %s is ourselves", ErrBadEndpoint, endpoint)
	}
	s.clock = now
	if id != uuid.Nil {
		p := s.requirePeer(id, endpoint, key, viaAPI)
		p.heard(now, s.cfg, true)
		return nil
	}
	for _, p := range s.peers {
		if p.endpoint == endpoint && p.link != nil {
			return nil // already connected
		}
	}
	if _, ok := s.pending[endpoint]; ok {
		return nil
	}
	l, err := s.adm.dial(endpoint, key)
	if err != nil {
		return fmt.Errorf("zre: connect to %s: %w", endpoint, err)
	}
	pp := &pendingPeer{endpoint: endpoint, link: l, expires: now.Add(s.cfg.Expired), key: key}
	m := s.hello()
	m.Sequence = 1
	frames, err := m.Frames()
	if err == nil {
		err = l.Send(frames...)
	}
	if err != nil {
		l.Close()
		return fmt.Errorf("zre: HELLO to %s: %w", endpoint, err)
	}
	s.stats.messagesOut.Add(1)
	pp.sentSeq = 1
	s.pending[endpoint] = pp
	return nil
}

// stop says goodbye over TCP (GOODBYE, best effort) to the peers that
// understand it (goodbye.go), forgets
// every peer and queues the Stop event; it returns the links for the caller
// to close once the GOODBYEs had a chance to leave. The node then ignores
// the network.
func (s *state) stop() []link {
	if s.stopped {
		return nil
	}
	var links []link
	s.dir.clear()
	for _, p := range s.sortedPeers() {
		if p.ready && s.wantsGoodbye(p) { // goodbye.go
			// Once tx is open, whoever sends the GOODBYE closes it: no
			// WHISPER or SHOUT follows it.
			s.sendTo(p, &zremsg.Msg{ID: zremsg.MsgGoodbye})
		}
		if p.link != nil {
			links = append(links, p.link)
			if !p.opened {
				p.link = nil
			}
			// An open peer keeps its link (an application sender may be
			// using it): the caller flushes and closes it.
		}
	}
	for ep, pp := range s.pending {
		links = append(links, pp.link)
		delete(s.pending, ep)
	}
	for p := range s.txRetry {
		s.stopPending = append(s.stopPending, p)
	}
	s.forget()
	s.dropHolds() // verdict.go
	s.stopped = true
	s.events = append(s.events, &Stop{EventHeader{Peer: s.self, Name: s.cfg.Name}})
	return links
}

func (s *state) closeLinks() {
	for _, p := range s.peers {
		p.disconnect()
	}
	for ep, pp := range s.pending {
		pp.link.Close()
		delete(s.pending, ep)
	}
	s.forget()
}

// forget drops every peer and group (their links are closed or handed to
// the caller).
func (s *state) forget() {
	s.dir.clear()
	clear(s.dialing)
	s.peers = make(map[uuid.UUID]*peer)
	s.groups = make(map[string]*group)
	s.timers = s.timers[:0]
	clear(s.txRetry)
}

// checkEndpoint accepts tcp://host:port with a non-zero port.
func checkEndpoint(ep string) error {
	rest, ok := strings.CutPrefix(ep, "tcp://")
	if !ok {
		return fmt.Errorf("%w: %q: want tcp://host:port", ErrBadEndpoint, ep)
	}
	i := strings.LastIndexByte(rest, ':')
	if i <= 0 || i == len(rest)-1 {
		return fmt.Errorf("%w: %q: want tcp://host:port", ErrBadEndpoint, ep)
	}
	var port int
	for _, c := range rest[i+1:] {
		if c < '0' || c > '9' {
			return fmt.Errorf("%w: %q: bad port", ErrBadEndpoint, ep)
		}
		port = port*10 + int(c-'0')
		if port > 65535 {
			return fmt.Errorf("%w: %q: bad port", ErrBadEndpoint, ep)
		}
	}
	if port == 0 {
		return fmt.Errorf("%w: %q: port 0", ErrBadEndpoint, ep)
	}
	return nil
}

func cloneFrames(fs [][]byte) [][]byte {
	out := make([][]byte, len(fs))
	for i, f := range fs {
		out[i] = slices.Clone(f)
	}
	return out
}

// PeerInfo is what a node knows about one peer.
type PeerInfo struct {
	UUID     uuid.UUID
	Name     string
	Endpoint string
	Headers  []Header
	Groups   []string
	// Key is the peer's authenticated key in secure mode (zero in plain
	// mode); Bound reports UUID == UUIDFromKey(Key).
	Key   curve.PublicKey
	Bound bool
}

func (s *state) peerInfo(p *peer) PeerInfo {
	gs := make([]string, 0, len(p.groups))
	for g := range p.groups {
		gs = append(gs, g)
	}
	slices.Sort(gs)
	return PeerInfo{UUID: p.id, Name: p.name, Endpoint: p.endpoint, Headers: slices.Clone(p.headers), Groups: gs,
		Key: p.key, Bound: !p.key.IsZero() && IsBound(p.id, p.key)}
}
