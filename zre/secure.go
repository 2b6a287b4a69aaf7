package zre

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zmtp"
	"github.com/zyre-go/zyre/zre/zremsg"
)

// Secure mode: CURVE on every connection, v3 beacons, identity bound to
// key. See spec/secure-node.md.

// HeaderPublicKey is the HELLO header that carries a secure node's public
// key in Z85, as the C reference (zyre_set_zcert) sends it.
const HeaderPublicKey = "X-PUBLICKEY"

// Sentinel errors of secure mode; Refused.Reason and the errors returned
// wrap them.
var (
	// ErrKeyMismatch: a beacon, connection or HELLO claims a UUID with
	// another key than the one the UUID is bound or pinned to, or the keys
	// of one peer (CURVE, X-PUBLICKEY, beacon) disagree.
	ErrKeyMismatch = errors.New("zre: key mismatch")
	// ErrUnbound: an unbound peer (its UUID not derived from its key) and
	// SecureConfig.RequireBound is set.
	ErrUnbound = errors.New("zre: unbound peer refused")
	// ErrNoKey: no usable public key where secure mode needs one.
	ErrNoKey = errors.New("zre: no public key")
	// ErrNotAuthorized: SecureConfig.Authorize refused the peer.
	ErrNotAuthorized = errors.New("zre: peer not authorized")
	// ErrNotSecure: a secure-mode call on a plain node.
	ErrNotSecure = errors.New("zre: node not in secure mode")
)

// SecureConfig turns on secure mode (Config.Secure). The zero value of
// each optional field is the default.
type SecureConfig struct {
	// Public and Secret are our long-term CURVE keypair; Public is derived
	// from Secret when zero. Our UUID is UUIDFromKey(Public).
	Public curve.PublicKey
	Secret curve.SecretKey
	// RequireBound refuses unbound peers: those whose UUID is not
	// UUIDFromKey of their key, such as C zyre nodes in CURVE mode, which
	// have random UUIDs. By default (false) they are accepted and their
	// UUID is pinned to the key we first authenticated them with.
	RequireBound bool
	// Authorize, if set, decides on every peer key after the node's own
	// checks passed: once per connection (in the CURVE handshake, before
	// READY; PeerKey.Name is then empty, unless the key's HELLO was
	// refused before: then the name that HELLO gave) and once per HELLO. A non-nil
	// error refuses the peer; its text is sent to the peer at the
	// connection stage, so keep it short.
	//
	// It never runs on the node's own goroutine: at the connection stage
	// on that connection's handshake goroutine, at the hello stage on a
	// goroutine of its own (the peer's later messages wait for it, up to
	// Config.Expired). Calls may therefore be concurrent, with each other
	// and with any Node method. It may call any Node method but Stop and
	// Close (Peers, PeerInfos, Whisper...), and it may block: a
	// connection's handshake waits for it
	// within zmtp's handshake timeout (10 s), a HELLO within
	// Config.Expired. ctx is cancelled when the node closes; Close waits
	// for Authorize calls to return, so one that ignores ctx holds Close
	// up.
	Authorize func(ctx context.Context, k PeerKey) error
	// Trust, optional, wires a trust store in (see TrustConfig): it then
	// decides on every connection and HELLO after the checks above, pins
	// unbound peers across restarts instead of the node's memory, raises
	// KeyChanged events, and statements are exchanged in trust.Group.
	Trust *TrustConfig
}

// Stage says where a secure node checked a peer's key.
type Stage uint8

// Stages of a key check.
const (
	StageBeacon     Stage = iota + 1 // a UDP beacon (unauthenticated)
	StageConnection                  // a CURVE handshake on our inbox
	StageHello                       // a HELLO over an authenticated connection
)

func (s Stage) String() string {
	switch s {
	case StageBeacon:
		return "beacon"
	case StageConnection:
		return "connection"
	case StageHello:
		return "hello"
	}
	return "unknown"
}

// PeerKey is what a secure node knows of a peer when it checks its key.
type PeerKey struct {
	Stage Stage
	// UUID is the UUID the peer claims (beacon, DEALER identity or HELLO).
	UUID uuid.UUID
	// Name is the name from its HELLO ("" before).
	Name string
	// Key is the peer's long-term key: authenticated by CURVE at the
	// connection and hello stages, merely claimed in a beacon.
	Key curve.PublicKey
	// Bound reports UUID == UUIDFromKey(Key).
	Bound bool
	// Addr is where it came from: remote address or endpoint.
	Addr string
	// Headers are its HELLO headers (hello stage only).
	Headers []Header
}

