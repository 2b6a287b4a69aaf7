package zre

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/beacon"
	"github.com/zyre-go/zyre/internal/netlimit"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zgossip"
	"github.com/zyre-go/zyre/zmtp"
)

// Node is one ZRE node: a ROUTER inbox, one DEALER per peer, a UDP beacon,
// and the state that one goroutine owns. Make one with New, then Start it;
// always Close it. Its methods may be called from any goroutine; many nodes
// may run in one process.
//
// On the wire it behaves as the C reference (zyre_node.c): ZRE message
// version 2 (other versions are dropped), beacon version 1 (3 in secure
// mode: see SecureConfig and spec/secure-node.md), DEALER identity
// 0x01 + UUID (other identities are dropped), HELLO with sequence 1 and our
// endpoint, groups, status, name and headers. A peer's messages must come
// with consecutive sequence numbers (wrapping 65535 to 0): a gap means lost
// messages and the peer is dropped (Exit; Stats.SequenceGaps). A JOIN or
// LEAVE must carry the peer's previous status + 1; the C node aborts on a
// wrong one, we drop the peer (Stats.ProtocolErrors). A port-0 beacon or a
// GOODBYE removes the peer. Presence, checked every second: a peer we heard
// nothing from (beacon or message) for Config.Evasive gets one PING and an
// Evasive event; one whose beacons arrive but who sent no message for
// Config.Silent gets a Silent event; one silent for Config.Expired is
// removed. A peer whose beacons arrive but whose HELLO never did (lost
// with a connection that broke) is dropped after Config.Expired and
// dialled again on its next beacon (Stats.HelloTimeouts). Leader election
// (ELECT, LEADER) follows the C reference: see SetContest and election.go.
//
// Sending: Whisper, Shout and ShoutTo never wait: a peer whose queue
// (Config.SendHWM messages, or Config.SendQueueTime of data at the rate
// the peer's connection drains it) is full refuses with an error wrapping
// zmtp.ErrPeerNotResponding. WhisperContext, ShoutContext and
// ShoutToContext wait for room until their context is done: that is the
// node's back-pressure. None of them goes through the node's goroutine: the
// caller queues the message on the peer's connection itself, and the
// sequence numbers stay in order on the wire (a per-peer lock takes the
// number and queues the frames in one step). Content given to Whisper and
// the others is copied; WhisperOwned and ShoutOwned take it as it is.
//
// Reading: Peers, PeerInfos, PeersByGroup, PeerGroups, OwnGroups,
// PeerAddress, PeerHeader, PeerName and PeerKey read what the node's
// goroutine publishes as it changes (no round trip to it): a peer is there
// from before its Enter event is delivered until before its Exit event is.
//
// Content: the frames of a Whisper or Shout event are the receiver's; its
// Release hands those of 1 KiB to 4 MiB back to the node's inbox socket,
// which reads later messages into them (optional; content not released is
// collected as any memory; see Whisper.Release for what may not be used
// after it).
//
// Events: Events returns a buffered channel that the node's goroutine fills
// in batches from its queue, so the node never blocks on its consumer.
// What waits — in the channel and in the queue behind it — is bounded:
//   - Whisper, Shout, Evasive, Silent, Refused, Denied and KeyChanged events are
//     dropped (Stats.EventsDropped) when Config.EventQueue events wait, or
//     when they would take the waiting events past Config.EventBytes bytes
//     (content plus a fixed cost per event; one event larger than the
//     budget gets through when nothing waits);
//   - Enter, Exit, Join and Leave events may take the queue past those,
//     to twice Config.EventQueue events and EventBytes + 1/16 bytes; past
//     that they are dropped too (Stats.MembershipDropped) and one Overflow
//     event is queued in their place, after which the application re-reads
//     the peers and groups (always current: see above) and carries on;
//     the next Overflow comes once this one was received;
//   - a peer is in at most Config.MaxPeerGroups groups: its further JOINs
//     (in its HELLO too) are ignored (Stats.GroupsIgnored), so that one
//     peer cannot make the node hold unbounded membership;
//   - Stop is never dropped.
//
// So an application that never reads holds at most about EventBytes x
// 17/16 of events, whatever peers send.
type Node struct {
	cfg   Config
	stats counters
	st    *state
	now   func() time.Time

	cmds     chan func(*state)
	inbox    chan inboxMsg
	verdicts chan verdict // secure mode: checks of HELLOs run off the loop (checkOffLoop)
	// handshakes carries the outcome of our DEALERs' handshakes to the
	// loop in secure mode (onHandshake, denied.go); nil in plain mode.
	handshakes chan handshakeReport
	events     chan Event
	dir        *directory    // n.st.dir: what the API reads without the loop
	closing    atomic.Bool   // set by Close: sends fail with ErrClosed
	quit       chan struct{} // closed by Close
	loopDone   chan struct{} // closed when the loop exited

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		started, stopped, closed bool
	}
	closeOnce sync.Once

	// Set by Start, then read-only.
	router   *zmtp.Router
	beacon   *beacon.Service
	endpoint string

	sec *secure // nil in plain mode; see secure.go

	// linger bounds how long Stop waits for the GOODBYEs to be written
	// (stopLinger; tests may raise it).
	linger time.Duration

	net network // set by Start: tcpNet or attachedNet (transport.go)

	closedConns chan inboxClosed // the inbox's ended connections (exit.go)

	gossip     *zgossip.Service // set by Start in gossip mode (gossip.go)
	gossipAddr string
}

