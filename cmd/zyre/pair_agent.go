package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/zyre-go/zyre/agent/client"
)

// pairAgent runs the pairing in the agent when one runs with home: the
// agent's identity and trust store pair, and this process shows the token
// on out and asks the user to compare the number. done is false when no
// such agent runs (the command pairs on its own).
func pairAgent(ctx context.Context, env *cliEnv, fs *flag.FlagSet, a *agentFlags, home string, args client.PairArgs, out io.Writer, asJSON bool) (done bool, err error) {
	// Every pair flag is about the pairing, not about a node: all go to
	// the agent (--passphrase-file and --insecure-plaintext are moot there).
	var allowed []string
	fs.VisitAll(func(f *flag.Flag) { allowed = append(allowed, f.Name) })
	c, info, err := agentOfHome(ctx, env, fs, a, home, allowed...)
	if err != nil || c == nil {
		return err != nil, err
	}
	defer c.Close()
	fmt.Fprintf(env.stderr, "zyre: pairing through the agent %s %s (pid %d, home %s)\n", safe(info.Name), info.UUID[:min(8, len(info.UUID))], info.PID, info.Home)
	// The agent pairs where its node runs; only the network flags given
	// here go to it, to narrow that (spec/agent.md, "Pairing").
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if !given["listen"] {
		args.Listen = ""
	}
	if !given["interface"] {
		args.Interface = ""
	}
	if !given["loopback"] {
		args.Loopback = false
	}
	if args.Code != "" && args.Endpoint == "" {
		switch {
		case args.Loopback:
			fmt.Fprintln(env.stderr, "zyre: looking for the showing device on lo (loopback)...")
		case args.Listen == "" && args.Interface == "":
			fmt.Fprintln(env.stderr, "zyre: looking for the showing device where the agent's node runs...")
		default:
			fmt.Fprintln(env.stderr, "zyre: looking for the showing device on the network...")
		}
	}
	if args.Code != "" || args.Token != "" {
		sayThisDevice(env, client.PairPeer{Name: info.Name, UUID: info.UUID, Fingerprint: info.Fingerprint})
	}
	if args.Token != "" {
		sayContacting(env, args.Token)
	}
	confirm := confirmAsk(env, out, fs.Lookup("yes") != nil && fs.Lookup("yes").Value.String() == "true")
	// The agent's timeout starts with this request: the same end, to
	// the second, as the line shows it.
	timeout := time.Duration(args.TimeoutMS) * time.Millisecond
	end := time.Now().Add(timeout)
	var askedKnown atomic.Bool // ConfirmPeer runs on a goroutine of its own
	res, err := c.Pair(ctx, args, client.PairHandler{
		Show: func(p client.PairProgress) { showToken(env, out, p, end, timeout) },
		Code: func(p client.PairProgress) { showSpent(env, out, p) },
		ConfirmPeer: func(ctx context.Context, p client.PairProgress) error {
			if p.NameHolder != nil {
				askedKnown.Store(true)
			}
			return confirm(ctx, askOfProgress(p))
		},
	})
	var ce *client.Error
	if errors.As(err, &ce) && askedKnown.Load() && strings.Contains(ce.Text, errKnownNameNotPicked.Error()) {
		// Our own user's refusal of a device under a known name (the
		// warning above named both devices), said as the one-shot
		// command says it.
		msg := "this device calls itself like another device known here, and its id was not typed; nothing was recorded"
		if _, ok := terminalFd(env); !ok {
			msg = "a device that calls itself like another device known here is not paired without a terminal (--yes does not cover it); nothing was recorded"
		}
		return true, &sentenceError{msg, err}
	}
	if err != nil {
		return true, err
	}
	return true, printPaired(env, res, asJSON, "the agent's trust store ("+info.Home+")")
}
