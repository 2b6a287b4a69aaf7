package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zyre-go/zyre/internal/sim"
	"github.com/zyre-go/zyre/zre"
)

// runBenchSim implements "zyre bench sim": --nodes real nodes in this
// process over the in-memory network of internal/sim; it prints the time
// to full mesh, CPU and memory per node and the shout fan-out rate.
func runBenchSim(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("zyre bench sim", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	nodes := fs.Int("nodes", 100, "number of `nodes`")
	shouts := fs.Int("shouts", 1, "shouts per sender once meshed (0: none)")
	senders := fs.Int("senders", 0, "number of nodes that shout (0: all)")
	timeout := fs.Duration("timeout", sim.DefaultTimeout, "bound on each phase")
	secure := fs.Bool("secure", false, "run the nodes in secure mode (a key pair each; the in-memory network stands in for CURVE)")
	memprof := fs.String("memprofile", "", "write a heap profile taken at full mesh to `file` (go tool pprof)")
	pos, err := parseInterleaved(env, fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, pos[0])
	}
	if *nodes < 2 || *shouts < 0 || *senders < 0 || *timeout <= 0 {
		return fmt.Errorf("%w: want --nodes ≥ 2, --shouts ≥ 0, --senders ≥ 0, --timeout > 0", errUsage)
	}
	s := *shouts
	if s == 0 {
		s = -1 // sim.Options: <0 is none
	}
	opts := sim.Options{Nodes: *nodes, Shouts: s, Senders: *senders, Timeout: *timeout, Secure: *secure}
	if *memprof != "" {
		file, err := os.Create(*memprof)
		if err != nil {
			return fmt.Errorf("failed to create profile: %w", err)
		}
		defer file.Close()
		opts.HeapProfile = file
	}
	mode := ""
	if *secure {
		mode = " secure"
	}
	fmt.Fprintf(env.stderr, "zyre: bench sim: %d%s nodes in memory...\n", *nodes, mode)
	r, err := sim.Run(ctx, opts)
	if err != nil {
		return err
	}
	r.Write(env.stdout)
	return nil
}

// Defaults of "zyre bench idle".
const (
	idleDefaultNodes  = 100
	idleDefaultWindow = 20 * time.Second
)

