package zgossip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/zmtp"
)

// Defaults of Config's zero fields.
const (
	// DefaultClientTimeout: a server forgets a client it heard nothing
	// from for this long. czmq's zgossip forgets them after 1 s, and its
	// clients do not ping, so they miss what is published after that; ours
	// ping (DefaultPingInterval).
	DefaultClientTimeout = 60 * time.Second
	// DefaultPingInterval: a client pings each server this often, so that
	// czmq servers (1 s) keep it among their clients and forward to it.
	DefaultPingInterval = 400 * time.Millisecond
	// DefaultMaxTuples bounds the tuples a Service holds.
	DefaultMaxTuples = 10000
)

// maxFrame bounds a ZGOSSIP message on our sockets.
const maxFrame = MaxValue + 512

// Config configures a Service. The zero value is a plain service.
type Config struct {
	// Public and Secret are our CURVE keypair. With them, a bound server
	// takes CURVE clients only (any client key: ZGOSSIP has no client
	// authentication, as czmq's, which sets no ZAP handler), and Connect
	// with a server key uses them. Without them, Connect with a server key
	// makes an ephemeral keypair.
	Public curve.PublicKey
	Secret curve.SecretKey

	ClientTimeout time.Duration // 0 = DefaultClientTimeout
	PingInterval  time.Duration // 0 = DefaultPingInterval
	MaxTuples     int           // 0 = DefaultMaxTuples; new keys past it are dropped
	Logger        *slog.Logger  // nil = none
}

// Tuple is a key and its value, as published.
type Tuple struct {
	Key, Value string
	TTL        uint32
}

// Stats counts what a Service did.
type Stats struct {
	Tuples    int    // held now
	Delivered uint64 // new or changed tuples delivered
	Dropped   uint64 // messages dropped: malformed, over MaxTuples, delivery queue full
	Invalid   uint64 // INVALID sent to clients
}

// ErrClosed is returned after Close.
var ErrClosed = errors.New("zgossip: service closed")

// Service is a ZGOSSIP server and client. New makes one; Bind and Connect
// may come in any order, as often as wanted; Close ends it. One goroutine
// owns its state; its methods may be called from any goroutine and never
// block on the network.
type Service struct {
	cfg        Config
	deliveries chan Tuple
	quit       chan struct{}
	done       chan struct{}

	mu struct {
		sync.Mutex
		ops    []func(*loopState)
		closed bool
		stats  Stats
	}
	wake   chan struct{}
	in     chan input     // from the router and the remotes
	relays sync.WaitGroup // the goroutines that read the sockets into in
}

// input is one message from a socket, or a disconnection (msg nil).
type input struct {
	router   bool
	identity string // router: the client
	remote   *remote
	frames   [][]byte
	gone     bool // the connection is over
}

type client struct {
	identity  []byte
	connected bool // said HELLO
	last      time.Time
	dump      int // the tuples of order from here on are still to send after HELLO; -1: none
}

type remote struct {
	endpoint string
	dealer   *zmtp.Dealer
	dump     int // as client.dump, for what we send after our HELLO
}

// loopState is what the loop goroutine owns.
type loopState struct {
	s       *Service
	router  *zmtp.Router
	tuples  map[string]Tuple
	frames  map[string][]byte // each tuple's PUBLISH, encoded once: every queue that sends it shares it
	order   []string          // keys in publication order: a new client gets them in this order
	clients map[string]*client
	remotes map[string]*remote
	queue   []Tuple // deliveries waiting for the consumer
}

