package zre

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zmtp"
)

// Refusals in both directions (spec/secure-node.md, "Refusals"):
//
//   - We refuse a peer (Refused): at its beacon, at its connection into
//     our inbox (the CURVE handshake: the peer gets an ERROR with a short
//     reason) or at its HELLO. A HELLO is checked with the name it gives,
//     which the connection stage does not know: so a HELLO refused by the
//     checks (the trust store, SecureConfig.Authorize) closes the peer's
//     connection, and its next connections are checked with that name
//     (refusedHellos): refused again, the peer gets the ERROR, and learns
//     that we refuse it instead of talking to a node that drops what it
//     says.
//   - A peer refuses us (Denied): our connection to its inbox got an
//     ERROR in the CURVE handshake, after the peer proved its key. The
//     node reports it once per refusal episode of a key (until a
//     handshake with that key completes), and at most maxDeniedReports
//     times per key in all; it keeps dialling as ever (the peer may
//     admit us later: the DEALER backs off to 5 s, a link that never
//     connected is dialled again on a beacon after dialRetryAfter).
//     Node.PeerDenial says whether a peer refuses us now.

// Denied: a peer refused us: our connection to its inbox (Addr) was
// refused in the CURVE handshake with an ERROR command, after the peer
// proved its key (its WELCOME), so its node does not admit our key: we
// are not trusted there, our key is revoked there, or our name is that of
// another device there. (Refused is the other direction: we refused a
// peer.) Peer and Name are the peer we dialled, as far as we know it
// (the UUID of its beacon, the name of its HELLO; Name is empty before
// its HELLO). Reason is the peer's own text, cleaned (CleanReason): at
// most MaxReasonRunes printable characters. The ERROR itself is not
// authenticated (as for any TCP connection, someone on the path can cut
// it too).
//
// Reported once per key until a handshake with the peer completes (then
// a later refusal is reported again), at most maxDeniedReports times per
// key; may be dropped for a slow consumer, like Refused. Secure mode on
// the TCP network only.
type Denied struct {
	EventHeader
	Key    curve.PublicKey
	Addr   string // the endpoint we dialled
	Reason string
	// Time is when the refusal came (the latest one for PeerDenial).
	Time time.Time
}

// Type implements Event.
func (*Denied) Type() EventType { return EventDenied }

var _ Event = (*Denied)(nil)

// Bounds of refusals by peers: the keys remembered, the events per key,
// how long a refusal counts as current for PeerDenial (the DEALER tries
// at least every 5 s while it can reach the peer; a link given up is
// dialled again within about 13 s).
const (
	maxDenials       = 256
	maxDeniedReports = 3
	deniedFresh      = 30 * time.Second
)

// MaxReasonRunes bounds the peer's text in a Denied event.
const MaxReasonRunes = 160

// CleanReason makes a peer's text safe to show: valid UTF-8, no control
// or other unprintable characters (each becomes a space; spaces are
// folded), at most MaxReasonRunes characters ("..." marks a cut).
func CleanReason(s string) string {
	var b strings.Builder
	b.Grow(min(len(s), 4*MaxReasonRunes))
	n := 0
	space := true // no leading space
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			if !space {
				b.WriteByte(' ')
				n++
				space = true
			}
		} else {
			b.WriteRune(r)
			n++
			space = false
		}
		if n >= MaxReasonRunes {
			out := strings.TrimRight(b.String(), " ")
			// Make room for the mark, keeping whole runes.
			for utf8.RuneCountInString(out) > MaxReasonRunes-3 {
				_, size := utf8.DecodeLastRuneInString(out)
				out = out[:len(out)-size]
			}
			return out + "..."
		}
	}
	return strings.TrimRight(b.String(), " ")
}

// denial is what the state knows of a peer key that refused us.
type denial struct {
	ev       Denied // the latest refusal
	current  bool   // no handshake with the key completed since
	reported int    // Denied events emitted for the key
	rehello  bool   // the peer asked for our HELLO again (helloAgainReason)
}

// helloAgainReason is the ERROR reason by which a node that refused a
// key's HELLO, and accepts the key now (paired, introduced since), turns
// down that key's next handshake once: the DEALER's reconnection would
// carry only what followed the refused HELLO, which the node drops, so it
// asks for a new link that starts with HELLO (helloAgain). It is not a
// refusal to report. A peer that sends it without reason costs us one
// new link.
const helloAgainReason = "say HELLO again: this node accepts your key now"

// errHelloAgain is recheckRefused's verdict that asks for it.
var errHelloAgain = errors.New("zre: " + helloAgainReason)

// handshakeReport is the outcome of one handshake of our DEALER to the
// peer at endpoint authenticated by key (zmtp.Options.OnHandshake).
type handshakeReport struct {
	endpoint string
	key      curve.PublicKey
	err      error
	at       time.Time
}

