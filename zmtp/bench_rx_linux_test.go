//go:build linux

package zmtp_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/testenv"
	"github.com/zyre-go/zyre/zmtp"
)

// BenchmarkPacedReceiver measures what receiving a 50 Mbit/s stream of
// one-frame messages costs a receiving process, with nothing on top of the
// transport: the floor under BenchmarkReceiver50Mbit of
// privgroup/zyregroup, where a whole node and a private group receive the
// same stream. The receiver is another process; its CPU is that of the
// whole process (getrusage RUSAGE_SELF: every thread, the runtime, libzmq's
// I/O thread) from its first message to its last. The sender, this
// process, paces the messages at 50 Mbit/s over loopback.
//
// Receivers:
//   - tcp: a Go goroutine reading length-prefixed messages from a TCP
//     socket into a fresh buffer each: what the Go runtime and the kernel
//     charge for a message arriving on its own, with no protocol at all.
//   - zmtp-null, zmtp-curve: our Router, the messages taken with Recv (one
//     hand-off from the connection's reader goroutine), from our Dealer.
//   - libzmq-null, libzmq-curve: libzmq 4.3.4's ROUTER
//     (testdata/libzmq_rx.c, compiled here; its I/O thread hands each
//     message to the main thread), from our Dealer, so the sender is the
//     same as for ours.
//   - zmtp-curve-pipe, libzmq-curve-pipe: the same, and the receiving
//     thread passes each message on to another one (a channel; an inproc
//     PAIR): the shape of a node, ours or the C reference's, whose actor
//     reads the socket and hands events to the application (without the
//     node's own work).
//
// The sender sleeps until the next message is due, so messages leave in
// small bursts: Go's timers here wake about every 1.1 ms, which at 1 KiB
// is about 7 messages a burst (BenchmarkReceiver50Mbit paces the same
// way).
//
// Set ZYRE_PACED_CPUPROFILE=path to have the Go receivers write a CPU
// profile of their window to path.MODE-SIZE.
//
// Metric: rx-%core@50Mbit, 100 × CPU seconds per second of a 50 Mbit/s
// stream (the window's CPU scaled by 6.25 MB / octets received in it). One
// iteration is one paced run of 3 s; run it with -benchtime 1x:
//
//	go test -run '^$' -bench PacedReceiver -benchtime 1x -count 3 ./zmtp/
func BenchmarkPacedReceiver(b *testing.B) {
	libzmq, missing := buildLibzmqRx(b)
	for _, size := range []int{1 << 10, 64 << 10} {
		for _, mode := range []string{"tcp", "zmtp-null", "zmtp-curve", "zmtp-curve-pipe", "libzmq-null", "libzmq-curve", "libzmq-curve-pipe"} {
			b.Run(fmt.Sprintf("%dKiB/%s", size>>10, mode), func(b *testing.B) {
				if strings.HasPrefix(mode, "libzmq") && libzmq == "" {
					b.Skip(missing)
				}
				var cpu, wall time.Duration
				var octets int64
				for range b.N {
					r := pacedRun(b, mode, size, libzmq)
					cpu += r.cpu
					wall += r.wall
					octets += r.octets
				}
				b.ReportMetric(100*cpu.Seconds()*pacedRate/float64(octets), "rx-%core@50Mbit")
				b.ReportMetric(float64(octets)*8/wall.Seconds()/1e6, "achieved-Mbit/s")
			})
		}
	}
}

const (
	pacedRate      = 50e6 / 8 // octets per second
	pacedRun3s     = 3 * time.Second
	pacedHelperEnv = "ZYRE_PACED_RX"
	// pacedProfileEnv names a path: the Go receivers write a CPU profile
	// of their window to path.MODE-SIZE.
	pacedProfileEnv = "ZYRE_PACED_CPUPROFILE"
	pacedDeadline   = 2 * time.Minute // a whole run, on a loaded machine
)

// pacedResult is what a receiver reports of one run.
type pacedResult struct {
	cpu, wall time.Duration
	octets    int64 // received in the window (the first message opens it)
}

// buildLibzmqRx compiles testdata/libzmq_rx.c, or says what is missing.
func buildLibzmqRx(b *testing.B) (bin, missing string) {
	return testenv.TryBuildC(b, "libzmq_rx", "zmq.h", "libzmq3-dev", "-lzmq", "-lpthread")
}

