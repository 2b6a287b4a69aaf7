package pairing

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zyre-go/zyre/internal/beacon"
	"github.com/zyre-go/zyre/trust"
)

// Another session on the network, or an announcement whose tag happens to
// match the code: the joiner connects to neither.
func TestDiscoverAmbiguous(t *testing.T) {
	ctx := testCtx(t)
	alice, bob := newNode(t, "alice"), newNode(t, "bob")
	_, tok := newDisplayer(t, alice, nil)
	// A second "session" with the same tag under another salt.
	fake, err := newAnnouncement(nil, tok.code, 9)
	if err != nil {
		t.Fatal(err)
	}
	stop := broadcastLoopback(t, bob.discoveryPort, fake.appendMarshal(nil))
	defer stop()
	// Discover listens 3 intervals for a second match: make that long
	// enough for a loaded machine (it returns as soon as both are heard).
	o := bob.opts()
	o.AnnounceInterval = 10 * time.Second
	_, err = Discover(ctx, tok.ShortCode(), o)
	if !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("Discover with two matching sessions: %v, want ErrAmbiguous", err)
	}
	mustNoRecords(t, alice)
}

// No displayer: Discover says so after Options.Timeout, naming where it
// looked.
func TestDiscoverNothing(t *testing.T) {
	ctx := testCtx(t)
	bob := newNode(t, "bob")
	o := bob.opts()
	o.Timeout = 300 * time.Millisecond
	_, err := Discover(ctx, "1234-5678-9012", o)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "on lo") {
		t.Fatalf("Discover with no displayer: %v, want ErrUnreachable on lo", err)
	}
	// Explained as a code nobody shows (a typo, most often).
	if msg, hint := Explain(err); !strings.HasPrefix(msg, "no device on lo") || !strings.Contains(hint, "check the code") {
		t.Fatalf("Explain: %q, %q", msg, hint)
	}
}

// broadcastLoopback sends payload to 127.255.255.255:port until stop.
func broadcastLoopback(t *testing.T, port int, payload []byte) (stop func()) {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			c.WriteToUDP(payload, &net.UDPAddr{IP: net.IPv4(127, 255, 255, 255), Port: port})
			select {
			case <-done:
				return
			case <-tk.C:
			}
		}
	}()
	return func() { close(done); <-exited; c.Close() }
}

// Both users see the number at the same moment: each side's Confirm waits
// until the other's has been called, which only works when both run at
// once.
func TestCodeComparisonAtOnce(t *testing.T) {
	ctx := testCtx(t)
	alice, bob := newNode(t, "alice"), newNode(t, "bob")
	aliceShown, bobShown := make(chan string, 1), make(chan string, 1)
	both := func(mine chan<- string, other <-chan string) func(context.Context, Result) error {
		return func(ctx context.Context, r Result) error {
			mine <- r.Comparison
			select {
			case n := <-other:
				if n != r.Comparison {
					return errors.New("numbers differ")
				}
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	d, tok := newDisplayer(t, alice, func(o *Options) { o.Confirm = both(aliceShown, bobShown) })
	bo := bob.opts()
	bo.Confirm = both(bobShown, aliceShown)
	if _, err := JoinCode(ctx, tok.ShortCode(), "", bo); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	mustVerified(t, alice, bob, "code")
	mustVerified(t, bob, alice, "code")
}

// A refusal on either side reaches the other at once: its question is
// cancelled, nobody records anything, and the displayer (with
// EndOnCodeFailure, as the CLI runs it) ends with ErrRefused.
func TestCodeRefusalReachesOther(t *testing.T) {
	for _, refuser := range []string{"displayer", "joiner"} {
		t.Run(refuser, func(t *testing.T) {
			ctx := testCtx(t)
			alice, bob := newNode(t, "alice"), newNode(t, "bob")
			cancelled := make(chan struct{})
			no := func(context.Context, Result) error { return errors.New("numbers differ") }
			wait := func(ctx context.Context, _ Result) error { // until the other side refuses
				<-ctx.Done()
				close(cancelled)
				return ctx.Err()
			}
			dConfirm, jConfirm := no, wait
			if refuser == "joiner" {
				dConfirm, jConfirm = wait, no
			}
			d, tok := newDisplayer(t, alice, func(o *Options) { o.Confirm, o.EndOnCodeFailure = dConfirm, true })
			bo := bob.opts()
			bo.Confirm = jConfirm
			_, jerr := JoinCode(ctx, tok.ShortCode(), "", bo)
			_, derr := d.Wait(ctx)
			if !errors.Is(jerr, ErrRefused) || !errors.Is(derr, ErrRefused) {
				t.Fatalf("joiner: %v; displayer: %v; want ErrRefused on both", jerr, derr)
			}
			select {
			case <-cancelled:
			case <-ctx.Done():
				t.Fatal("the waiting side's question was not cancelled")
			}
			mustNoRecords(t, alice)
			mustNoRecords(t, bob)
		})
	}
}

// With EndOnCodeFailure the displayer reports a wrong code (found on
// either side) and ends.
func TestCodeWrongEndsDisplayer(t *testing.T) {
	ctx := testCtx(t)
	alice, bob := newNode(t, "alice"), newNode(t, "bob")
	d, tok := newDisplayer(t, alice, func(o *Options) { o.EndOnCodeFailure = true })
	wrong := []byte(tok.code)
	wrong[0] = '0' + (wrong[0]-'0'+1)%10
	if _, err := JoinCode(ctx, string(wrong), d.CodeAddr(), bob.opts()); !errors.Is(err, ErrWrongCode) {
		t.Fatalf("joiner: %v, want ErrWrongCode", err)
	}
	if _, err := d.Wait(ctx); !errors.Is(err, ErrWrongCode) {
		t.Fatalf("displayer: %v, want ErrWrongCode", err)
	}
}

// A joiner the displayer refuses (its key is revoked there) is told so at
// once, with the reason, not after its timeout.
func TestRefusedJoinerToldAtOnce(t *testing.T) {
	ctx := testCtx(t)
	alice, bob := newNode(t, "alice"), newNode(t, "bob")
	pairQR(t, ctx, alice, bob)
	if _, err := alice.trust.Revoke(ctx, bob.key(), "lost phone"); err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{"qr", "code"} {
		var asked atomic.Int32 // alice's user is not asked to compare for a revoked key
		d, tok := newDisplayer(t, alice, func(o *Options) {
			o.Confirm = func(context.Context, Result) error { asked.Add(1); return nil }
		})
		o := bob.opts()
		o.Timeout = time.Minute // "at once" is well inside one step's timeout
		start := time.Now()
		var err error
		if method == "qr" {
			_, err = Join(ctx, tok.URI(), o)
		} else {
			_, err = JoinCode(ctx, tok.ShortCode(), "", o)
		}
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), trust.ErrRevoked.Error()) {
			t.Fatalf("%s: revoked joiner: %v, want ErrRefused saying revoked", method, err)
		}
		if el := time.Since(start); el >= o.Timeout {
			t.Fatalf("%s: refusal took %v, a step's timeout", method, el)
		}
		if _, err := d.Wait(ctx); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), trust.ErrRevoked.Error()) {
			t.Fatalf("%s: displayer: %v, want ErrRefused saying revoked", method, err)
		}
		if n := asked.Load(); n != 0 {
			t.Errorf("%s: the displayer's user was asked %d time(s) to compare for a revoked key", method, n)
		}
	}
}

