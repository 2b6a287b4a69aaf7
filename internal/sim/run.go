package sim

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/zre"
	"github.com/zyre-go/zyre/zre/zretest"
)

// Defaults of Options.
const (
	DefaultGroup    = "SIM"
	DefaultTimeout  = 10 * time.Minute
	DefaultPresence = time.Hour
)

// ErrTimeout is wrapped by Run's error when a phase did not finish in time.
var ErrTimeout = errors.New("sim: timed out")

// Options configures Run.
type Options struct {
	Nodes int // at least 2
	// Shouts is how many times each sender shouts to the group after the
	// mesh formed (every node is in the group); 0 means 1, <0 none.
	Shouts int
	// Senders is how many nodes shout; 0 means all of them.
	Senders int
	// Group every node joins; "" means DefaultGroup.
	Group string
	// Timeout bounds each phase; 0 means DefaultTimeout.
	Timeout time.Duration
	// Presence sets the nodes' Evasive and Silent timers (Expired is twice
	// it); 0 means DefaultPresence. Beacons are delivered once (unless
	// Network.BeaconInterval is set), so with the default timers of zre a
	// node would PING every peer every 5 s: the simulation measures
	// discovery and messaging, and leaves presence to be measured on real
	// sockets (zyre bench idle).
	Presence time.Duration
	Network  NetworkOptions
	// Secure runs every node in secure mode (zre.SecureConfig) with a
	// key pair of its own, so its UUID is bound to its key: the network
	// stands in for CURVE (see Network), the nodes check keys, claims and
	// pins as on the real network.
	Secure bool
	Logger *slog.Logger // nil: none
	// HeapProfile, if set, receives a heap profile (runtime/pprof) taken
	// once the mesh formed: what the nodes hold.
	HeapProfile io.Writer
}

// Result is what Run measured. CPU is the whole process's (getrusage:
// user + system), so it includes the consumer goroutine Run gives every
// node.
type Result struct {
	Nodes      int
	Links      int           // Nodes × (Nodes-1) one-way links
	StartTime  time.Duration // making and starting every node
	MeshTime   time.Duration // from the first Start until every node saw Nodes-1 Enter
	MeshCPU    time.Duration // CPU from before the first Start until the mesh
	HeapBase   uint64        // live heap (after GC) before any node
	HeapMesh   uint64        // live heap (after GC) once meshed
	StackBase  uint64        // goroutine stacks before any node
	StackMesh  uint64        // goroutine stacks once meshed
	Goroutines int           // goroutines once meshed (all of the process)

	Shouts     int           // shouts sent (senders × Options.Shouts)
	Deliveries uint64        // Shout events received
	ShoutTime  time.Duration // from the first shout until every delivery
	ShoutCPU   time.Duration

	Network       NetworkStats
	Secure        bool   // the nodes ran in secure mode
	Refused       uint64 // Refused events seen (0 in a healthy run)
	EventsDropped uint64 // summed over nodes
	SendErrors    uint64
	SequenceGaps  uint64
	Exits         uint64 // Exit events seen (0 in a healthy run)
}

// HeapPerNode is the live heap the nodes added, per node.
func (r Result) HeapPerNode() float64 {
	return float64(int64(r.HeapMesh)-int64(r.HeapBase)) / float64(r.Nodes)
}

// StackPerNode is the goroutine stack the nodes added, per node.
func (r Result) StackPerNode() float64 {
	return float64(int64(r.StackMesh)-int64(r.StackBase)) / float64(r.Nodes)
}

// ShoutRate is shout deliveries per second.
func (r Result) ShoutRate() float64 {
	if r.ShoutTime <= 0 {
		return 0
	}
	return float64(r.Deliveries) / r.ShoutTime.Seconds()
}

