package zre

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/zmtp"
	"github.com/zyre-go/zyre/zre/zremsg"
)

// refusingPair starts alpha (admits everyone) and beta, whose Authorize
// refuses alpha's key when refuse says so; both beacon on loopback, so
// each dials the other on its beacons (and again after a dial given up).
func refusingPair(t *testing.T, refuse func(k PeerKey, alpha curve.PublicKey) bool) (a, b *Node) {
	t.Helper()
	port := testBeaconPort()
	alphaPub, alphaSec := genKeys(t)
	a = startNode(t, Config{Name: "alpha", Beacon: BeaconConfig{Port: port}, Secure: &SecureConfig{Secret: alphaSec}})
	b = startNode(t, Config{Name: "beta", Beacon: BeaconConfig{Port: port}, Secure: &SecureConfig{Secret: mustSecret(t),
		Authorize: func(_ context.Context, k PeerKey) error {
			if refuse(k, alphaPub) {
				return errors.New("not on beta's list")
			}
			return nil
		}}})
	return a, b
}

// deniedEvents drains what a's events hold now (after two round trips
// to its loop, which flush what it queued before) and counts the Denied
// events among them.
func deniedEvents(t *testing.T, a *Node) int {
	t.Helper()
	a.PeerDenial(a.UUID())
	a.PeerDenial(a.UUID())
	n := 0
	for {
		select {
		case e := <-a.Events():
			if _, ok := e.(*Denied); ok {
				n++
			}
		default:
			return n
		}
	}
}

func isDenied(e Event) bool { _, ok := e.(*Denied); return ok }

// TestSecureDeniedAtConnection: a node whose connection a peer refuses in
// the CURVE handshake reports it once (Denied: the peer, its name, the
// endpoint, the peer's reason), not once per try, and PeerDenial says so
// until a handshake completes.
func TestSecureDeniedAtConnection(t *testing.T) {
	var allow atomic.Bool
	a, b := refusingPair(t, func(k PeerKey, alpha curve.PublicKey) bool { return k.Key == alpha && !allow.Load() })
	e := waitEvent(t, a, eventTimeout, "DENIED by beta", isDenied).(*Denied)
	if e.Peer != b.UUID() || e.Key != b.PublicKey() || e.Addr != b.Endpoint() || e.Reason != "key not authorized" || e.Time.IsZero() {
		t.Fatalf("Denied %+v, want beta %s at %s with the reason %q", e, b.UUID(), b.Endpoint(), "key not authorized")
	}
	if e.Type() != EventDenied || e.Type().String() != "DENIED" {
		t.Fatalf("type %v", e.Type())
	}
	// beta's HELLO reached alpha (alpha admits it): the name is known by
	// the time alpha's dial is refused, or at the next refusal.
	if d, ok := a.PeerDenial(b.UUID()); !ok || d.Reason != "key not authorized" {
		t.Fatalf("PeerDenial(beta) = %+v, %v", d, ok)
	}
	// Several more tries (the DEALER's, and the redials on beta's
	// beacons after a dial given up): no other event.
	waitFor(t, "three refused tries", func() bool { return a.Stats().PeersDenied >= 3 })
	if n := deniedEvents(t, a); n != 0 {
		t.Fatalf("%d more Denied events after %d refused tries, want none", n, a.Stats().PeersDenied)
	}
	if _, ok := a.PeerDenial(a.UUID()); ok {
		t.Fatal("PeerDenial of ourselves")
	}
	// beta admits alpha now: the next handshake completes and the
	// refusal is over.
	allow.Store(true)
	waitFor(t, "the refusal over", func() bool { _, ok := a.PeerDenial(b.UUID()); return !ok })
	waitEvent(t, b, eventTimeout, "ENTER alpha", isEnter(a.UUID()))
}