// maxPins bounds the UUID→key pins of unbound peers kept in memory; the
// oldest is forgotten first (a present peer stays protected by the key
// its peer record holds).
const maxPins = 4096

// maxReported bounds the (UUID, key, stage) triples already reported
// with a Refused event; when full it is cleared.
const maxReported = 1024

// secure is a node's secure-mode state. Its fields are read-only after
// New, except pins and hellos (guarded by their mutexes: the inbox's
// handshakes read them) and reported and denials (the state goroutine's).
type secure struct {
	pub          curve.PublicKey
	sec          curve.SecretKey
	requireBound bool
	authorize    func(ctx context.Context, k PeerKey) error
	// dial opens a CURVE DEALER to endpoint, authenticating the server
	// with key (the node's dialSecure; a fake in state tests).
	dial func(endpoint string, key curve.PublicKey) (link, error)
	// disconnect closes the connection into our inbox with the given
	// ZMTP identity and reports whether there was one (the node's
	// disconnectInbound; nil in state tests). State goroutine only.
	disconnect func(identity []byte) bool

	pins     pinTable    // without a trust store
	trust    *trustState // nil without a trust store
	reported map[reportKey]bool
	// refusals bounds the Refused events per source (refusals.go).
	refusals refusalLimiter
	// denials are the peer keys that refused us (denied.go), oldest
	// first in denialOrder (the state goroutine's).
	denials     map[curve.PublicKey]*denial
	denialOrder []curve.PublicKey
	// hellos are the keys whose HELLO the checks refused (denied.go):
	// written by the state goroutine, read by the inbox's handshakes.
	hellos refusedHellos
	// reports carries Refused and KeyChanged events from the inbox's
	// handshake goroutines to the node's loop, which reports them; full
	// means dropped (counted).
	reports chan Event
}

type reportKey struct {
	id    uuid.UUID
	key   curve.PublicKey
	stage Stage // 0 for KeyChanged
}

// pinTable pins unbound UUIDs to the key first authenticated with them.
type pinTable struct {
	mu    sync.Mutex
	m     map[uuid.UUID]curve.PublicKey
	order []uuid.UUID
}

func (t *pinTable) get(id uuid.UUID) (curve.PublicKey, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k, ok := t.m[id]
	return k, ok
}

// pin records id→key unless id is pinned already.
func (t *pinTable) pin(id uuid.UUID, key curve.PublicKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = make(map[uuid.UUID]curve.PublicKey)
	}
	if _, ok := t.m[id]; ok {
		return
	}
	if len(t.order) >= maxPins {
		delete(t.m, t.order[0])
		t.order = t.order[1:]
	}
	t.m[id] = key
	t.order = append(t.order, id)
}

func newSecure(c *SecureConfig) (*secure, error) {
	if c.Secret.IsZero() {
		return nil, fmt.Errorf("zre: secure mode: %w: no secret key", ErrNoKey)
	}
	pub := c.Secret.Public()
	if !c.Public.IsZero() && !c.Public.Equal(pub) {
		return nil, fmt.Errorf("zre: secure mode: public key %s does not match the secret key: %w", c.Public, curve.ErrInvalidKey)
	}
	if pub.Bytes()[0] == 0 {
		// The C reference reads a beacon key starting with 0x00 as no key.
		return nil, fmt.Errorf("zre: secure mode: public key %s starts with octet 0x00, which C zyre reads as no key (make another with curve.GenerateKeyPair): %w", pub, curve.ErrInvalidKey)
	}
	sk, _ := curve.NewSecretKey(c.Secret.Bytes())
	sc := &secure{
		pub:          pub,
		sec:          sk,
		requireBound: c.RequireBound,
		authorize:    c.Authorize,
		reported:     make(map[reportKey]bool),
		denials:      make(map[curve.PublicKey]*denial),
		reports:      make(chan Event, 64),
	}
	if c.Trust != nil {
		t, err := newTrustState(c.Trust, pub)
		if err != nil {
			return nil, err
		}
		sc.trust = t
	}
	return sc, nil
}

