package zyregroup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/privgroup"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

// WhisperPrefix is the first frame of the WHISPERs of private groups:
// reserved, and versioned (a later wire version takes "zyre-privgroup/2").
// A sender key travels as WhisperPrefix, the group name, the sender-key
// record and one octet naming the suites its maker opens at full speed
// (bit n: suite n; a key without it names none); WhisperPrefix and the
// group name alone are a key request (the sender answers a trusted member
// of the group with its current key).
const WhisperPrefix = "zyre-privgroup/1"

// requestInterval is the least time between two key requests to one peer,
// and between two answers to one peer.
const requestInterval = time.Second

// Defaults of Options.
const (
	DefaultQueueRecords    = 8192
	DefaultQueueBytes      = 32 << 20
	DefaultRecheckInterval = time.Second
	DefaultSendTimeout     = 10 * time.Second
)

// Errors. Every error of this package wraps one of these or an error of
// privgroup, zre or trust.
var (
	// ErrInvalidOptions: bad arguments to Attach.
	ErrInvalidOptions = errors.New("zyregroup: invalid options")
	// ErrClosed: the Group (or the Reader) was closed.
	ErrClosed = errors.New("zyregroup: closed")
	// ErrBusy: a Writer of this Group, or a Reader of that sender, is open.
	ErrBusy = errors.New("zyregroup: already open")
	// ErrNoKey: no authenticated key is known for a peer.
	ErrNoKey = errors.New("zyregroup: no key for peer")
	// ErrUntrusted: the peer's key is not trusted.
	ErrUntrusted = errors.New("zyregroup: peer not trusted")
)

// Node is what a Group needs of a node; *zre.Node implements it. PeerKey
// returns the key a peer authenticated with (false in plain mode).
// Whisper, Shout and ShoutTo never wait: a peer whose queue is full does
// not take the content (zmtp.ErrPeerNotResponding; Shout and ShoutTo name
// such peers in a *zre.ShoutError with each peer's error). WhisperContext
// and ShoutToContext wait, until ctx ends, for the peer's queue to take
// it. PeersByGroup reads a snapshot: it must not wait for the node's
// goroutine.
type Node interface {
	UUID() uuid.UUID
	Join(group string) error
	Leave(group string) error
	Whisper(peer uuid.UUID, content ...[]byte) error
	WhisperContext(ctx context.Context, peer uuid.UUID, content ...[]byte) error
	Shout(group string, content ...[]byte) error
	ShoutTo(group string, peers []uuid.UUID, content ...[]byte) error
	ShoutToContext(ctx context.Context, group string, peers []uuid.UUID, content ...[]byte) error
	PeersByGroup(group string) []uuid.UUID
	PeerKey(peer uuid.UUID) (curve.PublicKey, bool)
	Secure() bool
	PublicKey() curve.PublicKey
}

var _ Node = (*zre.Node)(nil)

