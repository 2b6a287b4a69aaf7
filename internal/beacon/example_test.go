package beacon_test

import (
	"context"
	"fmt"
	"time"

	"github.com/zyre-go/zyre/internal/beacon"
)

// Two services on one host and one port, in Loopback mode: each hears the
// other's broadcasts on 127.255.255.255 and not its own.
func Example() {
	ctx := context.Background()
	cfg := beacon.Config{Port: 55670, Interval: 100 * time.Millisecond, Loopback: true}
	a, err := beacon.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer a.Close()
	b, err := beacon.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	if err := a.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	if err := b.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	a.Publish([]byte("hello from a"))
	b.Publish([]byte("hello from b"))

	timeout := time.After(20 * time.Second)
	for {
		select {
		case p := <-b.Packets():
			if string(p.Payload) != "hello from a" {
				continue // someone else on the port
			}
			fmt.Printf("b heard %q from %v\n", p.Payload, p.From.Addr())
			b.Silence()
			return
		case <-timeout:
			fmt.Println("timeout")
			return
		}
	}
	// Output: b heard "hello from a" from 127.0.0.1
}
