// Command zyre runs and inspects secure ZRE nodes: a loopback demo, an event
// monitor, a group chat, the peer list, keys, trust and pairing.
//
// Output rules (cli.go holds them): results go to stdout, and so does help
// asked for (--help, zyre help CMD; exit 0); diagnostics go to stderr,
// lowercase, prefixed once with "zyre: ", each hint once on a
// "zyre: hint:" line; a usage error prints no help. Progress bars and
// spinners only on a terminal (elsewhere a plain line at most every 5 s,
// unless --progress says). What libraries log (slog) follows one rule,
// in logs.go: their records only with --verbose, else a warning as one
// "zyre: " line. Flags go before, between or after the arguments.
// Exit status 0 on success, 1 on failure, 2 on a usage error, 130 when
// interrupted by SIGINT (143 by SIGTERM).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"sync/atomic"
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
		"version": {"print the version (also --version)", runVersion},
		"agent":   {"run this device's node in the foreground and serve a control socket", runAgent},
		"members": {"list the peers: name, ID, address, presence, trust, groups", runMembers},
		"keys":    {"manage this node's identity and keys", runKeys},
		"pair":    {"pair with a nearby device by QR code or short code", runPair},
		"trust":   {"list, show, revoke and accept peers' keys", runTrust},
		"demo":    {"run three nodes on loopback and show what they do", runDemo},
		"monitor": {"run a node and print every event", runMonitor},
		"chat":    {"chat in a group: stdin lines are shouted", runChat},
		"peers":   {"run a node briefly and list the peers it saw", runPeers},
		"bench":   {"measure throughput and scale (perf_local / perf_remote protocol)", runBench},
		"stream":  {"send or receive a private, end-to-end encrypted stream in a group", runStream},
		"send":    {"send files and folders to one trusted peer (resumable, checked)", runSend},
		"receive": {"receive files from a trusted peer into a folder", runReceive},
	}
}

// cliEnv carries the process's streams so commands can be tested in-process.
type cliEnv struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	// held are released when the command ends (run): the node lock of
	// its identity (nodelock.go). Only the command's goroutine adds.
	held []func()
}

// hold keeps release for when the command ends.
func (e *cliEnv) hold(release func()) { e.held = append(e.held, release) }

// releaseHeld releases what the command held, last first.
func (e *cliEnv) releaseHeld() {
	for i := len(e.held) - 1; i >= 0; i-- {
		e.held[i]()
	}
	e.held = nil
}

// errUsage marks a usage error (exit status 2); the message says what is wrong.
var errUsage = errors.New("usage")

const version = "0.1.0"

func runVersion(_ context.Context, env *cliEnv, _ []string) error {
	fmt.Fprintln(env.stdout, "zyre", version)
	return nil
}

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	var got atomic.Value // the first signal
	go func() {
		s := <-sigs
		got.Store(s)
		if restorePrompt(os.Stderr) {
			// A passphrase prompt cannot be cancelled: end at once,
			// the terminal as it was.
			os.Exit(exitStatus(s))
		}
		cancel()
		// A second signal while the command says goodbye ends it at once.
		<-sigs
		restorePrompt(os.Stderr)
		os.Exit(exitStatus(s))
	}()
	env := &cliEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	code := run(ctx, env, os.Args[1:])
	signal.Stop(sigs)
	if s, ok := got.Load().(os.Signal); ok {
		code = exitStatus(s)
	}
	cancel()
	os.Exit(code)
}

// exitStatus is the shell's status for a process ended by s: 128 + s.
func exitStatus(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return 1
}

// run executes one command line and returns the exit status.
func run(ctx context.Context, env *cliEnv, args []string) int {
	cmds := commands()
	if len(args) == 0 {
		usage(env.stderr, cmds)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(env.stdout, cmds)
		return 0
	case "--version", "-version":
		return exitCode(env, "", runVersion(ctx, env, nil))
	case "help":
		// zyre help CMD [SUB] is zyre CMD [SUB] --help.
		if len(args) == 1 {
			usage(env.stdout, cmds)
			return 0
		}
		if _, ok := cmds[args[1]]; !ok {
			printError(env.stderr, withHint(fmt.Errorf("%w: unknown command %q", errUsage, args[1]), `run "zyre --help" for the commands`))
			return 2
		}
		args = append(args[1:len(args):len(args)], "--help")
	}
	c, ok := cmds[args[0]]
	if !ok {
		printError(env.stderr, withHint(fmt.Errorf("%w: unknown command %q", errUsage, args[0]), `run "zyre --help" for the commands`))
		return 2
	}
	defer env.releaseHeld()
	var err error
	if asksHelp(args[1:]) {
		err = runHelp(ctx, env, c, args[1:])
	} else {
		err = c.run(ctx, env, args[1:])
	}
	if err == context.Canceled && ctx.Err() != nil {
		// Ctrl-C (main cancels ctx, and exits 130): said as such, not
		// as a bare "context canceled". (An error that says what was
		// cut short keeps its text.)
		err = errInterrupted
	}
	return exitCode(env, args[0], err)
}

// asksHelp reports whether args ask for help (-h or --help before any
// "--").
func asksHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// runHelp runs a command asked for its help. Help asked for is output:
// what the command writes to stderr goes to stdout when it ends with
// flag.ErrHelp, and to stderr otherwise (a usage error found before the
// help). A command asked for help runs nothing, so holding its stderr
// until it ends holds nothing back.
func runHelp(ctx context.Context, env *cliEnv, c command, args []string) error {
	var buf bytes.Buffer
	e := *env
	e.stderr = &buf
	err := c.run(ctx, &e, args)
	if errors.Is(err, flag.ErrHelp) {
		env.stdout.Write(buf.Bytes())
	} else {
		env.stderr.Write(buf.Bytes())
	}
	return err
}

// errInterrupted is the error of a command its context ended (SIGINT or
// SIGTERM) during.
var errInterrupted = errors.New("interrupted")

// exitCode prints err by the CLI's rules and returns the exit status.
func exitCode(env *cliEnv, cmd string, err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		var h *hintError
		if cmd != "" && !errors.As(err, &h) {
			err = withHint(err, fmt.Sprintf("run \"zyre %s --help\" for usage", cmd))
		}
		printError(env.stderr, err)
		return 2
	default:
		printError(env.stderr, err)
		return 1
	}
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: zyre COMMAND [flags] [args]    (flags may also follow the args)\n\ncommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nrun \"zyre help COMMAND\" for a command's flags; \"zyre --version\" for the version")
}
