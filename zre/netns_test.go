package zre

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/internal/netns"
)

// netnsUUID is the UUID of the node in namespace i.
func netnsUUID(i int) uuid.UUID {
	return uuid.MustParse(fmt.Sprintf("5a5a5a5a-0000-4000-8000-%012d", i+1))
}

// TestNetnsThreeHosts runs three nodes in three network namespaces on one
// private bridge: they discover each other by UDP broadcast beacons on
// their lab interface, whisper and shout, and the two survivors see an Exit
// when the third node's process is killed (no goodbye: by expiry).
func TestNetnsThreeHosts(t *testing.T) {
	if i, ok := netns.HelperIndex(); ok {
		netnsNode(t, i)
		return
	}
	const hosts = 3
	lab := netns.New(t, hosts) // skips unless root
	var hs []*netns.Helper
	for i := range hosts {
		hs = append(hs, lab.StartHelper(t, i, "TestNetnsThreeHosts", "ZRE-"))
	}
	expect := func(i int, want string) {
		t.Helper()
		hs[i].Expect(t, fmt.Sprintf("host %d", i), want, 60*time.Second)
	}
	for i := range hosts {
		expect(i, "ZRE-READY")
	}
	// Kill host 2's node: no port-0 beacon, no GOODBYE. ("ip netns exec"
	// execs the helper, so the process is the helper itself.)
	t.Log("killing the node in namespace 2")
	if err := hs[2].Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for i := range hosts - 1 {
		expect(i, "ZRE-EXIT-SEEN")
	}
	for i := range hosts - 1 {
		if err := hs[i].Wait(60 * time.Second); err != nil {
			t.Fatalf("host %d: %v\n%s", i, err, hs[i].Output())
		}
	}
}

// netnsNode is the helper's side: one node on the lab interface.
func netnsNode(t *testing.T, i int) {
	n, err := New(Config{
		UUID:    netnsUUID(i),
		Name:    fmt.Sprintf("host%d", i),
		Beacon:  BeaconConfig{Interface: netns.IfName, Interval: 200 * time.Millisecond},
		Evasive: time.Second,
		Silent:  time.Second,
		Expired: 4 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	n.Join("lab")
	others := map[uuid.UUID]bool{}
	for j := range 3 {
		if j != i {
			others[netnsUUID(j)] = true
		}
	}
	joined, whispers, shouts := map[uuid.UUID]bool{}, map[uuid.UUID]bool{}, map[uuid.UUID]bool{}
	sent := false
	ready := false
	for {
		select {
		case e, ok := <-n.Events():
			if !ok {
				t.Fatal("events closed")
			}
			switch e := e.(type) {
			case *Join:
				if e.Group == "lab" && others[e.Peer] {
					joined[e.Peer] = true
				}
			case *Whisper:
				if string(e.Content[0]) == "whisper to "+n.Name() {
					whispers[e.Peer] = true
				}
			case *Shout:
				if e.Group == "lab" && string(e.Content[0]) == "shout from "+e.Name {
					shouts[e.Peer] = true
				}
			case *Exit:
				if ready && e.Peer == netnsUUID(2) {
					fmt.Println("ZRE-EXIT-SEEN")
					return
				}
			}
		case <-ctx.Done():
			t.Fatalf("timeout: joined %v whispers %v shouts %v stats %+v", joined, whispers, shouts, n.Stats())
		}
		if !sent && len(joined) == 2 {
			sent = true
			for id := range others {
				if err := n.Whisper(id, []byte("whisper to "+n.PeerName(id))); err != nil {
					t.Fatal(err)
				}
			}
			if err := n.Shout("lab", []byte("shout from "+n.Name())); err != nil {
				t.Fatal(err)
			}
			// The endpoint peers use is on the lab interface.
			for id := range others {
				if a := n.PeerAddress(id); !strings.HasPrefix(a, "tcp://10.") {
					t.Fatalf("peer address %q", a)
				}
			}
		}
		if !ready && len(whispers) == 2 && len(shouts) == 2 {
			ready = true
			fmt.Println("ZRE-READY")
			if i == 2 {
				<-ctx.Done() // until killed
				t.Fatal("not killed")
			}
		}
	}
}