// New makes a node from a copy of cfg. It opens no socket; Start does.
func New(cfg Config) (*Node, error) {
	c, err := cfg.withDefaults()
	if err == nil {
		err = c.gossipNew() // gossip.go
	}
	if err == nil {
		err = c.checkAdvertise() // parity.go
	}
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg:      c,
		now:      time.Now,
		cmds:     make(chan func(*state)),
		inbox:    make(chan inboxMsg, 256),
		events:   make(chan Event, min(c.EventQueue, eventChanSize)),
		quit:     make(chan struct{}),
		loopDone: make(chan struct{}),
		linger:   stopLinger,

		closedConns: make(chan inboxClosed, 256),
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.st = newState(&n.cfg, "", n.dial, &n.stats)
	n.st.evq = n.events
	n.dir = n.st.dir
	n.st.inboxConnected = n.inboxHas   // exit.go
	n.st.admitInbound = n.admitInbound // admitted.go
	if c.Secure != nil {
		sec, err := newSecure(c.Secure)
		if err != nil {
			return nil, err
		}
		sec.dial = n.dialKey
		sec.disconnect = n.disconnectInbound
		n.sec = sec
		n.st.setSecure(sec) // admit.go
		n.verdicts = make(chan verdict)
		n.handshakes = make(chan handshakeReport, 64)
		n.st.checkOffLoop = n.checkOffLoop
		n.st.baseCtx = n.ctx
		if sec.trust != nil {
			n.st.own.add(trust.Group) // the reserved group of trust statements
		}
	}
	n.dir.setOwn(n.st.own.list())
	return n, nil
}

// loopBatch is how many more inbox messages the loop takes after one
// without going back to its select.
const loopBatch = 63

// eventChanSize is the capacity of the events channel; the rest of
// Config.EventQueue waits in the loop's queue (a channel of 10 000 would
// cost 160 KiB per node, too much for a simulation of thousands).
const eventChanSize = 256

// dial opens the DEALER to a peer in plain mode.
func (n *Node) dial(endpoint string) (link, error) { return n.dialKey(endpoint, curve.PublicKey{}) }

// dialKey opens the DEALER to a peer; in secure mode it is a CURVE client
// that authenticates the peer's inbox by key.
func (n *Node) dialKey(endpoint string, key curve.PublicKey) (link, error) {
	if n.sec != nil && key.IsZero() {
		return nil, fmt.Errorf("zre: dial %s: %w", endpoint, ErrNoKey)
	}
	return n.net.dial(endpoint, key)
}

