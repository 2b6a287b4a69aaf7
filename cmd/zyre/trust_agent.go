package main

import (
	"context"
	"fmt"
	"path/filepath"
	"text/tabwriter"
)

// trustListAgent lists the agent's trust store when an agent runs with the
// home that f names (default: the default home). done is false when the
// command reads the store itself.
func trustListAgent(ctx context.Context, env *cliEnv, f *trustFlags, a *agentFlags, asJSON bool) (done bool, err error) {
	if a.noAgent {
		return false, nil
	}
	// --home alone does not mean "no agent" here: the agent serves the
	// store of its home, which is compared below.
	c, err := a.dial(ctx, env, f.fs, "home")
	if err != nil || c == nil {
		return err != nil, err
	}
	defer c.Close()
	info, err := c.Info(ctx)
	if err != nil {
		return true, err
	}
	home, herr := f.homeDir(env)
	if herr != nil || !sameDir(home, info.Home) {
		if a.socket != "" {
			return true, fmt.Errorf("%w: the agent at %s serves the home %s, not %s", errUsage, a.path(env), info.Home, home)
		}
		return false, nil
	}
	recs, err := c.TrustList(ctx)
	if err != nil {
		return true, err
	}
	if asJSON {
		return true, writeJSON(env.stdout, recs)
	}
	if len(recs) == 0 {
		fmt.Fprintf(env.stderr, "zyre: no peers in the trust store of the agent (%s)\n", info.Home)
		return true, nil
	}
	tw := tabwriter.NewWriter(env.stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tUUID\tFINGERPRINT\tSTATE\tLAST SEEN")
	for _, r := range recs {
		state := r.State
		if r.KeyChange != nil && r.State != "revoked" {
			state += " KEY-CHANGED!"
		}
		if r.State == "revoked" {
			state = "REVOKED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", safe(r.Name), r.UUID[:min(8, len(r.UUID))], r.Fingerprint, state, fmtTime(r.LastSeen))
	}
	if err := tw.Flush(); err != nil {
		return true, err
	}
	for _, r := range recs {
		if r.KeyChange != nil && r.State != "revoked" {
			fmt.Fprintf(env.stdout, "\nWARNING: KEY CHANGED for %s (uuid %s): see zyre trust show %s\n", safe(r.Name), r.UUID[:8], r.Fingerprint)
		}
	}
	return true, nil
}

// sameDir reports whether a and b name the same directory.
func sameDir(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	ea, err1 := filepath.EvalSymlinks(a)
	eb, err2 := filepath.EvalSymlinks(b)
	if err1 != nil || err2 != nil {
		return filepath.Clean(a) == filepath.Clean(b)
	}
	return ea == eb
}
