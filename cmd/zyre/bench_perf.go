package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/zmtp"
	"github.com/zyre-go/zyre/zre"
)

// The perf protocol of the C reference (zeromq/zyre src/perf_local.c and
// src/perf_remote.c), byte for byte: the group and the one-frame message
// texts (strings without a terminating NUL, as zyre_whispers and
// zyre_shouts send them).
const (
	perfGroup        = "GLOBAL"
	perfHello        = "R:HELLO"   // remote → every peer that enters
	perfWhisper      = "S:WHISPER" // local → remote
	perfWhisperReply = "R:WHISPER" // remote → local
	perfShout        = "S:SHOUT"   // local → GLOBAL
	perfShoutReply   = "R:SHOUT"   // remote → GLOBAL
)

// Defaults of "zyre bench local" and "zyre bench remote".
const (
	perfDefaultNodes    = 25
	perfDefaultMessages = 10000
	perfTimeout         = 5 * time.Minute
)

// perfLocal is the state of "zyre bench local": the peers that entered and
// what came back from them.
type perfLocal struct {
	nodes    int
	peers    []uuid.UUID
	seen     map[uuid.UUID]bool
	hellos   int // R:HELLO whispers
	whispers int // R:WHISPER whispers
	shouts   int // R:SHOUT shouts in GLOBAL
	start    time.Time
	out      io.Writer
}

// handle counts one event and prints the discovery figures as the C
// perf_local does, at the moment they are reached.
func (l *perfLocal) handle(ev zre.Event) {
	switch ev := ev.(type) {
	case *zre.Enter:
		if l.seen[ev.Peer] || len(l.peers) == l.nodes {
			return
		}
		l.seen[ev.Peer] = true
		l.peers = append(l.peers, ev.Peer)
		if len(l.peers) == l.nodes {
			fmt.Fprintf(l.out, "Took %d ms to coordinate with all remote\n", time.Since(l.start).Milliseconds())
		}
	case *zre.Whisper:
		switch firstFrame(ev.Content) {
		case perfHello:
			l.hellos++
			if l.hellos == l.nodes {
				fmt.Fprintf(l.out, "Took %d ms to get greeting from all remote\n", time.Since(l.start).Milliseconds())
			}
		case perfWhisperReply:
			l.whispers++
		}
	case *zre.Shout:
		if ev.Group == perfGroup && firstFrame(ev.Content) == perfShoutReply {
			l.shouts++
		}
	}
}

func firstFrame(content [][]byte) string {
	if len(content) == 0 {
		return ""
	}
	return string(content[0])
}

// errBenchTimeout says that a bench gave up at its --timeout.
var errBenchTimeout = errors.New("bench timed out")

