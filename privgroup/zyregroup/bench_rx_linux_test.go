//go:build linux

package zyregroup

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/testenv"
	"github.com/zyre-go/zyre/privgroup"
	"github.com/zyre-go/zyre/zre"
)

// BenchmarkReceiver50Mbit measures what a 50 Mbit/s stream costs the
// receiver as a whole: the receiving node is another process (this test
// binary re-executed as TestRxHelperProcess), and its CPU is that of the
// whole process (getrusage RUSAGE_SELF: every thread, the runtime and GC
// included) over the window in which it received the measured bytes.
//
// Both nodes are secure (CURVE) and loopback-only, like every test of this
// package. The benchmark process sends, paced at 50 Mbit/s for rxPhase,
// the same byte stream once through the private group (Writer → SHOUT →
// Handle → Reader) and once as plain SHOUTs of the same chunk sizes to
// another group (transport CURVE only). The child checks every octet
// against the known pattern and must count exactly the octets sent. The
// sender sleeps until the next write is due, and Go's timers here wake
// about every 1.1 ms, so 1 KiB chunks leave in bursts of about 7; a
// stream of 1 KiB messages that each arrive alone costs more (see
// BenchmarkPacedReceiver in zmtp for what the transport alone costs).
//
// Metrics per case: rx-private-%core@50Mbit and rx-plain-%core@50Mbit,
// 100 × CPU seconds of the receiver per second of a 50 Mbit/s stream (the
// CPU of the window scaled by 6.25 MB / octets received, so a rate slightly
// off 50 Mbit/s is normalised), the rates achieved, and rx-idle-%core, the
// receiver's CPU over a second without a stream (its base cost, included
// in the other two). The content check (bytes.Equal against the pattern)
// is in both modes alike. One iteration is one paced run of each mode;
// run it with -benchtime 1x:
//
//	go test -run '^$' -bench Receiver50Mbit -benchtime 1x -count 3 ./privgroup/zyregroup/
//
// Set ZYRE_RX_CPUPROFILE=path to have the receiver write a CPU profile of
// its measured windows to path.<case>.
func BenchmarkReceiver50Mbit(b *testing.B) {
	for _, c := range []rxCase{
		// Video-like: 1200-octet packets written at 30 frames per second,
		// a Flush per frame, default ChunkSize (plain: 16 KiB SHOUTs, the
		// partial one at each frame).
		{name: "video-1200B-30fps", chunk: 0, write: 1200, frames: true},
		{name: "1KiB", chunk: 1 << 10, write: 1 << 10},
		{name: "64KiB", chunk: 64 << 10, write: 64 << 10},
	} {
		chunk := c.chunk
		if chunk == 0 {
			chunk = privgroup.DefaultChunkSize
		}
		// The private stream runs the suite a Group picks by default.
		b.Run(c.name+"/"+privgroup.PreferredSuite(chunk).String(), func(b *testing.B) {
			r := newRxBench(b, c)
			// Warm up both paths (connections, buffers, heaps); not measured.
			r.phase(rxPrivate, rxWarmup)
			r.phase(rxPlain, rxWarmup)
			var priv, plain rxResult
			b.ResetTimer()
			for i := range b.N {
				// Alternate the order, so that a shared machine's load
				// weighs on both modes alike.
				if i%2 == 0 {
					priv.add(r.phase(rxPrivate, rxPhase))
					plain.add(r.phase(rxPlain, rxPhase))
				} else {
					plain.add(r.phase(rxPlain, rxPhase))
					priv.add(r.phase(rxPrivate, rxPhase))
				}
			}
			b.StopTimer()
			r.check()
			idle := r.idle(rxIdle)
			b.ReportMetric(priv.coreAt50(), "rx-private-%core@50Mbit")
			b.ReportMetric(plain.coreAt50(), "rx-plain-%core@50Mbit")
			b.ReportMetric(priv.mbits(), "achieved-Mbit/s")
			b.ReportMetric(plain.mbits(), "plain-achieved-Mbit/s")
			b.ReportMetric(100*idle.cpu.Seconds()/idle.wall.Seconds(), "rx-idle-%core")
		})
	}
}

