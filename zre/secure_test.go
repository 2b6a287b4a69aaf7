package zre

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/beacon"
	"github.com/zyre-go/zyre/internal/testenv"
	"github.com/zyre-go/zyre/zmtp"
	"github.com/zyre-go/zyre/zre/zremsg"
)

func genKeys(t testing.TB) (curve.PublicKey, curve.SecretKey) {
	t.Helper()
	pub, sec, err := curve.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	return pub, sec
}

// secureConfig is a loopback secure node's configuration with fresh keys.
func secureConfig(t testing.TB, name string, port int) Config {
	_, sec := genKeys(t)
	return Config{Name: name, Beacon: BeaconConfig{Port: port}, Secure: &SecureConfig{Secret: sec}}
}

// waitFor polls cond (bounded by eventTimeout) for conditions that no
// event announces, such as counters.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, eventTimeout, what, cond)
}

func isRefused(id uuid.UUID, key curve.PublicKey, stage Stage, reason error) func(Event) bool {
	return func(e Event) bool {
		r, ok := e.(*Refused)
		return ok && r.Peer == id && r.Key == key && r.Stage == stage && errors.Is(r.Reason, reason)
	}
}

func isWhisper(from uuid.UUID, text string) func(Event) bool {
	return func(e Event) bool {
		w, ok := e.(*Whisper)
		return ok && w.Peer == from && len(w.Content) == 1 && string(w.Content[0]) == text
	}
}

// rawPeer is a secure ZRE peer made by hand from zmtp parts, as a C zyre
// node in CURVE mode is (its UUID may be random: unbound) or as a forger
// is (any UUID, any key): a CURVE ROUTER inbox with its key and a CURVE
// DEALER to the node under test.
type rawPeer struct {
	t        *testing.T
	id       uuid.UUID
	pub      curve.PublicKey
	sec      curve.SecretKey
	router   *zmtp.Router
	endpoint string
	dealer   *zmtp.Dealer
	seq      uint16
}

// newRawPeer makes a raw peer claiming id (uuid.Nil: the UUID bound to
// its key) with a fresh keypair, its inbox on 127.0.0.1.
func newRawPeer(t *testing.T, id uuid.UUID) *rawPeer {
	t.Helper()
	pub, sec := genKeys(t)
	if id == uuid.Nil {
		id = UUIDFromKey(pub)
	}
	r, err := zmtp.ListenRouter("tcp", "127.0.0.1:0", zmtp.Options{
		Mechanism: zmtp.CurveServer(zmtp.CurveServerConfig{Secret: sec}),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	p := &rawPeer{t: t, id: id, pub: pub, sec: sec, router: r,
		endpoint: "tcp://" + r.Addr().String()}
	return p
}

// dial connects the raw peer's DEALER to a node's inbox.
func (p *rawPeer) dial(n *Node) {
	p.t.Helper()
	d, err := zmtp.DialDealer("tcp", n.Endpoint()[len("tcp://"):], zmtp.Options{
		Identity:  Identity(p.id),
		Mechanism: zmtp.CurveClient(zmtp.CurveClientConfig{Secret: p.sec, ServerKey: n.PublicKey()}),
	})
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { d.Close() })
	p.dealer = d
}

func (p *rawPeer) send(m *zremsg.Msg) {
	p.t.Helper()
	p.seq++
	m.Sequence = p.seq
	frames, err := m.Frames()
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.dealer.Send(frames...); err != nil {
		p.t.Fatal(err)
	}
}

// hello says HELLO with X-PUBLICKEY = keyHeader ("" for none).
func (p *rawPeer) hello(name, keyHeader string) {
	var hs []Header
	if keyHeader != "" {
		hs = append(hs, Header{Key: HeaderPublicKey, Value: keyHeader})
	}
	p.send(&zremsg.Msg{ID: zremsg.MsgHello, Endpoint: p.endpoint, Name: name, Headers: hs})
}

// recv returns the next ZRE message on the raw peer's inbox that match
// accepts (others are skipped), with the key that sent it.
func (p *rawPeer) recv(what string, match func(*zremsg.Msg) bool) (*zremsg.Msg, []byte) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	for {
		m, err := p.router.Recv(ctx)
		if err != nil {
			p.t.Fatalf("raw peer: no %s: %v", what, err)
		}
		zm, err := zremsg.Decode(m.Frames)
		if err != nil {
			p.t.Fatalf("raw peer: %v", err)
		}
		if match(zm) {
			return zm, m.Peer.PublicKey
		}
	}
}

