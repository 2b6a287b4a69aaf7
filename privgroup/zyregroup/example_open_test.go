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

// Joining a private group and reading the stream of its first trusted
// member: two calls, and the Group reads the node's events itself.
func ExampleOpen() {
	_, sk, _ := curve.GenerateKeyPair(nil)
	node, err := zre.New(zre.Config{Name: "phone", Secure: &zre.SecureConfig{Secret: sk},
		Beacon: zre.BeaconConfig{Loopback: true}})
	if err != nil {
		return
	}
	defer node.Close()
	if err := node.Start(context.Background()); err != nil {
		return
	}
	store, err := trust.Open(os.Getenv("ZYRE_HOME"), trust.Options{})
	if err != nil {
		return
	}
	g, err := zyregroup.Open(node, "hotel-room", zyregroup.Options{Secret: sk, Trust: store}, nil)
	if err != nil {
		return
	}
	defer g.Close()
	rd, err := g.ReadFirst(context.Background())
	if err != nil {
		return
	}
	defer rd.Close()
	io.Copy(os.Stdout, rd)
}