const (
	rxHelperEnv  = "ZYRE_RX_HELPER"
	rxProfileEnv = "ZYRE_RX_CPUPROFILE"
	rxPlainGroup = "plain-rx-bench"
	rxPrivate    = "private"
	rxPlain      = "plain"

	rxRate   = 50e6 / 8 // octets per second
	rxPhase  = 3 * time.Second
	rxWarmup = 500 * time.Millisecond
	rxIdle   = time.Second
	rxFPS    = 30

	// rxPeriod is the period of the test pattern: odd, so chunks fall on
	// every alignment, and longer than any read or SHOUT.
	rxPeriod  = 1<<20 + 7
	rxReadBuf = 256 << 10

	// Deadlines: generous for a loaded 2-core machine.
	rxReplyTimeout = 60 * time.Second // any reply of the child
	rxSendSlack    = 30 * time.Second // the sender behind its schedule
	rxChildLife    = 10 * time.Minute // the child's whole life
	rxChildExit    = 10 * time.Second // from the close of stdin to exit
)

type rxCase struct {
	name   string
	chunk  int // Options.ChunkSize (0: the default) and the plain SHOUT size
	write  int // octets per application write
	frames bool
}

// rxResult sums the child's measurements of one mode.
type rxResult struct {
	cpu, wall time.Duration
	bytes     int64
}

func (a *rxResult) add(r rxResult) { a.cpu += r.cpu; a.wall += r.wall; a.bytes += r.bytes }

func (a *rxResult) coreAt50() float64 { return 100 * a.cpu.Seconds() * rxRate / float64(a.bytes) }

func (a *rxResult) mbits() float64 { return float64(a.bytes) * 8 / a.wall.Seconds() / 1e6 }

// rxPattern is the stream's content: octet i of a stream is pattern[i %
// rxPeriod]; the pattern is stored twice so any slice of up to rxPeriod
// octets is contiguous.
func rxPattern() []byte {
	p := randomBytes(rxPeriod, 50)
	return append(p, p...)
}

func rxSlice(pattern []byte, off int64, n int) []byte {
	o := int(off % rxPeriod)
	return pattern[o : o+n]
}

// ---- the benchmark (sender) side ----

type rxBench struct {
	b       *testing.B
	c       rxCase
	tx      *member
	w       *Writer
	child   *rxChild
	pattern []byte
	plain   rxChunker
	// Octets sent so far in each mode (the offsets in the pattern).
	privOff, plainOff int64
}

func newRxBench(b *testing.B, c rxCase) *rxBench {
	port := testBeaconPort()
	tx := newNodeBeacon(b, "tx", port, false, 0)
	child := startRxChild(b)
	child.send("setup", strconv.Itoa(port), tx.sk.Public().Z85(), c.name)
	f := child.expect("rx:key", 1)
	rxKey, err := curve.ParsePublicKey(f[1])
	if err != nil {
		b.Fatalf("rx helper key %q: %v", f[1], err)
	}
	txKey := tx.sk.Public()
	trusted := func(_ uuid.UUID, k curve.PublicKey) bool { return k.Equal(txKey) || k.Equal(rxKey) }
	tx.attach(group, Options{Trusted: trusted, ChunkSize: c.chunk})
	if err := tx.n.Join(rxPlainGroup); err != nil {
		b.Fatal(err)
	}
	child.expect("rx:ready", 0)
	rxID := zre.UUIDFromKey(rxKey)
	waitFor(b, "the receiver in the plain group", func() bool { return contains(tx.n.PeersByGroup(rxPlainGroup), rxID) })
	waitFor(b, "the receiver holding our key", func() bool { return contains(tx.g.Members(), rxID) })
	w, err := tx.g.NewWriter()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { w.Close() })
	size := c.chunk
	if size == 0 {
		size = privgroup.DefaultChunkSize
	}
	r := &rxBench{b: b, c: c, tx: tx, w: w, child: child, pattern: rxPattern()}
	r.plain = rxChunker{buf: make([]byte, 0, size), send: func(p []byte) error {
		return tx.n.ShoutContext(context.Background(), rxPlainGroup, p)
	}}
	return r
}

// rxChunker is the plain counterpart of the Writer: it SHOUTs full chunks
// and, on flush, the partial one.
type rxChunker struct {
	buf  []byte
	send func([]byte) error
}

