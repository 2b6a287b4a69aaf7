package zre

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/zmtp"
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
	// beta reported its refusal once: at the HELLO, not at each
	// connection refused since.
	b.PeerDenial(a.UUID())
	for {
		select {
		case ev := <-b.Events():
			if r, ok := ev.(*Refused); ok && r.Peer == a.UUID() {
				t.Fatalf("beta reported alpha again: %+v", r)
			}
			continue
		default:
		}
		break
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
