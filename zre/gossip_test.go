package zre

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/zgossip"
	"github.com/zyre-go/zyre/zre/zremsg"
)

// TestGossipHub: three nodes without beacons meet through gossip, plain
// and secure: the hub serves gossip, two leaves connect to it; every node
// sees the two others enter, whispers reach; a leaf that stops is seen to
// exit at once (GOODBYE: gossip mode has no port-0 beacon).
func TestGossipHub(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "secure"}[secure], func(t *testing.T) {
			cfg := func(name string, g *GossipConfig) Config {
				c := Config{Name: name, Bind: "127.0.0.1", Gossip: g}
				if secure {
					c.Secure = &SecureConfig{Secret: mustSecret(t)}
				}
				return c
			}
			hub := startNode(t, cfg("hub", &GossipConfig{Bind: "tcp://127.0.0.1:*"}))
			if hub.GossipAddr() == "" {
				t.Fatal("hub serves no gossip")
			}
			server := GossipServer{Endpoint: "tcp://" + hub.GossipAddr(), Key: hub.PublicKey()}
			a := startNode(t, cfg("a", &GossipConfig{Connect: []GossipServer{server}}))
			b := startNode(t, cfg("b", &GossipConfig{Connect: []GossipServer{server}}))
			nodes := []*Node{hub, a, b}
			for _, n := range nodes {
				seen := map[uuid.UUID]bool{}
				waitEvent(t, n, eventTimeout, "ENTER of the two others", func(e Event) bool {
					if en, ok := e.(*Enter); ok {
						seen[en.Peer] = true
					}
					return len(seen) == 2
				})
				if st := n.Stats(); st.BeaconsReceived != 0 {
					t.Fatalf("%s received beacons: %+v", n.Name(), st)
				}
			}
			if err := a.Whisper(b.UUID(), []byte("via gossip")); err != nil {
				t.Fatal(err)
			}
			waitEvent(t, b, eventTimeout, "WHISPER", func(e Event) bool {
				w, ok := e.(*Whisper)
				return ok && w.Peer == a.UUID() && string(w.Content[0]) == "via gossip"
			})
			ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
			defer cancel()
			stopped := time.Now()
			if err := b.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			for _, n := range []*Node{hub, a} {
				waitEvent(t, n, eventTimeout, "EXIT b", func(e Event) bool { x, ok := e.(*Exit); return ok && x.Peer == b.UUID() })
			}
			if d := time.Since(stopped); d >= DefaultEvasive {
				t.Fatalf("EXIT after %v: not from the GOODBYE", d)
			}
		})
	}
}

func TestGossipConfigErrors(t *testing.T) {
	for _, c := range []Config{
		{Gossip: &GossipConfig{}},
		{Gossip: &GossipConfig{Connect: []GossipServer{{Endpoint: "nowhere"}}}},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c.Gossip)
		}
	}
}

// TestStateGossipTuples: what the state does with tuples: a peer to
// connect to, ours ignored, garbage dropped; in gossip mode every peer
// gets a GOODBYE.
func TestStateGossipTuples(t *testing.T) {
	h := newHarness(t)
	h.st.onGossip(gossipTuple(uuidB, epB), h.now)
	if l := h.link(epB); len(l.sent) != 1 || l.sent[0].ID != zremsg.MsgHello {
		t.Fatalf("sent %+v", l.sent)
	}
	for _, tp := range []struct{ k, v string }{
		{uuidString(uuidS), "tcp://127.0.0.1:1"}, // ours
		{"not a uuid", "tcp://127.0.0.1:2"},
		{uuidString(uuidA), "udp://x"},
		{uuidString(uuidA), epSelf}, // our endpoint
	} {
		h.st.onGossip(gossipTupleRaw(tp.k, tp.v), h.now)
	}
	if len(h.st.peers) != 1 {
		t.Fatalf("%d peers", len(h.st.peers))
	}
}

func gossipTuple(id uuid.UUID, ep string) (t zgossip.Tuple) {
	return gossipTupleRaw(uuidString(id), ep)
}

func gossipTupleRaw(k, v string) zgossip.Tuple { return zgossip.Tuple{Key: k, Value: v} }

// FuzzGossipTuple: any tuple from a gossip server is either a peer with a
// valid endpoint or dropped; nothing panics.
func FuzzGossipTuple(f *testing.F) {
	f.Add(uuidString(uuidB), epB)
	f.Add(uuidString(uuidB), epB+"|rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7")
	f.Add("0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0", "tcp://[::1]:5")
	f.Add("x", "tcp://h:0")
	f.Fuzz(func(t *testing.T, k, v string) {
		cfg, err := Config{UUID: uuidS, Name: "self"}.withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		var stats counters
		st := newState(&cfg, epSelf, func(ep string) (link, error) { return &fakeLink{endpoint: ep}, nil }, &stats)
		st.onGossip(zgossip.Tuple{Key: k, Value: v}, time.Unix(1000, 0))
		for _, p := range st.peers {
			if err := checkEndpoint(p.endpoint); err != nil || p.id == uuidS {
				t.Fatalf("peer %v at %q from %q=%q", p.id, p.endpoint, k, v)
			}
		}
	})
}