func FuzzAnnouncement(f *testing.F) {
	a, err := newAnnouncement(nil, "123456789012", 40000)
	if err != nil {
		f.Fatal(err)
	}
	good := a.appendMarshal(nil)
	f.Add(good)
	f.Add(good[:annSize-1])
	f.Add(append(bytes.Clone(good), 0))
	bad := bytes.Clone(good)
	bad[3] = 2 // version
	f.Add(bad)
	zeroPort := bytes.Clone(good)
	zeroPort[annSize-1], zeroPort[annSize-2] = 0, 0
	f.Add(zeroPort)
	f.Add([]byte("ZRE\x01"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := parseAnnouncement(b)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		if a.port == 0 {
			t.Fatal("port 0 accepted")
		}
		if out := a.appendMarshal(nil); !bytes.Equal(out, b) {
			t.Fatalf("round trip: %x -> %x", b, out)
		}
	})
}

// A scanner whose own store refuses the displayer (it revoked it) says so,
// and the displayer does not report a success.
func TestScannerRefusesAtTheEnd(t *testing.T) {
	ctx := testCtx(t)
	alice, bob := newNode(t, "alice"), newNode(t, "bob")
	pairQR(t, ctx, alice, bob)
	if _, err := bob.trust.Revoke(ctx, alice.key(), "stolen"); err != nil {
		t.Fatal(err)
	}
	d, tok := newDisplayer(t, alice, func(o *Options) { o.Linger = time.Minute })
	if _, err := Join(ctx, tok.URI(), bob.opts()); !errors.Is(err, ErrRefused) {
		t.Fatalf("scanner that revoked the displayer: %v, want ErrRefused", err)
	}
	// Not after the minute of Linger: the ERR ends it at once.
	if _, err := d.Wait(ctx); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "did not record us") {
		t.Fatalf("displayer: %v, want ErrRefused saying the scanner did not record us", err)
	}
}

// An announcement from an address outside the interface's subnet is not
// a displayer the joiner can have met on this network (off-link, or a
// spoofed source meant to make the joiner connect elsewhere): Discover
// ignores it. Here the interface is lo (127.0.0.0/8) and the forger sends
// from one of the host's other addresses, to 127.255.255.255 (the datagram
// stays on lo).
func TestDiscoverIgnoresOffLinkSource(t *testing.T) {
	ctx := testCtx(t)
	var src net.IP
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() {
			src = ipn.IP.To4()
			break
		}
	}
	if src == nil {
		t.Skip("this host has no IPv4 address besides loopback to send from")
	}
	alice, bob := newNode(t, "alice"), newNode(t, "bob")
	d, tok := newDisplayer(t, alice, nil)
	fake, err := newAnnouncement(nil, tok.code, 9)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: src})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	lo := &net.UDPAddr{IP: net.IPv4(127, 255, 255, 255), Port: bob.discoveryPort}
	// Before Discover listens and all through its grace (3 intervals).
	done := make(chan struct{})
	defer close(done)
	go func() {
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			c.WriteToUDP(fake.appendMarshal(nil), lo)
			select {
			case <-done:
				return
			case <-tk.C:
			}
		}
	}()
	o := bob.opts()
	o.AnnounceInterval = time.Second
	ep, err := Discover(ctx, tok.ShortCode(), o)
	if err != nil {
		t.Fatalf("Discover with an off-link forger: %v, want the displayer", err)
	}
	if ep != d.CodeAddr() {
		t.Fatalf("Discover found %s, want %s", ep, d.CodeAddr())
	}
}