// TestSecureDeniedAtHello: a peer that refuses our HELLO (its checks
// need the name: a name taken, say) closes our connection and refuses
// the next one in the handshake, with the checks run on that HELLO's
// name: we get a Denied with its reason within seconds, once, and the
// refusing node reports its refusal once (at the HELLO).
func TestSecureDeniedAtHello(t *testing.T) {
	var connStageNamed atomic.Int32
	a, b := refusingPair(t, func(k PeerKey, alpha curve.PublicKey) bool {
		if k.Key != alpha || k.Name == "" {
			return false // the connection stage alone admits alpha
		}
		if k.Stage == StageConnection && k.Name == "alpha" {
			connStageNamed.Add(1)
		}
		return true
	})
	waitEvent(t, b, eventTimeout, "REFUSED alpha at its HELLO", isRefused(a.UUID(), a.PublicKey(), StageHello, ErrNotAuthorized))
	start := time.Now()
	e := waitEvent(t, a, eventTimeout, "DENIED by beta", isDenied).(*Denied)
	if e.Peer != b.UUID() || e.Reason != "key not authorized" {
		t.Fatalf("Denied %+v", e)
	}
	if connStageNamed.Load() == 0 {
		t.Fatal("the connection stage was not checked with the refused HELLO's name")
	}
	before := a.Stats().PeersDenied
	waitFor(t, "two more refused tries", func() bool { return a.Stats().PeersDenied >= before+2 })
	if n := deniedEvents(t, a); n != 0 {
		t.Fatalf("%d more Denied events", n)
	}
	// beta reported its refusal at the HELLO, then at most once every
	// refusalReminder (for a chat started since), not at each connection
	// refused since.
	b.PeerDenial(a.UUID())
	again := 0
	for {
		select {
		case ev := <-b.Events():
			if r, ok := ev.(*Refused); ok && r.Peer == a.UUID() {
				again++
			}
			continue
		default:
		}
		break
	}
	if max := int(time.Since(start) / refusalReminder); again > max {
		t.Fatalf("beta reported alpha %d more times in %v, at most %d (one every %v)", again, time.Since(start).Round(time.Second), max, refusalReminder)
	}
	if b.Stats().PeersRefused < 2 {
		t.Fatalf("beta counted %d refusals", b.Stats().PeersRefused)
	}
}

// TestDeniedReportBounds drives the state: one event per key and episode
// whatever the number of tries, a new one after a completed handshake or
// with another reason, at most maxDeniedReports per key, and at most
// maxDenials keys remembered.
func TestDeniedReportBounds(t *testing.T) {
	h := newSecureHarness(t)
	s := h.st
	key, _ := genKeys(t)
	denied := func(reason string) handshakeReport {
		return handshakeReport{endpoint: "tcp://10.0.0.9:5670", key: key, at: h.now,
			err: fmt.Errorf("zmtp: curve: peer sent ERROR %q: %w", reason, &zmtp.DeniedError{Reason: reason, Instead: "READY"})}
	}
	count := func() int {
		n := 0
		defer func() { h.st.events = nil }()
		for _, e := range h.st.events {
			if d, ok := e.(*Denied); ok && d.Key == key {
				n++
			}
		}
		return n
	}
	for range 10 {
		s.onHandshakeReport(denied("no"))
	}
	if n := count(); n != 1 {
		t.Fatalf("%d events for 10 refusals, want 1", n)
	}
	s.onHandshakeReport(handshakeReport{endpoint: "tcp://10.0.0.9:5670", key: key, at: h.now}) // accepted
	s.onHandshakeReport(denied("no"))
	s.onHandshakeReport(denied("revoked"))
	for range 10 {
		s.onHandshakeReport(denied("another text each time"))
		s.onHandshakeReport(handshakeReport{key: key, at: h.now})
	}
	if n := count(); n != maxDeniedReports-1 {
		t.Fatalf("%d more events, want %d (at most %d per key)", n, maxDeniedReports-1, maxDeniedReports)
	}
	for range maxDenials + 10 {
		k, _ := genKeys(t)
		s.onHandshakeReport(handshakeReport{key: k, at: h.now, err: &zmtp.DeniedError{Reason: "x", Instead: "READY"}})
	}
	if len(s.sec.denials) != maxDenials || len(s.sec.denialOrder) != maxDenials {
		t.Fatalf("%d keys remembered (%d in order), want %d", len(s.sec.denials), len(s.sec.denialOrder), maxDenials)
	}
}

