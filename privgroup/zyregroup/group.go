package zyregroup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/privgroup"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

// WhisperPrefix is the first frame of the WHISPERs of private groups,
// reserved and versioned. A sender key is WhisperPrefix, the group name,
// the sender-key record and one octet naming the suites its maker opens
// at full speed (bit n: suite n); WhisperPrefix and the group name alone
// are a key request. WhisperPrefix, the group name, an empty frame and
// "removed" tell a member that we removed it (it no longer trusted here):
// its Reader of us ends with ErrRemoved.
const WhisperPrefix = "zyre-privgroup/1"

const requestInterval = time.Second // between key requests (and answers) per peer

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
	ErrInvalidOptions = errors.New("zyregroup: invalid options")
	ErrClosed         = errors.New("zyregroup: closed")
	ErrBusy           = errors.New("zyregroup: already open") // a Writer, or a Reader of that sender
	ErrNoKey          = errors.New("zyregroup: no key for peer")
	ErrUntrusted      = errors.New("zyregroup: peer not trusted")
	// ErrRemoved ends the Reader of a sender that told us it removed us
	// from the group: it no longer gives us its key.
	ErrRemoved = errors.New("zyregroup: removed from the group by the sender")
)

// Node is what a Group needs of a node; *zre.Node implements it. Whisper
// never waits: a full queue refuses (an error wrapping
// zmtp.ErrPeerNotResponding; per peer in a *zre.ShoutError for a SHOUT).
// WhisperContext and ShoutToOwned wait until ctx ends (an ended one: not at
// all); ShoutToOwned keeps content without a copy. PeersByGroup and
// PeerKey (false in plain mode) must not wait for the node's goroutine.
type Node interface {
	UUID() uuid.UUID
	Join(group string) error
	OwnGroups() []string
	Leave(group string) error
	Whisper(peer uuid.UUID, content ...[]byte) error
	WhisperContext(ctx context.Context, peer uuid.UUID, content ...[]byte) error
	ShoutToOwned(ctx context.Context, group string, peers []uuid.UUID, content ...[]byte) error
	PeersByGroup(group string) []uuid.UUID
	PeerKey(peer uuid.UUID) (curve.PublicKey, bool)
	Secure() bool
	PublicKey() curve.PublicKey
}

var _ Node = (*zre.Node)(nil)

// Options configure a Group. Secret and a trust decision (Trusted or
// Trust) are required. Trusted, PeerKey and FastSuite run on the Group's
// goroutine: they must be quick and may call no method of the Group but
// Recheck.
type Options struct {
	// Secret is our long-term CURVE secret key (the node's in secure
	// mode): it seals our sender keys to members and opens theirs.
	Secret curve.SecretKey
	// Trusted decides whether a peer, authenticated with key, may hold our
	// sender key and give us its own: asked when it joins, when its key
	// arrives, before waiting for it and at every recheck.
	Trusted func(peer uuid.UUID, key curve.PublicKey) bool
	// Trust is used when Trusted is nil: a key is trusted when its record
	// is verified or introduced (or tofu with TrustTOFU), never revoked.
	Trust     *trust.Store
	TrustTOFU bool
	// PeerKey returns a peer's authenticated long-term key; default, in
	// secure mode, the node's. A plain node needs it (keys learnt out of
	// band).
	PeerKey func(peer uuid.UUID) (curve.PublicKey, bool)
	// Crypto configures the privgroup Sender and Receiver; SuiteAuto means
	// privgroup.PreferredSuite(ChunkSize).
	Crypto privgroup.Options
	// ChunkSize is the Writer's (privgroup.DefaultChunkSize when 0).
	ChunkSize int
	// QueueRecords and QueueBytes bound the records kept per sender for
	// its Reader; more are dropped (Stats.QueueDropped, a gap).
	QueueRecords, QueueBytes int
	// RecheckInterval is how often trust is asked again (also: Recheck).
	RecheckInterval time.Duration
	// SendTimeout bounds how long the Group waits for a member's full
	// queue: one that takes nothing for longer is given up
	// (Stats.Undelivered) and no longer waited for.
	SendTimeout time.Duration
	// OnOpaque, if set, gets every record of the group we hold no key for,
	// from Handle, on its caller's goroutine. It must not keep rec.
	OnOpaque func(peer uuid.UUID, rec []byte)
	// FastSuite says which suites we open at full speed (default
	// privgroup.Suite.Fast), told to every sender: an automatic suite 2
	// turns to suite 1, by a rotation, when a member opens it slowly.
	FastSuite func(privgroup.Suite) bool
	// Logger receives the Group's logs; nil means none.
	Logger *slog.Logger

	// Tests: preferredSuite replaces privgroup.PreferredSuite;
	// betweenWrites runs between the chunk-sized pieces of one Write.
	preferredSuite func(chunk int) privgroup.Suite
	betweenWrites  func()
}