func (c *rxChunker) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := copy(c.buf[len(c.buf):cap(c.buf)], p)
		c.buf = c.buf[:len(c.buf)+k]
		p, n = p[k:], n+k
		if len(c.buf) == cap(c.buf) {
			if err := c.send(c.buf); err != nil {
				return n, err
			}
			c.buf = c.buf[:0]
		}
	}
	return n, nil
}

func (c *rxChunker) Flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	err := c.send(c.buf)
	c.buf = c.buf[:0]
	return err
}

// phase sends one paced stream of about dur in mode and returns the
// child's measurement of it, checked.
func (r *rxBench) phase(mode string, dur time.Duration) rxResult {
	b := r.b
	var steps, perStep int
	var total int64
	var due func(i int) time.Duration
	var count func(i int) int // writes in step i
	if r.c.frames {
		steps = int(dur.Seconds()*rxFPS + 0.5)
		packets := int(rxRate*dur.Seconds()) / r.c.write
		total = int64(packets) * int64(r.c.write)
		due = func(i int) time.Duration { return time.Duration(i) * time.Second / rxFPS }
		count = func(i int) int { return packets*(i+1)/steps - packets*i/steps }
	} else {
		steps = int(rxRate*dur.Seconds()) / r.c.write
		perStep = r.c.write
		total = int64(steps) * int64(perStep)
		due = func(i int) time.Duration { return time.Duration(float64(i*perStep) / rxRate * 1e9) }
		count = func(int) int { return 1 }
	}
	var w interface {
		Write([]byte) (int, error)
		Flush() error
	}
	off := &r.privOff
	if mode == rxPrivate {
		w = r.w
	} else {
		w, off = &r.plain, &r.plainOff
	}
	r.child.send("measure", mode, strconv.FormatInt(total, 10))
	r.child.expect("rx:go", 0)
	start := time.Now()
	for i := range steps {
		if d := time.Until(start.Add(due(i))); d > 0 {
			time.Sleep(d)
		} else if -d > rxSendSlack {
			b.Fatalf("%s: sender %v behind its schedule at step %d of %d", mode, -d, i, steps)
		}
		for range count(i) {
			if _, err := w.Write(rxSlice(r.pattern, *off, r.c.write)); err != nil {
				b.Fatalf("%s: write at %d: %v", mode, *off, err)
			}
			*off += int64(r.c.write)
		}
		if r.c.frames {
			if err := w.Flush(); err != nil {
				b.Fatalf("%s: flush: %v", mode, err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatalf("%s: flush: %v", mode, err)
	}
	// rx:done <mode> <cpu ns> <wall ns> <octets>
	f := r.child.expect("rx:done", 4)
	res := rxResult{cpu: time.Duration(rxInt(b, f[2])), wall: time.Duration(rxInt(b, f[3])), bytes: rxInt(b, f[4])}
	if f[1] != mode || res.bytes != total || res.cpu < 0 || res.wall <= 0 {
		b.Fatalf("%s: sent %d octets, receiver reports %q", mode, total, f)
	}
	return res
}

// idle measures the receiver with no stream for about dur: the base cost
// of a node (beacons, pings, the group's recheck timer).
func (r *rxBench) idle(dur time.Duration) rxResult {
	r.child.send("idle", strconv.FormatInt(int64(dur), 10))
	// rx:idle <cpu ns> <wall ns>
	f := r.child.expect("rx:idle", 2)
	res := rxResult{cpu: time.Duration(rxInt(r.b, f[1])), wall: time.Duration(rxInt(r.b, f[2]))}
	if res.cpu < 0 || res.wall <= 0 {
		r.b.Fatalf("receiver reports %q", f)
	}
	return res
}

// check asks the child for its totals once the streams are quiet: every
// octet sent arrived, exactly once, unaltered, nothing was dropped.
func (r *rxBench) check() {
	r.child.send("check")
	// rx:totals <private octets> <plain octets> <bad> <gaps> <queue dropped> <events dropped> <reader dropped>
	f := r.child.expect("rx:totals", 7)
	v := make([]int64, 7)
	for i := range v {
		v[i] = rxInt(r.b, f[i+1])
	}
	if v[0] != r.privOff || v[1] != r.plainOff || v[2] != 0 || v[3] != 0 || v[4] != 0 || v[5] != 0 {
		r.b.Fatalf("sent %d private and %d plain octets; receiver totals: private %d, plain %d, bad content %d, gaps %d, queue dropped %d, events dropped %d",
			r.privOff, r.plainOff, v[0], v[1], v[2], v[3], v[4], v[5])
	}
	if st := r.tx.g.Stats(); st.QueueDropped != 0 {
		r.b.Fatalf("sender's group dropped %d records", st.QueueDropped)
	}
}

func rxInt(tb testing.TB, s string) int64 {
	tb.Helper()
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		tb.Fatalf("rx helper: bad number %q", s)
	}
	return v
}

// rxChild is the receiving process and its line protocol: commands on its
// stdin, replies on its stdout as lines starting "rx:".
type rxChild struct {
	tb     testing.TB
	stdin  io.WriteCloser
	lines  chan string
	diag   *rxTail // its other output and stderr, for failures
	exited chan struct{}
	err    error // of Wait, once exited is closed
}

func startRxChild(tb testing.TB) *rxChild {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestRxHelperProcess$", "-test.count=1", "-test.timeout="+rxChildLife.String())
	cmd.Env = append(os.Environ(), rxHelperEnv+"=1")
	// Killed if we die; a close of its stdin (also at our exit) ends it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c := &rxChild{tb: tb, lines: make(chan string, 16), diag: &rxTail{}, exited: make(chan struct{})}
	cmd.Stderr = c.diag
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start the rx helper: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "rx:") {
				c.lines <- line
			} else {
				fmt.Fprintln(c.diag, line)
			}
		}
		close(c.lines)
		if c.err = cmd.Wait(); c.err != nil {
			fmt.Fprintf(c.diag, "rx helper: %v\n", c.err)
		}
		close(c.exited)
	}()
	tb.Cleanup(func() {
		c.stdin.Close()
		timer := time.NewTimer(rxChildExit)
		defer timer.Stop()
		select {
		case <-c.exited:
			if c.err != nil && !tb.Failed() {
				tb.Errorf("rx helper: %v; its output:\n%s", c.err, c.diag)
			}
			return
		case <-timer.C:
		}
		cmd.Process.Kill()
		// Drain what is left, so the reader goroutine can reach Wait.
		for range c.lines {
		}
		<-c.exited
		tb.Errorf("rx helper did not exit within %v of the close of its stdin; killed", rxChildExit)
	})
	return c
}

