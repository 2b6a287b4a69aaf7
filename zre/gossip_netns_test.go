package zre

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/internal/netns"
)

// gossipHubPort is the hub's gossip port inside the lab (its own
// namespace: nothing else binds there).
const gossipHubPort = 15670

// TestNetnsGossipNoBroadcast: three hosts on one segment where UDP
// broadcast is blocked (the broadcast routes of every host are replaced by
// "prohibit": a datagram to the segment's broadcast address or to
// 255.255.255.255 is refused; each host checks it) meet through a gossip
// hub on host 0: every node sees the two others enter and gets their
// whispers; host 2's node stops and the others see it exit.
func TestNetnsGossipNoBroadcast(t *testing.T) {
	if i, ok := netns.HelperIndex(); ok {
		gossipNetnsNode(t, i)
		return
	}
	const hosts = 3
	lab := netns.New(t, hosts) // skips unless root
	bcast := lab.Broadcast().String()
	for i := range hosts {
		ns := lab.Namespace(i)
		for _, args := range [][]string{
			{"-n", ns, "route", "del", "broadcast", bcast, "dev", netns.IfName, "table", "local"},
			{"-n", ns, "route", "add", "prohibit", bcast + "/32"},
			{"-n", ns, "route", "add", "prohibit", "255.255.255.255/32"},
		} {
			if out, err := lab.Command(i, "ip", args[2:]...).CombinedOutput(); err != nil {
				t.Fatalf("ip %v: %v: %s", args, err, out)
			}
		}
	}
	env := []string{
		"ZYRE_GOSSIP_HUB=" + fmt.Sprintf("tcp://%s:%d", lab.Addr(0), gossipHubPort),
		"ZYRE_GOSSIP_BCAST=" + bcast,
		"ZYRE_GOSSIP_ADDR0=" + lab.Addr(0).String(),
	}
	var hs []*netns.Helper
	for i := range hosts {
		hs = append(hs, lab.StartHelper(t, i, "TestNetnsGossipNoBroadcast", "GOSSIP-", env...))
	}
	for i, h := range hs {
		h.Expect(t, fmt.Sprintf("host %d", i), "GOSSIP-BROADCAST-BLOCKED", 60*time.Second)
	}
	for i, h := range hs {
		h.Expect(t, fmt.Sprintf("host %d", i), "GOSSIP-MET", 60*time.Second)
	}
	for i, h := range hs {
		h.Expect(t, fmt.Sprintf("host %d", i), "GOSSIP-DONE", 60*time.Second)
		if err := h.Wait(60 * time.Second); err != nil {
			t.Fatalf("host %d: %v\n%s", i, err, h.Output())
		}
	}
}

// gossipNetnsNode is host i's node.
func gossipNetnsNode(t *testing.T, i int) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	// Broadcast is blocked here.
	for _, dst := range []string{os.Getenv("ZYRE_GOSSIP_BCAST"), "255.255.255.255"} {
		c, err := net.Dial("udp", net.JoinHostPort(dst, "5670"))
		if err == nil {
			_, err = c.Write([]byte("ZRE"))
			c.Close()
		}
		if err == nil {
			t.Fatalf("a datagram to %s went out", dst)
		}
	}
	fmt.Println("GOSSIP-BROADCAST-BLOCKED")

	cfg := Config{
		UUID: netnsUUID(i),
		Name: fmt.Sprintf("host%d", i),
		// Gossip mode, as the C reference's: no beacons (with the
		// broadcast routes gone, a beacon socket could not even bind).
		Gossip: &GossipConfig{},
	}
	if i == 0 {
		cfg.Bind = os.Getenv("ZYRE_GOSSIP_ADDR0")
		cfg.Gossip.Bind = fmt.Sprintf("tcp://%s:%d", cfg.Bind, gossipHubPort)
	} else {
		// Bound to every interface: the endpoint's host is found from the
		// route to the hub.
		cfg.Gossip.Connect = []GossipServer{{Endpoint: os.Getenv("ZYRE_GOSSIP_HUB")}}
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if ep := n.Endpoint(); !strings.HasPrefix(ep, "tcp://10.") {
		t.Fatalf("endpoint %s is not on the lab's segment", ep)
	}
	entered, whispers := map[uuid.UUID]bool{}, map[uuid.UUID]bool{}
	met, exited := false, false
	for {
		select {
		case e, ok := <-n.Events():
			if !ok {
				t.Fatal("events closed")
			}
			switch e := e.(type) {
			case *Enter:
				entered[e.Peer] = true
				if err := n.Whisper(e.Peer, []byte("hello from "+n.Name())); err != nil {
					t.Fatal(err)
				}
			case *Whisper:
				if string(e.Content[0]) == "hello from "+e.Name {
					whispers[e.Peer] = true
				}
			case *Exit:
				if e.Peer == netnsUUID(2) {
					exited = true
				}
			}
		case <-ctx.Done():
			t.Fatalf("timeout: entered %v whispers %v stats %+v", entered, whispers, n.Stats())
		}
		if !met && len(entered) == 2 && len(whispers) == 2 {
			met = true
			if st := n.Stats(); st.BeaconsReceived != 0 {
				t.Fatalf("beacons got through: %+v", st)
			}
			fmt.Println("GOSSIP-MET")
			if i == 2 {
				if err := n.Stop(ctx); err != nil {
					t.Fatal(err)
				}
				fmt.Println("GOSSIP-DONE")
				return
			}
		}
		if met && exited {
			// Stop, not only Close: a whisper still queued for a peer
			// that has not met us yet is delivered first (Close drops
			// it: host 1 waited for host 0's for ever under load).
			if err := n.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			fmt.Println("GOSSIP-DONE")
			return
		}
	}
}