// Start binds the inbox, starts the beacon and the node's goroutines. ctx
// bounds the start only; the node runs until Stop or Close.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.closed {
		return ErrClosed
	}
	if n.mu.started {
		return errors.New("zre: node already started")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if n.cfg.transport() != nil {
		return n.startAttached() // transport.go
	}
	ln, err := net.Listen("tcp", n.cfg.bindAddr())
	if err != nil {
		return fmt.Errorf("zre: failed to bind inbox: %w", err)
	}
	lim := n.cfg.Limits
	inbox := netlimit.New(ln, netlimit.Config{
		MaxConns: lim.MaxConns, MaxConnsPerAddr: lim.MaxConnsPerAddr, Rate: lim.ConnRate, Burst: lim.ConnBurst,
	})
	n.stats.inbox.Store(inbox)
	ropts := n.routerOptions()
	ropts.OnDisconnect = n.inboxDisconnected // exit.go
	r := zmtp.NewRouter(inbox, ropts)
	n.stats.router.Store(r)
	var b *beacon.Service
	if !n.cfg.Beacon.Disabled {
		b, err = beacon.New(beacon.Config{
			Port:      n.cfg.Beacon.Port,
			Interval:  n.cfg.Beacon.Interval,
			Interface: n.cfg.Beacon.Interface,
			Loopback:  n.cfg.Beacon.Loopback,
			Logger:    n.cfg.Logger,
		})
		if err == nil {
			err = b.Start(n.ctx)
		}
		if err != nil {
			r.Close()
			return fmt.Errorf("zre: failed to start beacon: %w", err)
		}
	}
	tcp, _ := r.Addr().(*net.TCPAddr)
	if tcp == nil || tcp.Port <= 0 || tcp.Port > 65535 {
		r.Close()
		if b != nil {
			b.Close()
		}
		return fmt.Errorf("zre: inbox bound to %v: not a TCP address", r.Addr())
	}
	host := n.cfg.Advertise
	if n.cfg.advertisedEndpoint() != "" {
		host = "" // a whole endpoint (parity.go), set below
	}
	if host == "" {
		ip, _ := netip.AddrFromSlice(tcp.IP)
		ip = ip.Unmap()
		switch {
		case ip.IsValid() && !ip.IsUnspecified():
			host = ip.String()
		case b != nil:
			host = b.Addr().String()
		default:
			host = n.hostWithoutBeacon() // gossip.go
		}
	}
	n.router, n.beacon = r, b
	n.net = tcpNet{n}
	n.endpoint = "tcp://" + net.JoinHostPort(host, strconv.Itoa(tcp.Port))
	if ep := n.cfg.advertisedEndpoint(); ep != "" {
		n.endpoint = ep // parity.go
	}
	n.st.endpoint = n.endpoint
	if err := n.startGossip(); err != nil { // gossip.go
		r.Close()
		if b != nil {
			b.Close()
		}
		return err
	}
	if n.sec != nil && n.sec.trust != nil {
		n.st.trustTick() // the store's pins, before the first beacon
	}
	if b != nil {
		bc := n.beaconFor(uint16(tcp.Port))
		b.Publish(bc.AppendMarshal(nil))
	}
	n.mu.started = true
	n.wg.Add(1)
	go n.loop()
	n.cfg.Logger.Debug("zre: node started", "node", n.cfg.Name, "uuid", uuidString(n.cfg.UUID), "endpoint", n.endpoint)
	return nil
}

// routerInbox is a message of the inbox ROUTER as the state takes it.
func routerInbox(m zmtp.Message) inboxMsg {
	in := inboxMsg{frames: m.Frames}
	if m.Peer != nil {
		in.identity = m.Peer.Identity
		in.publicKey = m.Peer.PublicKey
		in.addr = m.Peer.RemoteAddr
	}
	return in
}

// onRouted hands one message of the inbox ROUTER to the state, and gives
// the Whisper or Shout event that took its content the message itself, so
// that the receiver's Release (Whisper.Release, Shout.Release) hands its
// pooled buffers back to the ROUTER.
//
// Who owns what: Decode's Content aliases the message's frames (frames[1:])
// and the event takes Content as it is, without a copy; the node keeps no
// other reference to a frame once onMessage returned, except for a message
// held for a verdict (secure mode) or taken by the trust protocol, which
// makes no event here and is never released (collected as before). So the
// event whose Content is this message's frames[1:], if any, is the one
// owner left: only its Release gives the buffers back, and the node itself
// never releases a message.
func onRouted(st *state, m zmtp.Message, now time.Time) {
	k := len(st.events) // onMessage only appends (flushEvents runs in loop)
	in := routerInbox(m)
	st.onMessage(in, now)
	if len(in.frames) < 2 {
		return
	}
	own := &in.frames[1]
	for _, e := range st.events[min(k, len(st.events)):] {
		switch e := e.(type) {
		case *Whisper:
			if len(e.Content) > 0 && &e.Content[0] == own {
				e.msg = m
				return
			}
		case *Shout:
			if len(e.Content) > 0 && &e.Content[0] == own {
				e.msg = m
				return
			}
		}
	}
}