func (c *rxChild) send(cmd ...string) {
	c.tb.Helper()
	if _, err := fmt.Fprintln(c.stdin, strings.Join(cmd, " ")); err != nil {
		c.tb.Fatalf("rx helper: send %q: %v\n%s", cmd, err, c.diag)
	}
}

// expect waits for the reply what with at least args fields after it.
func (c *rxChild) expect(what string, args int) []string {
	c.tb.Helper()
	timer := time.NewTimer(rxReplyTimeout)
	defer timer.Stop()
	select {
	case line, ok := <-c.lines:
		if !ok {
			select {
			case <-c.exited:
			case <-time.After(2 * time.Second):
			}
			c.tb.Fatalf("rx helper exited while we waited for %s; its output:\n%s", what, c.diag)
		}
		f := strings.Fields(line)
		if f[0] != what || len(f) < args+1 {
			c.tb.Fatalf("rx helper: got %q, want %s; its output:\n%s", line, what, c.diag)
		}
		return f
	case <-timer.C:
		c.tb.Fatalf("rx helper: no %s within %v; its output:\n%s", what, rxReplyTimeout, c.diag)
	}
	return nil
}

// rxTail keeps the last 16 KiB written to it.
type rxTail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *rxTail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - 16<<10; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *rxTail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// ---- the receiver (child) side ----