// Stats counts what a Group did.
type Stats struct {
	KeysSent     uint64 // sender keys whispered to members
	KeysReceived uint64 // sender keys accepted
	KeysRefused  uint64 // sender keys refused (untrusted, not for us, forged ...)
	Passed       uint64 // members passed over: untrusted or without a key
	KeyRequests  uint64 // key requests sent (at Attach, to a peer trusted at a recheck, for a record we cannot open)
	Rotations    uint64 // epochs started because a member left or on policy
	Records      uint64 // records of known senders queued for their Reader
	Relayed      uint64 // records under a known sender's key shouted by another peer, dropped
	Opaque       uint64 // records of the group we hold no key for
	Malformed    uint64 // SHOUTs or WHISPERs of ours that did not parse
	QueueDropped uint64 // records dropped because a sender's queue was full
	SendRetries  uint64 // sends that waited for a member's full queue (each once)
	Undelivered  uint64 // keys and records given up (SendTimeout, or at Close)
	Dismissed    uint64 // members removed for trust, told so (removed notices sent)
	RemovedBy    uint64 // senders whose notice said they removed us
}

// Group is a private group bound to a node. Its methods are safe for
// concurrent use; see the package doc.
type Group struct {
	node    Node
	group   string
	self    uuid.UUID
	opts    Options
	log     *slog.Logger
	trusted func(uuid.UUID, curve.PublicKey) bool // both counted in inCall
	peerKey func(uuid.UUID) (curve.PublicKey, bool)

	calls            chan call
	wake             chan struct{}
	recheck          atomic.Bool     // Recheck was called
	inCall           atomic.Int32    // trusted or peerKey runs
	done             context.Context // ended by Close
	stop             context.CancelFunc
	exited           chan struct{}
	once             sync.Once
	pool             sync.Pool          // of the calls' done channels
	ctx, nowait      context.Context    // the line senders' (cancelled at Close); an ended one
	cancel           context.CancelFunc // ctx's
	stopPump, pumped chan struct{}      // Open's event reader
	released         atomic.Uint64      // events whose content was handed back (see Handle); for tests

	// The Group's goroutine's (anyone's once exited is closed).
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
// ZRE group and gives the key to each trusted member already there (asking
// for its own if node was in the group: it came before the Group). The
// application then passes every event of node to Handle. Close undoes it.
func Attach(node Node, group string, opts Options) (*Group, error) {
	fail := func(err error, why string) (*Group, error) {
		return nil, fmt.Errorf("zyregroup: attach %q: %w%s", group, err, why)
	}
	if node == nil {
		return fail(ErrInvalidOptions, ": nil node")
	}
	trusted, peerKey, pref := opts.Trusted, opts.PeerKey, opts.preferredSuite
	if trusted == nil && opts.Trust != nil {
		trusted = storeTrusted(opts.Trust, opts.TrustTOFU)
	}
	if peerKey == nil && node.Secure() {
		peerKey = node.PeerKey
	}
	switch {
	case opts.Secret.IsZero():
		return fail(ErrInvalidOptions, ": no secret key")
	case node.Secure() && !opts.Secret.Public().Equal(node.PublicKey()):
		return fail(ErrInvalidOptions, ": the secret key is not the node's")
	case trusted == nil:
		return fail(ErrInvalidOptions, ": no trust decision (Trusted or Trust)")
	case peerKey == nil:
		return fail(ErrInvalidOptions, ": a plain node needs Options.PeerKey")
	}
	g := &Group{node: node, group: group, self: node.UUID(), opts: opts, log: opts.Logger,
		calls: make(chan call, 64), wake: make(chan struct{}, 1), exited: make(chan struct{})}
	g.done, g.stop = context.WithCancel(context.Background())
	g.trusted = func(p uuid.UUID, k curve.PublicKey) bool {
		g.inCall.Add(1)
		defer g.inCall.Add(-1)
		return trusted(p, k)
	}
	g.peerKey = func(p uuid.UUID) (curve.PublicKey, bool) { g.inCall.Add(1); defer g.inCall.Add(-1); return peerKey(p) }
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	o := &g.opts
	o.QueueRecords, o.QueueBytes = orDefault(o.QueueRecords, DefaultQueueRecords), orDefault(o.QueueBytes, DefaultQueueBytes)
	o.RecheckInterval, o.SendTimeout = orDefault(o.RecheckInterval, DefaultRecheckInterval), orDefault(o.SendTimeout, DefaultSendTimeout)
	o.ChunkSize = orDefault(o.ChunkSize, privgroup.DefaultChunkSize)
	crypto := opts.Crypto
	crypto.VerifySender = g.verifySender
	if pref == nil {
		pref = privgroup.PreferredSuite
	}
	if crypto.Suite == privgroup.SuiteAuto {
		crypto.Suite, g.send.auto = pref(o.ChunkSize), true
	}
	s, err := privgroup.NewSender(group, g.self, &opts.Secret, crypto)
	if err != nil {
		return fail(err, "")
	}
	r, err := privgroup.NewReceiver(group, &opts.Secret, crypto)
	joined := slices.Contains(node.OwnGroups(), group)
	if err == nil {
		if err = node.Join(group); err != nil {
			r.Close()
		}
	}
	if err != nil {
		s.Close()
		return fail(err, "")
	}
	g.send.init(s, crypto.Suite, opts.FastSuite, orDefault(opts.Crypto.BatchInterval, privgroup.DefaultBatchInterval))
	g.rcv.init(r)
	g.ctx, g.cancel = context.WithCancel(context.Background())
	var stop context.CancelFunc
	g.nowait, stop = context.WithCancel(context.Background())
	stop()
	for _, p := range node.PeersByGroup(group) {
		if g.giveKey(p, true); joined {
			g.requestKey(p)
		}
	}
	go g.run()
	return g, nil
}

// orDefault is v, or def when v is not positive.
func orDefault[T int | time.Duration](v, def T) T {
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
		return rec.State == trust.StateVerified || rec.State == trust.StateIntroduced || rec.State == trust.StateTOFU && tofu
	}
}

