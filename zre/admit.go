package zre

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre/zremsg"
)

// admitter decides who may be a peer, apart from the protocol (state.go:
// peers, groups, sequence numbers, presence, events). plainAdmitter
// admits whoever speaks ZRE, as the C reference does; secureAdmitter
// (secure mode) checks every beacon and HELLO against the key that
// authenticated it, the pins, the trust store and SecureConfig.Authorize,
// refuses and reports (Refused), and dials with CURVE. The state calls it
// on its own goroutine, at the points where admission decides.
type admitter interface {
	// helloHeaders appends to hs what our HELLO says for admission (in
	// secure mode the trust binding and X-PUBLICKEY, last).
	helloHeaders(hs []Header) []Header
	// readyIsLive reports whether a ready peer counts as alive while its
	// link reconnects: in secure mode it proved its key, and an
	// unauthenticated claim (a beacon) never evicts it.
	readyIsLive() bool
	// dial opens our link to a peer's inbox; key authenticates it in
	// secure mode (zero in plain mode, where it is unused).
	dial(endpoint string, key curve.PublicKey) (link, error)

	// beaconForm checks the form of a parsed beacon: version 1 in plain
	// mode, a key in secure mode. An error drops it as invalid.
	beaconForm(b Beacon) error
	// beacon decides on a well-formed beacon's claim (ours too); false:
	// ignore it (a refusal is counted and reported).
	beacon(b Beacon, from netip.AddrPort) bool

	// waits reports whether m from id waits for the verdict on its
	// sender's HELLO, which is being checked off the loop (it holds m).
	waits(id uuid.UUID, in inboxMsg, m *zremsg.Msg) bool
	// hello decides on a HELLO from id (p: the peer we know by id, or
	// nil) before anything changes; checked is the key a check off the
	// loop accepted for it (nil before). It returns the peer's key and
	// whether to act on the HELLO now; false: refused (reported) or held
	// for a check off the loop.
	hello(id uuid.UUID, p *peer, m *zremsg.Msg, in inboxMsg, checked *curve.PublicKey) (curve.PublicKey, bool)
	// admitted follows a HELLO acted on: p (ready now) with key, its
	// HELLO advertising endpoint.
	admitted(p *peer, key curve.PublicKey, endpoint string)
	// sender checks that m, from p (ready), came over a connection of
	// p's; an error drops m.
	sender(p *peer, m *zremsg.Msg, in inboxMsg) error

	// tick is admission's part of the housekeeping tick (reap): the
	// trust store's reload, the holds that waited too long for a verdict.
	tick(now time.Time)
}

// admission is the part of the state that admission owns; state embeds
// it. adm is plainAdmitter{} unless setSecure made the state secure.
type admission struct {
	adm admitter

	// sec is the secure mode's state (nil in plain mode), baseCtx the
	// context of its Authorize calls.
	sec     *secure
	baseCtx context.Context

	// checkOffLoop, set by the node in secure mode, runs the checks of a
	// HELLO off the state goroutine; the verdict comes back to onVerdict.
	// nil (state tests): checked on the spot.
	checkOffLoop func(id uuid.UUID, token uint64, pk PeerKey)
	held         map[uuid.UUID]*heldPeer // HELLOs being checked, and what followed
	heldSeq      uint64
	heldBytes    int // octets of the messages in held
	checking     int // checks started by checkOffLoop whose verdict has not come back (maxChecks)
}

// setSecure puts s in secure mode with sc.
func (s *state) setSecure(sc *secure) {
	s.sec = sc
	s.adm = secureAdmitter{s: s, sc: sc}
}

var (
	_ admitter = plainAdmitter{}
	_ admitter = secureAdmitter{}
)

// plainAdmitter admits whoever speaks ZRE (plain mode).
type plainAdmitter struct{ s *state }

func (plainAdmitter) helloHeaders(hs []Header) []Header { return hs }
func (plainAdmitter) readyIsLive() bool                 { return false }

func (a plainAdmitter) dial(endpoint string, _ curve.PublicKey) (link, error) {
	return a.s.dial(endpoint)
}

func (plainAdmitter) beaconForm(b Beacon) error {
	if b.Version != BeaconV1 {
		return fmt.Errorf("%w: version %d beacon in plain mode", ErrBadBeacon, b.Version)
	}
	return nil
}

func (plainAdmitter) beacon(Beacon, netip.AddrPort) bool          { return true }
func (plainAdmitter) waits(uuid.UUID, inboxMsg, *zremsg.Msg) bool { return false }
func (plainAdmitter) admitted(*peer, curve.PublicKey, string)     {}
func (plainAdmitter) sender(*peer, *zremsg.Msg, inboxMsg) error   { return nil }
func (plainAdmitter) tick(time.Time)                              {}
func (plainAdmitter) hello(uuid.UUID, *peer, *zremsg.Msg, inboxMsg, *curve.PublicKey) (curve.PublicKey, bool) {
	return curve.PublicKey{}, true
}