// Write prints the result, one figure a line.
func (r Result) Write(w io.Writer) {
	mode := ""
	if r.Secure {
		mode = ", secure"
	}
	fmt.Fprintf(w, "nodes %d, links %d (in memory%s)\n", r.Nodes, r.Links, mode)
	fmt.Fprintf(w, "start %d nodes: %d ms\n", r.Nodes, r.StartTime.Milliseconds())
	fmt.Fprintf(w, "full mesh (every node saw %d ENTER): %d ms, CPU %d ms (%.1f ms per node)\n",
		r.Nodes-1, r.MeshTime.Milliseconds(), r.MeshCPU.Milliseconds(), float64(r.MeshCPU.Microseconds())/1000/float64(r.Nodes))
	fmt.Fprintf(w, "memory once meshed: heap %.1f KiB per node (%.0f B per link), stacks %.1f KiB per node, %d goroutines\n",
		r.HeapPerNode()/1024, r.HeapPerNode()/float64(max(r.Nodes-1, 1)), r.StackPerNode()/1024, r.Goroutines)
	if r.Shouts > 0 {
		fmt.Fprintf(w, "shout fan-out: %d shouts, %d deliveries in %d ms: %.0f msg/s, CPU %d ms\n",
			r.Shouts, r.Deliveries, r.ShoutTime.Milliseconds(), r.ShoutRate(), r.ShoutCPU.Milliseconds())
	}
	fmt.Fprintf(w, "network: %d messages, %d refused (HWM), %d lost, %d beacons; nodes: %d send errors, %d sequence gaps, %d events dropped, %d exits",
		r.Network.Messages, r.Network.Refused, r.Network.Lost, r.Network.Beacons, r.SendErrors, r.SequenceGaps, r.EventsDropped, r.Exits)
	if r.Secure {
		fmt.Fprintf(w, ", %d refused peers", r.Refused)
	}
	fmt.Fprintln(w)
}

// counts is what the consumers of every node's events add up.
type counts struct {
	expectMesh   int64
	meshed       atomic.Int64 // nodes that saw every other
	meshDone     chan struct{}
	expectShouts atomic.Int64 // set before the shouts start
	shouts       atomic.Int64
	shoutsDone   chan struct{}
	exits        atomic.Int64
	refused      atomic.Int64
}