// onHandshake is a DEALER's zmtp.Options.OnHandshake in secure mode. It
// runs on that DEALER's goroutine: it hands the outcome to the loop
// without blocking (when the loop is that far behind, it is dropped: a
// refusal repeats at the next try, a success only ends an episode).
func (n *Node) onHandshake(endpoint string, key curve.PublicKey, err error) {
	if err != nil {
		var de *zmtp.DeniedError
		if !errors.As(err, &de) || de.Instead != "READY" {
			return // a network failure, a wrong key, a protocol error
		}
	}
	select {
	case n.handshakes <- handshakeReport{endpoint: endpoint, key: key, err: err, at: n.now()}:
	default:
	}
}

// onHandshakeReport takes a handshake's outcome on the state goroutine.
func (s *state) onHandshakeReport(r handshakeReport) {
	sc := s.sec
	if s.stopped || sc == nil {
		return
	}
	d := sc.denials[r.key]
	if r.err == nil {
		if d != nil && (d.current || d.rehello) {
			s.log.Info("zre: a peer that refused us completed a handshake", "peer", d.ev.Name, "uuid", uuidString(d.ev.Peer), "endpoint", r.endpoint)
			d.current, d.rehello = false, false
			s.helloAgain(r.key, r.endpoint)
		}
		return
	}
	var de *zmtp.DeniedError
	errors.As(r.err, &de)
	reason := CleanReason(de.Reason)
	if reason == helloAgainReason {
		// Not a refusal: the next handshake says HELLO again.
		if d == nil {
			d = s.newDenial(r.key)
		}
		d.current, d.rehello = false, true
		return
	}
	s.stats.peersDenied.Add(1)
	ev := Denied{Key: r.key, Addr: r.endpoint, Reason: reason, Time: r.at}
	for _, p := range s.peers {
		if p.key == r.key && p.endpoint == r.endpoint {
			ev.Peer, ev.Name = p.id, p.name
			break
		}
	}
	if d == nil {
		d = s.newDenial(r.key)
	}
	again := d.current && d.ev.Reason == reason
	if ev.Peer == uuid.Nil && d.ev.Key == r.key {
		ev.Peer, ev.Name = d.ev.Peer, d.ev.Name // the peer went meanwhile
	}
	d.ev, d.current = ev, true
	if again || d.reported >= maxDeniedReports {
		s.log.Debug("zre: refused by the peer again", "peer", ev.Name, "uuid", uuidString(ev.Peer), "endpoint", ev.Addr, "reason", reason)
		return
	}
	d.reported++
	s.log.Warn("zre: the peer refuses our key", "peer", ev.Name, "uuid", uuidString(ev.Peer), "endpoint", ev.Addr, "reason", reason)
	e := ev
	s.emit(&e)
}

// helloAgain says HELLO again, over a new link, to the peer at endpoint
// with key once it accepts us after refusing us: the HELLO we said went
// on a connection it refused (a HELLO whose name another device holds
// there, closed), and the DEALER's reconnection carries only what
// followed it, which a peer drops from a sender whose HELLO it never
// accepted (usertry6: a re-paired phone's chat lines never arrived until
// its agent restarted). The new link starts at sequence 1; what waited
// on the old one is dropped, as the peer would have dropped it. State
// goroutine only.
func (s *state) helloAgain(key curve.PublicKey, endpoint string) {
	for _, p := range s.peers {
		if p.key != key || p.endpoint != endpoint || p.link == nil {
			continue
		}
		s.dropLink(p) // the link first: a sender waiting for room returns
		s.connect(p)  // (tx open again if it entered)
		s.log.Debug("zre: HELLO again to a peer that accepts us now", "peer", p.label(), "endpoint", endpoint)
	}
}

// newDenial remembers key as a peer key that refused us, forgetting the
// oldest beyond maxDenials.
func (s *state) newDenial(key curve.PublicKey) *denial {
	sc := s.sec
	if len(sc.denials) >= maxDenials {
		delete(sc.denials, sc.denialOrder[0])
		sc.denialOrder = sc.denialOrder[1:]
	}
	d := &denial{}
	sc.denials[key] = d
	sc.denialOrder = append(sc.denialOrder, key)
	return d
}

// peerDenial returns the latest refusal by peer if it is current: no
// handshake with its key completed since, and it is not older than
// deniedFresh at now.
func (s *state) peerDenial(peer uuid.UUID, now time.Time) (Denied, bool) {
	if s.sec == nil || peer == uuid.Nil {
		return Denied{}, false
	}
	var best Denied
	ok := false
	for _, d := range s.sec.denials {
		if d.current && d.ev.Peer == peer && now.Sub(d.ev.Time) < deniedFresh && (!ok || d.ev.Time.After(best.Time)) {
			best, ok = d.ev, true
		}
	}
	return best, ok
}