// secureAdmitter is secure mode's admission (secure.go, trust.go,
// verdict.go): keys, pins, trust, refusals.
type secureAdmitter struct {
	s  *state
	sc *secure
}

func (a secureAdmitter) helloHeaders(hs []Header) []Header {
	if t := a.sc.trust; t != nil && t.binding != "" {
		hs = append(hs, Header{Key: trust.BindingHeader, Value: t.binding})
	}
	return append(hs, Header{Key: HeaderPublicKey, Value: a.sc.pub.Z85()})
}

func (secureAdmitter) readyIsLive() bool { return true }

func (a secureAdmitter) dial(endpoint string, key curve.PublicKey) (link, error) {
	return a.sc.dial(endpoint, key)
}

// beaconForm: as the C reference, a secure node uses only v3 beacons with
// a key (a v1 beacon, or a v3 one whose key starts with 0x00, would be a
// downgrade).
func (secureAdmitter) beaconForm(b Beacon) error {
	if !b.HasKey() {
		return fmt.Errorf("%w: version %d beacon without a key in secure mode", ErrBadBeacon, b.Version)
	}
	return nil
}

func (a secureAdmitter) beacon(b Beacon, from netip.AddrPort) bool {
	s := a.s
	if b.UUID == s.self {
		if b.PublicKey != a.sc.pub {
			// Someone claims our UUID: a forgery.
			s.report(&Refused{EventHeader: EventHeader{Peer: b.UUID}, Key: b.PublicKey, Stage: StageBeacon, Addr: from.String(),
				Reason: fmt.Errorf("%w: beacon claims our own UUID with key %s", ErrKeyMismatch, b.PublicKey)})
			return false
		}
		return true
	}
	return s.secureBeacon(b, from.String()) // secure.go
}

func (a secureAdmitter) waits(id uuid.UUID, in inboxMsg, m *zremsg.Msg) bool {
	s := a.s
	h := s.held[id]
	if h == nil {
		return false
	}
	s.hold(id, h, in, m) // verdict.go
	return true
}

// hello checks a HELLO before anything changes: a refused HELLO leaves the
// real peer (if any) as it was.
func (a secureAdmitter) hello(id uuid.UUID, p *peer, m *zremsg.Msg, in inboxMsg, checked *curve.PublicKey) (curve.PublicKey, bool) {
	s := a.s
	key, pk, err := s.secureHello(id, p, m, in) // secure.go
	if err == nil && (checked == nil || *checked != key) {
		if s.checkOffLoop != nil {
			// Authorize and the trust store may block or call the node:
			// they run on a goroutine of their own, and this peer's
			// messages wait for the verdict (onVerdict).
			s.startHold(id, in, m, pk)
			return key, false
		}
		err = s.checkHello(pk, in)
	}
	if err != nil {
		s.stats.messagesDropped.Add(1)
		s.report(&Refused{EventHeader: EventHeader{Peer: id, Name: m.Name}, Key: key, Stage: StageHello, Addr: in.from(), Reason: err})
		return key, false
	}
	return key, true
}

func (a secureAdmitter) admitted(p *peer, key curve.PublicKey, endpoint string) {
	s := a.s
	if a.sc.trust == nil && !IsBound(p.id, key) {
		a.sc.pins.pin(p.id, key) // (the trust store pins it when there is one)
	}
	if p.endpoint != endpoint && !linkConnected(p.link) {
		// The HELLO is authenticated, the beacon that gave p.endpoint is
		// not (it may replay the peer's UUID and key from another
		// address): while our link there has not completed a CURVE
		// handshake, follow the HELLO.
		s.log.Debug("zre: reconnecting to the endpoint of an authenticated HELLO", "peer", p.label(), "from", p.endpoint, "to", endpoint)
		s.dropLink(p)
		p.endpoint = endpoint
		s.connect(p)
	}
}

// sender: cannot fail while the inbox refuses a second connection with the
// same identity and another key; checked all the same.
func (secureAdmitter) sender(p *peer, m *zremsg.Msg, in inboxMsg) error {
	if !bytes.Equal(in.publicKey, p.key.Bytes()) {
		return fmt.Errorf("%w: %s from %s over a connection not authenticated with its key", ErrKeyMismatch, m.ID, p.label())
	}
	return nil
}

func (a secureAdmitter) tick(now time.Time) {
	if a.sc.trust != nil {
		a.s.trustTick() // trust.go
	}
	a.s.expireHeld(now)  // verdict.go
	a.s.refusalsDue(now) // refusals.go
}
