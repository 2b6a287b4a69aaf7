package zyregroup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/privgroup"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zmtp"
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

// preferredSuite is privgroup.PreferredSuite; tests replace it to run the
// suite negotiation on any hardware.
var preferredSuite = privgroup.PreferredSuite

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
// returns the key a peer authenticated with (false in plain mode). Shout and
// ShoutTo report peers that did not take a SHOUT as *zre.ShoutError with
// each peer's error in Errs: the Group tries again, through ShoutTo, the
// members whose error is zmtp.ErrPeerNotResponding, and no others.
type Node interface {
	UUID() uuid.UUID
	Join(group string) error
	Leave(group string) error
	Whisper(peer uuid.UUID, content ...[]byte) error
	Shout(group string, content ...[]byte) error
	ShoutTo(group string, peers []uuid.UUID, content ...[]byte) error
	PeersByGroup(group string) []uuid.UUID
	PeerKey(peer uuid.UUID) (curve.PublicKey, bool)
	Secure() bool
	PublicKey() curve.PublicKey
}

var _ Node = (*zre.Node)(nil)

// Options configure a Group. Secret and a trust decision (Trusted or
// Trust) are required.
type Options struct {
	// Secret is our long-term CURVE secret key: the node's own in secure
	// mode (checked against Node.PublicKey). It seals our sender keys to
	// members and opens theirs. The Group keeps copies.
	Secret curve.SecretKey

	// Trusted decides whether a peer, authenticated with key, may hold our
	// sender key and give us its own. It is asked when a member joins,
	// when a key arrives and at every recheck; it must be quick.
	Trusted func(peer uuid.UUID, key curve.PublicKey) bool
	// Trust is the trust store used when Trusted is nil: a key is trusted
	// when its record is verified or introduced (or tofu with TrustTOFU),
	// and never when revoked.
	Trust     *trust.Store
	TrustTOFU bool

	// PeerKey returns a peer's authenticated long-term key. Default: in
	// secure mode the node's PeerKey (the key the peer's CURVE handshake
	// authenticated, which its HELLO must carry). A plain node needs PeerKey:
	// keys learnt out of band (the inner boxes then carry the whole
	// protection; see the spec).
	PeerKey func(peer uuid.UUID) (curve.PublicKey, bool)

	// Crypto configures the privgroup Sender and Receiver (suite, batch
	// size and interval, rotation policy, windows, clock). Its Suite
	// SuiteAuto means privgroup.PreferredSuite(ChunkSize): the faster one
	// on this machine for the Writer's chunks.
	Crypto privgroup.Options
	// ChunkSize is the Writer's chunk size (privgroup.DefaultChunkSize
	// when 0).
	ChunkSize int

	// QueueRecords and QueueBytes bound the records kept per sender until
	// its Reader takes them; more are dropped (Stats.QueueDropped), which
	// the Reader reports as a gap.
	QueueRecords, QueueBytes int
	// RecheckInterval is how often the trust of members and senders is
	// checked again (a revocation then rotates our key and drops theirs).
	// Call Recheck for an immediate check.
	RecheckInterval time.Duration
	// SendTimeout bounds how long what a member's full queue refused
	// (zmtp.ErrPeerNotResponding) waits in its outbox: the Writer waits
	// for its members rather than dropping data, but a member whose
	// outbox waited longer is given up (Stats.Undelivered) and no longer
	// waited for.
	SendTimeout time.Duration

	// OnOpaque, if set, is called from Handle with every record of the
	// group that we hold no key for (an untrusted sender, a removed one, or
	// one whose key has not arrived). It must not keep rec.
	OnOpaque func(peer uuid.UUID, rec []byte)

	// FastSuite says which suites this member opens at full speed; it tells
	// every sender so (default: privgroup.Suite.Fast, this machine's
	// hardware). A sender whose suite is automatic (Crypto.Suite
	// SuiteAuto) uses suite 2 only while every member that said so opens
	// it fast, and switches at once, by a rotation, when one does not.
	FastSuite func(privgroup.Suite) bool

	// Logger receives the Group's logs; nil means none.
	Logger *slog.Logger
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
	SendRetries  uint64 // sends retried after a full peer queue
	// Undelivered: keys and records that waited for a member's full
	// queue and were given up, after SendTimeout or at Close (its Reader
	// reports what it could not open or authenticate).
	Undelivered uint64
}

type counters struct {
	keysSent, keysReceived, keysRefused, passed, keyRequests, rotations, records, relayed, opaque, malformed, queueDropped, sendRetries, undelivered atomic.Uint64
}

