package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/zre"
)

// benchUsage is the synopsis of "zyre bench".
const benchUsage = `usage:
  zyre bench local [NODES [MESSAGES]] [flags]   perf_local: wait for NODES remote nodes, whisper MESSAGES round-robin, then shout
  zyre bench remote [NODES] [flags]             perf_remote: run NODES nodes that answer a local bench node
  zyre bench sim [--nodes N] [flags]            NODES nodes in one process over an in-memory network
  zyre bench idle [NODES] [flags]               CPU cost of NODES idle nodes on loopback (beacons, presence)

` + benchDescription

// benchDescription is the paragraph of the bench commands' --help.
const benchDescription = `Measure zyre: throughput between nodes with the C reference's perf_local
and perf_remote protocol (same groups, message texts and printed figures),
the scale of many nodes in one process, and the CPU cost of idle nodes.`

// benchSynopsis is the --help synopsis of "zyre bench CMD" (name is the
// flag set's name): its usage line, then the paragraph.
func benchSynopsis(name string) string {
	cmd := strings.TrimPrefix(name, "zyre bench ")
	for _, l := range strings.Split(benchUsage, "\n")[1:] {
		if strings.HasPrefix(strings.TrimSpace(l), "zyre bench "+cmd+" ") {
			return "usage: " + strings.TrimSpace(l) + "\n\n" + benchDescription
		}
	}
	return "usage: " + name + " [flags]\n\n" + benchDescription
}

// runBench implements "zyre bench": the C reference's perf_local and
// perf_remote protocol (same groups, message texts and printed figures),
// an in-memory simulation of many nodes, and the idle cost of many nodes.
func runBench(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(env.stderr, benchUsage)
		return fmt.Errorf("%w: want local, remote, sim or idle", errUsage)
	}
	args, err := subcommandFirst("bench", args, "local", "remote", "sim", "idle")
	if err != nil {
		return err
	}
	switch args[0] {
	case "local":
		return runBenchLocal(ctx, env, args[1:])
	case "remote":
		return runBenchRemote(ctx, env, args[1:])
	case "sim":
		return runBenchSim(ctx, env, args[1:])
	case "idle":
		return runBenchIdle(ctx, env, args[1:])
	case "-h", "--help", "help":
		fmt.Fprintln(env.stderr, benchUsage)
		return flag.ErrHelp
	}
	fmt.Fprintln(env.stderr, benchUsage)
	return fmt.Errorf("%w: unknown bench %q: want local, remote, sim or idle", errUsage, args[0])
}

// benchFlags are the flags of "zyre bench local/remote/idle": where the
// nodes run.
type benchFlags struct {
	env      *cliEnv
	fs       *flag.FlagSet
	port     int
	iface    string
	loopback bool
	secure   bool
	verbose  bool
	timeout  time.Duration
	cpuprof  string
}

func newBenchFlags(env *cliEnv, cmd string, timeout time.Duration) *benchFlags {
	f := &benchFlags{env: env, fs: flag.NewFlagSet("zyre bench "+cmd, flag.ContinueOnError)}
	f.fs.SetOutput(env.stderr)
	f.fs.IntVar(&f.port, "port", zre.DefaultBeaconPort, "UDP beacon `port`")
	f.fs.StringVar(&f.iface, "interface", "", "beacon on this interface `name or address` (default: that of the default route)")
	f.fs.BoolVar(&f.loopback, "loopback", false, "stay on loopback: beacons on lo, inboxes on 127.0.0.1")
	f.fs.BoolVar(&f.secure, "secure", false, "secure mode: CURVE with an ephemeral key per node, v3 beacons; meets only secure nodes")
	f.fs.BoolVar(&f.verbose, "verbose", false, "log debug messages to stderr")
	f.fs.DurationVar(&f.timeout, "timeout", timeout, "give up after this `duration` (0: no limit)")
	f.fs.StringVar(&f.cpuprof, "cpuprofile", "", "write a CPU profile of the run to `file` (go tool pprof)")
	return f
}

// parse parses flags and up to max positional integers (flags may come
// before, between or after them) and returns the integers.
func (f *benchFlags) parse(args []string, max int) ([]int, error) {
	pos, err := parseInterleaved(f.env, f.fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) > max {
		return nil, fmt.Errorf("%w: unexpected argument %q", errUsage, pos[max])
	}
	var out []int
	for _, a := range pos {
		v, err := strconv.Atoi(a)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%w: %q: want a positive number", errUsage, a)
		}
		out = append(out, v)
	}
	if f.port <= 0 || f.port > 65535 {
		return nil, fmt.Errorf("%w: bad --port %d", errUsage, f.port)
	}
	if f.timeout < 0 {
		return nil, fmt.Errorf("%w: negative --timeout", errUsage)
	}
	return out, nil
}

// parseInterleaved parses flags found anywhere in args and returns the
// positional arguments in order, as every command does (parseFlags).
func parseInterleaved(env *cliEnv, fs *flag.FlagSet, args []string) ([]string, error) {
	return parseFlags(env, fs, benchSynopsis(fs.Name()), args)
}

// config is the configuration of one bench node. With --secure every node
// gets an ephemeral keypair: many nodes in one process need as many
// identities, and the keystore holds one.
func (f *benchFlags) config(env *cliEnv) (zre.Config, error) {
	cfg := zre.Config{
		Beacon: zre.BeaconConfig{Port: f.port, Interface: f.iface, Loopback: f.loopback},
	}
	cfg.Logger = nodeLog(env, f.verbose)
	if f.secure {
		_, sec, err := curve.GenerateKeyPair(nil)
		if err != nil {
			return cfg, fmt.Errorf("failed to make a key: %w", err)
		}
		cfg.Secure = &zre.SecureConfig{Secret: sec}
	}
	return cfg, nil
}

// startProfile starts the --cpuprofile profile; the returned function
// stops it.
func (f *benchFlags) startProfile() (func(), error) {
	if f.cpuprof == "" {
		return func() {}, nil
	}
	file, err := os.Create(f.cpuprof)
	if err != nil {
		return nil, fmt.Errorf("failed to create profile: %w", err)
	}
	if err := pprof.StartCPUProfile(file); err != nil {
		file.Close()
		return nil, fmt.Errorf("failed to start profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); file.Close() }, nil
}

// withTimeout bounds ctx by the --timeout flag.
func (f *benchFlags) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if f.timeout == 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, f.timeout)
}