// PeerDenial reports whether peer refuses us now: its node refused our
// connection in the handshake (see Denied) within the last 30 s, and no
// handshake with it completed since. It returns that refusal. It asks
// the node's goroutine, and may be called from any goroutine but that
// one (not from a callback that runs there). Always false on a plain node.
func (n *Node) PeerDenial(peer uuid.UUID) (Denied, bool) {
	var d Denied
	var ok bool
	if n.sec == nil {
		return d, false
	}
	if err := n.do(func(st *state) { d, ok = st.peerDenial(peer, n.now()) }); err != nil {
		return Denied{}, false
	}
	return d, ok
}

// refusedHellos are the keys whose HELLO the checks refused, with what
// that HELLO said that the checks read (its name and trust binding): the
// connection stage checks the key's next connections with it. Written by
// the state goroutine, read by the inbox's handshake goroutines (its
// mutex). Bounded: the oldest is forgotten first.
type refusedHellos struct {
	mu    sync.Mutex
	m     map[curve.PublicKey]refusedHello
	order []curve.PublicKey
}

type refusedHello struct {
	id       uuid.UUID
	name     string
	headers  []Header  // the trust binding only, if any
	reported time.Time // when its refusal was last reported (a Refused event)
}

// refusalReminder is how often a key whose HELLO was refused, and whose
// connections keep being refused, is reported again: a chat or monitor
// started after its first report learns of the impostor too (the
// refusals' own bound, refusals.go, folds the repeats of one source).
const refusalReminder = 10 * time.Second

// remind reports whether key's standing refusal is due to be reported
// again at now, and if so records that it is.
func (t *refusedHellos) remind(key curve.PublicKey, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.m[key]
	if !ok || now.Sub(r.reported) < refusalReminder {
		return false
	}
	r.reported = now
	t.m[key] = r
	return true
}

// maxRefusedHellos bounds refusedHellos.
const maxRefusedHellos = 1024

// maxBindingHeader bounds the binding header kept for a refused HELLO.
const maxBindingHeader = 1024

func (t *refusedHellos) get(key curve.PublicKey) (refusedHello, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.m[key]
	return r, ok
}

func (t *refusedHellos) put(key curve.PublicKey, r refusedHello) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = make(map[curve.PublicKey]refusedHello)
	}
	if _, ok := t.m[key]; !ok {
		if len(t.order) >= maxRefusedHellos {
			delete(t.m, t.order[0])
			t.order = t.order[1:]
		}
		t.order = append(t.order, key)
	}
	t.m[key] = r
}

func (t *refusedHellos) forget(key curve.PublicKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.m[key]; !ok {
		return
	}
	delete(t.m, key)
	for i, k := range t.order {
		if k == key {
			t.order = append(t.order[:i], t.order[i+1:]...)
			break
		}
	}
}

// helloRefused follows a HELLO that the checks (secure.check) refused:
// the key is remembered with the HELLO's name and binding, and the
// connection that carried it closed, so that the peer's next connection
// is refused in the handshake with an ERROR it can tell its user about.
// State goroutine only.
func (s *state) helloRefused(id uuid.UUID, key curve.PublicKey, name string, headers []Header, identity []byte) {
	if key.IsZero() {
		return
	}
	r := refusedHello{id: id, name: name, reported: s.clock}
	if v, ok := headerValue(headers, trust.BindingHeader); ok && len(v) <= maxBindingHeader {
		r.headers = []Header{{Key: trust.BindingHeader, Value: v}}
	}
	s.sec.hellos.put(key, r)
	if s.sec.disconnect != nil && len(identity) == IdentitySize && s.sec.disconnect(identity) {
		s.log.Debug("zre: closed the connection of a refused HELLO", "uuid", uuidString(id), "name", name, "key", key.Z85())
	}
}

// recheckRefused is the connection stage for a key whose HELLO was
// refused: the checks again, with that HELLO's name and binding. handled
// is false for other keys. A refusal is counted, and reported again
// (a Refused event) at most every refusalReminder after its HELLO's. On
// the handshake's goroutine.
func (n *Node) recheckRefused(ctx context.Context, pk PeerKey) (handled bool, err error) {
	r, ok := n.sec.hellos.get(pk.Key)
	if !ok || r.id != pk.UUID {
		return false, nil
	}
	pk.Name, pk.Headers = r.name, r.headers
	err = n.sec.check(ctx, pk, n.sendReport)
	if err == nil {
		// Accepted now: once more refused, asking for a link that starts
		// with HELLO (helloAgainReason); the key's next handshake is
		// checked as anyone's.
		n.sec.hellos.forget(pk.Key)
		return true, errHelloAgain
	}
	n.stats.peersRefused.Add(1)
	if n.sec.hellos.remind(pk.Key, n.now()) {
		n.sendReport(&Refused{EventHeader: EventHeader{Peer: pk.UUID, Name: r.name}, Key: pk.Key, Stage: StageConnection, Addr: pk.Addr, Reason: err})
	}
	return true, err
}