// Group is a private group bound to a node. Its methods are safe for
// concurrent use.
type Group struct {
	node    Node
	group   string
	self    uuid.UUID
	opts    Options
	log     *slog.Logger
	trusted func(uuid.UUID, curve.PublicKey) bool
	peerKey func(uuid.UUID) (curve.PublicKey, bool)
	stats   counters

	// snd guards the sending side: the Sender, the members holding our
	// current key, the open Writer and the outboxes of members whose
	// queues were full. Sends happen under it, and everything for a
	// member with an outbox goes through it, so each member gets our keys
	// and records in the order we made them.
	snd struct {
		sync.Mutex
		s       *privgroup.Sender
		members map[uuid.UUID]curve.PublicKey
		writer  *Writer
		closed  bool
		// auto: our suite follows the members (Crypto.Suite was
		// SuiteAuto); base is the one we prefer ourselves.
		auto bool
		base privgroup.Suite
		fast map[uuid.UUID]byte // suites each member said it opens fast
		// rotateErr: a rotation that a removed member made necessary
		// failed; nothing more is sealed under the old epoch until one
		// succeeds (rotateExclude is the member it was for).
		rotateErr     error
		rotateExclude uuid.UUID
		// out: for each member whose queue refused something, what waits
		// for it, oldest first (present only while not empty); the
		// Group's goroutine and a waiting Writer send it on. stalled:
		// members whose outbox waited longer than SendTimeout and was
		// dropped; nobody waits for them until they are given a key.
		out     map[uuid.UUID]*outbox
		stalled map[uuid.UUID]bool
		// holds: the epoch of the last key each member took.
		holds map[uuid.UUID]uint32
		// stallChecked: when shout last asked the node which peers a
		// record goes to, to see whether a given-up member takes it.
		stallChecked time.Time
	}
	fastSuites byte // ours, sent with our key
	// rcv guards the receiving side.
	rcv struct {
		sync.Mutex
		r       *privgroup.Receiver
		keyIDs  map[privgroup.KeyID]uuid.UUID
		senders map[uuid.UUID]*senderState
		queues  map[uuid.UUID]*queue
		// gone: senders whose keys and queue were dropped (they left, or
		// stopped being trusted) and that have not joined or sent a key
		// since; a Reader of one ends at once. Bounded by maxGone.
		gone map[uuid.UUID]struct{}
		// readers: the open Readers of each sender (an old one may still
		// read a queue that a new one replaced).
		readers map[uuid.UUID]int
		changed chan struct{} // closed and replaced when a sender key arrives
		from    uuid.UUID     // the peer whose WHISPER is being handled
		closed  bool
	}

	// req rate-limits key requests we send and answer, per peer.
	req struct {
		sync.Mutex
		sent, answered map[uuid.UUID]time.Time
	}

	done      chan struct{}
	kick      chan struct{} // capacity 1: messages are pending, start the batch timer
	kickOut   chan struct{} // capacity 1: an outbox is not empty, start the retry timer
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// outbox is what waits for one member whose queue was full: sender keys
// and records, in the order we made them.
type outbox struct {
	items []outItem
}

type outItem struct {
	whisper [][]byte // a sender key WHISPER; nil for a record
	epoch   uint32   // the epoch of that key
	record  []byte   // a record, shouted to this member alone (shared, never written)
	at      time.Time
	refused bool // its queue refused it once at least (trying again is a retry)
}

type senderState struct {
	key    curve.PublicKey
	keyIDs []privgroup.KeyID // oldest first; at most 3 (as the Receiver)
}

// Attach binds a private group to node: it makes our sender key, joins the
// ZRE group and gives the key to each trusted member already there. The
// application must then pass every event of node to Handle. Close undoes
// it (and leaves the ZRE group).
func Attach(node Node, group string, opts Options) (*Group, error) {
	if node == nil {
		return nil, fmt.Errorf("zyregroup: attach %q: %w: nil node", group, ErrInvalidOptions)
	}
	if opts.Secret.IsZero() {
		return nil, fmt.Errorf("zyregroup: attach %q: %w: no secret key", group, ErrInvalidOptions)
	}
	if node.Secure() && !opts.Secret.Public().Equal(node.PublicKey()) {
		return nil, fmt.Errorf("zyregroup: attach %q: %w: the secret key is not the node's", group, ErrInvalidOptions)
	}
	g := &Group{node: node, group: group, self: node.UUID(), opts: opts, done: make(chan struct{}), kick: make(chan struct{}, 1), kickOut: make(chan struct{}, 1)}
	g.log = opts.Logger
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.opts.QueueRecords <= 0 {
		g.opts.QueueRecords = DefaultQueueRecords
	}
	if g.opts.QueueBytes <= 0 {
		g.opts.QueueBytes = DefaultQueueBytes
	}
	if g.opts.RecheckInterval <= 0 {
		g.opts.RecheckInterval = DefaultRecheckInterval
	}
	if g.opts.SendTimeout <= 0 {
		g.opts.SendTimeout = DefaultSendTimeout
	}
	switch {
	case opts.Trusted != nil:
		g.trusted = opts.Trusted
	case opts.Trust != nil:
		g.trusted = storeTrusted(opts.Trust, opts.TrustTOFU)
	default:
		return nil, fmt.Errorf("zyregroup: attach %q: %w: no trust decision (Trusted or Trust)", group, ErrInvalidOptions)
	}
	switch {
	case opts.PeerKey != nil:
		g.peerKey = opts.PeerKey
	case node.Secure():
		g.peerKey = node.PeerKey
	default:
		return nil, fmt.Errorf("zyregroup: attach %q: %w: a plain node needs Options.PeerKey", group, ErrInvalidOptions)
	}
	crypto := opts.Crypto
	crypto.VerifySender = g.verifySender
	if crypto.Suite == privgroup.SuiteAuto {
		chunk := opts.ChunkSize
		if chunk == 0 {
			chunk = privgroup.DefaultChunkSize
		}
		crypto.Suite = preferredSuite(chunk)
		g.snd.auto = true
	}
	g.snd.base = crypto.Suite
	fast := opts.FastSuite
	if fast == nil {
		fast = privgroup.Suite.Fast
	}
	for _, su := range []privgroup.Suite{privgroup.SuiteChaCha20SHA256, privgroup.SuiteAESGCMBLAKE3} {
		if fast(su) {
			g.fastSuites |= 1 << su
		}
	}
	s, err := privgroup.NewSender(group, g.self, &opts.Secret, crypto)
	if err != nil {
		return nil, fmt.Errorf("zyregroup: attach %q: %w", group, err)
	}
	r, err := privgroup.NewReceiver(group, &opts.Secret, crypto)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("zyregroup: attach %q: %w", group, err)
	}
	g.snd.s, g.snd.members, g.snd.fast = s, map[uuid.UUID]curve.PublicKey{}, map[uuid.UUID]byte{}
	g.snd.out, g.snd.stalled, g.snd.holds = map[uuid.UUID]*outbox{}, map[uuid.UUID]bool{}, map[uuid.UUID]uint32{}
	g.rcv.r = r
	g.rcv.keyIDs = map[privgroup.KeyID]uuid.UUID{}
	g.rcv.senders = map[uuid.UUID]*senderState{}
	g.rcv.queues = map[uuid.UUID]*queue{}
	g.rcv.gone = map[uuid.UUID]struct{}{}
	g.rcv.readers = map[uuid.UUID]int{}
	g.rcv.changed = make(chan struct{})
	g.req.sent, g.req.answered = map[uuid.UUID]time.Time{}, map[uuid.UUID]time.Time{}
	if err := node.Join(group); err != nil {
		s.Close()
		r.Close()
		return nil, fmt.Errorf("zyregroup: attach %q: %w", group, err)
	}
	g.snd.Lock()
	for _, p := range node.PeersByGroup(group) {
		g.giveKeyLocked(p)
	}
	g.snd.Unlock()
	interval := opts.Crypto.BatchInterval
	if interval <= 0 {
		interval = privgroup.DefaultBatchInterval
	}
	g.wg.Add(1)
	go g.run(interval)
	return g, nil
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

// Name returns the group's name.
func (g *Group) Name() string { return g.group }

// Stats returns the counters so far.
func (g *Group) Stats() Stats {
	c := &g.stats
	return Stats{
		KeysSent: c.keysSent.Load(), KeysReceived: c.keysReceived.Load(), KeysRefused: c.keysRefused.Load(),
		Passed: c.passed.Load(), KeyRequests: c.keyRequests.Load(), Rotations: c.rotations.Load(), Records: c.records.Load(), Relayed: c.relayed.Load(), Opaque: c.opaque.Load(),
		Malformed: c.malformed.Load(), QueueDropped: c.queueDropped.Load(), SendRetries: c.sendRetries.Load(), Undelivered: c.undelivered.Load(),
	}
}

// ReceiverStats returns the privgroup Receiver's counters (replays, bad
// tags, bad signatures ...).
func (g *Group) ReceiverStats() privgroup.Stats { return g.rcv.r.Stats() }

// Epoch returns our sender key's current epoch.
func (g *Group) Epoch() uint32 {
	g.snd.Lock()
	defer g.snd.Unlock()
	return g.snd.s.Epoch()
}

// Suite returns the suite our sender key uses.
func (g *Group) Suite() privgroup.Suite {
	g.snd.Lock()
	defer g.snd.Unlock()
	return g.snd.s.Suite()
}

// Members returns the peers given our current sender key: holding it, or
// about to (it waits for a full queue, before anything else we send them).
func (g *Group) Members() []uuid.UUID {
	g.snd.Lock()
	defer g.snd.Unlock()
	out := make([]uuid.UUID, 0, len(g.snd.members))
	for p := range g.snd.members {
		out = append(out, p)
	}
	return out
}

// Senders returns the peers whose sender keys we hold.
func (g *Group) Senders() []uuid.UUID {
	g.rcv.Lock()
	defer g.rcv.Unlock()
	out := make([]uuid.UUID, 0, len(g.rcv.senders))
	for p := range g.rcv.senders {
		out = append(out, p)
	}
	return out
}

// Handle acts on one event of the node and reports whether it consumed
// it: a WHISPER carrying a sender key of this group or a key request, a
// SHOUT in this group carrying a privgroup record (one we hold no key for
// makes us ask its trusted shouter for the key). JOIN, LEAVE and EXIT of the group's members
// are acted on (a key for a trusted joiner; a rotation when a member
// leaves) but not consumed. Handle never waits for a peer: a key or a
// record that a member's full queue refuses waits in the Group, which
// tries it again until Options.SendTimeout (and a Writer's data waits for
// such a key, letting go of the Group between tries). It never panics on
// hostile content.
func (g *Group) Handle(ev zre.Event) bool {
	select {
	case <-g.done:
		return false
	default:
	}
	switch e := ev.(type) {
	case *zre.Shout:
		if e.Group != g.group {
			return false
		}
		return g.onShout(e.Peer, e.Content)
	case *zre.Whisper:
		return g.onWhisper(e.Peer, e.Content)
	case *zre.Join:
		if e.Group == g.group && e.Peer != g.self {
			g.rcv.Lock()
			delete(g.rcv.gone, e.Peer)
			if q := g.rcv.queues[e.Peer]; q != nil && q.isClosed() {
				// It left while its Reader was open and is back with the
				// keys we hold (it did not restart): its records go to a
				// new queue, for a new Reader, not to the closed one
				// (found by review: they were dropped there).
				g.rcv.queues[e.Peer] = newQueue()
			}
			g.rcv.Unlock()
			g.snd.Lock()
			if _, ok := g.snd.members[e.Peer]; !ok && !g.snd.closed {
				g.giveKeyLocked(e.Peer)
			}
			g.snd.Unlock()
		}
	case *zre.Leave:
		if e.Group == g.group {
			g.memberGone(e.Peer)
		}
	case *zre.Exit:
		g.memberGone(e.Peer)
	}
	return false
}

// onShout routes a record of the group to its sender's queue.
func (g *Group) onShout(peer uuid.UUID, content [][]byte) bool {
	if len(content) != 1 || len(content[0]) == 0 {
		return false
	}
	rec := content[0]
	h, err := privgroup.ParseHeader(rec)
	if err != nil {
		if errors.Is(err, privgroup.ErrVersion) {
			return false // not a record: a plain SHOUT in the group
		}
		g.stats.malformed.Add(1)
		g.log.Debug("zyregroup: malformed record", "group", g.group, "peer", peer, "err", err)
		return true
	}
	g.rcv.Lock()
	sender, known := g.rcv.keyIDs[h.KeyID]
	var q *queue
	if known {
		q = g.rcv.queues[sender]
	}
	g.rcv.Unlock()
	if known && sender != peer {
		// A sender shouts its own records; a copy from anyone else, who
		// can read the key id in clear, would only take room in the
		// sender's queue (its Reader refuses it as a replay or a bad tag).
		g.stats.relayed.Add(1)
		return true
	}
	if q == nil {
		g.stats.opaque.Add(1)
		if g.opts.OnOpaque != nil {
			g.opts.OnOpaque(peer, rec)
		}
		g.requestKey(peer)
		return true
	}
	if !q.push(rec, g.opts.QueueRecords, g.opts.QueueBytes) {
		g.stats.queueDropped.Add(1)
		return true
	}
	g.stats.records.Add(1)
	return true
}

// onWhisper installs a sender key of this group.
func (g *Group) onWhisper(peer uuid.UUID, content [][]byte) bool {
	if len(content) == 0 || string(content[0]) != WhisperPrefix {
		return false
	}
	if len(content) == 2 && string(content[1]) == g.group {
		g.answerRequest(peer)
		return true
	}
	if (len(content) != 3 && len(content) != 4) || (len(content) == 4 && len(content[3]) != 1) {
		if len(content) >= 2 && string(content[1]) != g.group {
			return false // another group's; let its Group count it
		}
		g.stats.malformed.Add(1)
		return len(content) >= 2
	}
	if string(content[1]) != g.group {
		return false
	}
	if err := g.addKey(peer, content[2]); err != nil {
		g.stats.keysRefused.Add(1)
		g.log.Warn("zyregroup: sender key refused", "group", g.group, "peer", peer, "err", err)
		return true
	}
	if len(content) == 4 {
		g.memberSuites(peer, content[3][0])
	}
	return true
}

// memberSuites records which suites a member (whose key we took) opens
// fast, and rotates to suite 1, which every member opens fast, when ours is
// automatic and that member opens it slowly. It never rotates for anything
// else: a member that resends its key with other octets cannot make us
// re-key the group again and again (going back to our preferred suite
// waits for a rotation made for another reason).
func (g *Group) memberSuites(peer uuid.UUID, fast byte) {
	g.snd.Lock()
	defer g.snd.Unlock()
	if g.snd.closed {
		return
	}
	g.snd.fast[peer] = fast
	// (suiteLocked counts only members in the group: a peer outside it
	// changes nothing.)
	cur := g.snd.s.Suite()
	if !g.snd.auto || fast&(1<<cur) != 0 || cur == privgroup.SuiteChaCha20SHA256 ||
		g.suiteLocked(uuid.Nil) != privgroup.SuiteChaCha20SHA256 {
		return
	}
	g.log.Info("zyregroup: a member opens our suite slowly; changing suite", "group", g.group, "peer", peer, "suite", g.snd.s.Suite())
	if err := g.rotateLocked(uuid.Nil); err != nil {
		g.log.Warn("zyregroup: rotate", "group", g.group, "err", err)
	}
}

// suiteLocked is the suite for our next epoch: our own preference, unless
// it is automatic and a member in the group (but exclude) said it opens
// that suite slowly; then suite 1, which every machine opens fast.
func (g *Group) suiteLocked(exclude uuid.UUID) privgroup.Suite {
	if !g.snd.auto {
		return g.snd.base
	}
	for _, p := range g.node.PeersByGroup(g.group) {
		if f, ok := g.snd.fast[p]; ok && p != exclude && f&(1<<g.snd.base) == 0 {
			return privgroup.SuiteChaCha20SHA256
		}
	}
	return g.snd.base
}

// allow reports whether an event for peer in m is at least requestInterval
// after the last one, and records it. The maps are bounded: when full they
// are cleared.
func (g *Group) allow(m map[uuid.UUID]time.Time, peer uuid.UUID) bool {
	g.req.Lock()
	defer g.req.Unlock()
	now := time.Now()
	if last, ok := m[peer]; ok && now.Sub(last) < requestInterval {
		return false
	}
	if len(m) >= 4096 {
		clear(m)
	}
	m[peer] = now
	return true
}

// requestKey asks peer, which shouted a record of the group we hold no key
// for, for its current sender key: it may have sent it before our Group
// was attached, or its WHISPER failed. Only trusted peers are asked (we
// would refuse the key of others), at most once per requestInterval.
func (g *Group) requestKey(peer uuid.UUID) {
	if !g.allow(g.req.sent, peer) {
		return
	}
	key, ok := g.peerKey(peer)
	if !ok || !g.trusted(peer, key) {
		return
	}
	if err := g.node.Whisper(peer, []byte(WhisperPrefix), []byte(g.group)); err != nil {
		g.log.Debug("zyregroup: key request", "group", g.group, "peer", peer, "err", err)
		return
	}
	g.stats.keyRequests.Add(1)
}

// answerRequest gives our current key to peer if it is a trusted member of
// the group, at most once per requestInterval.
func (g *Group) answerRequest(peer uuid.UUID) {
	if peer == g.self || !g.allow(g.req.answered, peer) {
		return
	}
	member := false
	for _, p := range g.node.PeersByGroup(g.group) {
		member = member || p == peer
	}
	if !member {
		g.stats.passed.Add(1)
		return
	}
	g.snd.Lock()
	defer g.snd.Unlock()
	if !g.snd.closed {
		g.giveKeyLocked(peer)
	}
}

// verifySender is the Receiver's Options.VerifySender: the sender id in a
// sender key must be the peer whose WHISPER carried it (whose
// authenticated key opened the box), and that peer must be trusted. It
// runs inside AddSenderKey, with g.rcv held.
func (g *Group) verifySender(id uuid.UUID, key curve.PublicKey) error {
	if id != g.rcv.from {
		return fmt.Errorf("sender id %s in a key whispered by %s", id, g.rcv.from)
	}
	if !g.trusted(id, key) {
		return fmt.Errorf("%w: %s", ErrUntrusted, id)
	}
	return nil
}

func (g *Group) addKey(peer uuid.UUID, rec []byte) error {
	from, ok := g.peerKey(peer)
	if !ok {
		return fmt.Errorf("zyregroup: sender key from %s: %w", peer, ErrNoKey)
	}
	g.rcv.Lock()
	defer g.rcv.Unlock()
	if g.rcv.closed {
		return ErrClosed
	}
	g.rcv.from = peer
	ki, err := g.rcv.r.AddSenderKey(rec, from)
	g.rcv.from = uuid.Nil
	if err != nil {
		return err
	}
	if ki.Duplicate {
		return nil
	}
	g.stats.keysReceived.Add(1)
	delete(g.rcv.gone, ki.Sender)
	ss := g.rcv.senders[ki.Sender]
	if ss == nil || !ss.key.Equal(from) {
		ss = &senderState{key: from}
		g.rcv.senders[ki.Sender] = ss
	}
	ss.keyIDs = append(ss.keyIDs, ki.KeyID)
	for len(ss.keyIDs) > 3 {
		delete(g.rcv.keyIDs, ss.keyIDs[0])
		ss.keyIDs = ss.keyIDs[1:]
	}
	g.rcv.keyIDs[ki.KeyID] = ki.Sender
	if q := g.rcv.queues[ki.Sender]; q == nil || q.isClosed() {
		if q != nil && !q.hasReader() {
			q.close()
		}
		g.rcv.queues[ki.Sender] = newQueue()
	}
	close(g.rcv.changed)
	g.rcv.changed = make(chan struct{})
	g.log.Debug("zyregroup: sender key", "group", g.group, "sender", ki.Sender, "epoch", ki.Epoch, "counter", ki.Counter)
	return nil
}

// giveKeyLocked sends our current sender key to peer if it is trusted.
// g.snd is held.
func (g *Group) giveKeyLocked(peer uuid.UUID) {
	if peer == g.self {
		return
	}
	key, ok := g.peerKey(peer)
	if !ok || !g.trusted(peer, key) {
		g.stats.passed.Add(1)
		g.log.Debug("zyregroup: member passed over", "group", g.group, "peer", peer, "key", ok)
		return
	}
	// A batch record first, so the member can authenticate from the first
	// message it can open.
	if g.snd.s.Pending() > 0 {
		rec, err := g.snd.s.Batch(nil)
		if err == nil && len(rec) > 0 {
			g.shout(rec)
		}
	}
	rec, err := g.snd.s.KeyFor(key)
	if err != nil {
		g.log.Warn("zyregroup: cannot make sender key", "group", g.group, "peer", peer, "err", err)
		return
	}
	content := [][]byte{[]byte(WhisperPrefix), []byte(g.group), rec, {g.fastSuites}}
	epoch := g.snd.s.Epoch()
	if ob := g.snd.out[peer]; ob != nil {
		// Behind what waits for it already, once per epoch (a JOIN or a
		// key request again meanwhile adds nothing).
		g.snd.members[peer] = key
		if slices.ContainsFunc(ob.items, func(it outItem) bool { return it.whisper != nil && it.epoch == epoch }) {
			clear(rec)
			return
		}
		g.pushLocked(peer, outItem{whisper: content, epoch: epoch})
		return
	}
	switch err := g.node.Whisper(peer, content...); {
	case err == nil:
		clear(rec)
		g.snd.members[peer] = key
		g.snd.holds[peer] = epoch
		delete(g.snd.stalled, peer)
		g.stats.keysSent.Add(1)
	case errors.Is(err, zmtp.ErrPeerNotResponding):
		// Its queue is full: the key waits in its outbox, and so does
		// everything after it for this member, so that nothing here
		// waits for the peer.
		g.pushLocked(peer, outItem{whisper: content, epoch: epoch, refused: true})
		g.snd.members[peer] = key
	default:
		clear(rec)
		g.log.Warn("zyregroup: cannot send sender key", "group", g.group, "peer", peer, "err", err)
	}
}

// pushLocked adds it to peer's outbox and starts the retry timer. g.snd
// is held.
func (g *Group) pushLocked(peer uuid.UUID, it outItem) {
	ob := g.snd.out[peer]
	if ob == nil {
		ob = &outbox{}
		g.snd.out[peer] = ob
	}
	if it.whisper != nil {
		// A key that no record follows is of no use once a newer one
		// follows it (found by review: a key per rotation piled up).
		for n := len(ob.items); n > 0 && ob.items[n-1].whisper != nil; n-- {
			clear(ob.items[n-1].whisper[2])
			ob.items[n-1] = outItem{}
			ob.items = ob.items[:n-1]
		}
	}
	it.at = time.Now()
	ob.items = append(ob.items, it)
	select {
	case g.kickOut <- struct{}{}:
	default:
	}
}

// flushOutLocked sends on what waits in the outboxes, in order for each
// member, until its queue refuses again. An outbox whose oldest item
// waited longer than SendTimeout is dropped (counted in Undelivered) and
// its member stalled: nobody waits for it any more, its Reader reports
// what it could not open or authenticate, and it gets what is sent from
// then on like any peer. So is one whose member is no longer trusted (the
// next Recheck removes it). g.snd is held.
func (g *Group) flushOutLocked() {
	now := time.Now()
	for p, ob := range g.snd.out {
		key, member := g.snd.members[p]
		if !member || !g.trusted(p, key) {
			g.dropOutLocked(p, nil)
			continue
		}
		for len(ob.items) > 0 {
			it := ob.items[0]
			if now.Sub(it.at) > g.opts.SendTimeout {
				g.stats.undelivered.Add(uint64(len(ob.items)))
				g.dropOutLocked(p, fmt.Errorf("%w for %v", zmtp.ErrPeerNotResponding, g.opts.SendTimeout))
				if g.snd.holds[p] == g.snd.s.Epoch() {
					g.snd.stalled[p] = true
				} else {
					// It never took our current key (found by review:
					// a second copy of a key it held made it no member,
					// and its revocation no rotation): no member.
					g.removeMemberLocked(p)
				}
				break
			}
			if it.refused {
				g.stats.sendRetries.Add(1)
			}
			var err error
			if it.whisper != nil {
				err = g.node.Whisper(p, it.whisper...)
			} else {
				err = peerErr(g.node.ShoutTo(g.group, []uuid.UUID{p}, it.record), p)
			}
			if errors.Is(err, zmtp.ErrPeerNotResponding) {
				ob.items[0].refused = true
				break
			}
			if err != nil {
				g.log.Debug("zyregroup: send dropped", "group", g.group, "peer", p, "err", err)
			} else {
				delete(g.snd.stalled, p) // it reads again
				if it.whisper != nil {
					g.snd.holds[p] = max(g.snd.holds[p], it.epoch)
					g.stats.keysSent.Add(1)
				}
			}
			if it.whisper != nil {
				clear(it.whisper[2])
			}
			ob.items[0] = outItem{}
			ob.items = ob.items[1:]
		}
		if len(ob.items) == 0 {
			delete(g.snd.out, p)
		}
	}
}

// dropOutLocked drops what waits for peer (erasing its keys), logging why
// if err. g.snd is held.
func (g *Group) dropOutLocked(peer uuid.UUID, err error) {
	ob := g.snd.out[peer]
	if ob == nil {
		return
	}
	for _, it := range ob.items {
		if it.whisper != nil {
			clear(it.whisper[2])
		}
	}
	delete(g.snd.out, peer)
	if err != nil {
		g.log.Warn("zyregroup: sends to a member dropped", "group", g.group, "peer", peer, "items", len(ob.items), "err", err)
	}
}

// removeMemberLocked makes peer no member: it holds none of our keys from
// now on, and what waited for it is dropped. g.snd is held.
func (g *Group) removeMemberLocked(peer uuid.UUID) {
	delete(g.snd.members, peer)
	delete(g.snd.stalled, peer)
	delete(g.snd.holds, peer)
	g.dropOutLocked(peer, nil)
}

// peerErr is peer's own error in a *zre.ShoutError (nil when it is not
// named there), or err.
func peerErr(err error, peer uuid.UUID) error {
	var se *zre.ShoutError
	if !errors.As(err, &se) {
		return err
	}
	switch i := slices.Index(se.Peers, peer); {
	case i < 0:
		return nil
	case i < len(se.Errs):
		return se.Errs[i]
	}
	return se.Err
}

// rotateLocked starts a new epoch and gives the new key to the current
// trusted members, but never to exclude. g.snd is held.
func (g *Group) rotateLocked(exclude uuid.UUID) error {
	if err := g.snd.s.SetSuite(g.suiteLocked(exclude)); err != nil {
		return g.rotationFailedLocked(exclude, err)
	}
	rec, err := g.snd.s.Rotate(nil)
	if len(rec) > 0 {
		g.shout(rec)
	}
	if err != nil {
		return g.rotationFailedLocked(exclude, err)
	}
	g.snd.rotateErr, g.snd.rotateExclude = nil, uuid.Nil
	g.stats.rotations.Add(1)
	if err := g.distributeLocked(exclude); err != nil {
		return err
	}
	if g.snd.rotateErr != nil {
		// A removed peer took this key meanwhile: once more (it gets
		// none of the next).
		return g.rotatedLocked("rotate")
	}
	return nil
}

// rotatedLocked makes the rotation that failed, if one did, before the
// Writer seals anything more (for op); it fails while rotations do.
func (g *Group) rotatedLocked(op string) error {
	if g.snd.rotateErr == nil {
		return nil
	}
	if err := g.rotateLocked(g.snd.rotateExclude); err != nil {
		return fmt.Errorf("zyregroup: %s: a rotation failed, and nothing is sent under the key a removed member holds: %w", op, err)
	}
	return nil
}

// rotationFailedLocked fails closed: until a rotation succeeds, the Writer
// seals nothing more under the epoch that a removed member may hold (it
// tries the rotation again first).
func (g *Group) rotationFailedLocked(exclude uuid.UUID, err error) error {
	g.snd.rotateErr, g.snd.rotateExclude = err, exclude
	return err
}

// distributeLocked gives the current key to every trusted member of the
// group except exclude, and makes them the member set.
func (g *Group) distributeLocked(exclude uuid.UUID) error {
	old := g.snd.members
	g.snd.members = make(map[uuid.UUID]curve.PublicKey, len(old))
	for _, p := range g.node.PeersByGroup(g.group) {
		if p != exclude {
			g.giveKeyLocked(p)
		}
	}
	// Those not given the new key get nothing more of what waited.
	leaked := false
	for p := range old {
		if _, ok := g.snd.members[p]; !ok {
			// One that took this very key meanwhile (the privgroup Writer
			// rotates the Sender before it waits for the old epoch's last
			// record, and calls OnRotate after; found by review): nothing
			// more is sealed under it until the next rotation.
			leaked = leaked || g.snd.holds[p] == g.snd.s.Epoch()
			g.removeMemberLocked(p)
		}
	}
	if leaked {
		g.rotationFailedLocked(uuid.Nil, errRemovedHolds)
	}
	return nil
}

// errRemovedHolds: a peer removed from the members holds the current key.
var errRemovedHolds = errors.New("zyregroup: a removed peer holds the current key")

// memberGone handles a LEAVE of the group or an EXIT: a member holding our
// key makes us rotate; its own stream ends.
func (g *Group) memberGone(peer uuid.UUID) {
	g.snd.Lock()
	delete(g.snd.fast, peer)
	if _, ok := g.snd.members[peer]; ok && !g.snd.closed {
		g.removeMemberLocked(peer)
		if err := g.rotateLocked(peer); err != nil {
			g.log.Warn("zyregroup: rotate", "group", g.group, "err", err)
		}
	}
	g.snd.Unlock()
	g.rcv.Lock()
	if q := g.rcv.queues[peer]; q != nil {
		q.close()
		if g.rcv.readers[peer] == 0 {
			g.dropSenderLocked(peer)
		} else {
			// Its Reader keeps the keys for what it has not read yet,
			// but they must not refuse the key of the peer's next
			// session (its node restarted, with an older epoch). It is
			// gone now, not when that Reader closes: a JOIN meanwhile
			// (the restarted node) undoes it.
			g.rcv.r.EndSession(peer)
			g.goneLocked(peer)
		}
	}
	g.rcv.Unlock()
}

// maxGone bounds the senders a Group remembers as gone.
const maxGone = 4096

// dropSenderLocked forgets a sender's keys and queue, and remembers it as
// gone. g.rcv is held.
func (g *Group) dropSenderLocked(peer uuid.UUID) {
	g.goneLocked(peer)
	g.forgetSenderLocked(peer)
}

// goneLocked remembers peer as gone until it joins or gives us a key.
// g.rcv is held.
func (g *Group) goneLocked(peer uuid.UUID) {
	if len(g.rcv.gone) >= maxGone {
		clear(g.rcv.gone)
	}
	g.rcv.gone[peer] = struct{}{}
}

// forgetSenderLocked forgets a sender's keys and queue. g.rcv is held.
func (g *Group) forgetSenderLocked(peer uuid.UUID) {
	if ss := g.rcv.senders[peer]; ss != nil {
		for _, id := range ss.keyIDs {
			delete(g.rcv.keyIDs, id)
		}
	}
	delete(g.rcv.senders, peer)
	if q := g.rcv.queues[peer]; q != nil {
		q.close()
		delete(g.rcv.queues, peer)
	}
	g.rcv.r.RemoveSender(peer)
}

// Recheck asks the trust decision again about every member holding our
// key and every sender whose key we hold: a member no longer trusted
// (revoked) makes us rotate, and it gets nothing of the new epoch; a sender
// no longer trusted is dropped (its records become opaque). The Group
// calls it every Options.RecheckInterval; call it at once from
// trust.Options.OnRevoked.
func (g *Group) Recheck() {
	g.snd.Lock()
	var gone []uuid.UUID
	for p, k := range g.snd.members {
		if cur, ok := g.peerKey(p); !ok || !cur.Equal(k) || !g.trusted(p, k) {
			gone = append(gone, p)
		}
	}
	if len(gone) > 0 && !g.snd.closed {
		for _, p := range gone {
			g.removeMemberLocked(p)
		}
		// distributeLocked re-asks the trust decision for everyone.
		if err := g.rotateLocked(uuid.Nil); err != nil {
			g.log.Warn("zyregroup: rotate", "group", g.group, "err", err)
		}
	}
	g.snd.Unlock()
	g.rcv.Lock()
	for p, ss := range g.rcv.senders {
		if !g.trusted(p, ss.key) {
			g.dropSenderLocked(p)
		}
	}
	g.rcv.Unlock()
}

// Rotate starts a new epoch of our sender key now and gives it to the
// current trusted members.
func (g *Group) Rotate() error {
	g.snd.Lock()
	defer g.snd.Unlock()
	if g.snd.closed {
		return ErrClosed
	}
	return g.rotateLocked(uuid.Nil)
}

// run shouts batch records when due, rotates on the policy and rechecks
// trust, until Close. The batch timer runs only while our messages wait
// for a batch record (the Writer kicks it), so an idle group wakes once a
// RecheckInterval: every wake-up of a process costs (about 0.15 ms of CPU
// on the 2-core VM of BENCHMARKS.md), and a ticker at BatchInterval made
// an idle group cost 0.8 % of a core.
func (g *Group) run(interval time.Duration) {
	defer g.wg.Done()
	batch := time.NewTimer(interval)
	batch.Stop()
	defer batch.Stop()
	armed := false
	// retry: what waits in outboxes is tried again after 50 µs, then
	// twice as long each time it is refused, up to 5 ms.
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	const firstWait, maxWait = 50 * time.Microsecond, 5 * time.Millisecond
	wait, retrying := firstWait, false
	recheck := time.NewTicker(g.opts.RecheckInterval)
	defer recheck.Stop()
	for {
		select {
		case <-g.done:
			return
		case <-g.kickOut:
			if !retrying {
				wait, retrying = firstWait, true
				retry.Reset(wait)
			}
		case <-retry.C:
			g.snd.Lock()
			if !g.snd.closed {
				g.flushOutLocked()
			}
			retrying = len(g.snd.out) > 0
			g.snd.Unlock()
			if retrying {
				wait = min(2*wait, maxWait)
				retry.Reset(wait)
			}
		case <-g.kick:
			if !armed {
				batch.Reset(interval)
				armed = true
			}
		case <-batch.C:
			armed = false
			g.snd.Lock()
			if !g.snd.closed {
				s := g.snd.s
				if s.BatchDue() {
					if rec, err := s.Batch(nil); err == nil && len(rec) > 0 {
						g.shout(rec)
					}
				}
				g.rotateIfDueLocked()
				if at := s.BatchDueAt(); !at.IsZero() {
					batch.Reset(min(max(time.Until(at), time.Millisecond), interval))
					armed = true
				}
			}
			g.snd.Unlock()
		case <-recheck.C:
			g.snd.Lock()
			if !g.snd.closed {
				g.rotateIfDueLocked()
			}
			g.snd.Unlock()
			g.Recheck()
		}
	}
}

// rotateIfDueLocked rotates when the policy says so (count or age).
func (g *Group) rotateIfDueLocked() {
	if g.snd.s.RotationDue() {
		if err := g.rotateLocked(uuid.Nil); err != nil {
			g.log.Warn("zyregroup: rotate", "group", g.group, "err", err)
		}
	}
}

// kickLocked starts the batch timer when our messages wait for a batch
// record; it never blocks.
func (g *Group) kickLocked() {
	if g.snd.s.Pending() == 0 {
		return
	}
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// shout sends a record to the group without waiting for anyone: a member
// with an outbox gets it through its outbox, behind what waits there, and
// a member whose queue refuses it gets one. Peers that cannot read it
// (untrusted, plain or without our key) and stalled members are not sent
// it again: one that stops reading must not hold up the stream. g.snd is
// held.
func (g *Group) shout(rec []byte) error {
	var err error
	var to []uuid.UUID // (the node's slice is not ours to change)
	if len(g.snd.out) == 0 {
		if len(g.snd.stalled) > 0 && time.Since(g.snd.stallChecked) >= stallCheckInterval {
			// Those it is sent to, to see whether a given-up member
			// takes it: a call to the node, so not at every record.
			to = g.node.PeersByGroup(g.group)
			g.snd.stallChecked = time.Now()
		}
		err = g.node.Shout(g.group, rec)
	} else {
		rec = bytes.Clone(rec) // shared by the outboxes
		for _, p := range g.node.PeersByGroup(g.group) {
			if g.snd.out[p] == nil || g.snd.stalled[p] {
				to = append(to, p)
			}
		}
		for p := range g.snd.out {
			if !g.snd.stalled[p] {
				g.pushLocked(p, outItem{record: rec})
			}
		}
		if len(to) > 0 {
			err = g.node.ShoutTo(g.group, to, rec)
		}
	}
	var se *zre.ShoutError
	if err != nil && !errors.As(err, &se) {
		return err
	}
	// A given-up member that took it reads again (found by review: it
	// stayed given up until the next rotation); one it was not sent to
	// (it left, its LEAVE not handled yet) took nothing.
	for p := range g.snd.stalled {
		if slices.Contains(to, p) && (se == nil || !slices.Contains(se.Peers, p)) {
			delete(g.snd.stalled, p)
		}
	}
	if se == nil {
		return nil
	}
	var own []byte // one copy for every outbox (never written)
	for i, p := range se.Peers {
		if _, ok := g.snd.members[p]; ok && !g.snd.stalled[p] && g.snd.out[p] == nil && i < len(se.Errs) && errors.Is(se.Errs[i], zmtp.ErrPeerNotResponding) {
			if own == nil {
				own = bytes.Clone(rec)
			}
			g.pushLocked(p, outItem{record: own, refused: true})
		}
	}
	return nil
}

// writerShout sends a record of the Writer as shout does, then waits
// while anything waits in an outbox, so that a Writer goes no faster than
// its slowest member (and what waits stays bounded). While it waits it
// lets go of g.snd, so that events (a JOIN, a LEAVE, a revocation, a key)
// are handled meanwhile; what happens meanwhile (a rotation, a member
// removed) only changes what is still sent to whom. It does not fail for
// a slow member: a member whose outbox waits longer than SendTimeout is
// stalled (see flushOutLocked). g.snd is held.
func (g *Group) writerShout(rec []byte) error {
	if err := g.shout(rec); err != nil {
		return err
	}
	if !g.backlogLocked() {
		return nil
	}
	// The batch timer runs meanwhile (found by review: a chunk sealed
	// before the wait got no batch record until it ended, so the other
	// members could not release it).
	g.kickLocked()
	// (flushOutLocked counts its own retries.)
	err := g.retryLoop(true, false, func() error {
		g.flushOutLocked()
		if g.backlogLocked() {
			return errBacklog
		}
		return nil
	})
	if errors.Is(err, ErrClosed) {
		return err
	}
	return nil // waited SendTimeout: what still waits is dropped in time
}

// backlogLocked reports whether something waits for a member that is not
// stalled: the Writer waits for those. g.snd is held.
func (g *Group) backlogLocked() bool {
	for p := range g.snd.out {
		if !g.snd.stalled[p] {
			return true
		}
	}
	return false
}

// stallCheckInterval: how often, at most, shout asks the node which peers
// a record goes to while a member is given up.
const stallCheckInterval = 10 * time.Millisecond

// errBacklog: something waits in a member's outbox.
var errBacklog = fmt.Errorf("zyregroup: a member's queue is full: %w", zmtp.ErrPeerNotResponding)

// retryLoop calls f until it succeeds, fails with an error other than
// zmtp.ErrPeerNotResponding, or SendTimeout passes, waiting between tries
// (50 µs, doubling up to 5 ms); with unlock, g.snd (held by the caller) is
// let go while it waits; with count, each wait counts a retry.
func (g *Group) retryLoop(unlock, count bool, f func() error) error {
	err := f()
	if err == nil || !errors.Is(err, zmtp.ErrPeerNotResponding) {
		return err // the common case reads no clock
	}
	deadline := time.Now().Add(g.opts.SendTimeout)
	wait := 50 * time.Microsecond
	var timer *time.Timer
	for {
		if err == nil || !errors.Is(err, zmtp.ErrPeerNotResponding) || time.Now().After(deadline) {
			if timer != nil {
				timer.Stop()
			}
			return err
		}
		if count {
			g.stats.sendRetries.Add(1)
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		if unlock {
			g.snd.Unlock()
		}
		select {
		case <-timer.C:
		case <-g.done:
		}
		if unlock {
			g.snd.Lock()
		}
		select {
		case <-g.done:
			timer.Stop()
			return fmt.Errorf("zyregroup: send: %w", ErrClosed)
		default:
		}
		wait = min(2*wait, 5*time.Millisecond)
		err = f()
	}
}

// AwaitSender waits until we hold the sender key of a peer that match
// accepts (any peer when match is nil) and returns it.
func (g *Group) AwaitSender(ctx context.Context, match func(peer uuid.UUID) bool) (uuid.UUID, error) {
	for {
		g.rcv.Lock()
		if g.rcv.closed {
			g.rcv.Unlock()
			return uuid.Nil, ErrClosed
		}
		for p := range g.rcv.senders {
			if match == nil || match(p) {
				g.rcv.Unlock()
				return p, nil
			}
		}
		ch := g.rcv.changed
		g.rcv.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return uuid.Nil, fmt.Errorf("zyregroup: waiting for a sender in %q: %w", g.group, ctx.Err())
		case <-g.done:
			return uuid.Nil, ErrClosed
		}
	}
}

// Close sends a last batch record, stops the timer, erases the keys, ends
// the Readers (ErrClosed) and leaves the ZRE group. It is safe to call
// twice.
func (g *Group) Close() error {
	g.closeOnce.Do(func() {
		// done first: a Write retrying under g.snd gives up and lets go.
		close(g.done)
		g.wg.Wait()
		g.snd.Lock()
		if g.snd.s.Pending() > 0 {
			if rec, err := g.snd.s.Batch(nil); err == nil && len(rec) > 0 {
				g.shout(rec) // behind what waits (found by review: it overtook it)
				g.flushOutLocked()
			}
		}
		g.snd.closed = true
		g.snd.s.Close()
		for p, ob := range g.snd.out {
			g.stats.undelivered.Add(uint64(len(ob.items)))
			g.dropOutLocked(p, nil)
		}
		g.snd.Unlock()
		g.rcv.Lock()
		g.rcv.closed = true
		for _, q := range g.rcv.queues {
			q.close()
		}
		g.rcv.r.Close()
		g.rcv.Unlock()
		if err := g.node.Leave(g.group); err != nil && !errors.Is(err, zre.ErrClosed) {
			g.log.Debug("zyregroup: leave", "group", g.group, "err", err)
		}
	})
	return nil
}

// Writer is a byte stream into the group: an io.WriteCloser that seals
// chunks (Options.ChunkSize) and shouts them, with batch records when due,
// on Flush and on Close. One Writer per Group is open at a time; a Write
// waits while a member's queue is full (each refused send up to
// Options.SendTimeout, then that member is given up).
type Writer struct {
	g *Group
	// mu: one Write, Flush or Close at a time, also while one waits for
	// a slow member with g.snd let go (then the privgroup Writer is half
	// way through a chunk). Taken before g.snd.
	mu sync.Mutex
	w  *privgroup.Writer
	ok bool // under g.snd
}

var _ io.WriteCloser = (*Writer)(nil)

// NewWriter opens the Group's stream. Receivers read it with
// NewReader(our UUID); the stream ends at Close.
func (g *Group) NewWriter() (*Writer, error) {
	g.snd.Lock()
	defer g.snd.Unlock()
	if g.snd.closed {
		return nil, ErrClosed
	}
	if g.snd.writer != nil {
		return nil, fmt.Errorf("zyregroup: writer of %q: %w", g.group, ErrBusy)
	}
	w := &Writer{g: g, ok: true}
	pw, err := privgroup.NewWriter(g.snd.s, g.writerShout, privgroup.WriterOptions{
		ChunkSize: g.opts.ChunkSize,
		OnRotate:  func(*privgroup.Sender) error { g.stats.rotations.Add(1); return g.distributeLocked(uuid.Nil) },
	})
	if err != nil {
		return nil, fmt.Errorf("zyregroup: writer of %q: %w", g.group, err)
	}
	w.w = pw
	g.snd.writer = w
	return w, nil
}

// testHookBetweenWrites, when set, runs between the chunk-sized pieces of
// one Write, with no lock held.
var testHookBetweenWrites func()

// Write seals and sends p. It takes the Group's sending lock for one
// chunk's worth of p at a time, so that a revocation (Recheck), a member
// leaving and the other events wait for one chunk, not for all of p:
// nothing of p after that is sealed under a key the member holds.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	piece := w.g.opts.ChunkSize
	if piece <= 0 {
		piece = privgroup.DefaultChunkSize
	}
	n := 0
	for {
		k, err := w.write(p[n : n+min(piece, len(p)-n)])
		n += k
		if err != nil || n == len(p) {
			return n, err
		}
		if testHookBetweenWrites != nil {
			testHookBetweenWrites()
		}
	}
}

func (w *Writer) write(p []byte) (int, error) {
	w.g.snd.Lock()
	defer w.g.snd.Unlock()
	if w.g.snd.closed || !w.ok {
		return 0, fmt.Errorf("zyregroup: write: %w", ErrClosed)
	}
	if err := w.g.rotatedLocked("write"); err != nil {
		return 0, err
	}
	n, err := w.w.Write(p)
	w.g.kickLocked()
	return n, w.g.rotateNowLocked("write", err)
}

// rotateNowLocked makes, after the privgroup Writer returned (with err),
// the rotation its own rotation found necessary (a removed peer took the
// new key while it waited), so that nothing more is sealed under that key.
func (g *Group) rotateNowLocked(op string, err error) error {
	if g.snd.rotateErr != nil {
		if rerr := g.rotatedLocked(op); err == nil {
			err = rerr
		}
	}
	return err
}

// Flush sends the partial chunk and a batch record, so receivers can
// release everything written so far.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.g.snd.Lock()
	defer w.g.snd.Unlock()
	if w.g.snd.closed || !w.ok {
		return fmt.Errorf("zyregroup: flush: %w", ErrClosed)
	}
	if err := w.g.rotatedLocked("flush"); err != nil {
		return err
	}
	return w.g.rotateNowLocked("flush", w.w.Flush())
}

