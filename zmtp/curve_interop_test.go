package zmtp_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/testenv"
	"github.com/zyre-go/zyre/zmtp"
)

// curvePy runs testdata/curve_peer.py (real libzmq 4.3.4 through Debian's
// python3-zmq) and collects its stdout lines.
type curvePy struct {
	t      *testing.T
	stdin  io.WriteCloser
	mu     sync.Mutex
	lines  []string
	closed bool
	notify chan struct{}
	errMu  sync.Mutex // guards stderr
	stderr bytes.Buffer
}

func (p *curvePy) stderrText() string {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	return p.stderr.String()
}

func startCurvePy(t *testing.T, args ...string) *curvePy {
	t.Helper()
	testenv.RequirePyZMQ(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	cmd := exec.CommandContext(ctx, testenv.Python, append([]string{"testdata/curve_peer.py"}, args...)...)
	p := &curvePy{t: t, notify: make(chan struct{}, 1)}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		cancel()
		t.Fatal(err)
	}
	cmd.Stderr = writerFunc(func(b []byte) (int, error) {
		p.errMu.Lock()
		defer p.errMu.Unlock()
		return p.stderr.Write(b)
	})
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
			p.wake()
		}
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.wake()
	}()
	t.Cleanup(func() {
		p.stdin.Close()
		<-readDone
		if err := cmd.Wait(); err != nil && !t.Failed() {
			t.Errorf("libzmq peer: %v; stderr:\n%s", err, p.stderrText())
		}
		cancel()
	})
	return p
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

func (p *curvePy) wake() {
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

// find waits for a line that starts with prefix (any line so far counts) and
// returns the rest of it. A "fail" line from the peer fails the test.
func (p *curvePy) find(prefix string) string {
	p.t.Helper()
	deadline := time.NewTimer(curveDeadline)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		lines, closed := p.lines, p.closed
		p.mu.Unlock()
		for _, l := range lines {
			if strings.HasPrefix(l, "fail ") {
				p.t.Fatalf("libzmq peer: %s; stderr:\n%s", l, p.stderrText())
			}
			if strings.HasPrefix(l, prefix) {
				return strings.TrimPrefix(l, prefix)
			}
		}
		if closed {
			p.t.Fatalf("libzmq peer exited without %q; it said %q; stderr:\n%s", prefix, lines, p.stderrText())
		}
		select {
		case <-p.notify:
		case <-deadline.C:
			p.t.Fatalf("libzmq peer: no %q before the deadline; it said %q; stderr:\n%s", prefix, lines, p.stderrText())
		}
	}
}

func (p *curvePy) send(line string) {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		p.t.Fatalf("writing to the libzmq peer: %v", err)
	}
}

func curveParseKey(t *testing.T, z85 string) curve.PublicKey {
	t.Helper()
	k, err := curve.ParsePublicKey(strings.TrimSpace(z85))
	if err != nil {
		t.Fatalf("key from libzmq %q: %v", z85, err)
	}
	return k
}

// curveNoMessage checks, without waiting, that the Router holds no message.
func curveNoMessage(t *testing.T, r *zmtp.Router) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if m, err := r.Recv(ctx); err == nil {
		t.Fatalf("the Router delivered %q from %+v", m.Frames, m.Peer)
	}
	if ps := r.Peers(); len(ps) != 0 {
		t.Fatalf("the Router has peers %q", ps)
	}
}

var curveHeartbeatCases = []struct {
	name     string
	theirIvl int           // ms; libzmq pings us
	ourIvl   time.Duration // we ping libzmq
	logWant  string        // what our log shows when the heartbeats crossed CURVE
}{
	{"libzmq pings", 50, 0, "zmtp: PING"},
	{"we ping", 0, 50 * time.Millisecond, "zmtp: PONG"},
}

