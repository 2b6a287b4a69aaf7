package zre

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// testBeaconPort returns a random high UDP port for one test's loopback
// beacons, so that tests never hear each other (or a real node on 5670).
func testBeaconPort() int { return 20000 + rand.IntN(40000) }

// startNode starts a loopback node and closes it when the test ends.
func startNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	cfg.Beacon.Loopback = true
	if cfg.Beacon.Interval == 0 {
		cfg.Beacon.Interval = 100 * time.Millisecond
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitEvent reads n's events until match returns true; it fails the test
// after timeout. Other events are logged and skipped.
func waitEvent(t *testing.T, n *Node, timeout time.Duration, what string, match func(Event) bool) Event {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case e, ok := <-n.Events():
			if !ok {
				t.Fatalf("%s: events closed while waiting for %s", n.Name(), what)
			}
			if match(e) {
				return e
			}
		case <-deadline.C:
			t.Fatalf("%s: no %s within %v (stats %+v)", n.Name(), what, timeout, n.Stats())
		}
	}
}

func isEnter(from uuid.UUID) func(Event) bool {
	return func(e Event) bool { _, ok := e.(*Enter); return ok && e.PeerUUID() == from }
}

func isJoin(from uuid.UUID, group string) func(Event) bool {
	return func(e Event) bool { j, ok := e.(*Join); return ok && j.Peer == from && j.Group == group }
}

const eventTimeout = 20 * time.Second