// New makes a Service and starts its goroutine.
func New(cfg Config) *Service {
	if cfg.ClientTimeout <= 0 {
		cfg.ClientTimeout = DefaultClientTimeout
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.MaxTuples <= 0 {
		cfg.MaxTuples = DefaultMaxTuples
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if !cfg.Secret.IsZero() && cfg.Public.IsZero() {
		cfg.Public = cfg.Secret.Public()
	}
	s := &Service{
		cfg:        cfg,
		deliveries: make(chan Tuple),
		quit:       make(chan struct{}),
		done:       make(chan struct{}),
		wake:       make(chan struct{}, 1),
		in:         make(chan input, 256),
	}
	ls := &loopState{s: s, tuples: map[string]Tuple{}, frames: map[string][]byte{}, clients: map[string]*client{}, remotes: map[string]*remote{}}
	go s.loop(ls)
	return s
}

// Deliveries returns the channel of tuples that are new or changed (a
// tuple published here with Publish is delivered too, as czmq does). It is
// fed from a queue of at most MaxTuples; past that, deliveries are dropped
// and counted. It is closed by Close.
func (s *Service) Deliveries() <-chan Tuple { return s.deliveries }

// do queues op for the loop; it reports false after Close.
func (s *Service) do(op func(*loopState)) bool {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return false
	}
	s.mu.ops = append(s.mu.ops, op)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return true
}

// Bind binds the server to a TCP endpoint (tcp://host:port, or host:port;
// port 0 or * for an ephemeral one) and returns the address it is bound
// to. A service binds once.
func (s *Service) Bind(endpoint string) (net.Addr, error) {
	addr := strings.TrimPrefix(endpoint, "tcp://")
	if strings.HasSuffix(addr, ":*") {
		addr = strings.TrimSuffix(addr, "*") + "0"
	}
	opts := zmtp.Options{Logger: s.cfg.Logger, MaxMsgSize: maxFrame}
	if !s.cfg.Secret.IsZero() {
		opts.Mechanism = zmtp.CurveServer(zmtp.CurveServerConfig{Public: s.cfg.Public, Secret: s.cfg.Secret})
	}
	opts.OnDisconnect = func(p *zmtp.Peer) {
		select {
		case s.in <- input{router: true, identity: string(p.Identity), gone: true}:
		case <-s.quit:
		}
	}
	r, err := zmtp.ListenRouter("tcp", addr, opts)
	if err != nil {
		return nil, fmt.Errorf("zgossip: bind %s: %w", endpoint, err)
	}
	errc := make(chan error, 1)
	if !s.do(func(ls *loopState) {
		if ls.router != nil {
			errc <- fmt.Errorf("zgossip: bind %s: already bound to %s", endpoint, ls.router.Addr())
			return
		}
		ls.router = r
		s.relays.Add(1)
		go func() {
			defer s.relays.Done()
			for {
				m, err := r.Recv(context.Background())
				if err != nil {
					return
				}
				select {
				case s.in <- input{router: true, identity: string(m.Peer.Identity), frames: m.Frames}:
				case <-s.quit:
					return
				}
			}
		}()
		errc <- nil
	}) {
		r.Close()
		return nil, ErrClosed
	}
	select {
	case err := <-errc:
		if err != nil {
			r.Close()
			return nil, err
		}
	case <-s.done:
		r.Close()
		return nil, ErrClosed
	}
	return r.Addr(), nil
}

// Connect connects to a gossip server at endpoint (tcp://host:port) and
// keeps the connection (reconnecting) until Close: HELLO, then every tuple
// we hold, then every new one; the server's tuples come back. With a
// non-zero serverKey the connection is CURVE and authenticates the server.
// Connecting twice to one endpoint does nothing more.
func (s *Service) Connect(endpoint string, serverKey curve.PublicKey) error {
	addr, ok := strings.CutPrefix(endpoint, "tcp://")
	if !ok {
		return fmt.Errorf("zgossip: connect %q: want tcp://host:port", endpoint)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("zgossip: connect %q: %w", endpoint, err)
	}
	opts := zmtp.Options{Logger: s.cfg.Logger, MaxMsgSize: maxFrame}
	if !serverKey.IsZero() {
		pub, sec := s.cfg.Public, s.cfg.Secret
		if sec.IsZero() {
			var err error
			if pub, sec, err = curve.GenerateKeyPair(nil); err != nil {
				return fmt.Errorf("zgossip: connect %s: %w", endpoint, err)
			}
		}
		opts.Mechanism = zmtp.CurveClient(zmtp.CurveClientConfig{Public: pub, Secret: sec, ServerKey: serverKey})
	}
	rm := &remote{endpoint: endpoint, dump: -1}
	opts.OnDisconnect = func(*zmtp.Peer) {
		// czmq says HELLO again when a connection comes back: queued
		// now, it is the first thing on the next one.
		s.do(func(ls *loopState) {
			if ls.remotes[endpoint] == rm {
				ls.helloRemote(rm)
			}
		})
	}
	if !s.do(func(ls *loopState) {
		if ls.remotes[endpoint] != nil {
			return
		}
		d, err := zmtp.DialDealer("tcp", addr, opts)
		if err != nil {
			s.cfg.Logger.Warn("zgossip: connect failed", "endpoint", endpoint, "err", err)
			return
		}
		rm.dealer = d
		ls.remotes[endpoint] = rm
		ls.helloRemote(rm)
		s.relays.Add(1)
		go func() {
			defer s.relays.Done()
			for {
				m, err := d.Recv(context.Background())
				if err != nil {
					return
				}
				select {
				case s.in <- input{remote: rm, frames: m.Frames}:
				case <-s.quit:
					return
				}
			}
		}()
	}) {
		return ErrClosed
	}
	return nil
}

// Publish publishes a tuple: stored, delivered, and sent to every client
// and server, unless we hold it already with this value.
func (s *Service) Publish(key, value string) error {
	m := Msg{ID: MsgPublish, Key: key, Value: value}
	if _, err := m.Append(nil); err != nil {
		return err
	}
	if !s.do(func(ls *loopState) { ls.accept(Tuple{Key: key, Value: value}) }) {
		return ErrClosed
	}
	return nil
}

// Unpublish forgets a tuple here (czmq's UNPUBLISH): nothing goes on the
// wire (ZGOSSIP cannot withdraw a tuple), but the same tuple arriving again
// is new, so it is delivered again.
func (s *Service) Unpublish(key string) {
	s.do(func(ls *loopState) {
		if _, ok := ls.tuples[key]; ok {
			delete(ls.tuples, key)
			delete(ls.frames, key)
			i := slices.Index(ls.order, key)
			ls.order = slices.Delete(ls.order, i, i+1)
			// A dump under way past i goes on one earlier.
			for _, c := range ls.clients {
				if c.dump > i {
					c.dump--
				}
			}
			for _, r := range ls.remotes {
				if r.dump > i {
					r.dump--
				}
			}
			s.count(func(st *Stats) { st.Tuples = len(ls.tuples) })
		}
	})
}

// Tuples returns the tuples held, in publication order.
func (s *Service) Tuples() []Tuple {
	out := make(chan []Tuple, 1)
	if !s.do(func(ls *loopState) {
		ts := make([]Tuple, 0, len(ls.order))
		for _, k := range ls.order {
			ts = append(ts, ls.tuples[k])
		}
		out <- ts
	}) {
		return nil
	}
	select {
	case ts := <-out:
		return ts
	case <-s.done:
		return nil
	}
}

// Stats returns the counters.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.stats
}

