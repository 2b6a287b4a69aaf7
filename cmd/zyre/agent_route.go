package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zyre-go/zyre/agent/client"
)

// identityFlags name this device's identity: with an agent running it
// (the same home), the command goes through the agent.
var identityFlags = map[string]bool{"secure": true, "home": true, "passphrase-file": true}

// networkFlags say where a node runs: beside identityFlags, the same as
// the agent's they still mean the agent's node; another value asks for a
// second node.
var networkFlags = map[string]bool{"port": true, "interface": true, "loopback": true}

// nodeAgent decides whether members, peers, monitor and chat go through
// the running agent (its client) or run a node of their own (nil, and why,
// for the command to say). Flags other than nodeOnlyFlags and allowed
// configure a node of the command's own, as agentFlags.dial says, except
// the identity flags (--secure, --home, --passphrase-file): they name this
// device's identity, which an agent of that home runs already, so the
// command goes through it, with the network flags (--port, --interface,
// --loopback) only where they are the agent's. A flag that asks for a
// second node with the agent's identity (another port, --name, ...) is
// refused here, before any passphrase: two nodes with one UUID would
// confuse every peer.
func (a *agentFlags) nodeAgent(ctx context.Context, env *cliEnv, f *nodeFlags, allowed ...string) (*client.Client, string, error) {
	if a.noAgent {
		return nil, "--no-agent", nil
	}
	var own, ident, network, other []string // own: all of them, in Visit's order
	f.fs.Visit(func(fl *flag.Flag) {
		if !nodeOnlyFlags[fl.Name] && !slices.Contains(allowed, fl.Name) {
			own = append(own, fl.Name)
		}
		switch {
		case nodeOnlyFlags[fl.Name] || slices.Contains(allowed, fl.Name):
		case identityFlags[fl.Name]:
			ident = append(ident, fl.Name)
		case networkFlags[fl.Name]:
			network = append(network, fl.Name)
		default:
			other = append(other, fl.Name)
		}
	})
	if len(ident) == 0 || slices.Contains(other, "ephemeral") {
		// No identity of this device's asked for (or a key of this run
		// only): node flags mean a node of the command's own.
		c, err := a.dial(ctx, env, f.fs, allowed...)
		if c != nil || err != nil {
			return c, "", err
		}
		if len(own) > 0 {
			return nil, "--" + own[0] + " configures a node of this command's own, not the agent's", nil
		}
		return nil, "no agent", nil
	}
	home, err := homeDir(env, f.home)
	if err != nil {
		// Loading the identity says what is wrong.
		return nil, "no agent", nil
	}
	c, err := a.connect(ctx, env)
	if err != nil || c == nil {
		return nil, "no agent", err
	}
	info, err := c.Info(ctx)
	if err != nil {
		c.Close()
		return nil, "", fmt.Errorf("the agent at %s: %w", a.path(env), err)
	}
	if !info.Secure || !sameDir(home, info.Home) {
		c.Close()
		if a.socket != "" {
			return nil, "", fmt.Errorf("%w: the agent at %s runs %s, not the identity in %s", errUsage, a.path(env), agentIdentityText(info), home)
		}
		return nil, "the agent runs " + agentIdentityText(info) + ", not the identity in " + home, nil
	}
	var differ []string
	for _, n := range network {
		if d := networkDiffers(n, f, info); d != "" {
			differ = append(differ, d)
		}
	}
	for _, n := range other {
		differ = append(differ, "--"+n)
	}
	if len(differ) > 0 {
		c.Close()
		return nil, "", withHint(fmt.Errorf("the agent at %s runs this identity (%s %s) already, and %s asks for a second node: it would confuse the peers",
			a.path(env), safe(info.Name), shortText(info.UUID), strings.Join(differ, ", ")),
			"stop the agent while this command runs, or leave out "+flagNames(differ)+" to go through it")
	}
	if flagSet(f.fs, "passphrase-file") {
		fmt.Fprintf(env.stderr, "zyre: --passphrase-file is not needed: the agent at %s has this identity unlocked\n", a.path(env))
	}
	return c, "", nil
}

// connect dials the agent (a.path): nil, nil when none answers, unless
// --socket insists on it.
func (a *agentFlags) connect(ctx context.Context, env *cliEnv) (*client.Client, error) {
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := client.Dial(dctx, a.path(env))
	if err != nil {
		if a.socket != "" || errors.Is(err, client.ErrForeignAgent) {
			return nil, withHint(err, `is "zyre agent --socket `+a.socket+`" running?`)
		}
		return nil, nil
	}
	if _, err := c.Info(dctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("the agent at %s: %w", a.path(env), err)
	}
	return c, nil
}

// networkDiffers says how the network flag name of f differs from where
// the agent's node runs ("--port 5671, the agent's 5670"), or "" when it
// is the same.
func networkDiffers(name string, f *nodeFlags, info client.Info) string {
	switch name {
	case "port":
		if f.port == info.BeaconPort {
			return ""
		}
		agents := "not said"
		if info.BeaconPort != 0 {
			agents = strconv.Itoa(info.BeaconPort)
		}
		return fmt.Sprintf("--port %d (the agent's: %s)", f.port, agents)
	case "interface":
		if !info.Loopback && f.iface == info.Interface {
			return ""
		}
		agents := info.Interface
		switch {
		case info.Loopback:
			agents = "loopback"
		case agents == "":
			agents = "that of the default route"
		}
		return fmt.Sprintf("--interface %s (the agent's: %s)", safe(f.iface), safe(agents))
	case "loopback":
		if f.loopback == info.Loopback {
			return ""
		}
		return fmt.Sprintf("--loopback=%t (the agent's: %t)", f.loopback, info.Loopback)
	}
	return "--" + name
}

// flagNames is the flags named in differ ("--port 5671 (...)" gives
// "--port"), joined.
func flagNames(differ []string) string {
	names := make([]string, len(differ))
	for i, d := range differ {
		names[i], _, _ = strings.Cut(d, " ")
		names[i], _, _ = strings.Cut(names[i], "=")
	}
	return strings.Join(names, ", ")
}

// agentIdentityText names the identity an agent runs, for a message.
func agentIdentityText(info client.Info) string {
	switch {
	case !info.Secure:
		return "a plain node"
	case info.Home == "":
		return fmt.Sprintf("an ephemeral identity (%s %s)", safe(info.Name), shortText(info.UUID))
	}
	return fmt.Sprintf("the identity in %s (%s %s)", safe(info.Home), safe(info.Name), shortText(info.UUID))
}