// loop is the goroutine that owns the state.
func (n *Node) loop() {
	defer n.wg.Done()
	defer close(n.loopDone)
	defer close(n.events)
	packets := n.net.beacons()
	var reports <-chan Event
	if n.sec != nil {
		reports = n.sec.reports
	}
	// The inbox ROUTER's messages are taken here, in the loop's select: a
	// goroutine between them cost a hand-off (often a thread wake-up) per
	// message. A transport's come through n.inbox (attachedNet.read).
	var routed <-chan zmtp.Message
	if n.router != nil {
		routed = n.router.Messages()
	}
	gossipIn := n.gossipDeliveries() // gossip.go
	reap := time.NewTicker(reapInterval)
	defer reap.Stop()
	st := n.st
	for {
		// Events go into the channel in batches, after each thing handled:
		// no hand-off per event while the consumer keeps up.
		st.flushEvents()
		if st.stopped && len(st.events) == 0 {
			return
		}
		var out chan<- Event
		var next Event
		if len(st.events) > 0 {
			out, next = n.events, st.events[0]
		}
		select {
		case f := <-n.cmds:
			f(st)
		case pkt, ok := <-packets:
			if !ok {
				packets = nil
				continue
			}
			st.onBeacon(pkt.Payload, pkt.From, n.now())
		case m := <-routed:
			now := n.now()
			onRouted(st, m, now)
			// More messages are often waiting: take them without a
			// select over every source (its locks cost more than the
			// message), a bounded batch so that the rest gets its turn.
			for range loopBatch {
				select {
				case m = <-routed:
					onRouted(st, m, now)
					continue
				default:
				}
				break
			}
		case in := <-n.inbox:
			now := n.now()
			st.onMessage(in, now)
			for range loopBatch {
				select {
				case in = <-n.inbox:
					st.onMessage(in, now)
					continue
				default:
				}
				break
			}
		case v := <-n.verdicts:
			st.onVerdict(v, n.now())
		case r := <-n.handshakes:
			st.onHandshakeReport(r) // denied.go
		case e := <-reports:
			if !st.stopped {
				st.clock = n.now()
				st.note(e)
			}
		case c := <-n.closedConns:
			// What the connection delivered before it closed is queued
			// on routed already (the ROUTER reports a close after the
			// last message): take it first, or the close (with a port-0
			// beacon: the peer stopped) removes the peer and its last
			// messages are dropped as coming from a stranger.
			now := n.now()
			takeRouted(st, routed, now)
			st.onInboxClosed(c, now) // exit.go
		case t, ok := <-gossipIn:
			if !ok {
				gossipIn = nil
				continue
			}
			st.onGossip(t, n.now())
		case <-reap.C:
			// reap may remove a peer that stopped (exit.go): its last
			// messages first, as for closedConns.
			now := n.now()
			takeRouted(st, routed, now)
			st.reap(now)
		case out <- next:
			st.pushedHead()
		case <-n.quit:
			return
		}
	}
}

// takeRouted handles the messages queued on routed when it is called,
// and no more (bounded: the ROUTER may keep adding). Called on the loop
// goroutine before what may remove a peer, so that what the peer sent
// before it closed its connection is not overtaken by the close.
func takeRouted(st *state, routed <-chan zmtp.Message, now time.Time) {
	for range len(routed) {
		onRouted(st, <-routed, now)
	}
}

// do runs f on the state: directly before Start, in the loop after.
func (n *Node) do(f func(*state)) error {
	n.mu.Lock()
	if n.mu.closed {
		n.mu.Unlock()
		return ErrClosed
	}
	if !n.mu.started {
		defer n.mu.Unlock()
		f(n.st)
		return nil
	}
	n.mu.Unlock()
	done := make(chan struct{})
	select {
	case n.cmds <- func(st *state) { f(st); close(done) }:
	case <-n.loopDone:
		return ErrClosed
	}
	<-done
	return nil
}

