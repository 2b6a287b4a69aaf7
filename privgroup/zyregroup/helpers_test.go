package zyregroup

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/testenv"
	"github.com/zyre-go/zyre/privgroup"
	"github.com/zyre-go/zyre/zre"
)

// eventTimeout bounds every wait: generous for a loaded 2-core machine.
const eventTimeout = 20 * time.Second

func testBeaconPort() int { return 20000 + rand.IntN(40000) }

// secretKey returns a fresh CURVE secret key whose public key a secure
// node accepts (C zyre reads a beacon key starting with 0x00 as none).
func secretKey(t testing.TB) curve.SecretKey {
	t.Helper()
	for range 100 {
		pub, sec, err := curve.GenerateKeyPair(nil)
		if err != nil {
			t.Fatal(err)
		}
		if pub.Bytes()[0] != 0 {
			return sec
		}
	}
	t.Fatal("no usable key in 100 tries")
	return curve.SecretKey{}
}

// member is one node on loopback, its private group (nil for a node that
// only joins the ZRE group) and the events the group did not consume.
type member struct {
	t     testing.TB
	name  string
	n     *zre.Node
	sk    curve.SecretKey
	g     *Group
	other chan zre.Event
	// tap, if set before start, sees every event before Handle.
	tap func(zre.Event)
	mu  sync.Mutex
}

// newNode starts a loopback node (secure unless plain) and closes it at
// the end of the test.
func newNode(t testing.TB, name string, port int, plain bool) *member {
	t.Helper()
	return newNodeBeacon(t, name, port, plain, 100*time.Millisecond)
}

// newNodeBeacon is newNode with another beacon interval (0: zre's default,
// as a deployed node runs).
func newNodeBeacon(t testing.TB, name string, port int, plain bool, interval time.Duration) *member {
	t.Helper()
	return newNodeKey(t, name, port, plain, interval, secretKey(t))
}

// newNodeKey is newNodeBeacon with the given secret key: a secure node
// started again with the key of one that stopped has its UUID (a restart).
func newNodeKey(t testing.TB, name string, port int, plain bool, interval time.Duration, sk curve.SecretKey) *member {
	t.Helper()
	m := &member{t: t, name: name, sk: sk, other: make(chan zre.Event, 10000)}
	cfg := zre.Config{
		Name:   name,
		Beacon: zre.BeaconConfig{Port: port, Loopback: true, Interval: interval},
	}
	if !plain {
		cfg.Secure = &zre.SecureConfig{Secret: m.sk}
	}
	n, err := zre.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.n = n
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return m
}

// attach binds the private group and starts the event pump.
func (m *member) attach(group string, opts Options) {
	m.t.Helper()
	opts.Secret = m.sk
	g, err := Attach(m.n, group, opts)
	if err != nil {
		m.t.Fatalf("%s: attach: %v", m.name, err)
	}
	m.g = g
	m.t.Cleanup(func() { g.Close() })
	m.pump()
}

// pump feeds the node's events to the group (if any) and the rest to
// m.other.
func (m *member) pump() {
	go func() {
		for ev := range m.n.Events() {
			if m.tap != nil {
				m.tap(ev)
			}
			if m.g != nil && m.g.Handle(ev) {
				continue
			}
			select {
			case m.other <- ev:
			default:
			}
		}
	}()
}

// await waits for an unconsumed event that match accepts.
func (m *member) await(what string, match func(zre.Event) bool) zre.Event {
	m.t.Helper()
	deadline := time.NewTimer(eventTimeout)
	defer deadline.Stop()
	for {
		select {
		case ev := <-m.other:
			if match(ev) {
				return ev
			}
		case <-deadline.C:
			m.t.Fatalf("%s: no %s within %v", m.name, what, eventTimeout)
			return nil
		}
	}
}

// awaitSender waits until m holds the sender key of from.
func (m *member) awaitSender(from *member) {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	if _, err := m.g.AwaitSender(ctx, func(p uuid.UUID) bool { return p == from.n.UUID() }); err != nil {
		m.t.Fatalf("%s: no sender key of %s: %v", m.name, from.name, err)
	}
}

// waitFor polls cond with a deadline, for states no event announces.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, eventTimeout, what, cond)
}