// TestCurveInteropLibzmqRouter: our CURVE Dealer talks to a libzmq CURVE
// ROUTER whose key libzmq made; libzmq's ZAP handler sees our client key.
func TestCurveInteropLibzmqRouter(t *testing.T) {
	for _, tc := range curveHeartbeatCases {
		t.Run(tc.name, func(t *testing.T) {
			py := startCurvePy(t, "router", "talk", fmt.Sprint(tc.theirIvl), "600")
			serverKey := curveParseKey(t, py.find("server-key "))
			addr := py.find("endpoint ")
			cli := curveNewKeys(t)
			logs := newCurveLog()
			d := curveDial(t, addr, zmtp.Options{
				Identity:          []byte("go-dealer"),
				Mechanism:         zmtp.CurveClient(zmtp.CurveClientConfig{Public: cli.pub, Secret: cli.sec, ServerKey: serverKey}),
				HeartbeatInterval: tc.ourIvl,
				HeartbeatTimeout:  10 * time.Second, // generous: the machine may be loaded
				Logger:            curveLogger(logs),
			})
			ctx := curveCtx(t)
			if err := d.Send([]byte("single")); err != nil {
				t.Fatal(err)
			}
			if err := d.Send([]byte("multi"), nil, bytes.Repeat([]byte("x"), 5000)); err != nil {
				t.Fatal(err)
			}
			m, err := d.Recv(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !curveFramesEqual(m.Frames, [][]byte{[]byte("reply")}) {
				t.Fatalf("reply %q", m.Frames)
			}
			if m.Peer.Mechanism != "CURVE" || m.Peer.SocketType != "ROUTER" || !bytes.Equal(m.Peer.PublicKey, serverKey.Bytes()) {
				t.Fatalf("peer %+v", m.Peer)
			}
			m, err = d.Recv(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !curveFramesEqual(m.Frames, [][]byte{[]byte("reply-multi"), bytes.Repeat([]byte("y"), 70000), []byte("end")}) {
				t.Fatalf("reply-multi: %d frames", len(m.Frames))
			}
			if got := curveParseKey(t, py.find("zap-key ")); got != cli.pub {
				t.Fatalf("libzmq's ZAP handler saw client key %s, ours is %s", got, cli.pub)
			}
			py.find("idle-done")
			if err := d.Send([]byte("after-idle")); err != nil {
				t.Fatal(err)
			}
			m2, err := d.Recv(ctx)
			if err != nil || !curveFramesEqual(m2.Frames, [][]byte{[]byte("bye")}) || m2.Peer != m.Peer {
				t.Fatalf("bye: %q %v (same connection: %v)", m2.Frames, err, m2.Peer == m.Peer)
			}
			// Read our log now, while the connection is known to be up: once
			// the script has printed its summary it exits, and our Dealer then
			// rightly logs a disconnect.
			ourLog := logs.String()
			if got := py.find("identity "); got != "go-dealer" {
				t.Fatalf("libzmq saw identity %q", got)
			}
			if got := py.find("ok disconnects="); got != "0" {
				t.Fatalf("libzmq saw %s disconnects", got)
			}
			if !strings.Contains(ourLog, tc.logWant) {
				t.Fatalf("no %q in our log: the heartbeats did not cross CURVE\n%s", tc.logWant, ourLog)
			}
			if strings.Contains(ourLog, "heartbeat: nothing") || strings.Contains(ourLog, "disconnected") {
				t.Fatalf("our side lost the connection:\n%s", ourLog)
			}
		})
	}
}

// TestCurveInteropLibzmqDealer: a libzmq CURVE DEALER with a key libzmq made
// talks to our CURVE Router.
func TestCurveInteropLibzmqDealer(t *testing.T) {
	for _, tc := range curveHeartbeatCases {
		t.Run(tc.name, func(t *testing.T) {
			srv := curveNewKeys(t)
			logs := newCurveLog()
			var authMu sync.Mutex
			var authKeys [][]byte
			r := curveListen(t, zmtp.Options{
				Mechanism:         zmtp.CurveServer(zmtp.CurveServerConfig{Public: srv.pub, Secret: srv.sec}),
				HeartbeatInterval: tc.ourIvl,
				HeartbeatTimeout:  10 * time.Second, // generous: the machine may be loaded
				Logger:            curveLogger(logs),
				Authorize: func(_ context.Context, req zmtp.AuthRequest) error {
					authMu.Lock()
					defer authMu.Unlock()
					authKeys = append(authKeys, req.PublicKey)
					return nil
				},
			})
			py := startCurvePy(t, "dealer", "talk", r.Addr().String(), srv.pub.Z85(), fmt.Sprint(tc.theirIvl), "600")
			clientKey := curveParseKey(t, py.find("client-key "))
			ctx := curveCtx(t)
			m, err := r.Recv(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !curveFramesEqual(m.Frames, [][]byte{[]byte("single")}) {
				t.Fatalf("single: %q", m.Frames)
			}
			if string(m.Peer.Identity) != "py-dealer" || m.Peer.Mechanism != "CURVE" || !bytes.Equal(m.Peer.PublicKey, clientKey.Bytes()) {
				t.Fatalf("peer %q %s key %x, want py-dealer CURVE %x", m.Peer.Identity, m.Peer.Mechanism, m.Peer.PublicKey, clientKey.Bytes())
			}
			m2, err := r.Recv(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !curveFramesEqual(m2.Frames, [][]byte{[]byte("multi"), {}, bytes.Repeat([]byte("x"), 5000)}) || m2.Peer != m.Peer {
				t.Fatalf("multi: %d frames", len(m2.Frames))
			}
			if err := r.Send(m.Peer.Identity, []byte("reply")); err != nil {
				t.Fatal(err)
			}
			if err := r.Send(m.Peer.Identity, []byte("reply-multi"), bytes.Repeat([]byte("y"), 70000), []byte("end")); err != nil {
				t.Fatal(err)
			}
			py.find("idle-done")
			m3, err := r.Recv(ctx)
			if err != nil || !curveFramesEqual(m3.Frames, [][]byte{[]byte("after-idle")}) || m3.Peer != m.Peer {
				t.Fatalf("after-idle: %q %v (same connection: %v); our log:\n%s", m3.Frames, err, m3.Peer == m.Peer, logs.String())
			}
			if err := r.Send(m.Peer.Identity, []byte("bye")); err != nil {
				t.Fatal(err)
			}
			if got := py.find("ok disconnects="); got != "0" {
				t.Fatalf("libzmq saw %s disconnects", got)
			}
			authMu.Lock()
			if len(authKeys) != 1 || !bytes.Equal(authKeys[0], clientKey.Bytes()) {
				t.Errorf("authorizer saw keys %x, want once %x", authKeys, clientKey.Bytes())
			}
			authMu.Unlock()
			if !strings.Contains(logs.String(), tc.logWant) {
				t.Fatalf("no %q in our log: the heartbeats did not cross CURVE\n%s", tc.logWant, logs.String())
			}
			if strings.Contains(logs.String(), "heartbeat: nothing") {
				t.Fatalf("our side timed out a heartbeat:\n%s", logs.String())
			}
		})
	}
}

// TestCurveInteropWrongServerKey: a client with the wrong server key gets no
// connection, on either side, and nothing is delivered.
func TestCurveInteropWrongServerKey(t *testing.T) {
	t.Run("our dealer to libzmq router", func(t *testing.T) {
		py := startCurvePy(t, "router", "silent", "0", "0")
		py.find("server-key ")
		addr := py.find("endpoint ")
		cli, wrong := curveNewKeys(t), curveNewKeys(t)
		logs := newCurveLog()
		d := curveDial(t, addr, zmtp.Options{
			Mechanism:         zmtp.CurveClient(zmtp.CurveClientConfig{Public: cli.pub, Secret: cli.sec, ServerKey: wrong.pub}),
			ReconnectInterval: 20 * time.Millisecond,
			Logger:            curveLogger(logs),
		})
		if err := d.Send([]byte("must-not-arrive")); err != nil {
			t.Fatal(err)
		}
		// libzmq cannot open our HELLO and drops the connection; we retry.
		if code := py.find("event handshake-failed-protocol "); code != "0x11000001" {
			t.Errorf("libzmq reported protocol error %s, want 0x11000001 (ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)", code)
		}
		logs.waitFor(t, "wrong server key", 2)
		if d.Connected() {
			t.Fatal("our Dealer says it is connected")
		}
		py.send("stop")
		if got := py.find("ok msgs="); got != "0" {
			t.Fatalf("libzmq received %s messages", got)
		}
	})
	t.Run("libzmq dealer to our router", func(t *testing.T) {
		srv, wrong := curveNewKeys(t), curveNewKeys(t)
		logs := newCurveLog()
		authCalls := 0
		var authMu sync.Mutex
		r := curveListen(t, zmtp.Options{
			Mechanism: zmtp.CurveServer(zmtp.CurveServerConfig{Public: srv.pub, Secret: srv.sec}),
			Logger:    curveLogger(logs),
			Authorize: func(context.Context, zmtp.AuthRequest) error {
				authMu.Lock()
				defer authMu.Unlock()
				authCalls++
				return nil
			},
		})
		py := startCurvePy(t, "dealer", "silent", r.Addr().String(), wrong.pub.Z85(), "0", "0")
		py.find("client-key ")
		logs.waitFor(t, "HELLO box does not open", 2) // libzmq reconnects after we drop it
		curveNoMessage(t, r)
		py.send("stop")
		if got := py.find("ok msgs="); got != "0" {
			t.Fatalf("libzmq received %s messages", got)
		}
		authMu.Lock()
		defer authMu.Unlock()
		if authCalls != 0 {
			t.Fatalf("the authorizer was asked %d times about a client that never proved its key", authCalls)
		}
	})
}

// TestCurveInteropDenied: our Authorizer refuses a libzmq client's key;
// libzmq receives the ERROR (its monitor reports HANDSHAKE_FAILED_AUTH with
// the status when the reason is a ZAP status, only a disconnection
// otherwise) and nothing is delivered.
func TestCurveInteropDenied(t *testing.T) {
	for _, tc := range []struct {
		reason    string
		eventWant string
	}{
		{"400", "event handshake-failed-auth 400"},
		// libzmq 4.3.4 reports no handshake event for a reason that is
		// not a ZAP status, only the disconnection.
		{"key not trusted", "event disconnected"},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			srv := curveNewKeys(t)
			logs := newCurveLog()
			var authMu sync.Mutex
			var authKeys [][]byte
			r := curveListen(t, zmtp.Options{
				Mechanism: zmtp.CurveServer(zmtp.CurveServerConfig{Public: srv.pub, Secret: srv.sec}),
				Logger:    curveLogger(logs),
				Authorize: func(_ context.Context, req zmtp.AuthRequest) error {
					authMu.Lock()
					defer authMu.Unlock()
					authKeys = append(authKeys, req.PublicKey)
					return errors.New(tc.reason)
				},
			})
			py := startCurvePy(t, "dealer", "silent", r.Addr().String(), srv.pub.Z85(), "0", "0")
			clientKey := curveParseKey(t, py.find("client-key "))
			t.Logf("libzmq: %s%s", tc.eventWant, py.find(tc.eventWant))
			logs.waitFor(t, "authorizer refused client", 1)
			curveNoMessage(t, r)
			py.send("stop")
			if got := py.find("ok msgs="); got != "0" {
				t.Fatalf("libzmq received %s messages", got)
			}
			authMu.Lock()
			defer authMu.Unlock()
			if len(authKeys) == 0 {
				t.Fatal("the authorizer was not called")
			}
			for _, k := range authKeys {
				if !bytes.Equal(k, clientKey.Bytes()) {
					t.Fatalf("authorizer saw key %x, libzmq's is %x", k, clientKey.Bytes())
				}
			}
		})
	}
}
