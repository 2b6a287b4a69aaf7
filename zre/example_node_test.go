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
			e.Release()   // done with the content: large frames' buffers go back to the node
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

// Back-pressure: WhisperContext waits for room in a slow peer's queue
// instead of failing, for as long as its context allows; no retry loop, no
// sleep. Here alice sends bob more messages than his queue (SendHWM) holds
// while bob reads slowly.
func ExampleNode_WhisperContext() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	newNode := func(name string) *zre.Node {
		n, err := zre.New(zre.Config{Name: name, Beacon: zre.BeaconConfig{Disabled: true}, Bind: "127.0.0.1", SendHWM: 4})
		if err != nil {
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
	if err := alice.ConnectPeer(ctx, bob.Endpoint(), bob.UUID()); err != nil {
		log.Fatal(err)
	}
	for e := range alice.Events() {
		if _, ok := e.(*zre.Enter); ok {
			break
		}
	}
	const count = 100
	go func() {
		for i := range count {
			// Waits while bob's queue is full; fails only when ctx ends
			// (errors.Is(err, context.DeadlineExceeded)), bob is gone
			// (zre.ErrUnknownPeer) or alice closed (zre.ErrClosed).
			if err := alice.WhisperContext(ctx, bob.UUID(), []byte{byte(i)}); err != nil {
				log.Fatal(err)
			}
		}
	}()
	got := 0
	for e := range bob.Events() {
		if w, ok := e.(*zre.Whisper); ok && int(w.Content[0][0]) == got {
			got++
			if got == count {
				break
			}
		}
	}
	fmt.Println("bob got", got, "whispers in order")
	// Output: bob got 100 whispers in order
}

// ShoutContext gives a SHOUT to every peer of the group with room at once,
// then waits until the others took it or ctx is done; the *ShoutError
// names those that did not. (Compiled, not run: it needs a peer that stops
// reading.)
func ExampleNode_ShoutContext() {
	var node *zre.Node // a started node in "video"
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := node.ShoutContext(ctx, "video", []byte("..."))
	var se *zre.ShoutError
	if errors.As(err, &se) && errors.Is(err, zmtp.ErrPeerNotResponding) {
		// Still full after 100 ms: too slow for this stream.
		log.Printf("%d peers missed a frame: %v", len(se.Peers), err)
	}
}
