package zgossip

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/testenv"
)

// buildPeer compiles testdata/zgossip_peer.c against Debian's libczmq.
func buildPeer(t *testing.T) string {
	t.Helper()
	return testenv.BuildCZMQ(t, "zgossip_peer")
}

// cPeer is the running C program and its stdout lines.
type cPeer struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	all   []string
}

func startCPeer(t *testing.T, bin string, args ...string) *cPeer {
	t.Helper()
	p := &cPeer{cmd: exec.Command(bin, args...), lines: make(chan string, 64)}
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = p.cmd.Stdout
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	return p
}

// expect waits for a line starting with prefix and returns it.
func (p *cPeer) expect(t *testing.T, prefix string) string {
	t.Helper()
	deadline := time.After(testTimeout)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("czmq peer exited before %q: said %q", prefix, p.all)
			}
			p.all = append(p.all, l)
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-deadline:
			t.Fatalf("czmq peer: no %q: said %q", prefix, p.all)
		}
	}
}

// finish closes its stdin and wants exit 0.
func (p *cPeer) finish(t *testing.T) {
	t.Helper()
	p.stdin.Close()
	for l := range p.lines {
		p.all = append(p.all, l)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("czmq peer: %v: said %q", err, p.all)
	}
}

// TestCZMQ: our Service against czmq's zgossip, both roles: czmq's actor
// in plain mode; in CURVE mode czmq sockets with libzmq's CURVE framing
// ZGOSSIP themselves (Debian's czmq has no draft API, where the actor's
// CURVE is). Each side publishes a tuple and gets the other's.
func TestCZMQ(t *testing.T) {
	bin := buildPeer(t)
	t.Run("czmq server, plain", func(t *testing.T) {
		c := startCPeer(t, bin, "server", "plain")
		var port int
		fmt.Sscanf(c.expect(t, "PORT "), "PORT %d", &port)
		s := newService(t, Config{})
		if err := s.Connect(fmt.Sprintf("tcp://127.0.0.1:%d", port), curve.PublicKey{}); err != nil {
			t.Fatal(err)
		}
		s.Publish("go-key", "go-value")
		waitTuples(t, "go", s, map[string]string{"c-key": "c-value", "go-key": "go-value"})
		c.expect(t, "DELIVER go-key go-value")
		c.finish(t)
	})
	t.Run("czmq client, plain", func(t *testing.T) {
		s := newService(t, Config{})
		addr, err := s.Bind("tcp://127.0.0.1:*")
		if err != nil {
			t.Fatal(err)
		}
		s.Publish("go-key", "go-value")
		c := startCPeer(t, bin, "client", "plain", "tcp://"+addr.String())
		waitTuples(t, "go", s, map[string]string{"c-key": "c-value", "go-key": "go-value"})
		c.expect(t, "DELIVER go-key go-value")
		c.finish(t)
	})
	t.Run("czmq server, curve", func(t *testing.T) {
		c := startCPeer(t, bin, "server", "curve")
		var port int
		var key string
		fmt.Sscanf(c.expect(t, "PORT "), "PORT %d KEY %s", &port, &key)
		pub, err := curve.ParsePublicKey(key)
		if err != nil {
			t.Fatal(err)
		}
		s := newService(t, Config{})
		if err := s.Connect(fmt.Sprintf("tcp://127.0.0.1:%d", port), pub); err != nil {
			t.Fatal(err)
		}
		s.Publish("go-key", "go-value")
		waitTuples(t, "go", s, map[string]string{"c-key": "c-value"})
		c.expect(t, "DELIVER go-key go-value")
		c.finish(t)
	})
	t.Run("czmq client, curve", func(t *testing.T) {
		pub, sec, err := curve.GenerateKeyPair(nil)
		if err != nil {
			t.Fatal(err)
		}
		s := newService(t, Config{Public: pub, Secret: sec})
		addr, err := s.Bind("tcp://127.0.0.1:*")
		if err != nil {
			t.Fatal(err)
		}
		s.Publish("go-key", "go-value")
		c := startCPeer(t, bin, "client", "curve", "tcp://"+addr.String(), pub.Z85())
		waitTuples(t, "go", s, map[string]string{"c-key": "c-value"})
		c.expect(t, "DELIVER go-key go-value")
		c.finish(t)
	})
}