// runBenchIdle implements "zyre bench idle [NODES]": NODES nodes in this
// process on loopback (real TCP inboxes and DEALERs, loopback beacons,
// default intervals and timers) wait for the full mesh, then the process's
// CPU time (getrusage) is measured over --window while they sit idle:
// beacons, presence checks and their heartbeats are all that runs.
//
// Every node holds 2 × (peers) TCP sockets, so 100 nodes in one process
// need about 20000 file descriptors; --total lets two processes share the
// mesh (e.g. "bench idle 50 --total 100" twice, same --port).
func runBenchIdle(ctx context.Context, env *cliEnv, args []string) error {
	f := newBenchFlags(env, "idle", 5*time.Minute)
	window := f.fs.Duration("window", idleDefaultWindow, "measure CPU over this `duration` once meshed")
	total := f.fs.Int("total", 0, "nodes in the whole mesh, counting other processes (0: NODES)")
	nums, err := f.parse(args, 1)
	if err != nil {
		return err
	}
	if f.iface != "" {
		return fmt.Errorf("%w: bench idle runs on loopback only; --interface is not allowed", errUsage)
	}
	count := idleDefaultNodes
	if len(nums) > 0 {
		count = nums[0]
	}
	if *total == 0 {
		*total = count
	}
	if *total < count || *window <= 0 {
		return fmt.Errorf("%w: want --total ≥ NODES and --window > 0", errUsage)
	}
	portSet := false
	f.fs.Visit(func(fl *flag.Flag) { portSet = portSet || fl.Name == "port" })
	if !portSet { // a random high port, so the bench meets nothing else
		f.port = 49152 + rand.IntN(16000)
	}
	f.loopback = true
	ctx, cancel := f.withTimeout(ctx)
	defer cancel()

	var nodes []*zre.Node
	var wg sync.WaitGroup
	stop := make(chan struct{})
	defer func() {
		close(stop)
		wg.Wait()
		for _, n := range nodes {
			n.Close()
		}
	}()
	var meshed, evasive, silent, exits atomic.Int64
	enters := make([]atomic.Int64, count) // per node, for the diagnosis of a mesh that does not form
	meshDone := make(chan struct{})
	var closeOnce sync.Once
	t0 := time.Now()
	for i := range count {
		cfg, err := f.config(env)
		if err != nil {
			return err
		}
		n, err := zre.New(cfg)
		if err != nil {
			return err
		}
		if err := n.Start(ctx); err != nil {
			n.Close()
			return fmt.Errorf("bench idle: node %d: %w", i+1, err)
		}
		nodes = append(nodes, n)
		wg.Add(1)
		seen := &enters[i]
		go func() {
			defer wg.Done()
			for {
				select {
				case ev, ok := <-n.Events():
					if !ok {
						return
					}
					switch ev.(type) {
					case *zre.Enter:
						if seen.Add(1) == int64(*total-1) && meshed.Add(1) == int64(count) {
							closeOnce.Do(func() { close(meshDone) })
						}
					case *zre.Evasive:
						evasive.Add(1)
					case *zre.Silent:
						silent.Add(1)
					case *zre.Exit:
						exits.Add(1)
					}
				case <-stop:
					return
				}
			}
		}()
	}
	fmt.Fprintf(env.stderr, "zyre: bench idle: %d nodes on loopback (beacon port %d), waiting for a mesh of %d\n", count, f.port, *total)
	select {
	case <-meshDone:
	case <-ctx.Done():
		for i, n := range nodes {
			if got := enters[i].Load(); got < int64(*total-1) {
				fmt.Fprintf(env.stderr, "zyre: bench idle: node %d (%s) saw %d of %d peers enter; %+v\n", i+1, n.Name(), got, *total-1, n.Stats())
			}
		}
		return fmt.Errorf("bench idle: %d of %d nodes meshed: %w", meshed.Load(), count, benchCtxErr(ctx))
	}
	fmt.Fprintf(env.stdout, "full mesh of %d nodes (%d here) in %d ms\n", *total, count, time.Since(t0).Milliseconds())

	before := make([]zre.Stats, len(nodes))
	for i, n := range nodes {
		before[i] = n.Stats()
	}
	ev0, si0, ex0 := evasive.Load(), silent.Load(), exits.Load()
	stopProfile, err := f.startProfile()
	if err != nil {
		return err
	}
	defer stopProfile()
	cpu0, w0 := sim.CPUTime(), time.Now()
	t := time.NewTimer(*window)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		return fmt.Errorf("bench idle: during the window: %w", benchCtxErr(ctx))
	}
	cpu, wall := sim.CPUTime()-cpu0, time.Since(w0)
	var beacons, msgsIn, msgsOut uint64
	for i, n := range nodes {
		st := n.Stats()
		beacons += st.BeaconsReceived - before[i].BeaconsReceived
		msgsIn += st.MessagesIn - before[i].MessagesIn
		msgsOut += st.MessagesOut - before[i].MessagesOut
	}
	pct := 100 * cpu.Seconds() / wall.Seconds()
	fmt.Fprintf(env.stdout, "idle %d nodes for %.1f s: CPU %d ms = %.2f%% of one core (%.3f%% per node)\n",
		count, wall.Seconds(), cpu.Milliseconds(), pct, pct/float64(count))
	fmt.Fprintf(env.stdout, "in the window: %d beacons received (%.0f/s), %d ZRE messages in, %d out; events: %d evasive, %d silent, %d exits\n",
		beacons, float64(beacons)/wall.Seconds(), msgsIn, msgsOut, evasive.Load()-ev0, silent.Load()-si0, exits.Load()-ex0)
	if exits.Load() != 0 {
		return errors.New("bench idle: peers exited while idle")
	}
	return nil
}
