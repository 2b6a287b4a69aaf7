package zre_test

import (
	"context"
	"fmt"
	"time"

	"github.com/zyre-go/zyre/zre"
)

// Two nodes meet through gossip, without beacons: one serves gossip, the
// other connects to it. Both contest the leadership of a group; they agree
// on one leader.
func Example_gossipAndElection() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	hub, _ := zre.New(zre.Config{Name: "hub", Bind: "127.0.0.1", Gossip: &zre.GossipConfig{Bind: "tcp://127.0.0.1:*"}})
	defer hub.Close()
	hub.SetContest("ops")
	hub.Join("ops")
	if err := hub.Start(ctx); err != nil {
		panic(err)
	}
	leaf, _ := zre.New(zre.Config{Name: "leaf", Bind: "127.0.0.1",
		Gossip: &zre.GossipConfig{Connect: []zre.GossipServer{{Endpoint: "tcp://" + hub.GossipAddr()}}}})
	defer leaf.Close()
	leaf.SetContest("ops")
	leaf.Join("ops")
	if err := leaf.Start(ctx); err != nil {
		panic(err)
	}
	leader := func(n *zre.Node) *zre.Leader {
		for e := range n.Events() {
			if l, ok := e.(*zre.Leader); ok {
				return l
			}
		}
		return nil
	}
	a, b := leader(hub), leader(leaf)
	fmt.Println(a.Group, a.Peer == b.Peer)
	// Output: ops true
}
