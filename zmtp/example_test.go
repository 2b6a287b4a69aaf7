package zmtp_test

import (
	"context"
	"fmt"
	"time"

	"github.com/zyre-go/zyre/zmtp"
)

// A Router receives from a Dealer and answers it by identity.
func Example() {
	r, err := zmtp.ListenRouter("tcp", "127.0.0.1:0", zmtp.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	d, err := zmtp.DialDealer("tcp", r.Addr().String(), zmtp.Options{Identity: []byte("alice")})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d.Send([]byte("hello"), []byte("world"))
	m, err := r.Recv(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s from %s (%s): %q\n", m.Peer.SocketType, m.Peer.Identity, m.Peer.Mechanism, m.Frames)

	r.Send(m.Peer.Identity, []byte("hi alice"))
	reply, err := d.Recv(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s\n", reply.Frames[0])
	// Output:
	// DEALER from alice (NULL): ["hello" "world"]
	// hi alice
}

func ExampleParseMetadata() {
	b := zmtp.AppendMetadata(nil, zmtp.Metadata{{Name: "Socket-Type", Value: []byte("ROUTER")}})
	m, err := zmtp.ParseMetadata(b)
	if err != nil {
		fmt.Println(err)
		return
	}
	v, _ := m.Get("socket-type")
	fmt.Printf("% x\n%s\n", b, v)
	// Output:
	// 0b 53 6f 63 6b 65 74 2d 54 79 70 65 00 00 00 06 52 4f 55 54 45 52
	// ROUTER
}

func ExampleAppendGreeting() {
	g := zmtp.AppendGreeting(nil, zmtp.Greeting{Major: 3, Minor: 1, Mechanism: "NULL"})
	fmt.Printf("% x\n", g[:16])
	// Output:
	// ff 00 00 00 00 00 00 00 01 7f 03 01 4e 55 4c 4c
}

// A Dealer flushes its last message before closing; the Router learns that
// the connection went away and can cut a peer off itself.
func ExampleDealer_Flush() {
	gone := make(chan *zmtp.Peer, 1)
	r, err := zmtp.ListenRouter("tcp", "127.0.0.1:0", zmtp.Options{
		OnDisconnect: func(p *zmtp.Peer) { gone <- p }, // must not block
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	d, err := zmtp.DialDealer("tcp", r.Addr().String(), zmtp.Options{Identity: []byte("bob")})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d.Send([]byte("goodbye"))
	if err := d.Flush(ctx); err != nil { // written to the socket: Close loses nothing
		fmt.Println(err)
	}
	d.Close()

	m, err := r.Recv(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s from %s\n", m.Frames[0], m.Peer.Identity)
	select {
	case p := <-gone:
		fmt.Printf("%s disconnected\n", p.Identity)
	case <-ctx.Done():
		fmt.Println(ctx.Err())
	}
	// Output:
	// goodbye from bob
	// bob disconnected
}

// A receiver that is done with a message gives its buffers back, so that
// the socket reads later large frames into them instead of allocating.
func ExampleMessage_Release() {
	r, err := zmtp.ListenRouter("tcp", "127.0.0.1:0", zmtp.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	d, err := zmtp.DialDealer("tcp", r.Addr().String(), zmtp.Options{Identity: []byte("bulk")})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	block := make([]byte, 256<<10)
	var total int
	for range 4 {
		if err := d.SendContext(ctx, block); err != nil {
			fmt.Println(err)
			return
		}
		m, err := r.Recv(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		total += len(m.Frames[0]) // use the frames first...
		m.Release()               // ...then no more
	}
	fmt.Println(total, "octets")
	// Output:
	// 1048576 octets
}