// Stop says goodbye and stops the node: a GOODBYE to every peer that
// understands it (see HeaderGoodbye), a port-0 beacon (peers remove us at
// once), then every socket is closed. Before
// closing a connected peer's link, Stop waits until what was queued on it
// (earlier whispers and shouts, then the GOODBYE) has been written to the
// socket, for at most a couple of seconds (stopLinger) and never past ctx;
// links still connecting are closed at once. The Stop event is the last
// event; Events is closed after it was delivered. Call Close afterwards.
func (n *Node) Stop(ctx context.Context) error {
	n.mu.Lock()
	if n.mu.closed {
		n.mu.Unlock()
		return ErrClosed
	}
	if !n.mu.started {
		n.mu.Unlock()
		return ErrNotStarted
	}
	if n.mu.stopped {
		n.mu.Unlock()
		return nil
	}
	n.mu.stopped = true
	n.mu.Unlock()

	var links []link
	var pending []*peer
	if err := n.do(func(st *state) { links, pending = st.stop(), st.stopPending }); err != nil {
		return err
	}
	if len(pending) > 0 {
		lctx, cancel := context.WithTimeout(ctx, n.linger)
		for _, p := range pending {
			p.flushPending(lctx)
		}
		cancel()
	}
	n.net.stop(ctx, n.linger, links) // transport.go
	return nil
}

// stopLinger is the most Stop waits for queued GOODBYEs to be written
// (ZMQ_LINGER's role).
const stopLinger = 2 * time.Second

// flushLinks waits, at most max and never past ctx, until every connected
// link that can flush (a zmtp.Dealer) has written what was queued on it.
// The links flush in parallel.
func flushLinks(ctx context.Context, max time.Duration, links []link) {
	type flusher interface {
		Flush(context.Context) error
		Connected() bool
	}
	ctx, cancel := context.WithTimeout(ctx, max)
	defer cancel()
	var wg sync.WaitGroup
	for _, l := range links {
		f, ok := l.(flusher)
		if !ok || !f.Connected() {
			continue
		}
		wg.Go(func() { _ = f.Flush(ctx) })
	}
	wg.Wait()
}

// disconnectInbound closes the connection into our inbox whose ZMTP
// identity is identity, if there is one; it reports whether there was
// (secure.disconnect: revocations). Set by Start, n.net is read-only
// afterwards.
func (n *Node) disconnectInbound(identity []byte) bool {
	if n.net == nil {
		return false
	}
	return n.net.disconnect(identity)
}

// waitUntil polls cond until it holds, ctx is done or max passed.
func waitUntil(ctx context.Context, max time.Duration, cond func() bool) {
	deadline := time.NewTimer(max)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-tick.C:
		}
	}
}

// Close stops the node without a goodbye (peers notice by expiry) unless
// Stop was called, discards undelivered events, closes Events and returns
// when every goroutine of the node has exited. It is safe to call more than
// once.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.closing.Store(true)
		n.mu.Lock()
		n.mu.closed = true
		started := n.mu.started
		n.mu.Unlock()
		close(n.quit)
		if !started {
			close(n.events)
			n.cancel()
			return
		}
		<-n.loopDone
		n.st.closeLinks()
		n.net.close() // transport.go
		n.cancel()
	})
	n.wg.Wait()
	if n.sec != nil && n.sec.trust != nil {
		// The store writes on its own goroutine: finish before returning.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		n.sec.trust.store.Flush(ctx)
		cancel()
	}
	return nil
}

// Events returns the channel of events; see Node for the slow-consumer
// policy. It is closed after Stop (following the Stop event) or Close.
func (n *Node) Events() <-chan Event { return n.events }

// UUID returns the node's UUID.
func (n *Node) UUID() uuid.UUID { return n.cfg.UUID }

// Name returns the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Endpoint returns our inbox as peers reach it (tcp://host:port), or ""
// before Start.
func (n *Node) Endpoint() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.endpoint
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats { return n.stats.snapshot() }