// Close ends the stream (the last chunk carries the end mark); the Group
// may then open another Writer.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.g.snd.Lock()
	defer w.g.snd.Unlock()
	if !w.ok {
		return nil
	}
	if w.g.snd.closed {
		w.ok, w.g.snd.writer = false, nil
		return fmt.Errorf("zyregroup: close: %w", ErrClosed)
	}
	// The stream's end is not sent under a key a removed member holds;
	// the Writer stays open, so Close may be tried again.
	if err := w.g.rotatedLocked("close"); err != nil {
		return err
	}
	w.ok = false
	err := w.w.Close()
	// Only now may another Writer open: the end of this stream may have
	// waited for a slow member, with g.snd let go.
	w.g.snd.writer = nil
	return err
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
	done   chan struct{}
	once   sync.Once
	taken  [][]byte // records taken from q in one go, not yet read
	next   int      // index of the next of them
}

var _ io.ReadCloser = (*Reader)(nil)

// NewReader opens the stream of sender (a peer's UUID). It may be opened
// before the sender's key arrives. A Reader of a sender that has left (or
// stopped being trusted) since we last held its key, and has not joined
// the group again, ends at once: Read returns io.ErrUnexpectedEOF. One
// Reader per sender at a time.
func (g *Group) NewReader(sender uuid.UUID) (*Reader, error) {
	g.rcv.Lock()
	defer g.rcv.Unlock()
	if g.rcv.closed {
		return nil, ErrClosed
	}
	q := g.rcv.queues[sender]
	if _, gone := g.rcv.gone[sender]; q == nil && gone {
		// It left (or stopped being trusted) with no Reader open: its
		// stream is cut, and a new queue would never end.
		q = newQueue()
		q.close()
	} else if q == nil {
		q = newQueue()
		g.rcv.queues[sender] = q
	}
	if !q.setReader() {
		return nil, fmt.Errorf("zyregroup: reader of %s in %q: %w", sender, g.group, ErrBusy)
	}
	g.rcv.readers[sender]++
	rd := &Reader{g: g, sender: sender, q: q, done: make(chan struct{})}
	rd.rd = privgroup.NewReader(g.rcv.r, sender, rd.recv)
	return rd, nil
}

