package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/zyre-go/zyre/agent/client"
)

const peersUsage = `usage: zyre peers [flags]

List the peers: name, short ID, endpoint, groups ("zyre members" adds
presence and trust). From the agent when one runs (see "zyre agent"),
else from a node run for --wait.`

// runPeers implements "zyre peers": the peers of the agent's node when an
// agent runs, else of a node run for --wait: name, short ID, endpoint,
// groups ("zyre members" adds presence and trust).
func runPeers(ctx context.Context, env *cliEnv, args []string) error {
	return runMemberList(ctx, env, args, "peers", peersUsage, "print JSON (with the full UUIDs), as zyre members --json", printPeers)
}

func printPeers(w io.Writer, ms []client.Member) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tENDPOINT\tGROUPS")
	for _, m := range ms {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", safe(m.Name), m.ID, safe(m.Address), groupsText(m.Groups))
	}
	return tw.Flush()
}