// TestRxHelperProcess is not a test: it is the receiving process of
// BenchmarkReceiver50Mbit, which re-executes the test binary with
// ZYRE_RX_HELPER=1. Commands, one a line on stdin:
//
//	setup <beacon port> <sender key> <tag>  → rx:key <our key>, then rx:ready
//	measure <private|plain> <octets>        → rx:go, then rx:done <mode> <cpu ns> <wall ns> <octets>
//	idle <ns>                               → rx:idle <cpu ns> <wall ns>
//	check                                   → rx:totals <private> <plain> <bad> <gaps> <queue dropped> <events dropped> <reader dropped>
//
// A failure is a line rx:fail <why>. The close of stdin ends the process.
func TestRxHelperProcess(t *testing.T) {
	if os.Getenv(rxHelperEnv) != "1" {
		t.Skip("the receiving process of BenchmarkReceiver50Mbit; runs only when it re-executes the test binary")
	}
	life := time.AfterFunc(rxChildLife, func() {
		fmt.Fprintf(os.Stderr, "rx helper: still running after %v; exiting\n", rxChildLife)
		os.Exit(3)
	})
	defer life.Stop()
	cmds := make(chan []string)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) > 0 {
				cmds <- f
			}
		}
		close(cmds)
	}()
	rx := &rxReceiver{t: t, pattern: rxPattern()}
	rx.priv.hit = make(chan rxHit, 1)
	rx.plain.hit = make(chan rxHit, 1)
	defer rx.stopProfile()
	for {
		f, ok := <-cmds
		if !ok {
			// The sender is gone: exit within a bounded time, whatever
			// the cleanups do.
			time.AfterFunc(rxChildExit, func() { os.Exit(4) })
			return
		}
		switch {
		case f[0] == "setup" && len(f) == 4:
			rx.setup(f[1], f[2], f[3])
		case f[0] == "measure" && len(f) == 3:
			if !rx.measure(f[1], f[2], cmds) {
				time.AfterFunc(rxChildExit, func() { os.Exit(4) })
				return
			}
		case f[0] == "idle" && len(f) == 2:
			d, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil || d <= 0 || d > int64(time.Minute) {
				rx.fail("bad idle %q", f[1])
			}
			cpu0, t0 := testenv.ProcessCPU(), time.Now()
			time.Sleep(time.Duration(d))
			rx.say("rx:idle", int64(testenv.ProcessCPU()-cpu0), int64(time.Since(t0)))
		case f[0] == "check":
			time.Sleep(300 * time.Millisecond) // anything still in flight would show
			st := rx.g.Stats()
			rx.say("rx:totals", rx.priv.total.Load(), rx.plain.total.Load(), rx.bad.Load(), rx.gaps.Load(),
				st.QueueDropped, rx.m.n.Stats().EventsDropped, rx.rd.Dropped())
		default:
			rx.fail("bad command %q", f)
		}
	}
}

type rxReceiver struct {
	t       *testing.T
	pattern []byte
	m       *member
	g       *Group
	rd      *Reader
	out     sync.Mutex

	priv, plain rxCount
	bad, gaps   atomic.Int64
	tag         string
	prof        *os.File
}

// rxCount counts a mode's octets; the goroutine that reaches the target
// takes the end of the measuring window.
type rxCount struct {
	total  atomic.Int64
	target atomic.Int64 // 0: none
	hit    chan rxHit
}

type rxHit struct {
	cpu   time.Duration
	at    time.Time
	total int64
}

func (c *rxCount) add(n int) {
	t := c.total.Add(int64(n))
	if tg := c.target.Load(); tg != 0 && t >= tg && c.target.CompareAndSwap(tg, 0) {
		c.hit <- rxHit{cpu: testenv.ProcessCPU(), at: time.Now(), total: t}
	}
}

func (rx *rxReceiver) say(args ...any) {
	rx.out.Lock()
	defer rx.out.Unlock()
	fmt.Fprintln(os.Stdout, args...)
}

func (rx *rxReceiver) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	rx.say("rx:fail", strings.ReplaceAll(msg, "\n", " "))
	rx.t.Fatal(msg)
}

