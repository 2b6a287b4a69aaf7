package client_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/zyre-go/zyre/agent/client"
)

// Sending a file through the running agent: the agent reads it and its
// node sends it; the events say how far the receiver is.
func ExampleClient_Send() {
	ctx := context.Background()
	c, err := client.Dial(ctx, client.DefaultSocket(os.Getenv))
	if err != nil {
		log.Fatal(err) // no agent runs
	}
	defer c.Close()
	res, err := c.Send(ctx, client.SendRequest{Peer: "tablet", Paths: []string{"/home/me/photos"}}, func(e client.TransferEvent) {
		if e.Kind == client.XferProgress {
			fmt.Printf("\r%d of %d octets", e.Held, e.Total)
		}
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("\nsent %d file(s) to %s\n", res.Files, res.Name)
}

// Streaming into a private group through the running agent: the agent's
// node seals the octets to the group's trusted members.
func ExampleClient_StreamSend() {
	ctx := context.Background()
	c, err := client.Dial(ctx, client.DefaultSocket(os.Getenv))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	s, first, err := c.StreamSend(ctx, client.StreamRequest{Group: "kids", Members: 1})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("streaming to %d member(s)\n", first.Members)
	if _, err := strings.NewReader("the stream's octets").WriteTo(s); err != nil {
		s.Abort() // receivers see the stream cut
		log.Fatal(err)
	}
	res, err := s.Close()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d acknowledged the end\n", res.Acked)
}