func (s *Service) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.mu.stats)
	s.mu.Unlock()
}

// Close stops the service, closes its sockets and Deliveries, and returns
// when its goroutine has exited.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		<-s.done
		return nil
	}
	s.mu.closed = true
	s.mu.Unlock()
	close(s.quit)
	<-s.done
	s.relays.Wait()
	return nil
}

func (s *Service) loop(ls *loopState) {
	defer close(s.done)
	defer close(s.deliveries)
	defer ls.closeAll()
	tick := time.NewTicker(s.cfg.PingInterval)
	defer tick.Stop()
	for {
		var out chan<- Tuple
		var next Tuple
		if len(ls.queue) > 0 {
			out, next = s.deliveries, ls.queue[0]
		}
		select {
		case <-s.quit:
			return
		case <-s.wake:
			s.mu.Lock()
			ops := s.mu.ops
			s.mu.ops = nil
			s.mu.Unlock()
			for _, op := range ops {
				op(ls)
			}
		case in := <-s.in:
			ls.onInput(in, time.Now())
		case <-tick.C:
			ls.tick(time.Now())
		case out <- next:
			ls.queue = ls.queue[1:]
		}
	}
}

func (ls *loopState) closeAll() {
	if ls.router != nil {
		ls.router.Close()
	}
	for _, r := range ls.remotes {
		r.dealer.Close()
	}
}

func encode(m Msg) []byte {
	b, err := m.Append(nil)
	if err != nil {
		panic(err) // only our own, checked tuples are encoded
	}
	return b
}

// helloRemote queues HELLO and every tuple on a remote.
func (ls *loopState) helloRemote(r *remote) {
	r.dealer.Send(encode(Msg{ID: MsgHello}))
	r.dump = ls.dump(0, r.dealer.Send)
}

// dump queues the tuples of order from i on with send until its queue is
// full (zmtp's SendHWM), and returns where to go on (tick), or -1 when all
// are queued. The tuples after HELLO can be more than a socket queues;
// queued at once, those past the bound were dropped, and a node that came
// to a hub of more than 1000 never learnt of the rest. The frames are the
// table's, shared by every queue.
func (ls *loopState) dump(i int, send func(...[]byte) error) int {
	for ; i < len(ls.order); i++ {
		if err := send(ls.frames[ls.order[i]]); err != nil {
			if errors.Is(err, zmtp.ErrPeerNotResponding) {
				return i
			}
			return -1 // closed or gone: HELLO starts over
		}
	}
	return -1
}

