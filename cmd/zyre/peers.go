package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zyre-go/zyre/zre"
)

// runPeers implements "zyre peers": run a node for --wait, then print the
// peers it met: name, UUID, endpoint, groups.
func runPeers(ctx context.Context, env *cliEnv, args []string) error {
	f := newNodeFlags(env, "peers")
	wait := f.fs.Duration("wait", 3*time.Second, "listen this `long` before printing")
	if err := f.parse(args); err != nil {
		return err
	}
	if *wait <= 0 {
		return fmt.Errorf("%w: bad --wait %v", errUsage, *wait)
	}
	n, err := f.startNode(ctx, env)
	if err != nil {
		return err
	}
	defer stopNode(n)
	timer := time.NewTimer(*wait)
	defer timer.Stop()
	// Drain events while waiting so that nothing piles up.
	for done := false; !done; {
		select {
		case <-n.Events():
		case <-timer.C:
			done = true
		case <-ctx.Done():
			done = true
		}
	}
	infos := n.PeerInfos()
	slices.SortFunc(infos, func(a, b zre.PeerInfo) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.UUID.String(), b.UUID.String())
	})
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tUUID\tENDPOINT\tGROUPS")
	for _, p := range infos {
		groups := strings.Join(p.Groups, ",")
		if groups == "" {
			groups = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, uuidText(p.UUID), p.Endpoint, groups)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(env.stderr, "zyre: %d peers seen in %v\n", len(infos), *wait)
	return nil
}
