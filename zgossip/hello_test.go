package zgossip

import (
	"fmt"
	"testing"

	"github.com/zyre-go/zyre/curve"
)

// TestServiceHelloManyTuples: a client that says HELLO to a server holding
// more tuples than a socket queues (zmtp's SendHWM, 1000 by default) gets
// every one of them. (The server queued them all at once, and those past
// the queue's bound were dropped without a word: with more than 1000 nodes
// a new one never learnt of the rest.)
func TestServiceHelloManyTuples(t *testing.T) {
	const n = 3000
	hub := newService(t, Config{})
	addr, err := hub.Bind("tcp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for i := range n {
		k, v := fmt.Sprintf("K%05d", i), fmt.Sprintf("tcp://10.0.%d.%d:5670", i/250, i%250)
		if err := hub.Publish(k, v); err != nil {
			t.Fatal(err)
		}
		want[k] = v
	}
	waitTuples(t, "hub", hub, want)
	leaf := newService(t, Config{})
	if err := leaf.Connect("tcp://"+addr.String(), curve.PublicKey{}); err != nil {
		t.Fatal(err)
	}
	waitTuples(t, "leaf", leaf, want)
}