func (rd *Reader) recv() ([]byte, error) {
	for {
		if rd.next < len(rd.taken) {
			rec := rd.taken[rd.next]
			rd.taken[rd.next] = nil
			rd.next++
			return rec, nil
		}
		var closed bool
		rd.taken, closed = rd.q.takeAll(rd.taken[:0])
		rd.next = 0
		if len(rd.taken) > 0 {
			continue
		}
		if closed {
			select {
			case <-rd.g.done:
				return nil, fmt.Errorf("zyregroup: read: %w", ErrClosed)
			default:
			}
			return nil, io.EOF
		}
		select {
		case <-rd.q.wake:
		case <-rd.done:
			return nil, fmt.Errorf("zyregroup: read: %w", ErrClosed)
		case <-rd.g.done:
			return nil, fmt.Errorf("zyregroup: read: %w", ErrClosed)
		}
	}
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
		close(rd.done)
		g := rd.g
		g.rcv.Lock()
		rd.q.clearReader()
		if g.rcv.readers[rd.sender]--; g.rcv.readers[rd.sender] <= 0 {
			delete(g.rcv.readers, rd.sender)
			if q := g.rcv.queues[rd.sender]; q != nil && q.isClosed() && !g.rcv.closed {
				// The sender left while we read (memberGone kept its
				// keys for the open Readers and remembered it as gone,
				// unless it has joined again since).
				g.forgetSenderLocked(rd.sender)
			}
		}
		g.rcv.Unlock()
	})
	return nil
}