// Join joins a group (1 to 255 octets) and tells every peer; joining a
// group we are in does nothing. Before Start, the group goes into our HELLO.
func (n *Node) Join(group string) error {
	var err error
	if derr := n.do(func(st *state) { err = st.join(group) }); derr != nil {
		return derr
	}
	return err
}

// Leave leaves a group and tells every peer.
func (n *Node) Leave(group string) error {
	var err error
	if derr := n.do(func(st *state) { err = st.leave(group) }); derr != nil {
		return derr
	}
	return err
}

// Whisper sends content (one frame per argument) to one peer without
// waiting: it returns an error wrapping ErrUnknownPeer for a peer that has
// not said HELLO (or is gone), one wrapping zmtp.ErrPeerNotResponding when
// the peer's queue is full, and ErrClosed after Close. The content is
// copied. It may be called from any goroutine, including while handling
// an event.
func (n *Node) Whisper(peer uuid.UUID, content ...[]byte) error {
	if n.closing.Load() {
		return ErrClosed
	}
	return n.dir.whisper(nil, &n.stats, peer, cloneFrames(content))
}

// WhisperContext is Whisper that waits, until ctx is done, for room in the
// peer's queue. Its error wraps ErrUnknownPeer, ErrClosed, or (when ctx
// ended first) both zmtp.ErrPeerNotResponding and ctx.Err(). The content
// is copied. Senders to one peer that wait are served in turn; a Whisper
// to that peer meanwhile fails at once (the queue is full).
func (n *Node) WhisperContext(ctx context.Context, peer uuid.UUID, content ...[]byte) error {
	return n.WhisperOwned(ctx, peer, cloneFrames(content)...)
}

// WhisperOwned is WhisperContext without the copy: the node takes the
// frames as they are and may still read them after it returned (until
// they are written to the socket), so the caller must not change them
// afterwards, whatever the result. For large payloads the caller does not
// reuse.
func (n *Node) WhisperOwned(ctx context.Context, peer uuid.UUID, content ...[]byte) error {
	if n.closing.Load() {
		return ErrClosed
	}
	if err := n.dir.whisper(ctx, &n.stats, peer, content); err != nil {
		return n.closedErr(err)
	}
	return nil
}