// pinned returns the key an unbound UUID is pinned to: by the trust store
// when there is one, else in memory.
func (sc *secure) pinned(id uuid.UUID) (curve.PublicKey, bool) {
	if sc.trust != nil {
		return sc.trust.pinned(id)
	}
	return sc.pins.get(id)
}

// looksDerived reports whether id has the form UUIDFromKey gives: version
// 5, RFC 9562 variant. Such a UUID is only ever accepted bound, so nobody
// can claim a secure node's UUID with another key, even before we met the
// real node. (A C node's random UUID has this form with probability 1/64
// when it is not made by libuuid; see spec/secure-node.md.)
func looksDerived(id uuid.UUID) bool {
	return id.Version() == 5 && id.Variant() == uuid.RFC4122
}

// checkClaim decides on a claim of UUID id with key, from what every
// stage knows: the derivation and the pins.
func (sc *secure) checkClaim(id uuid.UUID, key curve.PublicKey) error {
	return sc.claim(id, key, true)
}

// claim is checkClaim, with or without the pins (an authenticated claim
// goes to the trust store, which checks its own pins and reports a key
// change).
func (sc *secure) claim(id uuid.UUID, key curve.PublicKey, usePins bool) error {
	switch {
	case key.IsZero():
		return fmt.Errorf("%w for UUID %s", ErrNoKey, uuidString(id))
	case IsBound(id, key):
		return nil
	case looksDerived(id):
		return fmt.Errorf("%w: UUID %s is key-derived, not from key %s", ErrKeyMismatch, uuidString(id), key)
	}
	if pinned, ok := sc.pinned(id); usePins && ok && pinned != key {
		return fmt.Errorf("%w: UUID %s is pinned to key %s, not %s", ErrKeyMismatch, uuidString(id), pinned, key)
	}
	if sc.requireBound {
		return fmt.Errorf("%w: UUID %s is not derived from key %s", ErrUnbound, uuidString(id), key)
	}
	return nil
}

// Refused: a secure node refused a beacon, a connection or a HELLO
// claiming Peer (the claimed UUID) with Key: a key mismatch (someone
// claims a UUID bound or pinned to another key), an unbound peer under
// RequireBound, or SecureConfig.Authorize said no. Reason wraps
// ErrKeyMismatch, ErrUnbound, ErrNotAuthorized or ErrNoKey. Each
// (UUID, key, stage) is reported once (a forged beacon repeats every
// second); Stats counts every refusal. Refused events may be dropped for a
// slow consumer.
type Refused struct {
	EventHeader
	Key    curve.PublicKey
	Stage  Stage
	Addr   string
	Reason error
	// Count is 0 for a refusal reported on its own; otherwise this
	// event, the latest of them, stands for Count refusals of its source
	// address (or of its UUID) that came within Over and were not
	// reported one by one, and Reason says so (see refusals.go: at most
	// a few events per source a minute).
	Count uint64
	Over  time.Duration
}

// Type implements Event.
func (*Refused) Type() EventType { return EventRefused }

var _ Event = (*Refused)(nil)

// note reports an event that a check raised: Refused or KeyChanged.
// State goroutine only.
func (s *state) note(e Event) {
	switch e := e.(type) {
	case *Refused:
		s.report(e)
	case *KeyChanged:
		k := reportKey{e.Peer, e.New, 0}
		if s.sec.reported[k] {
			return
		}
		s.log.Warn("zre: KEY CHANGED", "uuid", uuidString(e.Peer), "name", e.Name, "old", e.OldFingerprint, "new", e.NewFingerprint, "addr", e.Addr)
		if len(s.sec.reported) >= maxReported {
			clear(s.sec.reported)
		}
		s.sec.reported[k] = true
		s.emit(e)
	}
}

// report counts a refusal and queues a Refused event the first time this
// (UUID, key, stage) is refused. State goroutine only.
func (s *state) report(r *Refused) {
	if r.Stage == StageBeacon {
		s.stats.beaconsRefused.Add(1)
	} else {
		s.stats.peersRefused.Add(1)
	}
	k := reportKey{r.Peer, r.Key, r.Stage}
	if s.sec.reported[k] {
		s.log.Debug("zre: refused again", "stage", r.Stage, "uuid", uuidString(r.Peer), "key", r.Key.Z85(), "addr", r.Addr)
		return
	}
	if len(s.sec.reported) >= maxReported {
		clear(s.sec.reported)
	}
	s.sec.reported[k] = true
	if !s.sec.refusals.allow(r, s.clock) { // refusals.go
		s.stats.refusalsAggregated.Add(1)
		s.log.Debug("zre: refused (reported later, with others)", "stage", r.Stage, "uuid", uuidString(r.Peer), "key", r.Key.Z85(), "addr", r.Addr, "err", r.Reason)
		return
	}
	s.emitRefused(r)
}