// queue holds one sender's records until its Reader takes them.
type queue struct {
	mu     sync.Mutex
	recs   [][]byte
	bytes  int
	closed bool
	reader bool
	wake   chan struct{} // capacity 1
}

func newQueue() *queue { return &queue{wake: make(chan struct{}, 1)} }

func (q *queue) push(rec []byte, maxRecs, maxBytes int) bool {
	q.mu.Lock()
	if q.closed || len(q.recs) >= maxRecs || q.bytes+len(rec) > maxBytes {
		q.mu.Unlock()
		return false
	}
	q.recs = append(q.recs, rec)
	q.bytes += len(rec)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// takeAll returns every queued record, in order, and queues the next ones
// in spare (an empty slice whose array the caller is done with), so that
// the Reader takes a burst with one lock and the two arrays alternate.
// closed is reported once nothing is left.
func (q *queue) takeAll(spare [][]byte) (recs [][]byte, closed bool) {
	if cap(spare) > 1024 {
		spare = nil // a burst grew it; let it go
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.recs) == 0 {
		return spare, q.closed
	}
	recs, q.recs, q.bytes = q.recs, spare, 0
	return recs, false
}

func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *queue) isClosed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

func (q *queue) hasReader() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.reader
}

func (q *queue) setReader() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.reader {
		return false
	}
	q.reader = true
	return true
}

func (q *queue) clearReader() {
	q.mu.Lock()
	q.reader = false
	q.mu.Unlock()
}
