package trust_test

// Multi-node tests of the trust store wired into secure zre nodes
// (zre.SecureConfig.Trust), on loopback only.

import (
	"context"
	"crypto/ed25519"
	crand "crypto/rand"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/beacon"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zmtp"
	"github.com/zyre-go/zyre/zre"
	"github.com/zyre-go/zyre/zre/zremsg"
)

const nodeTimeout = 30 * time.Second

// nodeIdent is one node's keys, home and trust store.
type nodeIdent struct {
	name  string
	pub   curve.PublicKey
	sec   curve.SecretKey
	sign  ed25519.PrivateKey
	home  string
	store *trust.Store
}

func (n *nodeIdent) Signer() ed25519.PrivateKey { return n.sign }
func (n *nodeIdent) uuid() uuid.UUID            { return zre.UUIDFromKey(n.pub) }
func (n *nodeIdent) signPub() ed25519.PublicKey { return n.sign.Public().(ed25519.PublicKey) }

func newNodeIdent(t *testing.T, name string) *nodeIdent {
	t.Helper()
	pub, sec, err := curve.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, sign, err := ed25519.GenerateKey(crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	st, err := trust.Open(home, trust.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return &nodeIdent{name: name, pub: pub, sec: sec, sign: sign, home: home, store: st}
}

// start runs a secure node with this identity and its trust store, with
// loopback beacons on port; it is closed when the test ends.
func (id *nodeIdent) start(t *testing.T, port int) *zre.Node {
	t.Helper()
	n, err := zre.New(zre.Config{
		Name:   id.name,
		Beacon: zre.BeaconConfig{Port: port, Loopback: true, Interval: 100 * time.Millisecond},
		Secure: &zre.SecureConfig{Secret: id.sec, Trust: &zre.TrustConfig{Store: id.store, Signer: id.sign}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

func nodeBeaconPort() int { return 20000 + rand.IntN(40000) }

// await reads n's events until match holds; fail, if set, fails the test
// on an event seen meanwhile.
func await(t *testing.T, n *zre.Node, what string, match func(zre.Event) bool, fail func(zre.Event) bool) zre.Event {
	t.Helper()
	deadline := time.NewTimer(nodeTimeout)
	defer deadline.Stop()
	for {
		select {
		case e, ok := <-n.Events():
			if !ok {
				t.Fatalf("%s: events closed waiting for %s", n.Name(), what)
			}
			if fail != nil && fail(e) {
				t.Fatalf("%s: unexpected %T %+v while waiting for %s", n.Name(), e, e, what)
			}
			if match(e) {
				return e
			}
		case <-deadline.C:
			t.Fatalf("%s: no %s within %v (stats %+v)", n.Name(), what, nodeTimeout, n.Stats())
		}
	}
}

// awaitEnters waits until n saw every one of ids enter.
func awaitEnters(t *testing.T, n *zre.Node, ids ...uuid.UUID) {
	t.Helper()
	want := map[uuid.UUID]bool{}
	for _, id := range ids {
		want[id] = true
	}
	await(t, n, "ENTER of every peer", func(e zre.Event) bool {
		if _, ok := e.(*zre.Enter); ok {
			delete(want, e.PeerUUID())
		}
		return len(want) == 0
	}, nil)
}

// connectedFrom reports whether the raw node's inbox has a connection
// from the node with UUID id.
func (r *rawNode) connectedFrom(id uuid.UUID) bool {
	for _, p := range r.router.Peers() {
		if string(p) == string(zre.Identity(id)) {
			return true
		}
	}
	return false
}

func entered(id uuid.UUID) func(zre.Event) bool {
	return func(e zre.Event) bool { _, ok := e.(*zre.Enter); return ok && e.PeerUUID() == id }
}

func exited(id uuid.UUID) func(zre.Event) bool {
	return func(e zre.Event) bool { _, ok := e.(*zre.Exit); return ok && e.PeerUUID() == id }
}

func refused(id uuid.UUID, key curve.PublicKey, stage zre.Stage, reason error) func(zre.Event) bool {
	return func(e zre.Event) bool {
		r, ok := e.(*zre.Refused)
		return ok && r.Peer == id && r.Key == key && r.Stage == stage && errors.Is(r.Reason, reason)
	}
}

func whispered(from uuid.UUID, text string) func(zre.Event) bool {
	return func(e zre.Event) bool {
		w, ok := e.(*zre.Whisper)
		return ok && w.Peer == from && string(w.Content[0]) == text
	}
}

// rawNode is a hand-made secure ZRE peer from zmtp parts: a C zyre node in
// CURVE mode (random UUID: unbound) or an impostor (any UUID, any key).
type rawNode struct {
	t        *testing.T
	id       uuid.UUID
	pub      curve.PublicKey
	sec      curve.SecretKey
	router   *zmtp.Router
	endpoint string
	port     int
	seq      uint16
	dealer   *zmtp.Dealer
}

func newRawNode(t *testing.T, id uuid.UUID) *rawNode {
	t.Helper()
	pub, sec, err := curve.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := zmtp.ListenRouter("tcp", "127.0.0.1:0", zmtp.Options{Mechanism: zmtp.CurveServer(zmtp.CurveServerConfig{Secret: sec})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	port := r.Addr().(*net.TCPAddr).Port
	return &rawNode{t: t, id: id, pub: pub, sec: sec, router: r, endpoint: "tcp://" + r.Addr().String(), port: port}
}

// hello connects to n's inbox under r.id and says HELLO as name.
func (r *rawNode) hello(n *zre.Node, name string) {
	r.t.Helper()
	d, err := zmtp.DialDealer("tcp", n.Endpoint()[len("tcp://"):], zmtp.Options{
		Identity:  zre.Identity(r.id),
		Mechanism: zmtp.CurveClient(zmtp.CurveClientConfig{Secret: r.sec, ServerKey: n.PublicKey()}),
	})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { d.Close() })
	r.dealer = d
	r.send(&zremsg.Msg{ID: zremsg.MsgHello, Endpoint: r.endpoint, Name: name, Groups: []string{trust.Group},
		Headers: []zre.Header{{Key: zre.HeaderPublicKey, Value: r.pub.Z85()}}})
}

func (r *rawNode) send(m *zremsg.Msg) {
	r.t.Helper()
	r.seq++
	m.Sequence = r.seq
	frames, err := m.Frames()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.dealer.Send(frames...); err != nil {
		r.t.Fatal(err)
	}
}

// beacon broadcasts v3 beacons on loopback claiming r.id with r.pub.
func (r *rawNode) beacon(port int) {
	r.t.Helper()
	b, err := beacon.New(beacon.Config{Port: port, Loopback: true, Interval: 100 * time.Millisecond})
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.t.Cleanup(func() { cancel(); b.Close() })
	if err := b.Start(ctx); err != nil {
		r.t.Fatal(err)
	}
	b.Publish(zre.Beacon{Version: zre.BeaconV3, UUID: r.id, Port: uint16(r.port), PublicKey: r.pub}.AppendMarshal(nil))
}

// TestNodeImpostorRefused: an unbound peer (a C zyre node) admitted once is
// pinned in the trust store; after the node restarts, an impostor reusing
// its UUID and name with a new key is refused by beacon and by connection,
// reported as a key change (and recorded in the store), and receives
// nothing. An impostor of a bound peer is refused too, and the real peers
// keep working.
func TestNodeImpostorRefused(t *testing.T) {
	port := nodeBeaconPort()
	a := newNodeIdent(t, "alice")
	b := newNodeIdent(t, "bob")
	nb := b.start(t, port)
	na := a.start(t, port)
	await(t, na, "ENTER bob", entered(b.uuid()), nil)

	carol := newRawNode(t, uuid.New())
	carol.hello(na, "carol")
	await(t, na, "ENTER carol", entered(carol.id), nil)
	rec, ok, err := a.store.Lookup(carol.pub)
	if err != nil || !ok || rec.State != trust.StateTOFU || rec.UUID != carol.id || rec.Bound {
		t.Fatalf("carol's record %+v %v %v", rec, ok, err)
	}

	// alice restarts: her memory is gone, her store is not.
	na.Close()
	na = a.start(t, port)
	await(t, na, "ENTER bob again", entered(b.uuid()), nil)

	imp := newRawNode(t, carol.id)
	imp.beacon(port)
	await(t, na, "REFUSED impostor's beacon", refused(carol.id, imp.pub, zre.StageBeacon, zre.ErrKeyMismatch), entered(carol.id))
	imp.hello(na, "carol")
	kc := await(t, na, "KEY-CHANGED", func(e zre.Event) bool { _, ok := e.(*zre.KeyChanged); return ok }, entered(carol.id)).(*zre.KeyChanged)
	if kc.Peer != carol.id || kc.Old != carol.pub || kc.New != imp.pub || kc.OldFingerprint != trust.Fingerprint(carol.pub) ||
		kc.NewFingerprint != trust.Fingerprint(imp.pub) || kc.Bound {
		t.Fatalf("key change %+v", kc)
	}
	await(t, na, "REFUSED impostor's connection", refused(carol.id, imp.pub, zre.StageConnection, zre.ErrKeyMismatch), entered(carol.id))
	if rec, _, _ := a.store.Lookup(carol.pub); rec.KeyChange == nil || rec.KeyChange.New != imp.pub {
		t.Fatalf("the store did not record the key change: %+v", rec)
	}

	// An impostor of bob (bound): its own key under bob's UUID and name.
	bimp := newRawNode(t, b.uuid())
	bimp.beacon(port)
	bimp.hello(na, "bob")
	await(t, na, "REFUSED bob's impostor", refused(b.uuid(), bimp.pub, zre.StageConnection, zre.ErrKeyMismatch), nil)

	// The real bob still works both ways; neither impostor got anything.
	if err := na.Whisper(b.uuid(), []byte("hi bob")); err != nil {
		t.Fatal(err)
	}
	await(t, nb, "WHISPER from alice", whispered(a.uuid(), "hi bob"), nil)
	if err := nb.Whisper(a.uuid(), []byte("hi alice")); err != nil {
		t.Fatal(err)
	}
	await(t, na, "WHISPER from bob", whispered(b.uuid(), "hi alice"), entered(carol.id))
	// (bob, who never met carol, may connect to carol's impostor: for him
	// it is a first sight of an unbound UUID.)
	if imp.connectedFrom(a.uuid()) || bimp.connectedFrom(a.uuid()) {
		t.Fatal("alice connected to an impostor")
	}
	for _, id := range na.Peers() {
		if id == carol.id {
			t.Fatal("the impostor of carol is a peer")
		}
	}
}

// TestNodeRevocationSpreads: bob revokes carol with a signed statement;
// it reaches alice, who verified bob, over the zyre-trust group; both drop
// carol, and carol restarted cannot connect to either.
func TestNodeRevocationSpreads(t *testing.T) {
	port := nodeBeaconPort()
	a, b, c := newNodeIdent(t, "alice"), newNodeIdent(t, "bob"), newNodeIdent(t, "carol")
	ctx := context.Background()
	if _, err := a.store.MarkVerified(ctx, b.pub, b.uuid(), "bob", "test", b.signPub()); err != nil {
		t.Fatal(err)
	}
	na, nb, nc := a.start(t, port), b.start(t, port), c.start(t, port)
	awaitEnters(t, na, b.uuid(), c.uuid())
	awaitEnters(t, nb, a.uuid(), c.uuid())
	awaitEnters(t, nc, a.uuid(), b.uuid())

	if _, err := b.store.Sign(ctx, b, &trust.Revoke{Key: c.pub, Reason: "lost phone"}); err != nil {
		t.Fatal(err)
	}
	await(t, nb, "EXIT carol at bob", exited(c.uuid()), nil)
	await(t, na, "EXIT carol at alice", exited(c.uuid()), nil)
	rec, ok, err := a.store.Lookup(c.pub)
	if err != nil || !ok || rec.State != trust.StateRevoked || rec.RevokedBy != b.pub {
		t.Fatalf("carol at alice: %+v %v %v", rec, ok, err)
	}
	if st := na.Stats(); st.PeersRevoked != 1 {
		t.Fatalf("alice's stats %+v", st)
	}

	// carol restarts: neither node lets her in.
	nc.Close()
	nc = c.start(t, port)
	for _, n := range []*zre.Node{na, nb} {
		await(t, n, "REFUSED carol", refused(c.uuid(), c.pub, zre.StageConnection, zre.ErrRevoked), entered(c.uuid()))
	}
	if err := na.Whisper(b.uuid(), []byte("still here")); err != nil {
		t.Fatal(err)
	}
	await(t, nb, "WHISPER", whispered(a.uuid(), "still here"), entered(c.uuid()))
}

// TestNodeStrictIntroduction: alice runs in strict mode and verified bob;
// bob verified carol and vouches for her; alice then admits carol, whom she
// refused before.
func TestNodeStrictIntroduction(t *testing.T) {
	port := nodeBeaconPort()
	a, b, c := newNodeIdent(t, "alice"), newNodeIdent(t, "bob"), newNodeIdent(t, "carol")
	ctx := context.Background()
	if err := a.store.SetPolicy(ctx, trust.Policy{Mode: trust.ModeStrict, Introductions: true, VerifiedRevoke: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.store.MarkVerified(ctx, b.pub, b.uuid(), "bob", "test", b.signPub()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.MarkVerified(ctx, c.pub, c.uuid(), "carol", "test", c.signPub()); err != nil {
		t.Fatal(err)
	}
	na, nb := a.start(t, port), b.start(t, port)
	await(t, na, "ENTER bob", entered(b.uuid()), nil)
	c.start(t, port)
	await(t, nb, "ENTER carol at bob", entered(c.uuid()), nil)
	await(t, na, "REFUSED carol (strict)", refused(c.uuid(), c.pub, zre.StageConnection, zre.ErrNotAuthorized), entered(c.uuid()))

	if _, err := b.store.Sign(ctx, b, &trust.Vouch{Key: c.pub, UUID: c.uuid(), Name: "carol"}); err != nil {
		t.Fatal(err)
	}
	await(t, na, "ENTER carol, introduced", entered(c.uuid()), nil)
	rec, ok, err := a.store.Lookup(c.pub)
	if err != nil || !ok || rec.State != trust.StateIntroduced || rec.IntroducedBy != b.pub {
		t.Fatalf("carol at alice: %+v %v %v", rec, ok, err)
	}
}

// TestNodeStoreEditedWhileRunning: another process (here another Store on
// the same file, as "zyre trust revoke" is) revokes a peer while the node
// runs: the node drops it within a housekeeping tick and refuses it after.
func TestNodeStoreEditedWhileRunning(t *testing.T) {
	port := nodeBeaconPort()
	a, c := newNodeIdent(t, "alice"), newNodeIdent(t, "carol")
	na := a.start(t, port)
	nc := c.start(t, port)
	await(t, na, "ENTER carol", entered(c.uuid()), nil)
	cli, err := trust.Open(a.home, trust.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Revoke(context.Background(), c.pub, "stolen laptop"); err != nil {
		t.Fatal(err)
	}
	await(t, na, "EXIT carol", exited(c.uuid()), nil)
	nc.Close()
	c.start(t, port)
	await(t, na, "REFUSED carol", refused(c.uuid(), c.pub, zre.StageConnection, zre.ErrRevoked), entered(c.uuid()))
}

// TestNodeMissingStatementsFetched: bob signed a revocation of carol while
// alice was away; when alice joins, bob's HEAD tells her what she misses,
// she asks (WANT) and applies it: carol is revoked at alice too.
func TestNodeMissingStatementsFetched(t *testing.T) {
	port := nodeBeaconPort()
	a, b, c := newNodeIdent(t, "alice"), newNodeIdent(t, "bob"), newNodeIdent(t, "carol")
	ctx := context.Background()
	if _, err := a.store.MarkVerified(ctx, b.pub, b.uuid(), "bob", "test", b.signPub()); err != nil {
		t.Fatal(err)
	}
	nb := b.start(t, port)
	c.start(t, port)
	await(t, nb, "ENTER carol", entered(c.uuid()), nil)
	if _, err := b.store.Sign(ctx, b, &trust.Revoke{Key: c.pub, Reason: "lost phone"}); err != nil {
		t.Fatal(err)
	}
	await(t, nb, "EXIT carol at bob", exited(c.uuid()), nil)

	na := a.start(t, port)
	deadline := time.Now().Add(nodeTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		rec, ok, err := a.store.Lookup(c.pub)
		if err != nil {
			t.Fatal(err)
		}
		if ok && rec.State == trust.StateRevoked && rec.RevokedBy == b.pub {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("carol not revoked at alice: %+v (stats %+v)", rec, na.Stats())
		}
		<-tick.C
	}
	if seq, _, err := a.store.Head(b.signPub()); err != nil || seq != 1 {
		t.Fatalf("alice's copy of bob's log: head %d, %v", seq, err)
	}
	// Whether carol entered before the statement arrived or not, she is
	// not a peer of alice's now.
	waitGone := time.Now().Add(nodeTimeout)
	for slices.Contains(na.Peers(), c.uuid()) {
		if time.Now().After(waitGone) {
			t.Fatal("carol still a peer of alice")
		}
		<-tick.C
	}
}