// closedErr is err, or ErrClosed when the node was closed meanwhile.
func (n *Node) closedErr(err error) error {
	if n.closing.Load() && !errors.Is(err, ErrClosed) {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return err
}

// Shout sends content to every peer in a group without waiting. Peers
// that cannot take it are skipped, and a *ShoutError names them (it wraps
// the first of their errors). The content is copied.
func (n *Node) Shout(group string, content ...[]byte) error {
	if n.closing.Load() {
		return ErrClosed
	}
	return n.dir.shout(nil, &n.stats, group, nil, cloneFrames(content))
}

// ShoutContext sends content to every peer in the group at the call,
// waiting until each took it or ctx is done: it first gives it to every
// peer with room, then waits for the others. A *ShoutError names the
// peers that did not take it (errors.Is(err, zmtp.ErrPeerNotResponding)
// and errors.Is(err, ctx.Err()) for those still full when ctx ended); to
// give it to them later, use ShoutToContext with ShoutError.Peers. The
// content is copied.
func (n *Node) ShoutContext(ctx context.Context, group string, content ...[]byte) error {
	return n.ShoutOwned(ctx, group, cloneFrames(content)...)
}

// ShoutOwned is ShoutContext without the copy; see WhisperOwned for the
// ownership of content (every peer's queue shares the same frames).
func (n *Node) ShoutOwned(ctx context.Context, group string, content ...[]byte) error {
	if n.closing.Load() {
		return ErrClosed
	}
	if err := n.dir.shout(ctx, &n.stats, group, nil, content); err != nil {
		return n.closedErr(err)
	}
	return nil
}

// ShoutTo sends content as a SHOUT to the group to those of peers that are
// in it, without waiting: to retry a Shout whose *ShoutError named peers
// that could not take it, without a second copy for the others. (On the
// wire it is the SHOUT those peers would have had.) The content is copied.
func (n *Node) ShoutTo(group string, peers []uuid.UUID, content ...[]byte) error {
	if n.closing.Load() {
		return ErrClosed
	}
	if peers == nil {
		peers = []uuid.UUID{}
	}
	return n.dir.shout(nil, &n.stats, group, peers, cloneFrames(content))
}

// ShoutToContext is ShoutTo that waits, as ShoutContext does, until those
// peers took it or ctx is done.
func (n *Node) ShoutToContext(ctx context.Context, group string, peers []uuid.UUID, content ...[]byte) error {
	return n.ShoutToOwned(ctx, group, peers, cloneFrames(content)...)
}

// ShoutToOwned is ShoutToContext without the copy; see WhisperOwned for
// the ownership of content (the peers' queues share the same frames).
func (n *Node) ShoutToOwned(ctx context.Context, group string, peers []uuid.UUID, content ...[]byte) error {
	if n.closing.Load() {
		return ErrClosed
	}
	if peers == nil {
		peers = []uuid.UUID{}
	}
	if err := n.dir.shout(ctx, &n.stats, group, peers, content); err != nil {
		return n.closedErr(err)
	}
	return nil
}

// ConnectPeer connects to a node's inbox at endpoint (tcp://host:port)
// without a beacon, as the C reference's require_peer: we say HELLO, the
// peer connects back and says HELLO, and an Enter event follows. expect is
// the peer's UUID when known (uuid.Nil otherwise: its HELLO tells it).
// Without expect, the peer's HELLO must advertise exactly endpoint (as a
// node bound to one address does) for us to match it to this connection;
// otherwise pass its UUID. A peer connected this way stays as long as it
// answers our PINGs. A secure node needs the peer's key: use
// ConnectPeerKey (ConnectPeer returns an error wrapping ErrNoKey).
func (n *Node) ConnectPeer(ctx context.Context, endpoint string, expect uuid.UUID) error {
	if n.sec != nil {
		return fmt.Errorf("zre: connect to %s: secure mode needs the peer's key (ConnectPeerKey): %w", endpoint, ErrNoKey)
	}
	return n.connectPeer(ctx, endpoint, expect, curve.PublicKey{})
}

func (n *Node) connectPeer(ctx context.Context, endpoint string, expect uuid.UUID, key curve.PublicKey) error {
	if err := checkEndpoint(endpoint); err != nil {
		return err
	}
	n.mu.Lock()
	started := n.mu.started
	n.mu.Unlock()
	if !started {
		return ErrNotStarted
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var err error
	if derr := n.do(func(st *state) { err = st.connectPeerKey(expect, endpoint, key, n.now()) }); derr != nil {
		return derr
	}
	return err
}

// Peers returns the UUIDs of the peers that said HELLO, in UUID order.
func (n *Node) Peers() []uuid.UUID { return nilIfEmpty(n.dir.ids()) }

// PeerInfos returns what we know of every peer that said HELLO, in UUID
// order.
func (n *Node) PeerInfos() []PeerInfo { return nilIfEmpty(n.dir.infos()) }

// PeersByGroup returns the UUIDs of the peers in a group, in UUID order.
func (n *Node) PeersByGroup(group string) []uuid.UUID { return nilIfEmpty(n.dir.groupIDs(group)) }

// OwnGroups returns the groups we are in, in the order we joined them.
func (n *Node) OwnGroups() []string { return nilIfEmpty(n.dir.ownGroups()) }

// PeerGroups returns the groups our peers are in, sorted.
func (n *Node) PeerGroups() []string { return nilIfEmpty(n.dir.groupNames()) }

// PeerAddress returns the endpoint we connect to for a peer, or "".
func (n *Node) PeerAddress(peer uuid.UUID) string {
	info, _ := n.dir.info(peer)
	return info.Endpoint
}

// PeerHeader returns the value of a header from a peer's HELLO.
func (n *Node) PeerHeader(peer uuid.UUID, key string) (string, bool) {
	info, _ := n.dir.info(peer)
	for _, h := range info.Headers {
		if h.Key == key {
			return h.Value, true
		}
	}
	return "", false
}

// PeerName returns a peer's name from its HELLO, or "".
func (n *Node) PeerName(peer uuid.UUID) string {
	info, _ := n.dir.info(peer)
	return info.Name
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}