// emitRefused logs and queues a Refused event.
func (s *state) emitRefused(r *Refused) {
	s.log.Warn("zre: refused", "stage", r.Stage, "uuid", uuidString(r.Peer), "name", r.Name, "key", r.Key.Z85(), "addr", r.Addr, "err", r.Reason)
	s.emit(r)
}

// refusalsDue reports the refusals counted since their source's last
// report, once its gap passed (refusals.go). State goroutine (reap).
func (s *state) refusalsDue(now time.Time) {
	for _, r := range s.sec.refusals.due(now) {
		s.emitRefused(r)
	}
}

// authorize is the inbox's zmtp.Authorizer in secure mode: it runs on the
// connection's goroutine, after CURVE authenticated the client's key and
// before READY.
func (n *Node) authorize(ctx context.Context, req zmtp.AuthRequest) error {
	sc := n.sec
	addr := ""
	if req.RemoteAddr != nil {
		addr = req.RemoteAddr.String()
	}
	key, err := curve.NewPublicKey(req.PublicKey)
	if err != nil || key.IsZero() {
		return fmt.Errorf("zre: %w: connection from %s has no CURVE key", ErrNoKey, addr)
	}
	idb, _ := req.Metadata.Get("Identity")
	if len(idb) != IdentitySize || idb[0] != 1 {
		// Not a ZRE DEALER; the inbox would drop its messages anyway.
		return fmt.Errorf("zre: %w: identity of %d octets", ErrBadIdentity, len(idb))
	}
	id := uuid.UUID(idb[1:])
	pk := PeerKey{Stage: StageConnection, UUID: id, Key: key, Bound: IsBound(id, key), Addr: addr}
	if handled, err := n.recheckRefused(ctx, pk); handled { // denied.go
		if err != nil {
			return shortReason(err)
		}
		return nil
	}
	if err := sc.check(ctx, pk, n.sendReport); err != nil {
		n.sendReport(&Refused{EventHeader: EventHeader{Peer: id}, Key: key, Stage: StageConnection, Addr: addr, Reason: err})
		return shortReason(err)
	}
	return nil
}

// mayBlock reports whether check may block or call the node: an
// Authorize or a trust store is set. Without them it is a lookup in the
// pins, which the loop may do itself (checkOffLoop).
func (sc *secure) mayBlock() bool { return sc.authorize != nil || sc.trust != nil }

// check decides on an authenticated claim (connection or HELLO stage):
// the claim check, the trust store if any, then SecureConfig.Authorize.
// note gets the KeyChanged events the store raises.
func (sc *secure) check(ctx context.Context, pk PeerKey, note func(Event)) error {
	if err := sc.claim(pk.UUID, pk.Key, sc.trust == nil); err != nil {
		return err
	}
	if sc.trust != nil {
		if err := sc.trust.admit(ctx, pk, note); err != nil {
			return err
		}
	}
	if sc.authorize != nil {
		if err := sc.authorize(ctx, pk); err != nil {
			return fmt.Errorf("%w: %w", ErrNotAuthorized, err)
		}
	}
	return nil
}

// shortReason is the text sent to a refused client in the CURVE ERROR
// command: the kind of refusal, not our records. (A device that calls
// itself like another device known here learns only that the name is
// taken, not whose it is.)
func shortReason(err error) error {
	switch {
	case errors.Is(err, errHelloAgain):
		return errors.New(helloAgainReason)
	case errors.Is(err, trust.ErrNameTaken):
		return errors.New("name of another device here")
	case errors.Is(err, ErrKeyMismatch):
		return errors.New("key mismatch for this UUID")
	case errors.Is(err, ErrUnbound):
		return errors.New("unbound UUID refused")
	case errors.Is(err, ErrRevoked):
		return errors.New("key revoked")
	case errors.Is(err, ErrNotAuthorized):
		return errors.New("key not authorized")
	}
	return errors.New("refused")
}

