package main

import (
	"context"
	"fmt"
	"time"

	"github.com/zyre-go/zyre/zre"
)

// stopTimeout bounds a command's goodbye after SIGINT/SIGTERM.
const stopTimeout = 3 * time.Second

// runMonitor implements "zyre monitor": run a node and print every event,
// one line each, until interrupted (like the C reference's zpinger).
func runMonitor(ctx context.Context, env *cliEnv, args []string) error {
	f := newNodeFlags(env, "monitor")
	if err := f.parse(args); err != nil {
		return err
	}
	n, err := f.startNode(ctx, env)
	if err != nil {
		return err
	}
	defer stopNode(n)
	fmt.Fprintf(env.stderr, "zyre: monitoring as %s %s at %s\n", n.Name(), uuidText(n.UUID()), n.Endpoint())
	for {
		select {
		case e, ok := <-n.Events():
			if !ok {
				return nil
			}
			fmt.Fprintln(env.stdout, f.eventText(e))
			if kc, ok := e.(*zre.KeyChanged); ok {
				fmt.Fprintln(env.stderr, "zyre: "+keyChangedWarning(kc))
			}
		case <-ctx.Done():
			return nil
		}
	}
}