// runBenchLocal implements "zyre bench local [NODES [MESSAGES]]" (the C
// perf_local): join GLOBAL, wait until NODES remote nodes entered and each
// whispered R:HELLO, whisper S:WHISPER MESSAGES times round-robin and wait
// for every R:WHISPER, then shout S:SHOUT MESSAGES/NODES times and wait for
// every R:SHOUT (NODES per shout). The four figure lines are the C ones.
func runBenchLocal(ctx context.Context, env *cliEnv, args []string) error {
	f := newBenchFlags(env, "local", perfTimeout)
	nums, err := f.parse(args, 2)
	if err != nil {
		return err
	}
	nodes, messages := perfDefaultNodes, perfDefaultMessages
	if len(nums) > 0 {
		nodes = nums[0]
	}
	if len(nums) > 1 {
		messages = nums[1]
	}
	ctx, cancel := f.withTimeout(ctx)
	defer cancel()

	cfg, err := f.config(env)
	if err != nil {
		return err
	}
	// Every reply must reach the consumer: no Whisper or Shout event may
	// be dropped for a slow consumer.
	cfg.EventQueue = 2*messages + 10*nodes + 1000
	n, err := zre.New(cfg)
	if err != nil {
		return err
	}
	if err := n.Join(perfGroup); err != nil {
		n.Close()
		return err
	}
	l := &perfLocal{nodes: nodes, seen: make(map[uuid.UUID]bool), out: env.stdout, start: time.Now()}
	if err := n.Start(ctx); err != nil {
		n.Close()
		return err
	}
	defer stopNode(n)
	mode := "plain"
	if n.Secure() {
		mode = "secure (CURVE)"
	}
	fmt.Fprintf(env.stderr, "zyre: bench local %s at %s, %s: waiting for %d remote nodes\n", uuidText(n.UUID()), n.Endpoint(), mode, nodes)
	events := n.Events()

	// wait handles events until done holds.
	wait := func(what string, done func() bool) error {
		for !done() {
			select {
			case ev, ok := <-events:
				if !ok {
					return fmt.Errorf("bench local: node stopped while waiting for %s", what)
				}
				l.handle(ev)
			case <-ctx.Done():
				return fmt.Errorf("bench local: waiting for %s (%d/%d peers, %d/%d greetings, %d whisper and %d shout replies): %w",
					what, len(l.peers), nodes, l.hellos, nodes, l.whispers, l.shouts, benchCtxErr(ctx))
			}
		}
		return nil
	}
	// drain handles the events already waiting, without blocking.
	drain := func() {
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					return
				}
				l.handle(ev)
			default:
				return
			}
		}
	}
	// send tries without waiting, and when a full queue refuses (counted
	// in retries) waits for room with the Context variant: the node's
	// back-pressure, no retry loop.
	retries := 0
	send := func(now func() error, wait func() error) error {
		err := now()
		if !errors.Is(err, zmtp.ErrPeerNotResponding) {
			return err
		}
		retries++
		if err := wait(); err != nil {
			if ctx.Err() != nil {
				return benchCtxErr(ctx)
			}
			return err
		}
		return nil
	}

	if err := wait("remote nodes", func() bool { return len(l.peers) >= nodes && l.hellos >= nodes }); err != nil {
		return err
	}

	stopProfile, err := f.startProfile()
	if err != nil {
		return err
	}
	defer stopProfile()

	// Whispers, round-robin.
	start := time.Now()
	l.whispers = 0
	for i := range messages {
		peer := l.peers[i%nodes]
		if err := send(func() error { return n.Whisper(peer, []byte(perfWhisper)) },
			func() error { return n.WhisperContext(ctx, peer, []byte(perfWhisper)) }); err != nil {
			return fmt.Errorf("bench local: whisper %d: %w", i+1, err)
		}
		drain()
	}
	if err := wait("whisper replies", func() bool { return l.whispers >= messages }); err != nil {
		return err
	}
	elapsed := time.Since(start)
	fmt.Fprintf(env.stdout, "Took %d ms to send/receive %d message. %.2f msg/s \n",
		elapsed.Milliseconds(), messages, rate(messages, elapsed))
	whisperReplies := l.whispers

	// Shouts to GLOBAL: every remote node answers each one.
	shouts := messages / nodes
	start = time.Now()
	l.shouts = 0
	for i := range shouts {
		// A SHOUT that full queues refused went to the other peers: those
		// get it with ShoutToContext, which waits for room.
		var se *zre.ShoutError
		err := n.Shout(perfGroup, []byte(perfShout))
		if errors.As(err, &se) && errors.Is(err, zmtp.ErrPeerNotResponding) {
			retries++
			err = n.ShoutToContext(ctx, perfGroup, se.Peers, []byte(perfShout))
			if ctx.Err() != nil {
				err = benchCtxErr(ctx)
			}
		}
		if err != nil {
			return fmt.Errorf("bench local: shout %d: %w", i+1, err)
		}
		drain()
	}
	if err := wait("shout replies", func() bool { return l.shouts >= shouts*nodes }); err != nil {
		return err
	}
	elapsed = time.Since(start)
	fmt.Fprintf(env.stdout, "Took %d ms to send %d, recv %d GROUP message. %.2f msg/s \n",
		elapsed.Milliseconds(), shouts, nodes*shouts, rate(nodes*shouts, elapsed))

	st := n.Stats()
	fmt.Fprintf(env.stdout, "whispers sent %d, replies %d; shouts sent %d, replies %d; retries %d, send errors %d, events dropped %d\n",
		messages, whisperReplies, shouts, l.shouts, retries, st.SendErrors, st.EventsDropped)
	return nil
}