// routerOptions are the inbox's zmtp options: CURVE server with our key
// and the authorizer in secure mode.
func (n *Node) routerOptions() zmtp.Options {
	o := zmtp.Options{Logger: n.cfg.Logger,
		PreAdmit: PreAdmitBytes, AdmitWait: n.cfg.Expired, Admitted: n.admittedAlready} // admitted.go
	if n.sec != nil {
		o.Mechanism = zmtp.CurveServer(zmtp.CurveServerConfig{Public: n.sec.pub, Secret: n.sec.sec})
		o.Authorize = n.authorize
	}
	return o
}

// dealerOptions are a DEALER's zmtp options; in secure mode a CURVE client
// that authenticates the peer by serverKey.
func (n *Node) dealerOptions(serverKey curve.PublicKey) zmtp.Options {
	o := zmtp.Options{
		Identity: Identity(n.cfg.UUID),
		SendHWM:  n.cfg.SendHWM,
		Logger:   n.cfg.Logger,
		// Tries at 0, 1 s, 3 s...: giveUpLink closes a link that never
		// connected between the second and the third (see dial.go).
		ReconnectInterval: dialRetry,
		// Nothing comes back on a DEALER to a ZRE inbox: no buffer for it
		// (a peer that sends anyway is not read from).
		RecvHWM: 1,
		// Nor more than a HELLO's worth in one message (a stranger's
		// inbox that we dial on its beacon may send anyway).
		MaxRecvSize: PreAdmitBytes,
	}
	if t := n.cfg.SendQueueTime; t > 0 {
		o.SendBound = zmtp.SendBound{Target: t} // (Config.SendQueueTime)
	}
	if n.sec != nil {
		o.Mechanism = zmtp.CurveClient(zmtp.CurveClientConfig{Public: n.sec.pub, Secret: n.sec.sec, ServerKey: serverKey})
	}
	return o
}

// beacon returns our beacon: v3 with our key in secure mode, v1 otherwise.
func (n *Node) beaconFor(port uint16) Beacon {
	if n.sec != nil {
		return Beacon{Version: BeaconV3, UUID: n.cfg.UUID, Port: port, PublicKey: n.sec.pub}
	}
	return Beacon{Version: BeaconV1, UUID: n.cfg.UUID, Port: port}
}

// PublicKey returns the node's long-term public key, or the zero key for a
// plain node.
func (n *Node) PublicKey() curve.PublicKey {
	if n.sec == nil {
		return curve.PublicKey{}
	}
	return n.sec.pub
}

// Secure reports whether the node runs in secure mode.
func (n *Node) Secure() bool { return n.sec != nil }

// PeerKey returns the long-term public key a peer authenticated with (its
// CURVE handshake; the key its HELLO was checked against), and false for a
// peer that has not said HELLO or when the node is plain.
func (n *Node) PeerKey(peer uuid.UUID) (curve.PublicKey, bool) {
	if n.sec == nil {
		return curve.PublicKey{}, false
	}
	info, _ := n.dir.info(peer) // (published at Enter: no round trip to the loop)
	return info.Key, !info.Key.IsZero()
}

// ConnectPeerKey is ConnectPeer for a secure node: it connects to the inbox
// at endpoint, authenticating it by key (the peer's long-term public key,
// from its certificate or a pairing), and says HELLO. The peer's HELLO must
// come over a connection authenticated with the same key; it tells its
// UUID, which may be unbound (a C zyre node). As with ConnectPeer without a
// UUID, that HELLO must advertise exactly endpoint.
func (n *Node) ConnectPeerKey(ctx context.Context, endpoint string, key curve.PublicKey) error {
	if n.sec == nil {
		return fmt.Errorf("zre: connect to %s by key: %w", endpoint, ErrNotSecure)
	}
	if key.IsZero() {
		return fmt.Errorf("zre: connect to %s: %w", endpoint, ErrNoKey)
	}
	return n.connectPeer(ctx, endpoint, uuid.Nil, key)
}

