package pairing

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/keystore"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zmtp"
)

// node is one side of a test: an identity and its trust store.
type node struct {
	id            *keystore.Identity
	trust         *trust.Store
	discoveryPort int
}

func newNode(t *testing.T, name string) node {
	t.Helper()
	ctx := context.Background()
	ks, err := keystore.Open(t.TempDir(), keystore.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	id, err := ks.Init(ctx, keystore.InitOptions{Name: name, Protection: keystore.Protection{Plaintext: true}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := trust.Open(t.TempDir(), trust.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return node{id: id, trust: st, discoveryPort: testDiscoveryPort(t)}
}

// testDiscoveryPort is a UDP port of this test: all nodes of one test share
// it, other tests (and packages) use others, so that no test hears
// another's announcements.
func testDiscoveryPort(t *testing.T) int {
	t.Helper()
	ports.Lock()
	defer ports.Unlock()
	if p, ok := ports.m[t.Name()]; ok {
		return p
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := c.LocalAddr().(*net.UDPAddr).Port
	ports.m[t.Name()] = p
	return p
}

var ports = struct {
	sync.Mutex
	m map[string]int
}{m: map[string]int{}}

// opts stay on loopback (hints and announcements), with this test's own
// discovery port.
func (n node) opts() Options {
	return Options{Identity: n.id, Recorder: n.trust, Timeout: 20 * time.Second, Loopback: true, DiscoveryPort: n.discoveryPort}
}

func (n node) key() curve.PublicKey { return n.id.CurveKey }

// records returns the trust records of a node by key.
func (n node) records(t *testing.T) map[curve.PublicKey]trust.Record {
	t.Helper()
	rs, err := n.trust.List()
	if err != nil {
		t.Fatal(err)
	}
	m := map[curve.PublicKey]trust.Record{}
	for _, r := range rs {
		m[r.Key] = r
	}
	return m
}

// mustVerified checks that n recorded peer, and only peer, as verified by method.
func mustVerified(t *testing.T, n, peer node, method string) {
	t.Helper()
	rs := n.records(t)
	if len(rs) != 1 {
		t.Fatalf("%s: %d trust records, want 1: %v", n.id.Name, len(rs), rs)
	}
	r, ok := rs[peer.key()]
	if !ok {
		t.Fatalf("%s: no record of %s", n.id.Name, peer.id.Name)
	}
	if r.State != trust.StateVerified || r.VerifiedMethod != method {
		t.Fatalf("%s: record of %s is %s/%q, want verified/%q", n.id.Name, peer.id.Name, r.State, r.VerifiedMethod, method)
	}
	if !r.SigningKey.Equal(peer.id.SigningKey) || r.Name != peer.id.Name || r.UUID != peer.id.UUID {
		t.Fatalf("%s: record of %s has the wrong signing key, name or uuid: %+v", n.id.Name, peer.id.Name, r)
	}
}

func mustNoRecords(t *testing.T, n node) {
	t.Helper()
	if rs := n.records(t); len(rs) != 0 {
		t.Fatalf("%s: %d trust records, want none: %v", n.id.Name, len(rs), rs)
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newDisplayer(t *testing.T, n node, mod func(*Options)) (*Displayer, Token) {
	t.Helper()
	o := n.opts()
	if mod != nil {
		mod(&o)
	}
	d, tok, err := NewDisplayer(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, tok
}

// pairQR pairs joiner with displayer by a scanned QR code, as users do
// before a test turns against them.
func pairQR(t *testing.T, ctx context.Context, displayer, joiner node) {
	t.Helper()
	d, tok := newDisplayer(t, displayer, nil)
	if _, err := Join(ctx, tok.URI(), joiner.opts()); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// attacker connects to the displayer over CURVE with its own key (it knows
// the displayer's public key and endpoint, which are no secrets).
func attacker(t *testing.T, ctx context.Context, a node, d *Displayer) *zmtp.Dealer {
	t.Helper()
	pub, sec := a.id.CurveKeyPair()
	c, err := dialCurve(ctx, []string{d.Addr().String()}, pub, sec, d.key, a.opts().withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func binding(t *testing.T, n node) []byte {
	b, err := trust.NewBinding(n.id.Signer(), n.key(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPairQR(t *testing.T) {
	ctx := testCtx(t)
	alice, bob := newNode(t, "alice"), newNode(t, "bob")
	d, tok := newDisplayer(t, alice, nil)
	res, err := Join(ctx, tok.URI(), bob.opts())
	if err != nil {
		t.Fatal(err)
	}
	dres, err := d.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.PeerKey != alice.key() || res.PeerName != "alice" || !res.PeerSigningKey.Equal(alice.id.SigningKey) || res.Method != "qr" {
		t.Fatalf("scanner result %+v", res)
	}
	if dres.PeerKey != bob.key() || dres.PeerName != "bob" || !dres.PeerSigningKey.Equal(bob.id.SigningKey) || dres.Method != "qr" {
		t.Fatalf("displayer result %+v", dres)
	}
	mustVerified(t, alice, bob, "qr")
	mustVerified(t, bob, alice, "qr")

	// Reuse: the token is single use.
	carol := newNode(t, "carol")
	if _, err := Join(ctx, tok.URI(), carol.opts()); !errors.Is(err, ErrUsed) {
		t.Fatalf("second Join: %v, want ErrUsed", err)
	}
	mustNoRecords(t, carol)
	mustVerified(t, alice, bob, "qr")
}

// TestPairCode pairs by the short code, at the code endpoint given (as
// read from the screen with the code) and found by the displayer's
// announcement alone (on lo here, on the beacon interface in the netns
// test of cmd/zyre).
func TestPairCode(t *testing.T) {
	for _, c := range []struct {
		name     string
		discover bool
	}{{"endpoint", false}, {"discovered", true}} {
		t.Run(c.name, func(t *testing.T) {
			ctx := testCtx(t)
			alice, bob := newNode(t, "alice"), newNode(t, "bob")
			var mu sync.Mutex
			var shown []string
			confirm := func(_ context.Context, r Result) error {
				mu.Lock()
				shown = append(shown, r.Comparison)
				mu.Unlock()
				return nil
			}
			d, tok := newDisplayer(t, alice, func(o *Options) { o.Confirm = confirm })
			o := bob.opts()
			o.Confirm = confirm
			addr := d.CodeAddr()
			if c.discover {
				addr = ""
			}
			res, err := JoinCode(ctx, tok.ShortCode(), addr, o)
			if err != nil {
				t.Fatal(err)
			}
			dres, err := d.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Comparison) != 6 || res.Comparison != dres.Comparison {
				t.Fatalf("comparison numbers %q and %q", res.Comparison, dres.Comparison)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(shown) != 2 || shown[0] != shown[1] {
				t.Fatalf("Confirm saw %v", shown)
			}
			if res.PeerKey != alice.key() || dres.PeerKey != bob.key() || res.Method != "code" {
				t.Fatalf("results %+v / %+v", res, dres)
			}
			mustVerified(t, alice, bob, "code")
			mustVerified(t, bob, alice, "code")
		})
	}
}

func TestPairWrongCode(t *testing.T) {
	ctx := testCtx(t)
	alice, bob := newNode(t, "alice"), newNode(t, "bob")
	// One code only (no fresh code after the failure: freshcode_test.go).
	d, tok := newDisplayer(t, alice, func(o *Options) { o.MaxCodes = 1 })
	wrong := []byte(tok.code)
	wrong[11] = '0' + (wrong[11]-'0'+1)%10
	_, err := JoinCode(ctx, string(wrong), d.CodeAddr(), bob.opts())
	if !errors.Is(err, ErrWrongCode) {
		t.Fatalf("wrong code: %v, want ErrWrongCode", err)
	}
	// One attempt per code: even the right code is refused now.
	if _, err := JoinCode(ctx, tok.ShortCode(), d.CodeAddr(), bob.opts()); !errors.Is(err, ErrCodeUsed) {
		t.Fatalf("second attempt: %v, want ErrCodeUsed", err)
	}
	mustNoRecords(t, alice)
	mustNoRecords(t, bob)
	// The QR token is still good.
	if _, err := Join(ctx, tok.URI(), bob.opts()); err != nil {
		t.Fatal(err)
	}
	mustVerified(t, bob, alice, "qr")
}

// The attacker connects first with its own key and a guessed proof; even
// knowing the token id, it is refused, and the real scanner then pairs.
func TestAttackerGuessesProofFirst(t *testing.T) {
	ctx := testCtx(t)
	alice, bob, mallory := newNode(t, "alice"), newNode(t, "bob"), newNode(t, "mallory")
	d, tok := newDisplayer(t, alice, nil)
	c := attacker(t, ctx, mallory, d)
	guess := make([]byte, proofSize)
	_, err := exchange(ctx, c, mallory.opts().withDefaults(), newMsg(cmdQRProof, tok.ID[:], guess, binding(t, mallory), []byte("bob")), cmdQRConfirm)
	if !errors.Is(err, ErrBadProof) {
		t.Fatalf("guessed proof: %v, want ErrBadProof", err)
	}
	// A proof computed as if mallory were bob is bound to bob's key: no use
	// over mallory's own connection.
	stolen := qrProof(make([]byte, SecretSize), "scanner", alice.key(), bob.key(), tok.ID[:])
	_, err = exchange(ctx, c, mallory.opts().withDefaults(), newMsg(cmdQRProof, tok.ID[:], stolen, binding(t, mallory), []byte("bob")), cmdQRConfirm)
	if !errors.Is(err, ErrBadProof) {
		t.Fatalf("proof for bob's key: %v, want ErrBadProof", err)
	}
	res, err := Join(ctx, tok.URI(), bob.opts())
	if err != nil {
		t.Fatal(err)
	}
	if res.PeerKey != alice.key() {
		t.Fatal("scanner paired with the wrong key")
	}
	if dres, err := d.Wait(ctx); err != nil || dres.PeerKey != bob.key() {
		t.Fatalf("displayer: %v %v", dres.PeerKey, err)
	}
	mustVerified(t, alice, bob, "qr")
	mustVerified(t, bob, alice, "qr")
}

// A proof captured from an earlier session (its plaintext, the worst case)
// is useless: the old token is used, and a new token has another secret
// and id, and the proof is bound to the original scanner's key.
func TestAttackerReplaysProof(t *testing.T) {
	ctx := testCtx(t)
	alice, bob, mallory := newNode(t, "alice"), newNode(t, "bob"), newNode(t, "mallory")
	d1, tok1 := newDisplayer(t, alice, nil)
	if _, err := Join(ctx, tok1.URI(), bob.opts()); err != nil {
		t.Fatal(err)
	}
	if _, err := d1.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	captured := qrProof(tok1.secret[:], "scanner", alice.key(), bob.key(), tok1.ID[:])
	opts := mallory.opts().withDefaults()

	c1 := attacker(t, ctx, mallory, d1)
	if _, err := exchange(ctx, c1, opts, newMsg(cmdQRProof, tok1.ID[:], captured, binding(t, mallory), []byte("bob")), cmdQRConfirm); !errors.Is(err, ErrUsed) {
		t.Fatalf("replay to the old displayer: %v, want ErrUsed", err)
	}
	d2, tok2 := newDisplayer(t, alice, nil)
	c2 := attacker(t, ctx, mallory, d2)
	if _, err := exchange(ctx, c2, opts, newMsg(cmdQRProof, tok1.ID[:], captured, binding(t, mallory), []byte("bob")), cmdQRConfirm); !errors.Is(err, ErrBadToken) {
		t.Fatalf("replay with the old id: %v, want ErrBadToken", err)
	}
	if _, err := exchange(ctx, c2, opts, newMsg(cmdQRProof, tok2.ID[:], captured, binding(t, mallory), []byte("bob")), cmdQRConfirm); !errors.Is(err, ErrBadProof) {
		t.Fatalf("replay with the new id: %v, want ErrBadProof", err)
	}
	rs := alice.records(t)
	if _, ok := rs[mallory.key()]; ok || len(rs) != 1 {
		t.Fatalf("alice's records after the replays: %v", rs)
	}
	mustVerified(t, alice, bob, "qr")
}

// A fake displayer at the token's endpoint with its own key cannot finish
// the CURVE handshake: Join fails loudly and records nothing.
func TestAttackerFakeDisplayer(t *testing.T) {
	ctx := testCtx(t)
	alice, bob, mallory := newNode(t, "alice"), newNode(t, "bob"), newNode(t, "mallory")
	_, tok := newDisplayer(t, alice, nil)
	mpub, msec := mallory.id.CurveKeyPair()
	fake, err := zmtp.ListenRouter("tcp", "127.0.0.1:0", zmtp.Options{Mechanism: zmtp.CurveServer(zmtp.CurveServerConfig{Public: mpub, Secret: msec})})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	// The attacker took over the endpoint (ARP or DNS spoofing): the token's
	// hint now leads to it.
	spoofed := tok
	spoofed.Hints = []netip.AddrPort{fake.Addr().(*net.TCPAddr).AddrPort()}
	_, err = Join(ctx, spoofed.URI(), bob.opts())
	if !errors.Is(err, ErrHandshake) {
		t.Fatalf("Join to a fake displayer: %v, want ErrHandshake", err)
	}
	mustNoRecords(t, bob)
	mustNoRecords(t, alice)
}

// A relay between the scanner and the real displayer sees only CURVE
// boxes: the pairing succeeds, with the right peer.
func TestAttackerRelay(t *testing.T) {
	ctx := testCtx(t)
	alice, bob := newNode(t, "alice"), newNode(t, "bob")
	d, tok := newDisplayer(t, alice, nil)
	relay := tcpRelay(t, d.Addr().String())
	via := tok
	via.Hints = []netip.AddrPort{relay}
	res, err := Join(ctx, via.URI(), bob.opts())
	if err != nil {
		t.Fatal(err)
	}
	if res.PeerKey != alice.key() {
		t.Fatal("paired with the wrong key through the relay")
	}
	if _, err := d.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	mustVerified(t, bob, alice, "qr")
	mustVerified(t, alice, bob, "qr")
}

// tcpRelay forwards one loopback port to target, byte for byte.
func tcpRelay(t *testing.T, target string) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, u)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(u, c); u.Close() }()
			go func() { defer wg.Done(); io.Copy(c, u); c.Close() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// A man in the middle of the short-code path advertises its own key,
// terminates CURVE and relays the CPace messages to the real displayer:
// key confirmation fails, nobody is recorded, the code is burnt.
func TestAttackerCodeMITM(t *testing.T) {
	ctx := testCtx(t)
	alice, bob, mallory := newNode(t, "alice"), newNode(t, "bob"), newNode(t, "mallory")
	// One code only: the code the relay burnt stays burnt, and no fresh
	// code comes in between (freshcode_test.go has those).
	d, tok := newDisplayer(t, alice, func(o *Options) { o.MaxCodes = 1 })
	mopts := mallory.opts().withDefaults()

	// Mallory's side facing alice: a CURVE client with mallory's key.
	up := attacker(t, ctx, mallory, d)
	// Mallory's side facing bob: an advert with mallory's key and a CURVE
	// router with it.
	mpub, msec := mallory.id.CurveKeyPair()
	mr, err := zmtp.ListenRouter("tcp", "127.0.0.1:0", zmtp.Options{Mechanism: zmtp.CurveServer(zmtp.CurveServerConfig{Public: mpub, Secret: msec})})
	if err != nil {
		t.Fatal(err)
	}
	defer mr.Close()
	ma, err := zmtp.ListenRouter("tcp", "127.0.0.1:0", zmtp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ma.Close()
	mctx, mcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { mcancel(); wg.Wait() }()
	wg.Add(2)
	go func() { // the advert
		defer wg.Done()
		m, err := ma.Recv(mctx)
		if err != nil {
			return
		}
		port := []byte{byte(mr.Addr().(*net.TCPAddr).Port >> 8), byte(mr.Addr().(*net.TCPAddr).Port)}
		ma.Send(m.Peer.Identity, newMsg(cmdMe, mpub.Bytes(), port)...)
	}()
	relayed := make(chan error, 1)
	go func() { // relay bob <-> alice, message by message
		defer wg.Done()
		for i := 0; i < 2; i++ {
			m, err := mr.Recv(mctx)
			if err != nil {
				relayed <- err
				return
			}
			if err := up.Send(m.Frames...); err != nil {
				relayed <- err
				return
			}
			if cmd, _, _ := parseMsg(m.Frames); cmd == cmdErr {
				break // bob's last word (he found the code wrong): no answer
			}
			r, err := up.Recv(mctx)
			if err != nil {
				relayed <- err
				return
			}
			mr.Send(m.Peer.Identity, r.Frames...)
		}
		relayed <- nil
	}()
	_, err = JoinCode(ctx, tok.ShortCode(), ma.Addr().String(), bob.opts())
	if !errors.Is(err, ErrWrongCode) {
		t.Fatalf("JoinCode through a MITM: %v, want ErrWrongCode", err)
	}
	mustNoRecords(t, bob)
	mustNoRecords(t, alice)
	// The relay got alice's answer to bob's share: mallory had her one
	// attempt; the code is now burnt for everyone.
	_, err = exchange(ctx, up, mopts, newMsg(cmdCodeA, make([]byte, cpaceSIDSize), make([]byte, cpaceElemSize)), cmdCodeB)
	if !errors.Is(err, ErrCodeUsed) {
		t.Fatalf("after the MITM: %v, want ErrCodeUsed", err)
	}
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestPairExpiry(t *testing.T) {
	ctx := testCtx(t)
	alice, bob := newNode(t, "alice"), newNode(t, "bob")
	clock := &fakeClock{t: time.Now()}
	d, tok := newDisplayer(t, alice, func(o *Options) { o.Now = clock.Now })
	if got := tok.Expires.Sub(clock.Now()); got > DefaultTTL || got < DefaultTTL-time.Second {
		t.Fatalf("token lives %s, want %s", got, DefaultTTL)
	}

	// The scanner's clock says the token expired: it does not even connect.
	late := bob.opts()
	late.Now = func() time.Time { return tok.Expires }
	if _, err := Join(ctx, tok.URI(), late); !errors.Is(err, ErrExpired) {
		t.Fatalf("late scanner: %v, want ErrExpired", err)
	}
	// The displayer's clock passes the expiry: it refuses the proof.
	clock.Add(DefaultTTL + time.Second)
	if _, err := Join(ctx, tok.URI(), bob.opts()); !errors.Is(err, ErrExpired) {
		t.Fatalf("Join after expiry: %v, want ErrExpired", err)
	}
	if _, err := d.Wait(ctx); !errors.Is(err, ErrExpired) {
		t.Fatalf("Wait: %v, want ErrExpired", err)
	}
	mustNoRecords(t, alice)
	mustNoRecords(t, bob)
}

func TestPairRateLimit(t *testing.T) {
	ctx := testCtx(t)
	alice, bob, mallory := newNode(t, "alice"), newNode(t, "bob"), newNode(t, "mallory")
	d, tok := newDisplayer(t, alice, nil)
	c := attacker(t, ctx, mallory, d)
	opts := mallory.opts().withDefaults()
	for i := 1; i <= DefaultMaxAttempts; i++ {
		guess := make([]byte, proofSize)
		guess[0] = byte(i)
		_, err := exchange(ctx, c, opts, newMsg(cmdQRProof, tok.ID[:], guess, binding(t, mallory), []byte("m")), cmdQRConfirm)
		want := ErrBadProof
		if i == DefaultMaxAttempts {
			want = ErrBurnt
		}
		if !errors.Is(err, want) {
			t.Fatalf("attempt %d: %v, want %v", i, err, want)
		}
	}
	if _, err := d.Wait(ctx); !errors.Is(err, ErrBurnt) {
		t.Fatalf("Wait: %v, want ErrBurnt", err)
	}
	// The burnt token fails loudly for the real scanner too.
	if _, err := Join(ctx, tok.URI(), bob.opts()); !errors.Is(err, ErrBurnt) {
		t.Fatalf("Join after burning: %v, want ErrBurnt", err)
	}
	mustNoRecords(t, alice)
	mustNoRecords(t, bob)
}

func TestPairConfirmRefused(t *testing.T) {
	ctx := testCtx(t)
	alice, bob := newNode(t, "alice"), newNode(t, "bob")
	d, tok := newDisplayer(t, alice, func(o *Options) {
		o.Confirm = func(context.Context, Result) error { return errors.New("user said no") }
	})
	if _, err := Join(ctx, tok.URI(), bob.opts()); !errors.Is(err, ErrRefused) {
		t.Fatalf("Join: %v, want ErrRefused", err)
	}
	if _, err := d.Wait(ctx); !errors.Is(err, ErrRefused) {
		t.Fatalf("Wait: %v, want ErrRefused", err)
	}
	mustNoRecords(t, alice)
	mustNoRecords(t, bob)
}

func TestDisplayerClose(t *testing.T) {
	alice := newNode(t, "alice")
	d, _ := newDisplayer(t, alice, nil)
	d.Close()
	d.Close()
	if _, err := d.Wait(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait after Close: %v", err)
	}
	if _, _, err := NewDisplayer(Options{}); !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("no identity: %v", err)
	}
}

// Malformed messages get a protocol error and change nothing: the real
// scanner pairs afterwards.
func TestDisplayerHostileMessages(t *testing.T) {
	ctx := testCtx(t)
	alice, bob, mallory := newNode(t, "alice"), newNode(t, "bob"), newNode(t, "mallory")
	d, tok := newDisplayer(t, alice, nil)
	c := attacker(t, ctx, mallory, d)
	opts := mallory.opts().withDefaults()
	for _, msg := range [][][]byte{
		{[]byte("hello")},
		{[]byte(protoTag)},
		{[]byte(protoTag), []byte("NOPE")},
		{[]byte(protoTag), []byte(cmdQRProof), tok.ID[:]},
		newMsg(cmdCodeC, make([]byte, 64), nil, nil),
		newMsg(cmdCodeA, []byte("short"), make([]byte, 32)),
		newMsg(cmdWho),
	} {
		_, err := exchange(ctx, c, opts, msg, cmdQRConfirm)
		if !errors.Is(err, ErrProtocol) {
			t.Fatalf("message %q: %v, want ErrProtocol", msg, err)
		}
	}
	// A right proof with a forged binding (not signed by the sender's key).
	proof := qrProof(tok.secret[:], "scanner", alice.key(), mallory.key(), tok.ID[:])
	if _, err := exchange(ctx, c, opts, newMsg(cmdQRProof, tok.ID[:], proof, binding(t, bob), []byte("m")), cmdQRConfirm); !errors.Is(err, ErrProtocol) {
		t.Fatalf("binding of another key: %v, want ErrProtocol", err)
	}
	if _, err := Join(ctx, tok.URI(), bob.opts()); err != nil {
		t.Fatal(err)
	}
	mustVerified(t, alice, bob, "qr")
}
