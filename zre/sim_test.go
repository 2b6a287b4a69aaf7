package zre_test

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/sim"
	"github.com/zyre-go/zyre/internal/testenv"
	"github.com/zyre-go/zyre/zre"
	"github.com/zyre-go/zyre/zre/zretest"
)

// simTimeout is a generous deadline for a simulation phase on a loaded
// 2-core machine under -race.
const simTimeout = 3 * time.Minute

// checkSim checks a simulation's result: full mesh, every shout delivered,
// nothing lost or dropped.
func checkSim(t *testing.T, r sim.Result, err error, nodes int) {
	t.Helper()
	if err != nil {
		t.Fatalf("%d nodes: %v", nodes, err)
	}
	if want := uint64(r.Shouts) * uint64(nodes-1); r.Deliveries != want {
		t.Errorf("%d shout deliveries, want %d", r.Deliveries, want)
	}
	if r.SequenceGaps != 0 || r.EventsDropped != 0 || r.Exits != 0 || r.Network.Lost != 0 {
		t.Errorf("sequence gaps %d, events dropped %d, exits %d, lost %d: want none", r.SequenceGaps, r.EventsDropped, r.Exits, r.Network.Lost)
	}
}

// TestSimFullMesh100 runs 100 real nodes over the in-memory network: every
// node sees 99 ENTERs (Run waits for exactly that), then every node shouts
// once and every other node gets it.
func TestSimFullMesh100(t *testing.T) {
	const nodes = 100
	r, err := sim.Run(context.Background(), sim.Options{Nodes: nodes, Shouts: 1, Timeout: simTimeout})
	checkSim(t, r, err, nodes)
	if r.Shouts != nodes {
		t.Errorf("%d shouts, want %d", r.Shouts, nodes)
	}
	t.Logf("100 nodes: mesh in %v, heap %.1f KiB/node, %d deliveries in %v",
		r.MeshTime, r.HeapPerNode()/1024, r.Deliveries, r.ShoutTime)
}

// TestSim1000 is the 1000-node run; it takes minutes under -race on 2
// cores, so it runs only with ZYRE_SIM_1000=1 (BenchmarkSim1000 measures
// it without -race).
func TestSim1000(t *testing.T) {
	if os.Getenv("ZYRE_SIM_1000") != "1" {
		t.Skip("set ZYRE_SIM_1000=1 to run 1000 simulated nodes")
	}
	const nodes = 1000
	r, err := sim.Run(context.Background(), sim.Options{Nodes: nodes, Shouts: 1, Timeout: 10 * time.Minute})
	checkSim(t, r, err, nodes)
}