func TestOnLink(t *testing.T) {
	cs := []beacon.Choice{{Addr: netip.MustParseAddr("10.77.0.2"), Broadcast: netip.MustParseAddr("10.77.0.255"), Prefix: netip.MustParsePrefix("10.77.0.0/24")}}
	for _, tt := range []struct {
		from string
		want bool
	}{
		{"10.77.0.9", true},
		{"::ffff:10.77.0.9", true},
		{"10.77.1.9", false},   // another subnet
		{"8.8.8.8", false},     // off-link, or spoofed
		{"10.77.0.255", false}, // the broadcast address is nobody's source
		{"10.77.0.0", false},   // nor the network address
		{"fd00::9", false},
	} {
		if got := onLink(netip.MustParseAddr(tt.from), cs); got != tt.want {
			t.Errorf("onLink(%s) = %v, want %v", tt.from, got, tt.want)
		}
	}
}

// The displayer never reads what arrives on its announcing socket: a flood
// there holds at most one datagram (of up to 64 KiB) in memory.
func TestDisplayerKeepsNoAnnouncementBacklog(t *testing.T) {
	ctx := testCtx(t)
	alice := newNode(t, "alice")
	d, _ := newDisplayer(t, alice, nil)
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 16
	junk := bytes.Repeat([]byte{'x'}, 60000)
	// Sent until they have arrived (the kernel may drop some of a burst).
	for st := d.ann.Stats(); st.Received-st.Echoes < n; st = d.ann.Stats() {
		if _, err := c.WriteToUDP(junk, &net.UDPAddr{IP: net.IPv4(127, 255, 255, 255), Port: alice.discoveryPort}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the displayer's socket got %+v, want %d foreign datagrams", d.ann.Stats(), n)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if q := len(d.ann.Packets()); q > 1 {
		t.Fatalf("the displayer holds %d unread datagrams, want at most 1", q)
	}
}

// A cancelled search says so (the CLI words a deadline differently from an
// unreachable displayer), also when the UDP service stops first because
// of the same cancellation.
func TestDiscoverCancelled(t *testing.T) {
	bob := newNode(t, "bob")
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%4)*time.Millisecond)
		_, err := Discover(ctx, "1234-5678-9012", bob.opts())
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Discover with its context ending: %v, want context.DeadlineExceeded", err)
		}
	}
}

// With several interfaces ("*") the token's hints are IPv4 first across
// all of them, then capped: an interface's many IPv6 addresses (SLAAC
// privacy addresses) do not push another interface's IPv4 address out.
func TestHintsFromChoicesIPv4First(t *testing.T) {
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	cs := []beacon.Choice{
		{Name: "eth0", Addrs: []netip.Addr{a("10.0.0.2"), a("2001:db8::1"), a("2001:db8::2"), a("2001:db8::3"), a("2001:db8::4")}},
		{Name: "wlan0", Addrs: []netip.Addr{a("192.168.1.5"), a("10.0.0.2")}},
	}
	got := hintsFromChoices(cs)
	want := []string{"10.0.0.2", "192.168.1.5", "2001:db8::1", "2001:db8::2"}
	if len(got) != len(want) {
		t.Fatalf("hints %v, want %v", got, want)
	}
	for i, h := range got {
		if h.Addr().String() != want[i] || h.Port() != 0 {
			t.Fatalf("hints %v, want %v (port 0)", got, want)
		}
	}
}

// Another program holds the discovery port (without sharing it): the
// displayer still shows its token and code, without announcing (the
// joiner then needs the code endpoint), and says why in its log.
func TestDisplayerWithoutDiscoveryPort(t *testing.T) {
	ctx := testCtx(t)
	alice, bob := newNode(t, "alice"), newNode(t, "bob")
	hog, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 255, 255, 255), Port: alice.discoveryPort})
	if err != nil {
		t.Fatal(err)
	}
	defer hog.Close()
	var logged strings.Builder
	var mu sync.Mutex
	d, tok := newDisplayer(t, alice, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(lockedWriter{&mu, &logged}, nil))
	})
	if _, err := JoinCode(ctx, tok.ShortCode(), d.CodeAddr(), bob.opts()); err != nil {
		t.Fatalf("JoinCode with the code endpoint: %v", err)
	}
	if _, err := d.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logged.String(), "not announcing") {
		t.Fatalf("the displayer did not say it is not announcing; log:\n%s", logged.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