// pacedRun starts a receiver process of the mode, sends it 3 s of
// messages of size octets at 50 Mbit/s and returns its report.
func pacedRun(b *testing.B, mode string, size int, libzmq string) pacedResult {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pacedDeadline)
	defer cancel()
	count := int(pacedRate * pacedRun3s.Seconds() / float64(size))
	srv := curveNewKeys(b)
	secret := "-"
	if strings.Contains(mode, "curve") {
		secret = srv.sec.Z85()
	}
	var cmd *exec.Cmd
	if strings.HasPrefix(mode, "libzmq") {
		pipe := "0"
		if strings.HasSuffix(mode, "-pipe") {
			pipe = "1"
		}
		cmd = exec.CommandContext(ctx, libzmq, strconv.Itoa(size), strconv.Itoa(count), secret, pipe)
	} else {
		cmd = exec.CommandContext(ctx, os.Args[0], "-test.run=^TestPacedReceiverHelper$")
		cmd.Env = append(os.Environ(), pacedHelperEnv+"="+strings.Join([]string{mode, strconv.Itoa(size), strconv.Itoa(count), secret}, " "))
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	reported := false
	defer func() {
		// After its report the receiver exits by itself (a profile to
		// write first); before it, it has failed.
		if !reported {
			cmd.Process.Kill()
		}
		cmd.Wait()
	}()
	lines := bufio.NewScanner(out)
	line := func() string {
		for lines.Scan() {
			// The test binary's own output (PASS, ok) is not ours.
			if f := strings.Fields(lines.Text()); len(f) > 0 && (f[0] == "port" || f[0] == "cpu_ns") {
				return lines.Text()
			}
		}
		b.Fatalf("%s receiver: no report (%v)", mode, lines.Err())
		return ""
	}
	var port int
	if _, err := fmt.Sscanf(line(), "port %d", &port); err != nil {
		b.Fatalf("%s receiver: %v", mode, err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	msg := make([]byte, size)
	var send func() error
	if mode == "tcp" {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		buf := binary.BigEndian.AppendUint32(nil, uint32(size))
		buf = append(buf, msg...)
		send = func() error { _, err := c.Write(buf); return err }
	} else {
		opts := zmtp.Options{Identity: []byte("paced")}
		if secret != "-" {
			cli := curveNewKeys(b)
			opts.Mechanism = zmtp.CurveClient(zmtp.CurveClientConfig{Public: cli.pub, Secret: cli.sec, ServerKey: srv.pub})
		}
		d, err := zmtp.DialDealer("tcp", addr, opts)
		if err != nil {
			b.Fatal(err)
		}
		defer d.Close()
		send = func() error { return d.SendContext(ctx, msg) }
	}
	start := time.Now()
	for i := range count {
		if wait := time.Until(start.Add(time.Duration(float64(i*size) / pacedRate * 1e9))); wait > 0 {
			time.Sleep(wait)
		}
		if err := send(); err != nil {
			b.Fatalf("%s: send %d: %v", mode, i, err)
		}
	}
	var cpu, wall int64
	if _, err := fmt.Sscanf(line(), "cpu_ns %d wall_ns %d", &cpu, &wall); err != nil {
		b.Fatalf("%s receiver: %v", mode, err)
	}
	reported = true
	return pacedResult{cpu: time.Duration(cpu), wall: time.Duration(wall), octets: int64(count-1) * int64(size)}
}

// TestPacedReceiverHelper is the Go receiver of BenchmarkPacedReceiver; it
// runs only when the benchmark re-executes the test binary.
func TestPacedReceiverHelper(t *testing.T) {
	env := os.Getenv(pacedHelperEnv)
	if env == "" {
		t.Skip("the receiving process of BenchmarkPacedReceiver")
	}
	life := time.AfterFunc(pacedDeadline, func() {
		fmt.Fprintln(os.Stderr, "paced receiver: still running; exiting")
		os.Exit(3)
	})
	defer life.Stop()
	f := strings.Fields(env)
	if len(f) != 4 {
		t.Fatalf("%s=%q", pacedHelperEnv, env)
	}
	mode := f[0]
	size, err1 := strconv.Atoi(f[1])
	count, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil || count < 2 {
		t.Fatalf("%s=%q", pacedHelperEnv, env)
	}
	var recv func() (int, error)
	var addr net.Addr
	if mode == "tcp" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addr = ln.Addr()
		var br *bufio.Reader
		recv = func() (int, error) {
			if br == nil {
				c, err := ln.Accept()
				if err != nil {
					return 0, err
				}
				br = bufio.NewReaderSize(c, 64<<10)
			}
			var hdr [4]byte
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				return 0, err
			}
			m := make([]byte, binary.BigEndian.Uint32(hdr[:]))
			_, err := io.ReadFull(br, m)
			return len(m), err
		}
	} else {
		var opts zmtp.Options
		if f[3] != "-" {
			sec, err := curve.ParseSecretKey(f[3])
			if err != nil {
				t.Fatal(err)
			}
			opts.Mechanism = zmtp.CurveServer(zmtp.CurveServerConfig{Secret: sec})
		}
		r, err := zmtp.ListenRouter("tcp", "127.0.0.1:0", opts)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		addr = r.Addr()
		ctx := context.Background()
		recv = func() (int, error) {
			m, err := r.Recv(ctx)
			if err != nil {
				return 0, err
			}
			if len(m.Frames) != 1 {
				return 0, fmt.Errorf("%d frames", len(m.Frames))
			}
			return len(m.Frames[0]), nil
		}
	}
	// With a pipe, a sink goroutine takes each message from this one, and
	// the window ends when it has the last.
	var pipe chan int
	sunk := make(chan struct{})
	if strings.HasSuffix(mode, "-pipe") {
		pipe = make(chan int, 64)
		go func() {
			for range count {
				<-pipe
			}
			close(sunk)
		}()
	} else {
		close(sunk)
	}
	fmt.Printf("port %d\n", addr.(*net.TCPAddr).Port)
	var t0 time.Time
	var c0 time.Duration
	for i := range count {
		n, err := recv()
		if err != nil || n != size {
			t.Fatalf("message %d: %d octets, %v", i, n, err)
		}
		if i == 0 {
			if path := os.Getenv(pacedProfileEnv); path != "" {
				startProfile(t, fmt.Sprintf("%s.%s-%d", path, mode, size))
				defer pprof.StopCPUProfile()
			}
			t0, c0 = time.Now(), testenv.ProcessCPU()
		}
		if pipe != nil {
			pipe <- n
		}
	}
	<-sunk
	wall, cpu := time.Since(t0), testenv.ProcessCPU()-c0
	fmt.Printf("cpu_ns %d wall_ns %d\n", cpu.Nanoseconds(), wall.Nanoseconds())
}

func startProfile(t *testing.T, path string) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
}
