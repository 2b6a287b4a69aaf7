package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/zyre-go/zyre/agent"
	"github.com/zyre-go/zyre/agent/client"

	"github.com/zyre-go/zyre/zre"
)

// stopTimeout bounds a command's goodbye after SIGINT/SIGTERM.
const stopTimeout = 3 * time.Second

// runMonitor implements "zyre monitor": run a node and print every event,
// one line each, until interrupted (like the C reference's zpinger).
func runMonitor(ctx context.Context, env *cliEnv, args []string) error {
	f := newNodeFlags(env, "monitor")
	var a agentFlags
	a.register(f.fs)
	asJSON := f.fs.Bool("json", false, "print each event as one line of JSON (full UUIDs, content in base64)")
	if err := f.parse(args); err != nil {
		return err
	}
	c, _, err := a.nodeAgent(ctx, env, f)
	if err != nil {
		return err
	}
	if c != nil {
		defer c.Close()
		return monitorAgent(ctx, env, c, f.groups, *asJSON)
	}
	n, err := f.startNode(ctx, env)
	if err != nil {
		return err
	}
	defer stopNode(n)
	fmt.Fprintf(env.stderr, "zyre: monitoring as %s %s at %s\n", n.Name(), uuidText(n.UUID()), n.Endpoint())
	if a := n.GossipAddr(); a != "" {
		fmt.Fprintf(env.stderr, "zyre: serving gossip on tcp://%s\n", a)
	}
	for {
		select {
		case e, ok := <-n.Events():
			if !ok {
				return nil
			}
			if *asJSON {
				if err := writeJSONLine(env.stdout, agent.EventOf(e, time.Now())); err != nil {
					return err
				}
			} else if line, ok := sealedLine(e); ok {
				fmt.Fprintln(env.stdout, line)
			} else {
				fmt.Fprintln(env.stdout, f.eventText(e))
			}
			if r, ok := e.(interface{ Release() }); ok {
				r.Release() // printed (copied into the line): the content goes back to the node
			}
			if kc, ok := e.(*zre.KeyChanged); ok {
				fmt.Fprintln(env.stderr, "zyre: "+keyChangedWarning(kc))
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// monitorAgent prints the agent's events until interrupted; --group joins
// the agent's node to those groups (it stays in them).
func monitorAgent(ctx context.Context, env *cliEnv, c *client.Client, groups []string, asJSON bool) error {
	info, err := c.Info(ctx)
	if err != nil {
		return err
	}
	for _, g := range groups {
		if err := c.Join(ctx, g); err != nil {
			return err
		}
	}
	if err := c.Subscribe(ctx); err != nil {
		return err
	}
	fmt.Fprintf(env.stderr, "zyre: monitoring through the agent %s %s at %s\n", safe(info.Name), shortText(info.UUID), safe(info.Endpoint))
	for {
		e, err := c.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("the agent's events: %w", err)
		}
		if asJSON {
			if err := writeJSONLine(env.stdout, e); err != nil {
				return err
			}
			continue
		}
		if line, ok := sealedAgentLine(e); ok {
			fmt.Fprintln(env.stdout, line)
			continue
		}
		fmt.Fprintln(env.stdout, agentEventLine(e))
	}
}

// writeJSONLine writes v as one line of JSON.
func writeJSONLine(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