// secureHello checks a HELLO in secure mode before it is acted on: the key
// CURVE authenticated, the HELLO's X-PUBLICKEY and the key we dialled (from
// a beacon or ConnectPeerKey) must agree. It returns the peer's key and
// what checkHello (the claim, the trust store and SecureConfig.Authorize)
// is to decide on.
func (s *state) secureHello(id uuid.UUID, p *peer, m *zremsg.Msg, in inboxMsg) (curve.PublicKey, PeerKey, error) {
	key, err := curve.NewPublicKey(in.publicKey)
	if err != nil || key.IsZero() {
		return key, PeerKey{}, fmt.Errorf("%w: HELLO from %s over a connection without a CURVE key", ErrNoKey, uuidString(id))
	}
	hk, ok := m.Header(HeaderPublicKey)
	if !ok {
		return key, PeerKey{}, fmt.Errorf("%w: HELLO from %s without %s", ErrNoKey, uuidString(id), HeaderPublicKey)
	}
	claimed, err := curve.ParsePublicKey(hk)
	if err != nil {
		return key, PeerKey{}, fmt.Errorf("%w: HELLO from %s: %s: %w", ErrKeyMismatch, uuidString(id), HeaderPublicKey, err)
	}
	if claimed != key {
		return key, PeerKey{}, fmt.Errorf("%w: HELLO from %s: %s %s, but the connection is authenticated as %s", ErrKeyMismatch, uuidString(id), HeaderPublicKey, claimed, key)
	}
	if p != nil && !p.key.IsZero() && p.key != key {
		return key, PeerKey{}, fmt.Errorf("%w: HELLO from %s with key %s, but we know it with key %s", ErrKeyMismatch, uuidString(id), key, p.key)
	}
	if pp := s.pending[m.Endpoint]; pp != nil && pp.key != key {
		return key, PeerKey{}, fmt.Errorf("%w: HELLO from %s advertises %s, which we connected to with key %s, not %s", ErrKeyMismatch, uuidString(id), m.Endpoint, pp.key, key)
	}
	pk := PeerKey{Stage: StageHello, UUID: id, Name: m.Name, Key: key, Bound: IsBound(id, key), Addr: in.from(), Headers: slices.Clone(m.Headers)}
	return key, pk, nil
}

// checkHello runs secure.check on a HELLO on the state goroutine: only
// when there is no checkOffLoop (state tests).
func (s *state) checkHello(pk PeerKey, in inboxMsg) error {
	err := s.sec.check(s.ctx(), pk, s.note)
	s.afterCheck(err, in.identity, pk.Key)
	if err != nil {
		s.helloRefused(pk.UUID, pk.Key, pk.Name, pk.Headers, in.identity) // denied.go
	} else {
		s.sec.hellos.forget(pk.Key)
	}
	return err
}

// afterCheck closes the connection of a peer refused as revoked: one
// made before the revocation.
func (s *state) afterCheck(err error, identity []byte, key curve.PublicKey) {
	if errors.Is(err, ErrRevoked) {
		s.disconnectRevoked(identity, key)
	}
}

// headerValue returns the value of the first header named key.
func headerValue(hs []Header, key string) (string, bool) {
	for _, h := range hs {
		if h.Key == key {
			return h.Value, true
		}
	}
	return "", false
}

// ctx is the context for Authorize calls made by the state.
func (s *state) ctx() context.Context {
	if s.baseCtx != nil {
		return s.baseCtx
	}
	return context.Background()
}

// secureBeacon checks a beacon in secure mode: a v3 beacon with a key, a
// claim that passes checkClaim, and the key of the peer if we know it.
// It returns false when the beacon is to be ignored (refusals reported).
func (s *state) secureBeacon(b Beacon, from string) bool {
	var err error
	p := s.peers[b.UUID]
	switch err = s.sec.checkClaim(b.UUID, b.PublicKey); {
	case err != nil:
	case s.sec.trust != nil && s.sec.trust.revoked[b.PublicKey]:
		err = fmt.Errorf("%w: beacon for %s with key %s", ErrRevoked, uuidString(b.UUID), b.PublicKey)
	case p != nil && !p.key.IsZero() && p.key != b.PublicKey:
		err = fmt.Errorf("%w: beacon for %s with key %s, but we know it with key %s", ErrKeyMismatch, uuidString(b.UUID), b.PublicKey, p.key)
	}
	if err != nil {
		s.report(&Refused{EventHeader: EventHeader{Peer: b.UUID}, Key: b.PublicKey, Stage: StageBeacon, Addr: from, Reason: err})
		return false
	}
	return true
}
