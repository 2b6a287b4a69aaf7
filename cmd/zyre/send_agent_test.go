package main

import (
	"context"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/zyre-go/zyre/agent/client"
)

// cmdWaitRecv: waitrecv SOCKET waits (at most a minute) until
// the agent at SOCKET runs a receive.
func cmdWaitRecv(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitrecv SOCKET")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.Dial(ctx, ts.MkAbs(args[0]))
	ts.Check(err)
	defer c.Close()
	for {
		t, err := c.Transfers(ctx)
		ts.Check(err)
		if t.Receiving {
			return
		}
		select {
		case <-ctx.Done():
			ts.Fatalf("no receive in a minute")
		case <-time.After(50 * time.Millisecond):
		}
	}
}