func TestCleanReason(t *testing.T) {
	long := strings.Repeat("é", 300)
	for _, tc := range []struct{ in, want string }{
		{"key not authorized", "key not authorized"},
		{"", ""},
		{"\x1b[31mzyre: fake line\r\nsecond\x00", "[31mzyre: fake line second"},
		{"  tabs\tand\u2028lines  ", "tabs and lines"},
		{"bad \xff utf8", "bad \uFFFD utf8"},
		{"bidi \u202e txt", "bidi txt"},
		{long, strings.Repeat("é", MaxReasonRunes-3) + "..."},
	} {
		if got := CleanReason(tc.in); got != tc.want {
			t.Errorf("CleanReason(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzCleanReason(f *testing.F) {
	for _, s := range []string{"key not authorized", "\x1b]0;title\a", strings.Repeat("x ", 200), "\xff\xfe", "a\u202eb", "\u200b\u200b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := CleanReason(s)
		if !utf8.ValidString(got) || utf8.RuneCountInString(got) > MaxReasonRunes {
			t.Fatalf("CleanReason(%q) = %q: invalid or too long", s, got)
		}
		for _, r := range got {
			if !unicode.IsPrint(r) && r != ' ' {
				t.Fatalf("CleanReason(%q) = %q: unprintable %U", s, got, r)
			}
		}
		if strings.HasPrefix(got, " ") || strings.HasSuffix(got, " ") || strings.Contains(got, "  ") {
			t.Fatalf("CleanReason(%q) = %q: spaces not folded", s, got)
		}
		if again := CleanReason(got); again != got && !strings.HasSuffix(got, "...") {
			t.Fatalf("CleanReason not idempotent: %q then %q", got, again)
		}
	})
}

// TestAcceptedAfterHelloRefusedTalks: a node whose HELLO a peer refused
// (a name another device holds there) says HELLO again once that peer
// accepts its handshake (paired since): what it sends then arrives. Its
// DEALER's reconnection alone carried only what followed the refused
// HELLO, which the peer drops, for ever (user trial 6: a re-paired
// phone's chat lines never arrived until its agent restarted).
func TestAcceptedAfterHelloRefusedTalks(t *testing.T) {
	var allow atomic.Bool
	a, b := refusingPair(t, func(k PeerKey, alpha curve.PublicKey) bool {
		return k.Key == alpha && k.Name != "" && !allow.Load() // refused at its HELLO, and at the connections named by it
	})
	waitEvent(t, b, eventTimeout, "REFUSED alpha at its HELLO", isRefused(a.UUID(), a.PublicKey(), StageHello, ErrNotAuthorized))
	waitEvent(t, a, eventTimeout, "DENIED by beta", isDenied)
	allow.Store(true) // beta pairs with alpha
	deadline := time.Now().Add(eventTimeout)
	var werr error // (the link being said HELLO again over refuses a moment)
	for {
		if err := a.Whisper(b.UUID(), []byte("after the pairing")); err != nil {
			werr = err
		}
		select {
		case ev := <-b.Events():
			if w, ok := ev.(*Whisper); ok && w.Peer == a.UUID() {
				if string(w.Content[0]) != "after the pairing" {
					t.Fatalf("beta got %q", w.Content)
				}
				return
			}
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("beta heard nothing from alpha within %v of accepting it (alpha's last send error: %v)", eventTimeout, werr)
		}
	}
}

// TestRedialAfterGiveUpReopensSends: a peer that entered, whose link was
// given up (never completed: a peer refusing our key, say) and then
// dialled again, can be sent to again. The new link said HELLO, but the
// application's sends stayed closed, and every Whisper failed with "peer
// not connected" until the peer left (user trial 6).
func TestRedialAfterGiveUpReopensSends(t *testing.T) {
	h := newHarness(t)
	h.beacon(uuidB, 50002, "127.0.0.1:5670")
	h.enterB()
	p := h.st.peers[uuidB]
	if !p.opened {
		t.Fatal("sends not open after ENTER")
	}
	h.link(epB).gaveUp = true
	h.st.reapDials()
	if p.opened || p.link != nil {
		t.Fatalf("given-up link: opened %v, link %v", p.opened, p.link)
	}
	h.advance(dialRetryAfter + time.Second)
	h.beacon(uuidB, 50002, "127.0.0.1:5670")
	l := h.link(epB)
	if len(h.links[epB]) != 2 || len(l.sent) == 0 || l.sent[0].ID != zremsg.MsgHello || l.sent[0].Sequence != 1 {
		t.Fatalf("dialled again: %d links, first message %+v", len(h.links[epB]), l.sent)
	}
	if !p.opened {
		t.Fatal("sends still closed on the new link")
	}
	if _, err := p.send(&zremsg.Msg{ID: zremsg.MsgWhisper, Content: [][]byte{[]byte("again")}}); err != nil {
		t.Fatalf("send on the new link: %v", err)
	}
}

// TestHelloAgainAfterDenial: our DEALER to a peer that refused us (its
// ERROR in the handshake) completes a handshake at last: the peer is
// said HELLO again over a new link, at sequence 1, and the application
// still sends to it.
func TestHelloAgainAfterDenial(t *testing.T) {
	h := newSecureHarness(t)
	key, _ := genKeys(t)
	id := UUIDFromKey(key)
	h.beaconV3(id, key, 50002, "127.0.0.1:5670")
	h.recvKey(id, key, helloWithKey(epB, key))
	p := h.st.peers[id]
	if p == nil || !p.opened {
		t.Fatalf("peer not entered: %+v", p)
	}
	first := h.link(epB)
	denied := handshakeReport{endpoint: epB, key: key, at: h.now,
		err: fmt.Errorf("zmtp: curve: peer sent ERROR %q: %w", "key not authorized", &zmtp.DeniedError{Reason: "key not authorized", Instead: "READY"})}
	h.st.onHandshakeReport(denied)
	h.st.onHandshakeReport(handshakeReport{endpoint: epB, key: key, at: h.now})
	l := h.link(epB)
	if l == first || !first.closed {
		t.Fatalf("no new link after the peer accepted us (old closed %v)", first.closed)
	}
	if len(l.sent) == 0 || l.sent[0].ID != zremsg.MsgHello || l.sent[0].Sequence != 1 {
		t.Fatalf("the new link's first message %+v, want our HELLO at sequence 1", l.sent)
	}
	if !p.opened {
		t.Fatal("sends closed after saying HELLO again")
	}
	// A handshake that completes with no refusal before changes nothing.
	h.st.onHandshakeReport(handshakeReport{endpoint: epB, key: key, at: h.now})
	if h.link(epB) != l {
		t.Fatal("a new link without a refusal before")
	}
}

// TestAcceptedBeforeRedialTalks: a node whose HELLO a peer refused, and
// which that peer accepts before the node's DEALER dials again (paired,
// or introduced, in that second), gets one handshake turned down with
// helloAgainReason, says HELLO again on a new link, and is heard; no
// refusal is reported for it (user trial 6: a re-paired phone's lines
// never reached the phone that knew it by introduction).
func TestAcceptedBeforeRedialTalks(t *testing.T) {
	var allow atomic.Bool
	a, b := refusingPair(t, func(k PeerKey, alpha curve.PublicKey) bool {
		return k.Key == alpha && k.Name != "" && !allow.Load()
	})
	waitEvent(t, b, eventTimeout, "REFUSED alpha at its HELLO", isRefused(a.UUID(), a.PublicKey(), StageHello, ErrNotAuthorized))
	allow.Store(true) // introduced, before alpha's DEALER dials again
	deadline := time.Now().Add(eventTimeout)
	var werr error
	for {
		if err := a.Whisper(b.UUID(), []byte("introduced now")); err != nil {
			werr = err
		}
		select {
		case ev := <-b.Events():
			if w, ok := ev.(*Whisper); ok && w.Peer == a.UUID() {
				if n := deniedEvents(t, a); n != 0 {
					t.Fatalf("%d Denied events for a peer that only asked for our HELLO again", n)
				}
				return
			}
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("beta heard nothing from alpha within %v of accepting it (alpha's last send error: %v)", eventTimeout, werr)
		}
	}
}
