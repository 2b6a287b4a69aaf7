package zgossip_test

import (
	"fmt"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/zgossip"
)

// A hub and a leaf on loopback: the leaf's tuple reaches the hub.
func Example() {
	hub := zgossip.New(zgossip.Config{})
	defer hub.Close()
	addr, err := hub.Bind("tcp://127.0.0.1:*")
	if err != nil {
		panic(err)
	}
	leaf := zgossip.New(zgossip.Config{})
	defer leaf.Close()
	leaf.Connect("tcp://"+addr.String(), curve.PublicKey{})
	leaf.Publish("0F1E2D3C4B5A69788796A5B4C3D2E1F0", "tcp://127.0.0.1:49152")
	t := <-hub.Deliveries()
	fmt.Println(t.Key, t.Value)
	// Output: 0F1E2D3C4B5A69788796A5B4C3D2E1F0 tcp://127.0.0.1:49152
}