// run is the Group's goroutine, until Close and no line send in flight.
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
			if c.f(); c.done != nil {
				c.done <- struct{}{}
			}
		case <-g.wake:
			g.rechecked()
		case <-batch:
			g.send.armed = false
			g.onBatchTimer()
		case <-recheck.C:
			if !g.closing {
				g.rotateNow(g.send.s.RotationDue(), uuid.Nil)
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
// Group has exited.
func (g *Group) do(f func()) error {
	done, _ := g.pool.Get().(chan struct{})
	if done == nil {
		done = make(chan struct{}, 1)
	}
	defer g.pool.Put(done)
	select {
	case g.calls <- call{f, done}:
	case <-g.exited:
		return ErrClosed
	}
	select {
	case <-done:
		return nil
	case <-g.exited:
		select {
		case <-done:
			return nil
		default:
			return ErrClosed
		}
	}
}

// act runs f on the Group's goroutine and returns its error, or ErrClosed
// once the Group is closing.
func (g *Group) act(f func() error) error {
	err := ErrClosed
	g.do(func() {
		if !g.closing {
			err = f()
		}
	})
	return err
}

// read runs f on the Group's goroutine, or here once it has exited.
func (g *Group) read(f func()) {
	if g.do(f) != nil {
		f()
	}
}

func get[T any](g *Group, f func() T) (v T) {
	g.read(func() { v = f() })
	return v
}

// Name returns the group's name.
func (g *Group) Name() string { return g.group }

// Stats returns the counters so far.
func (g *Group) Stats() Stats { return get(g, func() Stats { return g.st }) }

// ReceiverStats returns the privgroup Receiver's counters.
func (g *Group) ReceiverStats() privgroup.Stats { return g.rcv.r.Stats() }

// Epoch returns our sender key's current epoch.
func (g *Group) Epoch() uint32 { return get(g, g.send.s.Epoch) }

// Suite returns the suite our sender key uses.
func (g *Group) Suite() privgroup.Suite { return get(g, g.send.s.Suite) }

// Members returns the peers given our current sender key: holding it, or
// about to (it waits for their full queue).
func (g *Group) Members() []uuid.UUID {
	return get(g, func() []uuid.UUID { return slices.Collect(maps.Keys(g.send.members)) })
}

// Senders returns the peers whose sender keys we hold.
func (g *Group) Senders() []uuid.UUID {
	return get(g, func() []uuid.UUID { return slices.Collect(maps.Keys(g.rcv.senders)) })
}

// Recheck asks the trust decision again about every member holding our
// key (one no longer trusted makes us rotate, without it) and every sender
// whose key we hold (one no longer trusted is dropped), as the Group does
// every RecheckInterval. It waits for the Group's goroutine, which waits
// for no peer: call it from any goroutine or callback
// (trust.Options.OnRevoked). From Trusted or PeerKey (and from anywhere
// while they run) it does not wait: the check comes before anything else
// the Group does.
func (g *Group) Recheck() {
	g.recheck.Store(true)
	if g.inCall.Load() == 0 {
		g.do(func() {}) // (the check runs first)
		return
	}
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
func (g *Group) Rotate() error { return g.act(func() error { return g.rotate(uuid.Nil) }) }

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
		case <-g.done.Done():
			return uuid.Nil, ErrClosed
		}
	}
}

// Close stops reading the node's events (Open), sends a last batch record
// (behind what waits for slow members, tried once more), erases the keys,
// ends the Readers and the Writer (ErrClosed) and leaves the ZRE group.
// The node stays up. It is safe to call twice.
func (g *Group) Close() error {
	g.once.Do(func() {
		if g.stopPump != nil {
			close(g.stopPump)
			<-g.pumped
		}
		g.stop()
		g.do(func() { g.closing = true; g.cancel() })
		<-g.exited
		if err := g.node.Leave(g.group); err != nil && !errors.Is(err, zre.ErrClosed) {
			g.log.Debug("zyregroup: leave", "group", g.group, "err", err)
		}
	})
	return nil
}

func (g *Group) finish() {
	g.closeSending()
	for _, q := range g.rcv.queues {
		q.Close()
	}
	clear(g.rcv.readers)
	g.rcv.r.Close()
}