// simNode starts a node on network net and closes it when the test ends.
func simNode(t *testing.T, net *sim.Network, name string, groups ...string) *zre.Node {
	t.Helper()
	n, err := zre.New(zretest.WithTransport(zre.Config{Name: name}, net))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	for _, g := range groups {
		if err := n.Join(g); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return n
}

// next returns the next event of n that match accepts, within simTimeout.
func next(t *testing.T, n *zre.Node, what string, match func(zre.Event) bool) zre.Event {
	t.Helper()
	deadline := time.NewTimer(simTimeout)
	defer deadline.Stop()
	for {
		select {
		case e, ok := <-n.Events():
			if !ok {
				t.Fatalf("%s: events closed waiting for %s", n.Name(), what)
			}
			if match(e) {
				return e
			}
		case <-deadline.C:
			t.Fatalf("%s: no %s within %v", n.Name(), what, simTimeout)
		}
	}
}

func is[E zre.Event](peer uuid.UUID) func(zre.Event) bool {
	return func(e zre.Event) bool { _, ok := e.(E); return ok && e.PeerUUID() == peer }
}

// TestSimTransport drives three nodes on the in-memory network through the
// node's whole life: discovery, headers-free HELLO, whisper, shout, leave,
// Stop (port-0 beacon and GOODBYE: the others see EXIT at once), a node
// attaching late (it hears the earlier beacons), and Close.
func TestSimTransport(t *testing.T) {
	net := sim.NewNetwork(sim.NetworkOptions{})
	defer net.Close()
	a := simNode(t, net, "a", "g")
	b := simNode(t, net, "b", "g")
	next(t, a, "ENTER b", is[*zre.Enter](b.UUID()))
	e := next(t, b, "ENTER a", is[*zre.Enter](a.UUID())).(*zre.Enter)
	if e.Addr != a.Endpoint() || a.Endpoint() == b.Endpoint() {
		t.Errorf("ENTER addr %q, a's endpoint %q, b's %q", e.Addr, a.Endpoint(), b.Endpoint())
	}
	if err := a.Whisper(b.UUID(), []byte("hi"), []byte{0}); err != nil {
		t.Fatal(err)
	}
	w := next(t, b, "WHISPER", is[*zre.Whisper](a.UUID())).(*zre.Whisper)
	if len(w.Content) != 2 || string(w.Content[0]) != "hi" || w.Content[1][0] != 0 {
		t.Errorf("whisper content %q", w.Content)
	}
	// A late node hears the beacons published before it attached.
	c := simNode(t, net, "c", "g")
	seen := map[uuid.UUID]bool{}
	next(t, c, "ENTER a and b", func(e zre.Event) bool {
		if _, ok := e.(*zre.Enter); ok {
			seen[e.PeerUUID()] = true
		}
		return seen[a.UUID()] && seen[b.UUID()]
	})
	next(t, a, "ENTER c", is[*zre.Enter](c.UUID()))
	next(t, b, "JOIN c g", is[*zre.Join](c.UUID()))
	if err := c.Shout("g", []byte("all")); err != nil {
		t.Fatal(err)
	}
	var shouts []*zre.Shout
	for _, n := range []*zre.Node{a, b} {
		s := next(t, n, "SHOUT", is[*zre.Shout](c.UUID())).(*zre.Shout)
		if s.Group != "g" || string(s.Content[0]) != "all" {
			t.Errorf("%s: shout %q in %q", n.Name(), s.Content, s.Group)
		}
		shouts = append(shouts, s)
	}
	// Event content is each receiver's own, although the in-memory network
	// hands every receiver the same frames.
	shouts[0].Content[0][0] = 'A'
	if string(shouts[1].Content[0]) != "all" {
		t.Errorf("b's shout changed with a's: %q", shouts[1].Content[0])
	}
	if err := b.Leave("g"); err != nil {
		t.Fatal(err)
	}
	next(t, a, "LEAVE b", is[*zre.Leave](b.UUID()))
	ctx, cancel := context.WithTimeout(context.Background(), simTimeout)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	next(t, a, "EXIT c", is[*zre.Exit](c.UUID()))
	next(t, b, "EXIT c", is[*zre.Exit](c.UUID()))
	if err := c.Whisper(a.UUID(), []byte("x")); !errors.Is(err, zre.ErrUnknownPeer) && !errors.Is(err, zre.ErrClosed) {
		t.Errorf("whisper after Stop: %v", err)
	}
	for _, n := range []*zre.Node{a, b} {
		if st := n.Stats(); st.SequenceGaps != 0 || st.ProtocolErrors != 0 {
			t.Errorf("%s: %+v", n.Name(), st)
		}
	}
	if st := net.Stats(); st.Messages == 0 || st.Beacons == 0 {
		t.Errorf("network stats %+v", st)
	}
}

// TestSimTransportSecure: secure nodes run on the in-memory network, which
// stands in for CURVE: they meet, each knows the other by the key its
// messages came with, whispers arrive.
func TestSimTransportSecure(t *testing.T) {
	net := sim.NewNetwork(sim.NetworkOptions{})
	defer net.Close()
	secureNode := func(name string) (*zre.Node, curve.PublicKey) {
		pk, sk, err := curve.GenerateKeyPair(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		n, err := zre.New(zretest.WithTransport(zre.Config{Name: name, Secure: &zre.SecureConfig{Secret: sk, RequireBound: true}}, net))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		if err := n.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return n, pk
	}
	a, ka := secureNode("a")
	b, kb := secureNode("b")
	if a.UUID() != zre.UUIDFromKey(ka) {
		t.Fatalf("a's UUID %s is not bound to its key", a.UUID())
	}
	next(t, a, "ENTER b", is[*zre.Enter](b.UUID()))
	next(t, b, "ENTER a", is[*zre.Enter](a.UUID()))
	if k, ok := a.PeerKey(b.UUID()); !ok || k != kb {
		t.Fatalf("a: PeerKey(b) = %s, %v; want %s", k, ok, kb)
	}
	if k, ok := b.PeerKey(a.UUID()); !ok || k != ka {
		t.Fatalf("b: PeerKey(a) = %s, %v; want %s", k, ok, ka)
	}
	if err := a.Whisper(b.UUID(), []byte("hi")); err != nil {
		t.Fatal(err)
	}
	w := next(t, b, "WHISPER", is[*zre.Whisper](a.UUID())).(*zre.Whisper)
	if string(w.Content[0]) != "hi" {
		t.Fatalf("whisper %q", w.Content)
	}
}

// TestSimNoGoroutineLeft: nodes on the in-memory network, closed with the
// network, leave no goroutine behind (node loop, inbox reader, beacon pump).
func TestSimNoGoroutineLeft(t *testing.T) {
	before := runtime.NumGoroutine()
	testenv.NoLeak(t, simTimeout) // at the end: every goroutine gone again
	net := sim.NewNetwork(sim.NetworkOptions{})
	var nodes []*zre.Node
	for _, name := range []string{"a", "b", "c"} {
		n, err := zre.New(zretest.WithTransport(zre.Config{Name: name}, net))
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		seen := 0
		next(t, n, "2 ENTER", func(e zre.Event) bool {
			if _, ok := e.(*zre.Enter); ok {
				seen++
			}
			return seen == 2
		})
	}
	if runtime.NumGoroutine() <= before {
		t.Fatal("the check sees no goroutine of the running nodes: it cannot detect leaks")
	}
	ctx, cancel := context.WithTimeout(context.Background(), simTimeout)
	defer cancel()
	if err := nodes[0].Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		n.Close()
	}
	net.Close()
}
