package zre_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/zmtp"
	"github.com/zyre-go/zyre/zre"
)

// Two nodes on loopback: bob connects to alice directly (no beacons, so the
// example runs anywhere), both join "chat", and bob shouts.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	newNode := func(name string) *zre.Node {
		n, err := zre.New(zre.Config{
			Name:   name,
			Beacon: zre.BeaconConfig{Disabled: true}, // on a LAN: leave beacons on
			Bind:   "127.0.0.1",
		})
		if err != nil {
			log.Fatal(err)
		}
		if err := n.Join("chat"); err != nil { // before Start: sent in our HELLO
			log.Fatal(err)
		}
		if err := n.Start(ctx); err != nil {
			log.Fatal(err)
		}
		return n
	}
	alice, bob := newNode("alice"), newNode("bob")
	defer alice.Close()
	defer bob.Close()

	if err := bob.ConnectPeer(ctx, alice.Endpoint(), uuid.Nil); err != nil {
		log.Fatal(err)
	}
	// Bob waits until alice is in "chat", then shouts.
	for e := range bob.Events() {
		if j, ok := e.(*zre.Join); ok && j.Name == "alice" && j.Group == "chat" {
			break
		}
	}
	if err := bob.Shout("chat", []byte("hello, chat")); err != nil {
		log.Fatal(err)
	}
	for e := range alice.Events() {
		switch e := e.(type) {
		case *zre.Enter:
			fmt.Println("ENTER", e.Name)
		case *zre.Join:
			fmt.Println("JOIN", e.Name, e.Group)
		case *zre.Shout:
			fmt.Printf("SHOUT %s %s: %s\n", e.Name, e.Group, e.Content[0])
			bob.Stop(ctx) // says goodbye
		case *zre.Exit:
			fmt.Println("EXIT", e.Name)
			return
		}
	}
	// Output:
	// ENTER bob
	// JOIN bob chat
	// SHOUT bob chat: hello, chat
	// EXIT bob
}

// Stats tell what a node dropped: invalid beacons, messages from unknown
// peers, events a slow consumer missed.
func ExampleNode_Stats() {
	n, err := zre.New(zre.Config{Name: "quiet", Beacon: zre.BeaconConfig{Disabled: true}, Bind: "127.0.0.1"})
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()
	if err := n.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	st := n.Stats()
	fmt.Println(n.Name(), st.EventsDropped, st.SequenceGaps)
	// Output: quiet 0 0
}

// A SHOUT that some peers could not take (their queues were full) reached
// every other peer of the group; retry it for those peers only, so that
// the others do not get it twice. (Compiled, not run: it needs a peer
// that stops reading.)
func ExampleNode_ShoutTo() {
	var node *zre.Node // a started node in "video"
	frame := []byte("...")
	err := node.Shout("video", frame)
	for tries := 0; tries < 100; tries++ {
		var se *zre.ShoutError
		if !errors.As(err, &se) || !errors.Is(err, zmtp.ErrPeerNotResponding) {
			break
		}
		time.Sleep(5 * time.Millisecond) // back off; they catch up
		err = node.ShoutTo("video", se.Peers, frame)
	}
	if err != nil {
		log.Printf("some peers missed a frame: %v", err)
	}
}