func (rx *rxReceiver) setup(portText, keyText, tag string) {
	t := rx.t
	port, err := strconv.Atoi(portText)
	if err != nil {
		rx.fail("bad port %q", portText)
	}
	txKey, err := curve.ParsePublicKey(keyText)
	if err != nil {
		rx.fail("bad key: %v", err)
	}
	rx.tag = tag
	// Secure, Beacon.Loopback (inbox on 127.0.0.1, beacons on lo), zre's
	// default beacon interval: a receiver as deployed.
	m := newNodeBeacon(t, "rx", port, false, 0)
	rx.m = m
	rxKey := m.sk.Public()
	rx.say("rx:key", rxKey.Z85())
	trusted := func(_ uuid.UUID, k curve.PublicKey) bool { return k.Equal(txKey) || k.Equal(rxKey) }
	g, err := Attach(m.n, group, Options{Secret: m.sk, Trusted: trusted})
	if err != nil {
		rx.fail("attach: %v", err)
	}
	rx.g = g
	t.Cleanup(func() { g.Close() })
	if err := m.n.Join(rxPlainGroup); err != nil {
		rx.fail("join: %v", err)
	}
	tx := zre.UUIDFromKey(txKey)
	rd, err := g.NewReader(tx)
	if err != nil {
		rx.fail("reader: %v", err)
	}
	rx.rd = rd
	t.Cleanup(func() { rd.Close() })
	go rx.pump()
	go rx.read()
	ctx, cancel := context.WithTimeout(context.Background(), rxReplyTimeout)
	defer cancel()
	if _, err := g.AwaitSender(ctx, func(p uuid.UUID) bool { return p == tx }); err != nil {
		rx.fail("no sender key: %v", err)
	}
	deadline := time.Now().Add(rxReplyTimeout)
	for !contains(m.n.PeersByGroup(rxPlainGroup), tx) {
		if time.Now().After(deadline) {
			rx.fail("the sender did not join %s", rxPlainGroup)
		}
		time.Sleep(5 * time.Millisecond)
	}
	rx.say("rx:ready")
}

// pump hands the node's events to the group and counts the plain SHOUTs.
func (rx *rxReceiver) pump() {
	var off int64
	for ev := range rx.m.n.Events() {
		if rx.g.Handle(ev) {
			continue
		}
		s, ok := ev.(*zre.Shout)
		if !ok || s.Group != rxPlainGroup {
			continue
		}
		for _, p := range s.Content {
			if len(p) > rxPeriod || !bytes.Equal(p, rxSlice(rx.pattern, off, len(p))) {
				rx.bad.Add(1)
			}
			off += int64(len(p))
			rx.plain.add(len(p))
		}
		s.Release() // checked: the content goes back to the node, as an application's would
	}
}

// read reads the sender's private stream: authenticated octets, in order.
func (rx *rxReceiver) read() {
	buf := make([]byte, rxReadBuf)
	var off int64
	for {
		n, err := rx.rd.Read(buf)
		if n > 0 {
			if !bytes.Equal(buf[:n], rxSlice(rx.pattern, off, n)) {
				rx.bad.Add(1)
			}
			off += int64(n)
			rx.priv.add(n)
		}
		var gap *privgroup.GapError
		if errors.As(err, &gap) {
			rx.gaps.Add(1)
		} else if err != nil {
			return
		}
	}
}

// measure runs one measuring window: from the command to the last octet
// of the mode's stream. It returns false when stdin closed meanwhile.
func (rx *rxReceiver) measure(mode, octets string, cmds <-chan []string) bool {
	n, err := strconv.ParseInt(octets, 10, 64)
	if err != nil || n <= 0 || rx.g == nil {
		rx.fail("bad measure %s %s", mode, octets)
	}
	c := &rx.priv
	switch mode {
	case rxPrivate:
	case rxPlain:
		c = &rx.plain
	default:
		rx.fail("bad mode %q", mode)
	}
	rx.startProfile()
	base := c.total.Load()
	cpu0, t0 := testenv.ProcessCPU(), time.Now()
	c.target.Store(base + n)
	rx.say("rx:go")
	timer := time.NewTimer(rxReplyTimeout)
	defer timer.Stop()
	select {
	case h := <-c.hit:
		rx.say("rx:done", mode, int64(h.cpu-cpu0), int64(h.at.Sub(t0)), h.total-base)
	case f, ok := <-cmds:
		if !ok {
			return false
		}
		rx.fail("command %q while measuring", f)
	case <-timer.C:
		rx.fail("%s: %d of %d octets within %v", mode, c.total.Load()-base, n, rxReplyTimeout)
	}
	return true
}

func (rx *rxReceiver) startProfile() {
	path := os.Getenv(rxProfileEnv)
	if path == "" || rx.prof != nil {
		return
	}
	f, err := os.Create(path + "." + rx.tag)
	if err != nil {
		rx.fail("profile: %v", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		rx.fail("profile: %v", err)
	}
	rx.prof = f
}

func (rx *rxReceiver) stopProfile() {
	if rx.prof != nil {
		pprof.StopCPUProfile()
		rx.prof.Close()
		rx.prof = nil
	}
}
