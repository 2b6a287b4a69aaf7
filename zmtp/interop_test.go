package zmtp

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/zyre-go/zyre/internal/testenv"
)

// pyPeer runs testdata/libzmq_peer.py and hands out its stdout lines.
type pyPeer struct {
	t     *testing.T
	lines chan string
	cmd   *exec.Cmd
	errb  *lockedBuffer
}

func startPy(t *testing.T, args ...string) *pyPeer {
	t.Helper()
	testenv.RequirePyZMQ(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, testenv.Python, append([]string{"testdata/libzmq_peer.py"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &pyPeer{t: t, lines: make(chan string, 16), cmd: cmd, errb: &lockedBuffer{}}
	cmd.Stderr = p.errb
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	return p
}

func (p *pyPeer) expect(prefix string) string {
	p.t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			p.t.Fatalf("libzmq peer exited before %q; stderr:\n%s", prefix, p.errb.String())
		}
		if !strings.HasPrefix(l, prefix) {
			p.t.Fatalf("libzmq peer said %q, want %q; stderr:\n%s", l, prefix, p.errb.String())
		}
		return strings.TrimPrefix(l, prefix)
	case <-time.After(testDeadline):
		p.t.Fatalf("libzmq peer: no %q before the deadline", prefix)
	}
	return ""
}

// TestInteropLibzmqDealer: a libzmq DEALER talks to our Router.
func TestInteropLibzmqDealer(t *testing.T) {
	for _, tc := range []struct {
		name     string
		theirIvl int           // ms; libzmq pings us
		ourIvl   time.Duration // we ping libzmq
		logWant  string
	}{
		{"they ping", 50, 0, "zmtp: PING"},
		{"we ping", 0, 50 * time.Millisecond, "zmtp: PONG"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testenv.NoLeak(t, testDeadline)
			var logs lockedBuffer
			r := listen(t, Options{HeartbeatInterval: tc.ourIvl, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			py := startPy(t, "dealer", "tcp://"+r.Addr().String(), "py-dealer", fmt.Sprint(tc.theirIvl), "600")
			m := recvR(t, r)
			if string(m.Peer.Identity) != "py-dealer" || m.Peer.SocketType != "DEALER" {
				t.Fatalf("peer %q %q", m.Peer.Identity, m.Peer.SocketType)
			}
			if len(m.Frames) != 3 || string(m.Frames[0]) != "hello" || len(m.Frames[1]) != 0 || string(m.Frames[2]) != "multi" {
				t.Fatalf("frames %q", m.Frames)
			}
			if err := r.Send(m.Peer.Identity, []byte("reply"), bytes.Repeat([]byte("x"), 1000)); err != nil {
				t.Fatal(err)
			}
			py.expect("got reply")
			m2 := recvR(t, r)
			if string(m2.Frames[0]) != "after-idle" || m2.Peer != m.Peer {
				t.Fatalf("after idle: %q (same connection: %v)", m2.Frames, m2.Peer == m.Peer)
			}
			r.Send(m.Peer.Identity, []byte("bye"))
			if got := py.expect("ok disconnects="); got != "0" {
				t.Fatalf("libzmq saw %s disconnects", got)
			}
			if !strings.Contains(logs.String(), tc.logWant) {
				t.Fatalf("no %q in the log: heartbeats did not happen", tc.logWant)
			}
			if strings.Contains(logs.String(), "heartbeat: nothing") {
				t.Fatal("our side timed out a heartbeat")
			}
		})
	}
}

// TestInteropLibzmqRouter: our Dealer talks to a libzmq ROUTER.
func TestInteropLibzmqRouter(t *testing.T) {
	for _, tc := range []struct {
		name     string
		theirIvl int
		ourIvl   time.Duration
		logWant  string
	}{
		{"they ping", 50, 0, "zmtp: PING"},
		{"we ping", 0, 50 * time.Millisecond, "zmtp: PONG"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testenv.NoLeak(t, testDeadline)
			py := startPy(t, "router", "go-dealer", fmt.Sprint(tc.theirIvl), "600")
			addr := py.expect("endpoint ")
			var logs lockedBuffer
			d := dial(t, addr, Options{Identity: []byte("go-dealer"), HeartbeatInterval: tc.ourIvl,
				Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			if err := d.Send([]byte("hello"), nil, []byte("multi")); err != nil {
				t.Fatal(err)
			}
			m, err := d.Recv(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			if m.Peer.SocketType != "ROUTER" || len(m.Frames) != 2 || string(m.Frames[0]) != "reply" || len(m.Frames[1]) != 1000 {
				t.Fatalf("reply %q from %+v", m.Frames, m.Peer)
			}
			py.expect("idle-done")
			d.Send([]byte("after-idle"))
			m2, err := d.Recv(testCtx(t))
			if err != nil || string(m2.Frames[0]) != "bye" || m2.Peer != m.Peer {
				t.Fatalf("bye: %q %v (same connection: %v)", m2.Frames, err, m2.Peer == m.Peer)
			}
			if got := py.expect("ok disconnects="); got != "0" {
				t.Fatalf("libzmq saw %s disconnects", got)
			}
			if !strings.Contains(logs.String(), tc.logWant) {
				t.Fatalf("no %q in the log: heartbeats did not happen", tc.logWant)
			}
		})
	}
}

// TestInteropZmq4: our Router with a go-zeromq/zmq4 DEALER, our Dealer with a zmq4 ROUTER.
func TestInteropZmq4(t *testing.T) {
	ctx := testCtx(t)
	t.Run("zmq4 dealer to our router", func(t *testing.T) {
		r := listen(t, Options{})
		zd := zmq4.NewDealer(ctx, zmq4.WithID(zmq4.SocketIdentity("zmq4-dealer")))
		defer zd.Close()
		if err := zd.Dial("tcp://" + r.Addr().String()); err != nil {
			t.Fatal(err)
		}
		if err := zd.Send(zmq4.NewMsgFrom([]byte("a"), []byte("b"))); err != nil {
			t.Fatal(err)
		}
		m := recvR(t, r)
		if string(m.Peer.Identity) != "zmq4-dealer" || len(m.Frames) != 2 || string(m.Frames[1]) != "b" {
			t.Fatalf("got %q from %q", m.Frames, m.Peer.Identity)
		}
		if err := r.Send(m.Peer.Identity, []byte("c"), []byte("d")); err != nil {
			t.Fatal(err)
		}
		zm, err := zd.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if len(zm.Frames) != 2 || string(zm.Frames[0]) != "c" || string(zm.Frames[1]) != "d" {
			t.Fatalf("zmq4 got %q", zm.Frames)
		}
	})
	t.Run("our dealer to zmq4 router", func(t *testing.T) {
		zr := zmq4.NewRouter(ctx, zmq4.WithID(zmq4.SocketIdentity("zmq4-router")))
		defer zr.Close()
		if err := zr.Listen("tcp://127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		d := dial(t, zr.Addr().String(), Options{Identity: []byte("go-dealer")})
		d.Send([]byte("a"), []byte("b"))
		zm, err := zr.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if len(zm.Frames) != 3 || string(zm.Frames[0]) != "go-dealer" || string(zm.Frames[2]) != "b" {
			t.Fatalf("zmq4 got %q", zm.Frames)
		}
		if err := zr.Send(zmq4.NewMsgFrom([]byte("go-dealer"), []byte("c"))); err != nil {
			t.Fatal(err)
		}
		m, err := d.Recv(ctx)
		if err != nil || string(m.Frames[0]) != "c" {
			t.Fatalf("got %q %v", m.Frames, err)
		}
		if string(m.Peer.Identity) != "zmq4-router" {
			t.Fatalf("router identity %q", m.Peer.Identity)
		}
	})
}