// Run starts opts.Nodes nodes on a new in-memory Network, waits for the
// full mesh, lets the senders shout, measures, and closes everything. ctx
// bounds the whole run.
func Run(ctx context.Context, opts Options) (Result, error) {
	if opts.Nodes < 2 {
		return Result{}, fmt.Errorf("sim: %d nodes, want at least 2", opts.Nodes)
	}
	if opts.Group == "" {
		opts.Group = DefaultGroup
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Presence <= 0 {
		opts.Presence = DefaultPresence
	}
	if opts.Shouts == 0 {
		opts.Shouts = 1
	}
	if opts.Senders <= 0 || opts.Senders > opts.Nodes {
		opts.Senders = opts.Nodes
	}
	res := Result{Nodes: opts.Nodes, Links: opts.Nodes * (opts.Nodes - 1), Secure: opts.Secure}
	c := &counts{expectMesh: int64(opts.Nodes), meshDone: make(chan struct{}), shoutsDone: make(chan struct{})}

	net := NewNetwork(opts.Network)
	nodes := make([]*zre.Node, 0, opts.Nodes)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	defer func() {
		close(stop)
		for _, n := range nodes {
			n.Close()
		}
		wg.Wait()
		net.Close()
	}()

	res.HeapBase, res.StackBase = liveMemory()
	cpu0 := CPUTime()
	t0 := time.Now()
	for i := range opts.Nodes {
		cfg := zretest.WithTransport(zre.Config{
			Name:    fmt.Sprintf("sim%04d", i),
			Evasive: opts.Presence,
			Silent:  opts.Presence,
			Expired: 2 * opts.Presence,
			Logger:  opts.Logger,
		}, net)
		if opts.Secure {
			_, sk, err := curve.GenerateKeyPair(rand.Reader)
			if err != nil {
				return res, fmt.Errorf("sim: node %d: %w", i, err)
			}
			cfg.Secure = &zre.SecureConfig{Secret: sk}
			// Each beacon comes once here (the real network repeats
			// it every second): a beacon ignored for Limits.MaxPending
			// is never heard again, and two nodes that ignored each
			// other's never meet. With the default limits 500 secure
			// nodes did not mesh (434 of 500 after 200 s); let every
			// peer be pending.
			cfg.Limits.MaxPending = opts.Nodes
			cfg.Limits.MaxPendingPerAddr = opts.Nodes
		}
		n, err := zre.New(cfg)
		if err != nil {
			return res, err
		}
		if err := n.Join(opts.Group); err != nil {
			n.Close()
			return res, err
		}
		nodes = append(nodes, n)
		wg.Add(1)
		go func() { defer wg.Done(); consume(n, opts, c, stop) }()
		if err := n.Start(ctx); err != nil {
			return res, fmt.Errorf("sim: node %d: %w", i, err)
		}
	}
	res.StartTime = time.Since(t0)
	if err := waitPhase(ctx, c.meshDone, opts.Timeout); err != nil {
		return res, fmt.Errorf("sim: full mesh: %d of %d nodes saw every other: %w", c.meshed.Load(), opts.Nodes, err)
	}
	res.MeshTime = time.Since(t0)
	res.MeshCPU = CPUTime() - cpu0
	res.Goroutines = runtime.NumGoroutine()
	res.HeapMesh, res.StackMesh = liveMemory()
	if opts.HeapProfile != nil {
		if err := pprof.WriteHeapProfile(opts.HeapProfile); err != nil {
			return res, fmt.Errorf("sim: heap profile: %w", err)
		}
	}

	if opts.Shouts > 0 {
		res.Shouts = opts.Senders * opts.Shouts
		c.expectShouts.Store(int64(res.Shouts) * int64(opts.Nodes-1))
		cpu1 := CPUTime()
		t1 := time.Now()
		var sw sync.WaitGroup
		for _, n := range nodes[:opts.Senders] {
			sw.Add(1)
			go func() {
				defer sw.Done()
				for range opts.Shouts {
					if err := n.Shout(opts.Group, []byte("S")); err != nil {
						return // counted in the node's Stats.SendErrors
					}
				}
			}()
		}
		sw.Wait()
		err := waitPhase(ctx, c.shoutsDone, opts.Timeout)
		res.ShoutTime = time.Since(t1)
		res.ShoutCPU = CPUTime() - cpu1
		res.Deliveries = uint64(c.shouts.Load())
		if err != nil {
			res.fill(nodes, net, c)
			return res, fmt.Errorf("sim: shout fan-out: %d of %d deliveries: %w", res.Deliveries, c.expectShouts.Load(), err)
		}
	}
	res.fill(nodes, net, c)
	return res, nil
}

func (r *Result) fill(nodes []*zre.Node, net *Network, c *counts) {
	r.Network = net.Stats()
	for _, n := range nodes {
		st := n.Stats()
		r.EventsDropped += st.EventsDropped
		r.SendErrors += st.SendErrors
		r.SequenceGaps += st.SequenceGaps
	}
	r.Exits = uint64(c.exits.Load())
	r.Refused = uint64(c.refused.Load())
}

// consume reads one node's events: it counts Enters until the node saw
// every other, then Shouts.
func consume(n *zre.Node, opts Options, c *counts, stop <-chan struct{}) {
	enters := 0
	for {
		var ev zre.Event
		var ok bool
		select {
		case ev, ok = <-n.Events():
			if !ok {
				return
			}
		case <-stop:
			return
		}
		switch ev := ev.(type) {
		case *zre.Enter:
			enters++
			if enters == opts.Nodes-1 && c.meshed.Add(1) == c.expectMesh {
				close(c.meshDone)
			}
		case *zre.Exit:
			c.exits.Add(1)
		case *zre.Refused:
			c.refused.Add(1)
		case *zre.Shout:
			if ev.Group == opts.Group {
				if c.shouts.Add(1) == c.expectShouts.Load() {
					close(c.shoutsDone)
				}
			}
		}
	}
}

func waitPhase(ctx context.Context, done <-chan struct{}, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
		return fmt.Errorf("%w after %v", ErrTimeout, timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// liveMemory returns the live heap and the goroutine stacks after a GC.
func liveMemory() (heap, stack uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, ms.StackInuse
}