func contains(ids []uuid.UUID, id uuid.UUID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// trustKeys is a Trusted func that trusts the keys of the given members.
// trustedPair is alice and bob, secure nodes on loopback that trust each
// other, in the private group (alice's chunks of 1000 octets), once bob
// holds alice's sender key.
func trustedPair(t *testing.T) (a, b *member) {
	t.Helper()
	port := testBeaconPort()
	a, b = newNode(t, "alice", port, false), newNode(t, "bob", port, false)
	trusted := trustKeys(a, b)
	a.attach(group, Options{Trusted: trusted, ChunkSize: 1000})
	b.attach(group, Options{Trusted: trusted})
	b.awaitSender(a)
	return a, b
}

func trustKeys(ms ...*member) func(uuid.UUID, curve.PublicKey) bool {
	keys := map[curve.PublicKey]bool{}
	for _, m := range ms {
		keys[m.sk.Public()] = true
	}
	return func(_ uuid.UUID, k curve.PublicKey) bool { return keys[k] }
}

// keyDirectory is an injected PeerKey for plain nodes: keys learnt out of
// band.
func keyDirectory(ms ...*member) func(uuid.UUID) (curve.PublicKey, bool) {
	keys := map[uuid.UUID]curve.PublicKey{}
	for _, m := range ms {
		keys[m.n.UUID()] = m.sk.Public()
	}
	return func(id uuid.UUID) (curve.PublicKey, bool) { k, ok := keys[id]; return k, ok }
}

// shoutMarker has from SHOUT text to the group and waits until to got it:
// everything from shouted before has then reached to (one connection, in
// order).
func shoutMarker(from, to *member, text string) {
	to.t.Helper()
	if err := from.n.Shout(group, []byte(text)); err != nil {
		to.t.Fatal(err)
	}
	to.await("marker "+text, isShoutText(from.n.UUID(), text))
}

func isShoutText(from uuid.UUID, text string) func(zre.Event) bool {
	return func(ev zre.Event) bool {
		s, ok := ev.(*zre.Shout)
		return ok && s.Peer == from && len(s.Content) == 1 && string(s.Content[0]) == text
	}
}

// randomBytes returns n pseudo-random octets (test data, not keys).
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// timeAfter is the deadline of a stream's end.
func timeAfter(testing.TB) <-chan time.Time { return time.After(2 * eventTimeout) }

// fakeGroup is a Group on a fakeNode (no network) whose group holds two
// other peers: p, trusted, whose sender s has given us its key record key
// (with the suites octet fast), and x, authenticated but not trusted.
type fakeGroup struct {
	g       *Group
	s       *privgroup.Sender
	key     []byte
	p, x    uuid.UUID
	revoked atomic.Bool // p is no longer trusted
}

func newFakeGroup(t testing.TB, fast byte, options ...func(*Options)) *fakeGroup {
	t.Helper()
	ourSK, pSK, xSK := secretKey(t), secretKey(t), secretKey(t)
	f := &fakeGroup{p: uuid.New(), x: uuid.New()}
	keys := map[uuid.UUID]curve.PublicKey{f.p: pSK.Public(), f.x: xSK.Public()}
	opts := Options{
		Secret: ourSK,
		Trusted: func(id uuid.UUID, k curve.PublicKey) bool {
			return id == f.p && k.Equal(pSK.Public()) && !f.revoked.Load()
		},
		PeerKey: func(id uuid.UUID) (curve.PublicKey, bool) { k, ok := keys[id]; return k, ok },
	}
	for _, o := range options {
		o(&opts)
	}
	var err error
	f.g, err = Attach(&fakeNode{id: uuid.New(), peers: []uuid.UUID{f.p, f.x}}, group, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.g.Close() })
	if f.s, err = privgroup.NewSender(group, f.p, &pSK, privgroup.Options{}); err != nil {
		t.Fatal(err)
	}
	if f.key, err = f.s.KeyFor(ourSK.Public()); err != nil {
		t.Fatal(err)
	}
	f.g.Handle(keyWhisper(f.p, f.key, fast))
	if f.g.Stats().KeysReceived != 1 {
		t.Fatalf("the key of the trusted peer was not taken: %+v", f.g.Stats())
	}
	return f
}

// keyWhisper is the WHISPER of a sender key from peer with the suites octet.
func keyWhisper(peer uuid.UUID, key []byte, fast byte) *zre.Whisper {
	return &zre.Whisper{EventHeader: zre.EventHeader{Peer: peer}, Content: [][]byte{[]byte(WhisperPrefix), []byte(group), key, {fast}}}
}

// is reports f, run on the Group's goroutine.
func (g *Group) is(f func() bool) (r bool) {
	g.read(func() { r = f() })
	return r
}

// pending returns what waits for peer (the items share their keys and
// records with the Group's).
func (g *Group) pending(peer uuid.UUID) (items []item) {
	g.read(func() {
		if l := g.send.pend[peer]; l != nil {
			items = slices.Clone(l.items)
		}
	})
	return items
}

// writerShout shouts rec as the Writer does: then it waits while a member's
// queue is full (up to SendTimeout).
func (g *Group) writerShout(rec []byte) error {
	var err error
	var drained chan struct{}
	g.read(func() {
		if err = g.shout(rec); err == nil {
			drained = g.drained()
		}
	})
	if drained != nil {
		select {
		case <-drained:
		case <-time.After(g.opts.SendTimeout):
		}
	}
	return err
}
