package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/agent"
	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

const membersUsage = `usage: zyre members [flags]

List the peers: name, short ID, address, presence, the trust state of
their key, groups. From the agent when one runs (see "zyre agent"), else
from a node run for --wait. Presence: alive (a message came lately),
idle (its beacons arrive but it sent no message for a while: ZRE's SILENT,
the usual state of a peer with nothing to say), evasive (nothing heard at
all for a while: it was pinged).`

// runMembers implements "zyre members", like "serf members".
func runMembers(ctx context.Context, env *cliEnv, args []string) error {
	return runMemberList(ctx, env, args, "members", membersUsage, "print JSON (with the full UUIDs)", printMembers)
}

// runMemberList is "zyre members" and "zyre peers", which differ in
// their synopsis, the help of --json and how they print a table.
func runMemberList(ctx context.Context, env *cliEnv, args []string, cmd, synopsis, jsonHelp string, print func(io.Writer, []client.Member) error) error {
	f := newNodeFlags(env, cmd)
	f.synopsis = synopsis
	var a agentFlags
	a.register(f.fs)
	asJSON := f.fs.Bool("json", false, jsonHelp)
	wait := f.fs.Duration("wait", 3*time.Second, "without an agent: listen this `long` before printing")
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
		return writeJSON(env.stdout, membersJSON(ms))
	}
	return print(env.stdout, ms)
}

// memberJSON is a member in --json: its trust state null when there is
// none (plain mode, "-" in the table).
type memberJSON struct {
	client.Member
	Trust *string `json:"trust"`
}

func membersJSON(ms []client.Member) []memberJSON {
	out := make([]memberJSON, len(ms))
	for i, m := range ms {
		out[i].Member = m
		if m.Trust != "" && m.Trust != "-" {
			t := m.Trust
			out[i].Trust = &t
		}
	}
	return out
}

// members lists the members from the agent, or from a node of this
// command's own run for wait.
func members(ctx context.Context, env *cliEnv, f *nodeFlags, a *agentFlags, wait time.Duration) ([]client.Member, error) {
	c, reason, err := a.nodeAgent(ctx, env, f)
	if err != nil {
		return nil, err
	}
	if c != nil {
		defer c.Close()
		return c.Members(ctx)
	}
	n, err := f.startNode(ctx, env)
	if err != nil {
		return nil, err
	}
	defer stopNode(n)
	tr := agent.NewTracker()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for done := false; !done; {
		select {
		case e := <-n.Events():
			tr.Handle(e)
		case <-timer.C:
			done = true
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	ms := tr.Members(n, f.trustStore)
	fmt.Fprintf(env.stderr, "zyre: %s: %d peers seen by a node of this command in %v\n", reason, len(ms), wait)
	if len(ms) == 0 && !f.secure {
		fmt.Fprintln(env.stderr, `zyre: hint: a plain node sees no secure peer: start "zyre agent" (this command then asks it), or pass --secure`)
	}
	return ms, nil
}

func printMembers(w io.Writer, ms []client.Member) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tADDRESS\tPRESENCE\tTRUST\tGROUPS")
	for _, m := range ms {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", safe(m.Name), m.ID, safe(m.Address), m.Presence, m.Trust, groupsText(m.Groups))
	}
	return tw.Flush()
}

func groupsText(gs []string) string {
	if len(gs) == 0 {
		return "-"
	}
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = safe(g)
	}
	return strings.Join(out, ",")
}

// agentEventLine is eventLine for an event from the agent.
func agentEventLine(e client.Event) string {
	id := e.Peer
	if len(id) > 8 {
		id = id[:8]
	}
	name := e.Name
	if name == "" && (e.Type == zre.EventRefused.String() || e.Type == zre.EventDenied.String()) {
		name = "unknown"
	}
	head := fmt.Sprintf("%s %s %s", e.Type, safe(name), id)
	var s string
	switch e.Type {
	case zre.EventEnter.String():
		s = head + " " + safe(e.Addr)
		var hs []zre.Header
		for k, v := range e.Headers {
			hs = append(hs, zre.Header{Key: k, Value: v})
		}
		s += headersText(sortedHeaders(hs))
	case zre.EventJoin.String(), zre.EventLeave.String():
		s = head + " " + safe(e.Group)
	case zre.EventWhisper.String():
		s = head + " " + contentText(e.Content)
	case zre.EventShout.String():
		s = head + " " + safe(e.Group) + " " + contentText(e.Content)
	case zre.EventRefused.String():
		s = fmt.Sprintf("%s %s key=%s from=%s: %s", head, e.Stage, e.Key, safe(e.Addr), e.Reason)
	case zre.EventDenied.String():
		peer, _ := uuid.Parse(e.Peer)
		s = head + " " + deniedText(e.Addr, name, peer, zre.CleanReason(e.Reason))
	case zre.EventKeyChanged.String():
		// The command names the presented key by its fingerprint, never
		// by the peer's chosen name: that would accept whatever key
		// comes under it next, and a name can hold a shell command.
		what := "see zyre trust show " + peerShort(e.Peer)
		if b, err := curve.DecodeZ85(e.Key); err == nil {
			if k, err := curve.NewPublicKey(b); err == nil {
				what = "run: zyre trust accept " + trust.Fingerprint(k)
			}
		}
		s = fmt.Sprintf("%s WARNING: %s, presented from %s; REFUSED. If the change is expected, %s", head, terminalText(e.Reason), safe(e.Addr), what)
	default:
		s = head
	}
	if e.Dropped > 0 {
		s = fmt.Sprintf("(%d events dropped: this reader was too slow)\n%s", e.Dropped, s)
	}
	return s
}

func sortedHeaders(hs []zre.Header) []zre.Header {
	slices.SortFunc(hs, func(a, b zre.Header) int { return strings.Compare(a.Key, b.Key) })
	return hs
}
