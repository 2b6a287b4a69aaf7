// Command zyre runs and inspects secure ZRE nodes: a loopback demo, an event
// monitor, a group chat, the peer list, keys, trust and pairing.
//
// Output rules: results go to stdout; diagnostics go to stderr, lowercase,
// prefixed with "zyre: ". Exit status 0 on success, 1 on failure, 2 on a
// usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand. run gets the arguments after its name.
type command struct {
	summary string
	run     func(ctx context.Context, env *cliEnv, args []string) error
}

// commands is the static table of subcommands; each lives in its own file.
func commands() map[string]command {
	return map[string]command{
		"version": {"print the version", runVersion},
		"keys":    {"manage this node's identity and keys", runKeys},
		"pair":    {"pair with a nearby device by QR code or short code", runPair},
		"trust":   {"list, show, revoke and accept peers' keys", runTrust},
		"demo":    {"run three nodes on loopback and show what they do", runDemo},
		"monitor": {"run a node and print every event", runMonitor},
		"chat":    {"chat in a group: stdin lines are shouted", runChat},
		"peers":   {"run a node briefly and list the peers it saw", runPeers},
		"bench":   {"measure throughput and scale (perf_local / perf_remote protocol)", runBench},
		"stream":  {"send or receive a private, end-to-end encrypted stream in a group", runStream},
	}
}

// cliEnv carries the process's streams so commands can be tested in-process.
type cliEnv struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// errUsage marks a usage error (exit status 2); the message says what is wrong.
var errUsage = errors.New("usage")

const version = "0.1.0"

func runVersion(_ context.Context, env *cliEnv, _ []string) error {
	fmt.Fprintln(env.stdout, "zyre", version)
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	env := &cliEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	code := run(ctx, env, os.Args[1:])
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit status.
func run(ctx context.Context, env *cliEnv, args []string) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.stderr, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(env.stderr, "zyre: unknown command %q\n", args[0])
		usage(env.stderr, cmds)
		return 2
	}
	err := c.run(ctx, env, args[1:])
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(env.stderr, "zyre %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(env.stderr, "zyre: %v\n", err)
		return 1
	}
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: zyre COMMAND [flags] [args]\n\ncommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
}
