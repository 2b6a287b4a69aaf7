package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/trust"
)

// agentOfHome returns a client of the running agent when it serves the
// trust store (and identity) of home, else nil: the command then works on
// its own. --no-agent, or a flag of fs other than allowed, means no agent.
// With --socket, an agent that does not answer or serves another home is
// an error.
func agentOfHome(ctx context.Context, env *cliEnv, fs *flag.FlagSet, a *agentFlags, home string, allowed ...string) (*client.Client, client.Info, error) {
	if a.noAgent {
		return nil, client.Info{}, nil
	}
	// --home alone does not mean "no agent" here: the agent serves the
	// store of its home, which is compared below.
	c, err := a.dial(ctx, env, fs, append(allowed, "home")...)
	if err != nil || c == nil {
		return nil, client.Info{}, err
	}
	info, err := c.Info(ctx)
	if err != nil {
		c.Close()
		return nil, info, err
	}
	if !info.Secure || !sameDir(home, info.Home) {
		c.Close()
		if a.socket != "" {
			return nil, info, fmt.Errorf("%w: the agent at %s serves the home %q, not %s", errUsage, a.path(env), info.Home, home)
		}
		return nil, info, nil
	}
	return c, info, nil
}

// trustListAgent lists the agent's trust store when an agent runs with the
// home that f names (default: the default home). done is false when the
// command reads the store itself.
func trustListAgent(ctx context.Context, env *cliEnv, f *trustFlags, a *agentFlags, asJSON bool) (done bool, err error) {
	home, err := f.homeDir(env)
	if err != nil {
		return false, nil
	}
	c, info, err := agentOfHome(ctx, env, f.fs, a, home, "json")
	if err != nil || c == nil {
		return err != nil, err
	}
	defer c.Close()
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
	names := map[string]string{}
	for _, r := range recs {
		names[r.Fingerprint] = r.Name
	}
	tw := tabwriter.NewWriter(env.stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tUUID\tFINGERPRINT\tSTATE\tLAST SEEN")
	for _, r := range recs {
		state := r.State
		if r.State == "introduced" && r.IntroducedBy != "" {
			state += introducerLabel(names, r.IntroducedBy)
		}
		if r.KeyChange != nil && r.State != "revoked" {
			state += " KEY-CHANGED!"
		}
		if r.State == "revoked" {
			state = "REVOKED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", safe(r.Name), shortText(r.UUID), safe(r.Fingerprint), state, fmtTime(r.LastSeen))
	}
	if err := tw.Flush(); err != nil {
		return true, err
	}
	for _, r := range recs {
		if r.KeyChange != nil && r.State != "revoked" {
			fmt.Fprintf(env.stdout, "\nWARNING: KEY CHANGED for %s (uuid %s): see zyre trust show %s\n", safe(r.Name), shortText(r.UUID), safe(r.Fingerprint))
		}
	}
	return true, nil
}

// shortText is the CLI's short form (the first 8 characters) of a UUID
// the agent sent, safe to print whatever its length and content.
func shortText(s string) string { return safe(s[:min(8, len(s))]) }

// sameDir reports whether a, relative to this process's directory, and
// the agent's home b name the same directory. A relative b (another
// process's directory) never does.
func sameDir(a, b string) bool {
	if a == "" || b == "" || !filepath.IsAbs(b) {
		return false
	}
	a, err := filepath.Abs(a)
	if err != nil {
		return false
	}
	ea, err1 := filepath.EvalSymlinks(a)
	eb, err2 := filepath.EvalSymlinks(b)
	if err1 != nil || err2 != nil {
		return filepath.Clean(a) == filepath.Clean(b)
	}
	return ea == eb
}

// agent returns a client of the running agent when it serves this
// command's home (the trust changes then go through it: it owns the store
// and signs with its unlocked identity), else nil. Every flag of the
// command is about the change, so none means "no agent" but --no-agent.
func (f *trustFlags) agent(ctx context.Context, env *cliEnv, a *agentFlags) (*client.Client, error) {
	home, err := f.homeDir(env)
	if err != nil {
		return nil, nil
	}
	var allowed []string
	f.fs.VisitAll(func(fl *flag.Flag) { allowed = append(allowed, fl.Name) })
	c, _, err := agentOfHome(ctx, env, f.fs, a, home, allowed...)
	return c, err
}

// shortOf is the short form of a UUID in text form.
func shortOf(u string) string { return u[:min(8, len(u))] }

// recordLabel is stateLabel for a record from the agent.
func recordLabel(r *client.TrustRecord) string {
	switch {
	case r.State == "revoked":
		return "REVOKED"
	case r.KeyChange != nil:
		return r.State + " KEY-CHANGED!"
	}
	return r.State
}

// trustChangeAgent makes the change op through the agent c and prints its
// outcome as the command does without one.
// changeViaAgent asks the agent that runs for this home, if one does, for
// the trust change op (ok true, with its error); else ok is false and the
// caller changes the store itself.
func (f *trustFlags) changeViaAgent(ctx context.Context, env *cliEnv, a *agentFlags, op string, args client.TrustArgs) (ok bool, err error) {
	c, err := f.agent(ctx, env, a)
	if err != nil || c == nil {
		return err != nil, err
	}
	defer c.Close()
	return true, trustChangeAgent(ctx, env, c, op, args)
}

func trustChangeAgent(ctx context.Context, env *cliEnv, c *client.Client, op string, args client.TrustArgs) error {
	ch, err := c.TrustChange(ctx, op, args)
	if err != nil {
		if op == "trust.forget" && strings.Contains(err.Error(), trust.ErrRevoked.Error()) {
			return withHint(err, "zyre trust unrevoke withdraws a mistaken revocation")
		}
		return err
	}
	r := ch.Record
	if r == nil {
		return fmt.Errorf("agent: %s: no record in the answer", op)
	}
	w := env.stdout
	switch op {
	case "trust.revoke":
		if args.Local {
			fmt.Fprintf(w, "revoked %s (%s, uuid %s) here only; other nodes were not told\n", safe(r.Name), r.Fingerprint, shortOf(r.UUID))
		} else {
			fmt.Fprintf(w, "revoked %s (%s, uuid %s): signed revocation #%d; the agent shares it in the group zyre-trust\n",
				safe(r.Name), r.Fingerprint, shortOf(r.UUID), ch.Seq)
		}
	case "trust.unrevoke":
		if args.Local {
			fmt.Fprintf(w, "withdrew the revocation of %s (%s) here only: now %s\n", safe(r.Name), r.Fingerprint, recordLabel(r))
			return nil
		}
		fmt.Fprintf(w, "withdrew the revocation of %s (%s): signed statement #%d, shared by the agent; now %s\n",
			safe(r.Name), r.Fingerprint, ch.Seq, recordLabel(r))
		if r.State == "revoked" {
			fmt.Fprintf(env.stderr, "zyre: %s stays revoked by another node's revocation\n", safe(r.Name))
		}
	case "trust.forget":
		fmt.Fprintf(w, "forgot %s (%s, uuid %s, was %s)\n", safe(r.Name), r.Fingerprint, shortOf(r.UUID), r.State)
		if r.State == "verified" || r.State == "introduced" {
			fmt.Fprintf(env.stderr, "zyre: %s was %s: it is a stranger now; pair again to trust it\n", safe(r.Name), r.State)
		}
	case "trust.accept":
		was := "-"
		if ch.Previous != nil {
			was = ch.Previous.Fingerprint
		}
		fmt.Fprintf(w, "accepted the new key of %s: %s (was %s)\n", safe(r.Name), r.Fingerprint, was)
		fmt.Fprintf(env.stderr, "zyre: the key is now only trusted on first use; verify it by pairing\n")
	}
	return nil
}