func TestNodesDiscoverWhisperShoutExit(t *testing.T) {
	port := testBeaconPort()
	var nodes []*Node
	for _, name := range []string{"alpha", "beta", "gamma"} {
		nodes = append(nodes, startNode(t, Config{Name: name, Beacon: BeaconConfig{Port: port},
			Headers: []Header{{Key: "X-NAME", Value: name}}}))
	}
	for _, n := range nodes {
		if err := n.Join("lab"); err != nil {
			t.Fatal(err)
		}
	}
	// Everyone sees everyone enter and join.
	for _, n := range nodes {
		want := make(map[uuid.UUID]string)
		for _, o := range nodes {
			if o != n {
				want[o.UUID()] = o.Name()
			}
		}
		waitEvent(t, n, eventTimeout, "JOIN lab from both others", func(e Event) bool {
			if j, ok := e.(*Join); ok && j.Group == "lab" {
				if name, ok := want[j.Peer]; ok {
					if j.Name != name {
						t.Fatalf("join from %q, want %q", j.Name, name)
					}
					delete(want, j.Peer)
				}
			}
			return len(want) == 0
		})
	}
	a, b, c := nodes[0], nodes[1], nodes[2]
	if v, ok := a.PeerHeader(b.UUID(), "X-NAME"); !ok || v != "beta" {
		t.Fatalf("PeerHeader = %q %v", v, ok)
	}
	if got := a.PeerAddress(b.UUID()); got != b.Endpoint() || !strings.HasPrefix(got, "tcp://127.0.0.1:") {
		t.Fatalf("PeerAddress = %q, Endpoint %q", got, b.Endpoint())
	}
	if got := a.PeerName(c.UUID()); got != "gamma" {
		t.Fatalf("PeerName = %q", got)
	}
	if k, ok := a.PeerKey(b.UUID()); ok || !k.IsZero() {
		t.Fatalf("PeerKey on a plain node = %s, %v", k.Z85(), ok)
	}
	if got := len(a.Peers()); got != 2 {
		t.Fatalf("%d peers", got)
	}
	if got := len(a.PeersByGroup("lab")); got != 2 {
		t.Fatalf("%d peers in lab", got)
	}
	if g := a.OwnGroups(); len(g) != 1 || g[0] != "lab" {
		t.Fatalf("OwnGroups = %q", g)
	}
	if g := a.PeerGroups(); len(g) != 1 || g[0] != "lab" {
		t.Fatalf("PeerGroups = %q", g)
	}

	if err := a.Whisper(b.UUID(), []byte("psst"), []byte{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	w := waitEvent(t, b, eventTimeout, "WHISPER", func(e Event) bool { _, ok := e.(*Whisper); return ok }).(*Whisper)
	if w.Peer != a.UUID() || w.Name != "alpha" || len(w.Content) != 2 || string(w.Content[0]) != "psst" || !bytes.Equal(w.Content[1], []byte{0, 1, 2}) {
		t.Fatalf("whisper %+v", w)
	}
	if err := c.Shout("lab", []byte("hello lab")); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Node{a, b} {
		s := waitEvent(t, n, eventTimeout, "SHOUT", func(e Event) bool { _, ok := e.(*Shout); return ok }).(*Shout)
		if s.Peer != c.UUID() || s.Group != "lab" || string(s.Content[0]) != "hello lab" {
			t.Fatalf("shout %+v", s)
		}
	}
	// Leave is seen.
	if err := b.Leave("lab"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, a, eventTimeout, "LEAVE", func(e Event) bool { l, ok := e.(*Leave); return ok && l.Peer == b.UUID() && l.Group == "lab" })

	// gamma stops: the others see it exit at once (port-0 beacon or GOODBYE).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, c, eventTimeout, "STOP", func(e Event) bool { _, ok := e.(*Stop); return ok })
	for _, n := range []*Node{a, b} {
		waitEvent(t, n, eventTimeout, "EXIT of gamma", func(e Event) bool { _, ok := e.(*Exit); return ok && e.PeerUUID() == c.UUID() })
	}
	if _, ok := <-c.Events(); ok {
		t.Fatal("events not closed after Stop")
	}
	if st := a.Stats(); st.BeaconsReceived == 0 || st.MessagesIn == 0 || st.SequenceGaps != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestConnectPeerWithoutBeacons(t *testing.T) {
	a := startNode(t, Config{Name: "a", Beacon: BeaconConfig{Disabled: true}, Bind: "127.0.0.1"})
	b := startNode(t, Config{Name: "b", Beacon: BeaconConfig{Disabled: true}, Bind: "127.0.0.1"})
	if err := b.Join("g"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.ConnectPeer(ctx, b.Endpoint(), uuid.Nil); err != nil {
		t.Fatal(err)
	}
	e := waitEvent(t, a, eventTimeout, "ENTER b", isEnter(b.UUID())).(*Enter)
	if e.Addr != b.Endpoint() || e.Name != "b" {
		t.Fatalf("enter %+v", e)
	}
	waitEvent(t, a, eventTimeout, "JOIN g", isJoin(b.UUID(), "g"))
	waitEvent(t, b, eventTimeout, "ENTER a", isEnter(a.UUID()))
	if err := a.Whisper(b.UUID(), []byte("direct")); err != nil {
		t.Fatal(err)
	}
	w := waitEvent(t, b, eventTimeout, "WHISPER", func(e Event) bool { _, ok := e.(*Whisper); return ok }).(*Whisper)
	if string(w.Content[0]) != "direct" {
		t.Fatalf("whisper %q", w.Content)
	}
	// Without beacons, a Stop is seen through its GOODBYE.
	if err := b.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, a, eventTimeout, "EXIT b", func(e Event) bool { _, ok := e.(*Exit); return ok && e.PeerUUID() == b.UUID() })
	if err := a.ConnectPeer(ctx, "bogus", uuid.Nil); err == nil {
		t.Fatal("ConnectPeer accepted a bogus endpoint")
	}
}

func TestSlowConsumer(t *testing.T) {
	// b never reads its events while a whispers far more than its queue
	// holds: b keeps working, drops and counts whispers, keeps membership.
	port := testBeaconPort()
	a := startNode(t, Config{Name: "a", Beacon: BeaconConfig{Port: port}})
	b := startNode(t, Config{Name: "b", Beacon: BeaconConfig{Port: port}, EventQueue: 10})
	// Wait without reading b's events: poll b's peer list.
	deadline := time.Now().Add(eventTimeout)
	for len(b.Peers()) == 0 || len(a.Peers()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("nodes did not meet")
		}
		time.Sleep(10 * time.Millisecond)
	}
	const sent = 200
	for i := range sent {
		if err := a.Whisper(b.UUID(), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Join("late"); err != nil {
		t.Fatal(err)
	}
	// Wait (bounded) until b processed everything: the JOIN arrives last.
	for len(b.PeersByGroup("late")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("b did not get the JOIN (stats %+v)", b.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	st := b.Stats()
	if st.EventsDropped < sent-10 {
		t.Fatalf("EventsDropped = %d, want >= %d", st.EventsDropped, sent-10)
	}
	// Now read: ENTER, up to 10 whispers, and the JOIN, which was never dropped.
	var whispers int
	waitEvent(t, b, eventTimeout, "JOIN late", func(e Event) bool {
		if _, ok := e.(*Whisper); ok {
			whispers++
		}
		return isJoin(a.UUID(), "late")(e)
	})
	if whispers > 10 || whispers == 0 {
		t.Fatalf("%d whispers delivered, want 1..10", whispers)
	}
}

func TestNodeAPIErrors(t *testing.T) {
	n, err := New(Config{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	// Before Start: Join goes into the HELLO, ConnectPeer and Stop refuse.
	if err := n.Join("early"); err != nil {
		t.Fatal(err)
	}
	if g := n.OwnGroups(); len(g) != 1 || g[0] != "early" {
		t.Fatalf("OwnGroups %q", g)
	}
	if err := n.Stop(context.Background()); err == nil {
		t.Fatal("Stop before Start succeeded")
	}
	if err := n.ConnectPeer(context.Background(), "tcp://127.0.0.1:1", uuid.Nil); err == nil {
		t.Fatal("ConnectPeer before Start succeeded")
	}
	n.Close()
	n.Close()
	if _, ok := <-n.Events(); ok {
		t.Fatal("events open after Close")
	}
	if err := n.Join("x"); err == nil {
		t.Fatal("Join after Close succeeded")
	}
	if err := n.Start(context.Background()); err == nil {
		t.Fatal("Start after Close succeeded")
	}
	if _, err := New(Config{Headers: []Header{{Key: "K", Value: "1"}, {Key: "K", Value: "2"}}}); err == nil {
		t.Fatal("duplicate header accepted")
	}
	m, _ := New(Config{UUID: uuidB})
	if m.Name() != "0F1E2D" {
		t.Fatalf("default name %q", m.Name())
	}
	m.Close()
}