// Options configure a Group. Secret and a trust decision (Trusted or
// Trust) are required. The callbacks Trusted, PeerKey and FastSuite run on
// the Group's goroutine: they must be quick and may call no method of the
// Group but Recheck.
type Options struct {
	// Secret is our long-term CURVE secret key: the node's own in secure
	// mode (checked against Node.PublicKey). It seals our sender keys to
	// members and opens theirs. The Group keeps copies.
	Secret curve.SecretKey

	// Trusted decides whether a peer, authenticated with key, may hold our
	// sender key and give us its own. It is asked when a member joins,
	// when a key arrives, before waiting for a member and at every
	// recheck.
	Trusted func(peer uuid.UUID, key curve.PublicKey) bool
	// Trust is the trust store used when Trusted is nil: a key is trusted
	// when its record is verified or introduced (or tofu with TrustTOFU),
	// and never when revoked.
	Trust     *trust.Store
	TrustTOFU bool

	// PeerKey returns a peer's authenticated long-term key. Default: in
	// secure mode the node's PeerKey. A plain node needs PeerKey: keys
	// learnt out of band (the inner boxes then carry the whole
	// protection; see the spec).
	PeerKey func(peer uuid.UUID) (curve.PublicKey, bool)

	// Crypto configures the privgroup Sender and Receiver. Its Suite
	// SuiteAuto means privgroup.PreferredSuite(ChunkSize).
	Crypto privgroup.Options
	// ChunkSize is the Writer's chunk size (privgroup.DefaultChunkSize
	// when 0).
	ChunkSize int

	// QueueRecords and QueueBytes bound the records kept per sender until
	// its Reader takes them; more are dropped (Stats.QueueDropped), which
	// the Reader reports as a gap.
	QueueRecords, QueueBytes int
	// RecheckInterval is how often the trust of members and senders is
	// checked again. Call Recheck for an immediate check.
	RecheckInterval time.Duration
	// SendTimeout bounds how long what a member's full queue refused
	// waits for it: the Writer waits for its members rather than dropping
	// data, but a member that took nothing for longer is given up
	// (Stats.Undelivered) and no longer waited for.
	SendTimeout time.Duration

	// OnOpaque, if set, is called by Handle, on its caller's goroutine
	// after the Group acted on the event, with every record of the group
	// that we hold no key for. It must not keep rec.
	OnOpaque func(peer uuid.UUID, rec []byte)

	// FastSuite says which suites this member opens at full speed; it tells
	// every sender so (default: privgroup.Suite.Fast). A sender whose suite
	// is automatic uses suite 2 only while every member that said so opens
	// it fast, and switches at once, by a rotation, when one does not.
	FastSuite func(privgroup.Suite) bool

	// Logger receives the Group's logs; nil means none.
	Logger *slog.Logger

	// preferredSuite replaces privgroup.PreferredSuite, and betweenWrites
	// runs between the chunk-sized pieces of one Write (tests).
	preferredSuite func(chunk int) privgroup.Suite
	betweenWrites  func()
}

// Stats counts what a Group did.
type Stats struct {
	KeysSent     uint64 // sender keys whispered to members
	KeysReceived uint64 // sender keys accepted
	KeysRefused  uint64 // sender keys refused (untrusted, not for us, forged ...)
	Passed       uint64 // members passed over: untrusted or without a key
	KeyRequests  uint64 // key requests sent (a record of a group member whose key we lack)
	Rotations    uint64 // epochs started because a member left or on policy
	Records      uint64 // records of known senders queued for their Reader
	Relayed      uint64 // records under a known sender's key shouted by another peer, dropped
	Opaque       uint64 // records of the group we hold no key for
	Malformed    uint64 // SHOUTs or WHISPERs of ours that did not parse
	QueueDropped uint64 // records dropped because a sender's queue was full
	SendRetries  uint64 // sends that waited for a member's full queue (each once)
	// Undelivered: keys and records that waited for a member's full
	// queue and were given up, after SendTimeout or at Close.
	Undelivered uint64
}

// Group is a private group bound to a node. Its methods are safe for
// concurrent use. One goroutine owns its state; the methods hand it work
// and wait for it, and it never waits for a peer.
type Group struct {
	node    Node
	group   string
	self    uuid.UUID
	opts    Options
	log     *slog.Logger
	trusted func(uuid.UUID, curve.PublicKey) bool
	peerKey func(uuid.UUID) (curve.PublicKey, bool)

	calls   chan call
	results chan sent // the senders' reports
	wake    chan struct{}
	recheck atomic.Bool // Recheck was called
	done    chan struct{}
	exited  chan struct{}
	once    sync.Once
	pool    sync.Pool       // of the calls' done channels
	ctx     context.Context // the senders'; cancelled at Close
	cancel  context.CancelFunc

	// Owned by the Group's goroutine (and read by anyone after exited).
	st      Stats
	closing bool
	send    sending
	rcv     receiving
}

type call struct {
	f    func()
	done chan struct{}
}

