package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"
)

// runPeers implements "zyre peers": the peers of the agent's node when an
// agent runs, else of a node run for --wait: name, short ID, endpoint,
// groups ("zyre members" adds presence and trust).
func runPeers(ctx context.Context, env *cliEnv, args []string) error {
	f := newNodeFlags(env, "peers")
	var a agentFlags
	a.register(f.fs)
	wait := f.fs.Duration("wait", 3*time.Second, "without an agent: listen this `long` before printing")
	asJSON := f.fs.Bool("json", false, "print JSON (with the full UUIDs), as zyre members --json")
	if err := f.parse(args); err != nil {
		return err
	}
	if *wait <= 0 {
		return fmt.Errorf("%w: bad --wait %v", errUsage, *wait)
	}
	ms, err := members(ctx, env, f, &a, *wait)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(env.stdout, ms)
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tENDPOINT\tGROUPS")
	for _, m := range ms {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", safe(m.Name), m.ID, safe(m.Address), groupsText(m.Groups))
	}
	return tw.Flush()
}
