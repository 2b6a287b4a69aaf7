package zyregroup_test

import (
	"context"
	"io"
	"os"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/privgroup/zyregroup"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

// A secure node streams a file to the trusted members of "hotel-room";
// another reads the stream of one of them. The application reads the
// node's events and hands each to the Group.
func ExampleAttach() {
	_, sk, _ := curve.GenerateKeyPair(nil)
	node, err := zre.New(zre.Config{Name: "hotel", Secure: &zre.SecureConfig{Secret: sk},
		Beacon: zre.BeaconConfig{Loopback: true}})
	if err != nil {
		return
	}
	defer node.Close()
	if err := node.Start(context.Background()); err != nil {
		return
	}
	store, err := trust.Open(os.Getenv("ZYRE_HOME"), trust.Options{}) // the node's home

	if err != nil {
		return
	}
	g, err := zyregroup.Attach(node, "hotel-room", zyregroup.Options{Secret: sk, Trust: store})
	if err != nil {
		return
	}
	defer g.Close()
	go func() {
		for ev := range node.Events() {
			if !g.Handle(ev) {
				_ = ev // not the private group's: the application's own
			}
		}
	}()

	// Send: an io.WriteCloser into the group.
	w, _ := g.NewWriter()
	io.Copy(w, os.Stdin)
	w.Close()

	// Receive: the stream of the first trusted member whose key arrives.
	sender, err := g.AwaitSender(context.Background(), nil)
	if err != nil {
		return
	}
	rd, _ := g.NewReader(sender)
	defer rd.Close()
	io.Copy(os.Stdout, rd)
}