// accept stores a tuple unless it is a duplicate, delivers it and
// forwards it to every client that said HELLO and every remote
// (server_accept in czmq).
func (ls *loopState) accept(t Tuple) {
	old, ok := ls.tuples[t.Key]
	if ok && old.Value == t.Value {
		return
	}
	if !ok && len(ls.tuples) >= ls.s.cfg.MaxTuples {
		ls.s.count(func(st *Stats) { st.Dropped++ })
		ls.s.cfg.Logger.Warn("zgossip: tuple dropped: table full", "key", t.Key, "max", ls.s.cfg.MaxTuples)
		return
	}
	frame := encode(Msg{ID: MsgPublish, Key: t.Key, Value: t.Value, TTL: t.TTL})
	ls.tuples[t.Key] = t
	ls.frames[t.Key] = frame
	if !ok {
		ls.order = append(ls.order, t.Key)
	}
	ls.s.count(func(st *Stats) { st.Tuples = len(ls.tuples) })
	if len(ls.queue) < ls.s.cfg.MaxTuples {
		ls.queue = append(ls.queue, t)
		ls.s.count(func(st *Stats) { st.Delivered++ })
	} else {
		ls.s.count(func(st *Stats) { st.Dropped++ })
	}
	if ls.router != nil {
		for _, c := range ls.sortedClients() {
			if c.connected {
				ls.router.Send(c.identity, frame)
			}
		}
	}
	for _, r := range ls.sortedRemotes() {
		r.dealer.Send(frame)
	}
}

func (ls *loopState) sortedClients() []*client {
	keys := make([]string, 0, len(ls.clients))
	for k := range ls.clients {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]*client, len(keys))
	for i, k := range keys {
		out[i] = ls.clients[k]
	}
	return out
}

func (ls *loopState) sortedRemotes() []*remote {
	keys := make([]string, 0, len(ls.remotes))
	for k := range ls.remotes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]*remote, len(keys))
	for i, k := range keys {
		out[i] = ls.remotes[k]
	}
	return out
}

// onInput handles one message from a client or a server, or a client's
// disconnection.
func (ls *loopState) onInput(in input, now time.Time) {
	log := ls.s.cfg.Logger
	if in.router && in.gone {
		delete(ls.clients, in.identity)
		return
	}
	var m Msg
	var err error
	if len(in.frames) != 1 {
		err = fmt.Errorf("%w: %d frames, want 1", ErrMalformed, len(in.frames))
	} else {
		m, err = Decode(in.frames[0])
	}
	if err != nil {
		ls.s.count(func(st *Stats) { st.Dropped++ })
		log.Debug("zgossip: message dropped", "err", err)
		if in.router {
			ls.touch(in.identity, now)
		}
		return
	}
	if !in.router {
		switch m.ID {
		case MsgPublish:
			ls.accept(Tuple{Key: m.Key, Value: m.Value, TTL: m.TTL})
		case MsgInvalid:
			in.remote.dealer.Send(encode(Msg{ID: MsgHello}))
		}
		return
	}
	// The server's side (zgossip.xml): start --HELLO--> connected, with
	// every tuple sent; PING gets PONG in every state; anything else is
	// INVALID and the client is forgotten.
	c := ls.touch(in.identity, now)
	switch {
	case m.ID == MsgPing:
		ls.router.Send(c.identity, encode(Msg{ID: MsgPong}))
	case !c.connected && m.ID == MsgHello:
		c.dump = ls.dump(0, func(f ...[]byte) error { return ls.router.Send(c.identity, f...) })
		c.connected = true
	case c.connected && m.ID == MsgPublish:
		ls.accept(Tuple{Key: m.Key, Value: m.Value, TTL: m.TTL})
	default:
		ls.s.count(func(st *Stats) { st.Invalid++ })
		log.Debug("zgossip: invalid message from client", "msg", m.ID, "hello", c.connected)
		ls.router.Send(c.identity, encode(Msg{ID: MsgInvalid}))
		delete(ls.clients, in.identity)
	}
}

// touch finds or makes a client and records activity.
func (ls *loopState) touch(identity string, now time.Time) *client {
	c := ls.clients[identity]
	if c == nil {
		c = &client{identity: []byte(identity), dump: -1}
		ls.clients[identity] = c
	}
	c.last = now
	return c
}

// tick pings every server and forgets silent clients.
func (ls *loopState) tick(now time.Time) {
	ping := encode(Msg{ID: MsgPing})
	for _, r := range ls.sortedRemotes() {
		if r.dump >= 0 {
			r.dump = ls.dump(r.dump, r.dealer.Send)
		}
		if r.dealer.Connected() {
			r.dealer.Send(ping)
		}
	}
	for _, c := range ls.sortedClients() {
		if c.dump >= 0 {
			c.dump = ls.dump(c.dump, func(f ...[]byte) error { return ls.router.Send(c.identity, f...) })
		}
	}
	for k, c := range ls.clients {
		if now.Sub(c.last) >= ls.s.cfg.ClientTimeout {
			delete(ls.clients, k)
		}
	}
}