// rate is n per second over d.
func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		d = time.Microsecond
	}
	return float64(n) / d.Seconds()
}

// benchCtxErr names why a bench context ended.
func benchCtxErr(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return errBenchTimeout
	}
	return ctx.Err()
}

// runBenchRemote implements "zyre bench remote [NODES]" (the C
// perf_remote): NODES nodes in this process join GLOBAL and answer: an
// entering peer gets R:HELLO, S:WHISPER gets R:WHISPER back, S:SHOUT gets
// R:SHOUT shouted to the group. It runs until interrupted or --timeout.
//
// Unlike the C program, a node does not exit after being idle for a random
// moment under a second (its zpoller_wait timeout ends the node's loop),
// and a whispered reply waits for room in a full queue (WhisperContext)
// instead of being lost.
func runBenchRemote(ctx context.Context, env *cliEnv, args []string) error {
	f := newBenchFlags(env, "remote", 0)
	nums, err := f.parse(args, 1)
	if err != nil {
		return err
	}
	count := perfDefaultNodes
	if len(nums) > 0 {
		count = nums[0]
	}
	ctx, cancel := f.withTimeout(ctx)
	defer cancel()

	var mu sync.Mutex // serializes log lines
	logf := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(env.stdout, time.Now().Format("06-01-02 15:04:05 ")+format+"\n", a...)
	}
	var nodes []*zre.Node
	var wg sync.WaitGroup
	stopAll := func() {
		cancel()
		wg.Wait()
		var sw sync.WaitGroup
		for _, n := range nodes {
			sw.Add(1)
			go func() { defer sw.Done(); stopNode(n) }()
		}
		sw.Wait()
		for i, n := range nodes {
			if st := n.Stats(); st.EventsDropped > 0 || st.SendErrors > 0 {
				logf("W: node %d dropped %d events, %d sends failed", i+1, st.EventsDropped, st.SendErrors)
			}
			logf("I: Stopped node %d", i+1)
		}
		logf("I: Stopped perf_remote")
	}
	defer stopAll()
	for i := range count {
		cfg, err := f.config(env)
		if err != nil {
			return err
		}
		// Replies are retried, but a deep queue avoids most retries when
		// the local node is slower than NODES senders.
		cfg.SendHWM = 100000
		// Every remote node gets every other's R:SHOUT (NODES² shouts per
		// S:SHOUT round): a deep event queue keeps an S:SHOUT from being
		// dropped behind them (the slow-consumer policy drops shouts).
		cfg.EventQueue = 1 << 20
		n, err := zre.New(cfg)
		if err != nil {
			return err
		}
		if err := n.Join(perfGroup); err != nil {
			n.Close()
			return err
		}
		if err := n.Start(ctx); err != nil {
			n.Close()
			return fmt.Errorf("bench remote: node %d: %w", i+1, err)
		}
		nodes = append(nodes, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			perfRemoteNode(ctx, n)
		}()
		logf("I: Started node %d", i+1)
	}
	<-ctx.Done()
	return nil
}

// perfRemoteNode answers the perf protocol on one node until ctx ends.
func perfRemoteNode(ctx context.Context, n *zre.Node) {
	for {
		var ev zre.Event
		var ok bool
		select {
		case ev, ok = <-n.Events():
			if !ok {
				return
			}
		case <-ctx.Done():
			return
		}
		var err error
		switch ev := ev.(type) {
		case *zre.Enter:
			err = n.WhisperContext(ctx, ev.Peer, []byte(perfHello))
		case *zre.Whisper:
			if firstFrame(ev.Content) == perfWhisper {
				err = n.WhisperContext(ctx, ev.Peer, []byte(perfWhisperReply))
			}
		case *zre.Shout:
			if firstFrame(ev.Content) == perfShout {
				// A shout that a full queue refused for one peer was sent
				// to the others: not retried (it would duplicate).
				err = n.Shout(ev.Group, []byte(perfShoutReply))
			}
		}
		if errors.Is(err, zre.ErrClosed) {
			return
		}
	}
}