// Attach binds a private group to node: it makes our sender key, joins the
// ZRE group and gives the key to each trusted member already there. The
// application must then pass every event of node to Handle. Close undoes
// it (and leaves the ZRE group).
func Attach(node Node, group string, opts Options) (*Group, error) {
	fail := func(format string, args ...any) (*Group, error) {
		return nil, fmt.Errorf("zyregroup: attach %q: "+format, append([]any{group}, args...)...)
	}
	switch {
	case node == nil:
		return fail("%w: nil node", ErrInvalidOptions)
	case opts.Secret.IsZero():
		return fail("%w: no secret key", ErrInvalidOptions)
	case node.Secure() && !opts.Secret.Public().Equal(node.PublicKey()):
		return fail("%w: the secret key is not the node's", ErrInvalidOptions)
	}
	g := &Group{node: node, group: group, self: node.UUID(), opts: opts, log: opts.Logger,
		calls: make(chan call), results: make(chan sent), wake: make(chan struct{}, 1),
		done: make(chan struct{}), exited: make(chan struct{})}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	o := &g.opts
	o.QueueRecords = cmp(o.QueueRecords, DefaultQueueRecords)
	o.QueueBytes = cmp(o.QueueBytes, DefaultQueueBytes)
	o.RecheckInterval = cmp(o.RecheckInterval, DefaultRecheckInterval)
	o.SendTimeout = cmp(o.SendTimeout, DefaultSendTimeout)
	o.ChunkSize = cmp(o.ChunkSize, privgroup.DefaultChunkSize)
	switch {
	case opts.Trusted != nil:
		g.trusted = opts.Trusted
	case opts.Trust != nil:
		g.trusted = storeTrusted(opts.Trust, opts.TrustTOFU)
	default:
		return fail("%w: no trust decision (Trusted or Trust)", ErrInvalidOptions)
	}
	switch {
	case opts.PeerKey != nil:
		g.peerKey = opts.PeerKey
	case node.Secure():
		g.peerKey = node.PeerKey
	default:
		return fail("%w: a plain node needs Options.PeerKey", ErrInvalidOptions)
	}
	if err := g.send.init(g, opts); err != nil {
		return fail("%w", err)
	}
	if err := g.rcv.init(g, opts); err != nil {
		g.send.s.Close()
		return fail("%w", err)
	}
	if err := node.Join(group); err != nil {
		g.send.s.Close()
		g.rcv.r.Close()
		return fail("%w", err)
	}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	for _, p := range node.PeersByGroup(group) {
		g.giveKey(p)
	}
	go g.run()
	return g, nil
}