// TestSecureMeshThreeNodes: three secure nodes on loopback find each other
// by v3 beacons, say HELLO with X-PUBLICKEY over CURVE, whisper and shout.
func TestSecureMeshThreeNodes(t *testing.T) {
	port := testBeaconPort()
	// A listener on the beacon port sees what the nodes send: v3 beacons
	// with their keys.
	sniff, err := beacon.New(beacon.Config{Port: port, Loopback: true, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*eventTimeout)
	defer cancel()
	if err := sniff.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer sniff.Close()

	var nodes []*Node
	for _, name := range []string{"alpha", "beta", "gamma"} {
		n := startNode(t, secureConfig(t, name, port))
		if !n.Secure() || n.UUID() != UUIDFromKey(n.PublicKey()) {
			t.Fatalf("%s: secure %v, UUID %s not from key", name, n.Secure(), n.UUID())
		}
		if err := n.Join("lab"); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	byUUID := map[uuid.UUID]*Node{}
	for _, n := range nodes {
		byUUID[n.UUID()] = n
	}
	// Every node's beacon is v3 with its key.
	seen := map[uuid.UUID]bool{}
	for len(seen) < len(nodes) {
		select {
		case pkt := <-sniff.Packets():
			b, err := ParseBeacon(pkt.Payload)
			if err != nil {
				t.Fatalf("beacon %x: %v", pkt.Payload, err)
			}
			n := byUUID[b.UUID]
			if n == nil {
				continue
			}
			if b.Version != BeaconV3 || !b.HasKey() || b.PublicKey != n.PublicKey() {
				t.Fatalf("%s beacon %+v, want v3 with key %s", n.Name(), b, n.PublicKey())
			}
			seen[b.UUID] = true
		case <-ctx.Done():
			t.Fatalf("beacons seen from %d nodes", len(seen))
		}
	}
	for _, n := range nodes {
		want := map[uuid.UUID]bool{}
		for _, o := range nodes {
			if o != n {
				want[o.UUID()] = true
			}
		}
		waitEvent(t, n, eventTimeout, "ENTER and JOIN of both others", func(e Event) bool {
			switch e := e.(type) {
			case *Enter:
				o := byUUID[e.Peer]
				if v, ok := e.Headers[len(e.Headers)-1], true; !ok || v.Key != HeaderPublicKey || v.Value != o.PublicKey().Z85() {
					t.Fatalf("%s: ENTER %s headers %q, want %s last", n.Name(), e.Name, e.Headers, HeaderPublicKey)
				}
			case *Join:
				delete(want, e.Peer)
			}
			return len(want) == 0
		})
	}
	a, b, c := nodes[0], nodes[1], nodes[2]
	for _, pi := range a.PeerInfos() {
		o := byUUID[pi.UUID]
		if o == nil || pi.Key != o.PublicKey() || !pi.Bound || pi.Endpoint != o.Endpoint() {
			t.Fatalf("PeerInfo %+v", pi)
		}
	}
	if v, ok := a.PeerHeader(b.UUID(), HeaderPublicKey); !ok || v != b.PublicKey().Z85() {
		t.Fatalf("X-PUBLICKEY of beta = %q", v)
	}
	if k, ok := a.PeerKey(b.UUID()); !ok || k != b.PublicKey() {
		t.Fatalf("PeerKey(beta) = %s, %v; want %s", k.Z85(), ok, b.PublicKey().Z85())
	}
	if k, ok := a.PeerKey(uuid.New()); ok {
		t.Fatalf("PeerKey of an unknown peer = %s, true", k.Z85())
	}
	if err := a.Whisper(b.UUID(), []byte("psst")); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, b, eventTimeout, "WHISPER", isWhisper(a.UUID(), "psst"))
	if err := c.Shout("lab", []byte("hello lab")); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Node{a, b} {
		waitEvent(t, n, eventTimeout, "SHOUT", func(e Event) bool {
			s, ok := e.(*Shout)
			return ok && s.Peer == c.UUID() && s.Group == "lab" && string(s.Content[0]) == "hello lab"
		})
	}
	// gamma stops: a v3 port-0 beacon and GOODBYE; the others see it exit.
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Node{a, b} {
		waitEvent(t, n, eventTimeout, "EXIT of gamma", func(e Event) bool { _, ok := e.(*Exit); return ok && e.PeerUUID() == c.UUID() })
	}
	for _, n := range []*Node{a, b} {
		if st := n.Stats(); st.PeersRefused != 0 || st.BeaconsRefused != 0 || st.SequenceGaps != 0 {
			t.Fatalf("%s stats %+v", n.Name(), st)
		}
	}
}

// TestSecureAndPlainDoNotMesh: as the C node, a secure node uses only v3
// beacons with a key and a plain node only v1; neither enters the other.
func TestSecureAndPlainDoNotMesh(t *testing.T) {
	port := testBeaconPort()
	plain := startNode(t, Config{Name: "plain", Beacon: BeaconConfig{Port: port}})
	sec := startNode(t, secureConfig(t, "secure", port))
	waitFor(t, "beacons dropped both ways", func() bool {
		return plain.Stats().BeaconsInvalid >= 3 && sec.Stats().BeaconsInvalid >= 3
	})
	// Even told where the other is, they cannot talk: the mechanisms differ.
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	if err := plain.ConnectPeer(ctx, sec.Endpoint(), sec.UUID()); err != nil {
		t.Fatal(err)
	}
	if err := sec.ConnectPeerKey(ctx, plain.Endpoint(), sec.PublicKey()); err != nil {
		t.Fatal(err)
	}
	// A third, secure node on the same port meets the secure one only.
	sec2 := startNode(t, secureConfig(t, "secure2", port))
	waitEvent(t, sec, eventTimeout, "ENTER secure2", isEnter(sec2.UUID()))
	waitEvent(t, sec2, eventTimeout, "ENTER secure", isEnter(sec.UUID()))
	for _, n := range []*Node{plain, sec} {
		for _, id := range n.Peers() {
			if id == plain.UUID() || id == sec.UUID() {
				t.Fatalf("%s has peer %s", n.Name(), id)
			}
		}
	}
	if len(plain.Peers()) != 0 {
		t.Fatalf("plain node has peers %v", plain.Peers())
	}
}

// TestSecureForgedBeaconAndConnection: a fourth party claims beta's UUID
// with its own key, by beacon and by connection. Alpha refuses and reports
// it, never dials the forger, and keeps talking to the real beta. A forged
// port-0 beacon (beta's UUID and public key, which anyone knows) does not
// remove beta either.
func TestSecureForgedBeaconAndConnection(t *testing.T) {
	port := testBeaconPort()
	a := startNode(t, secureConfig(t, "alpha", port))
	b := startNode(t, secureConfig(t, "beta", port))
	waitEvent(t, a, eventTimeout, "ENTER beta", isEnter(b.UUID()))
	waitEvent(t, b, eventTimeout, "ENTER alpha", isEnter(a.UUID()))

	forger := newRawPeer(t, b.UUID())
	fb, err := beacon.New(beacon.Config{Port: port, Loopback: true, Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*eventTimeout)
	defer cancel()
	if err := fb.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	fport, _ := strconv.Atoi(forger.endpoint[len("tcp://127.0.0.1:"):])
	fb.Publish(Beacon{Version: BeaconV3, UUID: b.UUID(), Port: uint16(fport), PublicKey: forger.pub}.AppendMarshal(nil))
	waitEvent(t, a, eventTimeout, "REFUSED forged beacon", isRefused(b.UUID(), forger.pub, StageBeacon, ErrKeyMismatch))

	forger.dial(a)
	forger.hello("beta", forger.pub.Z85())
	forger.send(&zremsg.Msg{ID: zremsg.MsgWhisper, Content: [][]byte{[]byte("I am beta")}})
	waitEvent(t, a, eventTimeout, "REFUSED forged connection", isRefused(b.UUID(), forger.pub, StageConnection, ErrKeyMismatch))

	// The forged port-0 beacon: beta's own UUID and key.
	fb.Publish(Beacon{Version: BeaconV3, UUID: b.UUID(), Port: 0, PublicKey: b.PublicKey()}.AppendMarshal(nil))
	before := a.Stats().BeaconsReceived
	waitFor(t, "forged beacons received", func() bool { return a.Stats().BeaconsReceived > before+5 })

	// The real beta still works both ways, with its own key and address.
	if err := a.Whisper(b.UUID(), []byte("to the real beta")); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, b, eventTimeout, "WHISPER", isWhisper(a.UUID(), "to the real beta"))
	if err := b.Whisper(a.UUID(), []byte("from the real beta")); err != nil {
		t.Fatal(err)
	}
	// Nothing from the forger reaches alice's consumer, and beta does not exit.
	waitEvent(t, a, eventTimeout, "WHISPER from beta", func(e Event) bool {
		if w, ok := e.(*Whisper); ok && string(w.Content[0]) == "I am beta" {
			t.Fatal("the forger's whisper was delivered")
		}
		if x, ok := e.(*Exit); ok && x.Peer == b.UUID() {
			t.Fatal("beta exited on a forged beacon")
		}
		return isWhisper(b.UUID(), "from the real beta")(e)
	})
	infos := a.PeerInfos()
	if len(infos) != 1 || infos[0].UUID != b.UUID() || infos[0].Key != b.PublicKey() || infos[0].Endpoint != b.Endpoint() {
		t.Fatalf("alpha's peers %+v", infos)
	}
	if len(forger.router.Peers()) != 0 {
		t.Fatal("alpha connected to the forger")
	}
	if st := a.Stats(); st.BeaconsRefused == 0 || st.PeersRefused == 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestSecureHelloKeyMismatch: a HELLO whose X-PUBLICKEY is not the key
// its connection is authenticated with, or that has none, is refused.
func TestSecureHelloKeyMismatch(t *testing.T) {
	a := startNode(t, Config{Name: "alpha", Beacon: BeaconConfig{Disabled: true}, Bind: "127.0.0.1",
		Secure: &SecureConfig{Secret: mustSecret(t)}})
	other, _ := genKeys(t)
	for _, tc := range []struct {
		name, header string
		reason       error
	}{
		{"other key", other.Z85(), ErrKeyMismatch},
		{"no key", "", ErrNoKey},
		{"bad key", "not-a-key", ErrKeyMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newRawPeer(t, uuid.Nil) // bound: its UUID is from its key
			p.dial(a)
			p.hello("liar", tc.header)
			e := waitEvent(t, a, eventTimeout, "REFUSED hello", isRefused(p.id, p.pub, StageHello, tc.reason)).(*Refused)
			if e.Name != "liar" {
				t.Fatalf("refused %+v", e)
			}
			if len(a.Peers()) != 0 {
				t.Fatalf("peers %v", a.Peers())
			}
		})
	}
	// The same peer with the right header enters.
	p := newRawPeer(t, uuid.Nil)
	p.dial(a)
	p.hello("honest", p.pub.Z85())
	waitEvent(t, a, eventTimeout, "ENTER honest", isEnter(p.id))
}

func mustSecret(t testing.TB) curve.SecretKey { _, s := genKeys(t); return s }

// TestSecureUnboundPinned: a C-zyre-like peer with a random UUID is
// accepted (unbound), pinned to its key, and nobody else can then claim
// its UUID; under RequireBound it is refused.
func TestSecureUnboundPinned(t *testing.T) {
	a := startNode(t, Config{Name: "alpha", Beacon: BeaconConfig{Disabled: true}, Bind: "127.0.0.1",
		Secure: &SecureConfig{Secret: mustSecret(t)}})
	cid := uuid.New() // version 4, as libuuid makes
	c := newRawPeer(t, cid)
	c.dial(a)
	c.hello("c-node", c.pub.Z85())
	waitEvent(t, a, eventTimeout, "ENTER c-node", isEnter(cid))
	// alpha connected back with CURVE, authenticating c's inbox by the key
	// of its HELLO, and said HELLO with its own X-PUBLICKEY.
	hello, key := c.recv("HELLO", func(m *zremsg.Msg) bool { return m.ID == zremsg.MsgHello })
	if v, _ := hello.Header(HeaderPublicKey); v != a.PublicKey().Z85() || string(key) != string(a.PublicKey().Bytes()) {
		t.Fatalf("alpha's HELLO X-PUBLICKEY %q, connection key %x", v, key)
	}
	infos := a.PeerInfos()
	if len(infos) != 1 || infos[0].Bound || infos[0].Key != c.pub {
		t.Fatalf("peer infos %+v", infos)
	}
	// An impostor with c's UUID and another key is refused at once.
	imp := newRawPeer(t, cid)
	imp.dial(a)
	imp.hello("c-node", imp.pub.Z85())
	waitEvent(t, a, eventTimeout, "REFUSED impostor", isRefused(cid, imp.pub, StageConnection, ErrKeyMismatch))
	// The real one keeps working both ways.
	c.send(&zremsg.Msg{ID: zremsg.MsgWhisper, Content: [][]byte{[]byte("still me")}})
	waitEvent(t, a, eventTimeout, "WHISPER", isWhisper(cid, "still me"))
	if err := a.Whisper(cid, []byte("hi c")); err != nil {
		t.Fatal(err)
	}
	c.recv("WHISPER", func(m *zremsg.Msg) bool { return m.ID == zremsg.MsgWhisper && string(m.Content[0]) == "hi c" })

	// RequireBound refuses unbound peers at the connection.
	strict := startNode(t, Config{Name: "strict", Beacon: BeaconConfig{Disabled: true}, Bind: "127.0.0.1",
		Secure: &SecureConfig{Secret: mustSecret(t), RequireBound: true}})
	u := newRawPeer(t, uuid.New())
	u.dial(strict)
	u.hello("c-node", u.pub.Z85())
	waitEvent(t, strict, eventTimeout, "REFUSED unbound", isRefused(u.id, u.pub, StageConnection, ErrUnbound))
}

// TestSecureAuthorizeHook: SecureConfig.Authorize sees each connection and
// HELLO, and its refusal is reported.
func TestSecureAuthorizeHook(t *testing.T) {
	bad := newRawPeer(t, uuid.Nil) // its key is on the deny list
	seen := make(chan PeerKey, 16)
	a := startNode(t, Config{Name: "alpha", Beacon: BeaconConfig{Disabled: true}, Bind: "127.0.0.1",
		Secure: &SecureConfig{Secret: mustSecret(t), Authorize: func(_ context.Context, k PeerKey) error {
			if k.Key == bad.pub {
				return errors.New("on the deny list")
			}
			select {
			case seen <- k:
			default:
			}
			return nil
		}}})
	ok := newRawPeer(t, uuid.Nil)
	ok.dial(a)
	ok.hello("ok", ok.pub.Z85())
	waitEvent(t, a, eventTimeout, "ENTER ok", isEnter(ok.id))
	var got []PeerKey
	for len(got) < 2 {
		got = append(got, <-seen)
	}
	for i, want := range []Stage{StageConnection, StageHello} {
		k := got[i]
		if k.Stage != want || k.Key != ok.pub || k.UUID != ok.id || !k.Bound || k.Addr == "" {
			t.Fatalf("authorize call %d saw %+v", i, k)
		}
	}
	if got[1].Name != "ok" || len(got[1].Headers) != 1 {
		t.Fatalf("hello stage %+v", got[1])
	}
	bad.dial(a)
	bad.hello("bad", bad.pub.Z85())
	waitEvent(t, a, eventTimeout, "REFUSED by hook", isRefused(bad.id, bad.pub, StageConnection, ErrNotAuthorized))
}

func TestSecureConfigErrors(t *testing.T) {
	pub, sec := genKeys(t)
	other, _ := genKeys(t)
	for _, tc := range []struct {
		name string
		cfg  Config
		want error
	}{
		{"no secret", Config{Secure: &SecureConfig{Public: pub}}, ErrNoKey},
		{"public not matching", Config{Secure: &SecureConfig{Public: other, Secret: sec}}, curve.ErrInvalidKey},
		{"UUID not from key", Config{UUID: uuid.New(), Secure: &SecureConfig{Secret: sec}}, ErrKeyMismatch},
		{"X-PUBLICKEY header", Config{Headers: []Header{{Key: HeaderPublicKey, Value: pub.Z85()}}, Secure: &SecureConfig{Secret: sec}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := New(tc.cfg)
			if err == nil {
				n.Close()
				t.Fatal("accepted")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
	// The derived UUID given explicitly is fine. (On lo: this node starts.)
	n, err := New(Config{UUID: UUIDFromKey(pub), Secure: &SecureConfig{Secret: sec}, Beacon: BeaconConfig{Loopback: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if n.UUID() != UUIDFromKey(pub) || n.PublicKey() != pub {
		t.Fatalf("UUID %s key %s", n.UUID(), n.PublicKey())
	}
	ctx := context.Background()
	if err := n.Start(ctx); err == nil {
		defer n.Close()
	}
	if err := n.ConnectPeer(ctx, "tcp://127.0.0.1:1", uuid.Nil); !errors.Is(err, ErrNoKey) {
		t.Fatalf("ConnectPeer in secure mode: %v", err)
	}
	plain := startNode(t, Config{Beacon: BeaconConfig{Disabled: true}})
	if err := plain.ConnectPeerKey(ctx, "tcp://127.0.0.1:1", pub); !errors.Is(err, ErrNotSecure) {
		t.Fatalf("ConnectPeerKey in plain mode: %v", err)
	}
	if !plain.PublicKey().IsZero() || plain.Secure() {
		t.Fatal("plain node has a key")
	}
}

// TestCheckClaim is the decision table of a (UUID, key) claim.
func TestCheckClaim(t *testing.T) {
	k1, _ := genKeys(t)
	k2, _ := genKeys(t)
	random := uuid.New()
	pinned := uuid.New()
	v5other := UUIDFromKey(k2)
	sc, err := newSecure(&SecureConfig{Secret: mustSecret(t)})
	if err != nil {
		t.Fatal(err)
	}
	sc.pins.pin(pinned, k1)
	strict, err := newSecure(&SecureConfig{Secret: mustSecret(t), RequireBound: true})
	if err != nil {
		t.Fatal(err)
	}
	strict.pins.pin(pinned, k1)
	for _, tc := range []struct {
		name string
		sc   *secure
		id   uuid.UUID
		key  curve.PublicKey
		want error
	}{
		{"bound", sc, UUIDFromKey(k1), k1, nil},
		{"bound, strict", strict, UUIDFromKey(k1), k1, nil},
		{"key-derived UUID of another key", sc, v5other, k1, ErrKeyMismatch},
		{"unbound, first sight", sc, random, k1, nil},
		{"unbound, strict", strict, random, k1, ErrUnbound},
		{"pinned, same key", sc, pinned, k1, nil},
		{"pinned, other key", sc, pinned, k2, ErrKeyMismatch},
		{"zero key", sc, random, curve.PublicKey{}, ErrNoKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.sc.checkClaim(tc.id, tc.key)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("checkClaim = %v, want %v", err, tc.want)
			}
		})
	}
}

// secureHarness is a state in secure mode driven synchronously, with fake
// CURVE links that record the key they authenticate the peer by.
type secureHarness struct {
	*harness
	keys map[string]curve.PublicKey // endpoint -> key dialled
}

func newSecureHarness(t *testing.T) *secureHarness {
	t.Helper()
	h := newHarness(t)
	sc, err := newSecure(&SecureConfig{Secret: mustSecret(t)})
	if err != nil {
		t.Fatal(err)
	}
	sh := &secureHarness{harness: h, keys: map[string]curve.PublicKey{}}
	sc.dial = func(ep string, key curve.PublicKey) (link, error) {
		sh.keys[ep] = key
		l := &fakeLink{endpoint: ep}
		h.links[ep] = append(h.links[ep], l)
		return l, nil
	}
	h.st.setSecure(sc)
	return sh
}

func (h *secureHarness) beaconV3(id uuid.UUID, key curve.PublicKey, port uint16, from string) {
	b := Beacon{Version: BeaconV3, UUID: id, Port: port, PublicKey: key}
	h.st.onBeacon(b.AppendMarshal(nil), netip.MustParseAddrPort(from), h.now)
}

func (h *secureHarness) recvKey(id uuid.UUID, key curve.PublicKey, m *zremsg.Msg) {
	h.t.Helper()
	frames, err := m.Frames()
	if err != nil {
		h.t.Fatal(err)
	}
	h.st.onMessage(inboxMsg{identity: Identity(id), frames: frames, remote: "test", publicKey: key.Bytes()}, h.now)
}

func helloWithKey(ep string, key curve.PublicKey) *zremsg.Msg {
	return &zremsg.Msg{ID: zremsg.MsgHello, Sequence: 1, Endpoint: ep, Name: "peer",
		Headers: []Header{{Key: HeaderPublicKey, Value: key.Z85()}}}
}

// TestStateSecureBeacons: v1 and keyless v3 beacons are dropped; the key
// of a beacon is what the DEALER authenticates the peer by; a beacon with
// another key for a known peer is refused and does not redirect it.
func TestStateSecureBeacons(t *testing.T) {
	h := newSecureHarness(t)
	kb, _ := genKeys(t)
	kf, _ := genKeys(t)
	idB := UUIDFromKey(kb)
	h.beacon(idB, 50002, "127.0.0.1:5670") // v1
	h.beaconV3(idB, curve.PublicKey{}, 50002, "127.0.0.1:5670")
	if st := h.stats.snapshot(); st.BeaconsInvalid != 2 || len(h.st.peers) != 0 {
		t.Fatalf("stats %+v, peers %d", st, len(h.st.peers))
	}
	h.beaconV3(idB, kb, 50002, "127.0.0.1:5670")
	if h.keys[epB] != kb {
		t.Fatalf("dialled %s with key %s, want %s", epB, h.keys[epB], kb)
	}
	if m := h.link(epB).sent[0]; m.ID != zremsg.MsgHello || m.Headers[len(m.Headers)-1] != (Header{Key: HeaderPublicKey, Value: h.st.sec.pub.Z85()}) {
		t.Fatalf("our HELLO %+v", m)
	}
	// Forged: B's UUID with another key, from another port.
	h.beaconV3(idB, kf, 50009, "127.0.0.1:5670")
	if len(h.links["tcp://127.0.0.1:50009"]) != 0 || h.st.peers[idB].endpoint != epB {
		t.Fatal("forged beacon redirected the peer")
	}
	h.wantEvents("REFUSED ")
	h.beaconV3(idB, kf, 50009, "127.0.0.1:5670") // counted, reported once
	h.wantEvents()
	if st := h.stats.snapshot(); st.BeaconsRefused != 2 {
		t.Fatalf("BeaconsRefused = %d", st.BeaconsRefused)
	}
	// B says HELLO over a connection authenticated with kb: it enters.
	h.recvKey(idB, kb, helloWithKey(epB, kb))
	h.wantEvents("ENTER peer")
	// A forged port-0 beacon (B's UUID and key) does not remove B: we ping.
	h.beaconV3(idB, kb, 0, "127.0.0.1:5670")
	h.wantEvents()
	l := h.link(epB)
	if last := l.sent[len(l.sent)-1]; last.ID != zremsg.MsgPing {
		t.Fatalf("sent %v, want a PING", last.ID)
	}
	// B answers: it stays past the grace period.
	h.advance(time.Second)
	h.recvKey(idB, kb, &zremsg.Msg{ID: zremsg.MsgPingOK, Sequence: 2})
	h.advance(h.cfg.Evasive - time.Millisecond) // past the grace, not yet evasive
	h.st.reap(h.now)
	if p := h.st.peers[idB]; p == nil || !p.ready {
		t.Fatal("peer removed after answering the PING")
	}
	h.wantEvents()
	// Had it not answered (it really stopped), it goes after Evasive.
	h.beaconV3(idB, kb, 0, "127.0.0.1:5670")
	h.advance(h.cfg.Evasive)
	h.st.reap(h.now)
	h.wantEvents("EXIT peer")
}

// TestStateSecureHello: the keys of a HELLO must agree with each other and
// with the beacon we dialled.
func TestStateSecureHello(t *testing.T) {
	h := newSecureHarness(t)
	kb, _ := genKeys(t)
	kf, _ := genKeys(t)
	idB := UUIDFromKey(kb)
	h.beaconV3(idB, kb, 50002, "127.0.0.1:5670")
	// Connection authenticated as kf, HELLO says kf, UUID of kb: refused
	// (the inbox's authorizer refuses it earlier; the state checks too).
	h.recvKey(idB, kf, helloWithKey(epB, kf))
	// Connection kb, HELLO says kf: refused.
	h.recvKey(idB, kb, helloWithKey(epB, kf))
	// No key on the connection.
	h.st.onMessage(inboxMsg{identity: Identity(idB), frames: mustFrames(helloWithKey(epB, kb))}, h.now)
	got := h.events()
	if len(got) != 3 {
		t.Fatalf("events %q", got)
	}
	if p := h.st.peers[idB]; p.ready || p.key != kb {
		t.Fatalf("peer %+v", p)
	}
	// Unbound peer: accepted, then pinned.
	cid := uuid.New()
	h.recvKey(cid, kf, &zremsg.Msg{ID: zremsg.MsgHello, Sequence: 1, Endpoint: "tcp://127.0.0.1:50003", Name: "c",
		Headers: []Header{{Key: HeaderPublicKey, Value: kf.Z85()}}})
	h.wantEvents("ENTER c")
	if k, ok := h.st.sec.pins.get(cid); !ok || k != kf {
		t.Fatal("unbound peer not pinned")
	}
	if h.keys["tcp://127.0.0.1:50003"] != kf {
		t.Fatal("not dialled back with its key")
	}
	// A message on a connection with another key is dropped.
	before := h.stats.snapshot().MessagesDropped
	h.recvKey(cid, kb, &zremsg.Msg{ID: zremsg.MsgWhisper, Sequence: 2, Content: [][]byte{[]byte("x")}})
	if h.stats.snapshot().MessagesDropped != before+1 {
		t.Fatal("message over another key accepted")
	}
	h.wantEvents()
}

// TestSecureReplayedBeaconBeforeThePeer: a beacon replaying beta's UUID
// and key with the address of a listener that is not beta, heard before
// beta's own, makes alpha dial that listener (the CURVE handshake cannot
// succeed there); beta's authenticated HELLO then moves alpha's link to
// beta's real inbox, and they talk both ways.
func TestSecureReplayedBeaconBeforeThePeer(t *testing.T) {
	port := testBeaconPort()
	a := startNode(t, secureConfig(t, "alpha", port))
	bcfg := secureConfig(t, "beta", port)
	bpub := bcfg.Secure.Secret.Public()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	rb, err := beacon.New(beacon.Config{Port: port, Loopback: true, Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*eventTimeout)
	defer cancel()
	if err := rb.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer rb.Close()
	rb.Publish(Beacon{Version: BeaconV3, UUID: UUIDFromKey(bpub), Port: uint16(ln.Addr().(*net.TCPAddr).Port), PublicKey: bpub}.AppendMarshal(nil))
	select {
	case c := <-accepted:
		defer c.Close()
	case <-ctx.Done():
		t.Fatal("alpha did not dial the replayed beacon's address")
	}
	b := startNode(t, bcfg)
	waitEvent(t, a, eventTimeout, "ENTER beta", isEnter(b.UUID()))
	waitEvent(t, b, eventTimeout, "ENTER alpha", isEnter(a.UUID()))
	if err := a.Whisper(b.UUID(), []byte("found you")); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, b, eventTimeout, "WHISPER", isWhisper(a.UUID(), "found you"))
	if got := a.PeerAddress(b.UUID()); got != b.Endpoint() {
		t.Fatalf("alpha reaches beta at %s, want %s", got, b.Endpoint())
	}
}

// Two secure nodes on loopback: bob knows alice's endpoint and public key
// (from her certificate or a pairing) and connects; their UUIDs are
// derived from their keys, and every HELLO is checked against the key
// that authenticated it.
func ExampleNode_ConnectPeerKey() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	newNode := func(name string) *Node {
		_, sec, err := curve.GenerateKeyPair(nil) // or keystore.Identity.CurveKeyPair
		if err != nil {
			panic(err)
		}
		n, err := New(Config{
			Name:   name,
			Beacon: BeaconConfig{Disabled: true}, // on a LAN: leave beacons on (v3, with the key)
			Bind:   "127.0.0.1",
			Secure: &SecureConfig{Secret: sec},
		})
		if err != nil {
			panic(err)
		}
		if err := n.Start(ctx); err != nil {
			panic(err)
		}
		return n
	}
	alice, bob := newNode("alice"), newNode("bob")
	defer alice.Close()
	defer bob.Close()
	if err := bob.ConnectPeerKey(ctx, alice.Endpoint(), alice.PublicKey()); err != nil {
		panic(err)
	}
	for e := range alice.Events() {
		if e, ok := e.(*Enter); ok {
			info := alice.PeerInfos()[0]
			fmt.Println("ENTER", e.Name, "bound:", info.Bound, "key matches:", info.Key == bob.PublicKey())
			break
		}
	}
	if err := alice.Whisper(bob.UUID(), []byte("hello over CURVE")); err != nil {
		panic(err)
	}
	for e := range bob.Events() {
		if w, ok := e.(*Whisper); ok {
			fmt.Printf("WHISPER %s: %s\n", w.Name, w.Content[0])
			break
		}
	}
	// Output:
	// ENTER bob bound: true key matches: true
	// WHISPER alice: hello over CURVE
}

// TestSecureCloseLeaksNoGoroutine: secure nodes (CURVE handshakes, a
// refused connection, a pending ConnectPeerKey) leave no goroutine after
// Close.
func TestSecureCloseLeaksNoGoroutine(t *testing.T) {
	port := testBeaconPort()
	var nodes []*Node
	for _, name := range []string{"a", "b"} {
		cfg := secureConfig(t, name, port)
		cfg.Beacon.Loopback, cfg.Beacon.Interval = true, 50*time.Millisecond
		n, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	a, b := nodes[0], nodes[1]
	waitEvent(t, a, eventTimeout, "ENTER", isEnter(b.UUID()))
	waitEvent(t, b, eventTimeout, "ENTER", isEnter(a.UUID()))
	// A forged connection (b's UUID, another key), refused.
	_, fsec := genKeys(t)
	d, err := zmtp.DialDealer("tcp", a.Endpoint()[len("tcp://"):], zmtp.Options{
		Identity:  Identity(b.UUID()),
		Mechanism: zmtp.CurveClient(zmtp.CurveClientConfig{Secret: fsec, ServerKey: a.PublicKey()}),
	})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, a, eventTimeout, "REFUSED", func(e Event) bool { _, ok := e.(*Refused); return ok })
	d.Close()
	other, _ := genKeys(t)
	a.ConnectPeerKey(context.Background(), "tcp://127.0.0.1:9", other)
	if len(ourGoroutines()) == 0 {
		t.Fatal("the leak check sees no goroutine of a running node")
	}
	for _, n := range nodes {
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}
	noneOfOurs(t)
}