// cmp is v, or def when v is not positive.
func cmp[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// storeTrusted is the default trust decision from a trust store.
func storeTrusted(st *trust.Store, tofu bool) func(uuid.UUID, curve.PublicKey) bool {
	return func(peer uuid.UUID, key curve.PublicKey) bool {
		rec, ok, err := st.Lookup(key)
		if err != nil || !ok || (rec.UUID != uuid.Nil && rec.UUID != peer) {
			return false
		}
		switch rec.State {
		case trust.StateVerified, trust.StateIntroduced:
			return true
		case trust.StateTOFU:
			return tofu
		}
		return false
	}
}

// run is the Group's goroutine: it runs the calls, takes the senders'
// reports, shouts batch records when due, rotates on the policy and
// rechecks trust, until Close. The batch timer runs only while messages
// wait for a batch record, so an idle group wakes once a RecheckInterval.
func (g *Group) run() {
	defer close(g.exited)
	recheck := time.NewTicker(g.opts.RecheckInterval)
	defer recheck.Stop()
	for {
		var batch <-chan time.Time
		if g.send.armed {
			batch = g.send.batch.C
		}
		select {
		case c := <-g.calls:
			g.rechecked()
			c.f()
			c.done <- struct{}{}
		case r := <-g.results:
			g.onSent(r)
		case <-g.wake:
			g.rechecked()
		case <-batch:
			g.send.armed = false
			g.onBatchTimer()
		case <-recheck.C:
			if !g.closing {
				g.rotateIfDue()
				g.doRecheck()
			}
		}
		g.wakeWriter()
		if g.closing && g.send.inflight == 0 {
			g.finish()
			return
		}
	}
}

// do runs f on the Group's goroutine and waits for it; ErrClosed once the
// Group is closed.
func (g *Group) do(f func()) error {
	done, _ := g.pool.Get().(chan struct{})
	if done == nil {
		done = make(chan struct{}, 1)
	}
	select {
	case g.calls <- call{f, done}:
	case <-g.exited:
		g.pool.Put(done)
		return ErrClosed
	}
	<-done
	g.pool.Put(done)
	return nil
}

// read runs f on the Group's goroutine, or here once it has exited.
func (g *Group) read(f func()) {
	if g.do(f) != nil {
		<-g.exited
		f()
	}
}

// Name returns the group's name.
func (g *Group) Name() string { return g.group }

// Stats returns the counters so far.
func (g *Group) Stats() (s Stats) {
	g.read(func() { s = g.st })
	return s
}

// ReceiverStats returns the privgroup Receiver's counters (replays, bad
// tags, bad signatures ...).
func (g *Group) ReceiverStats() privgroup.Stats { return g.rcv.r.Stats() }

// Epoch returns our sender key's current epoch.
func (g *Group) Epoch() (e uint32) {
	g.read(func() { e = g.send.s.Epoch() })
	return e
}

// Suite returns the suite our sender key uses.
func (g *Group) Suite() (s privgroup.Suite) {
	g.read(func() { s = g.send.s.Suite() })
	return s
}

// Members returns the peers given our current sender key: holding it, or
// about to (it waits for a full queue, before anything else we send them).
func (g *Group) Members() (out []uuid.UUID) {
	g.read(func() {
		for p := range g.send.members {
			out = append(out, p)
		}
	})
	return out
}

// Senders returns the peers whose sender keys we hold.
func (g *Group) Senders() (out []uuid.UUID) {
	g.read(func() {
		for p := range g.rcv.senders {
			out = append(out, p)
		}
	})
	return out
}

// Recheck asks the trust decision again about every member holding our
// key and every sender whose key we hold: a member no longer trusted
// (revoked) makes us rotate, and it gets nothing of the new epoch; a sender
// no longer trusted is dropped (its records become opaque). The Group does
// it every Options.RecheckInterval. Recheck never waits: it may be called
// from any goroutine and any callback (trust.Options.OnRevoked, Trusted);
// the check runs on the Group's goroutine before anything else it does
// after Recheck returns.
func (g *Group) Recheck() {
	g.recheck.Store(true)
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

func (g *Group) rechecked() {
	if g.recheck.Swap(false) && !g.closing {
		g.doRecheck()
	}
}

// Rotate starts a new epoch of our sender key now and gives it to the
// current trusted members.
func (g *Group) Rotate() (err error) {
	if g.do(func() {
		if err = ErrClosed; !g.closing {
			err = g.rotate(uuid.Nil)
		}
	}) != nil {
		return ErrClosed
	}
	return err
}

// AwaitSender waits until we hold the sender key of a peer that match
// accepts (any peer when match is nil) and returns it.
func (g *Group) AwaitSender(ctx context.Context, match func(peer uuid.UUID) bool) (uuid.UUID, error) {
	for {
		var found uuid.UUID
		var changed chan struct{}
		if g.do(func() {
			for p := range g.rcv.senders {
				if match == nil || match(p) {
					found = p
					return
				}
			}
			changed = g.rcv.changed
		}) != nil {
			return uuid.Nil, ErrClosed
		}
		if changed == nil {
			return found, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return uuid.Nil, fmt.Errorf("zyregroup: waiting for a sender in %q: %w", g.group, ctx.Err())
		case <-g.done:
			return uuid.Nil, ErrClosed
		}
	}
}

// Close sends a last batch record (behind what waits for slow members,
// which get one more try), erases the keys, ends the Readers (ErrClosed)
// and the Writer's wait, and leaves the ZRE group. It is safe to call
// twice.
func (g *Group) Close() error {
	g.once.Do(func() {
		close(g.done)
		g.do(func() {
			g.closing = true
			g.cancel()
		})
		<-g.exited
	})
	return nil
}

// finish ends the Group, on its goroutine, once no send is in flight.
func (g *Group) finish() {
	g.closeSending()
	for _, q := range g.rcv.queues {
		q.close()
	}
	clear(g.rcv.readers)
	g.rcv.r.Close()
	if err := g.node.Leave(g.group); err != nil && !errors.Is(err, zre.ErrClosed) {
		g.log.Debug("zyregroup: leave", "group", g.group, "err", err)
	}
}
