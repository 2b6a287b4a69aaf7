package beacon_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/zyre-go/zyre/internal/beacon"
	"github.com/zyre-go/zyre/internal/netns"
	"github.com/zyre-go/zyre/internal/testenv"
)

// TestNetnsCZMQ puts czmq's own zbeacon (testdata/zbeacon_peer.c) in
// namespace 0 and a Service in namespace 1 of a lab: each hears the other
// on port 5670, which shows that our addressing (bind to and send to the
// interface's broadcast address) matches the C reference's.
func TestNetnsCZMQ(t *testing.T) {
	if _, ok := netns.HelperIndex(); ok {
		czmqHelper(t)
		return
	}
	testenv.RequireRoot(t)
	bin := testenv.BuildCZMQ(t, "zbeacon_peer")

	lab := netns.New(t, 2)
	lines := make(chan string, 256)
	goSide := lab.TestHelper(1, "TestNetnsCZMQ", "CZMQ_PEER_ADDR="+lab.Addr(0).String())
	goIn := startWithLines(t, goSide, "go", lines)
	cSide := lab.Command(0, bin, "from-czmq", "from-go")
	cSide.Env = append(os.Environ(), "ZSYS_INTERFACE="+netns.IfName)
	cIn := startWithLines(t, cSide, "czmq", lines)

	wantC := "czmq: HEARD " + lab.Addr(1).String() + " from-go"
	var goHeard, cHeard bool
	timeout := time.After(netnsDeadline)
	for !goHeard || !cHeard {
		select {
		case l := <-lines:
			t.Log(l)
			goHeard = goHeard || strings.HasPrefix(l, "go: SEEN")
			cHeard = cHeard || l == wantC
		case <-timeout:
			t.Fatalf("after %v: Service heard czmq: %v; czmq heard the Service: %v", netnsDeadline, goHeard, cHeard)
		}
	}
	goIn.Close()
	cIn.Close()
	for name, c := range map[string]*exec.Cmd{"go": goSide, "czmq": cSide} {
		if err := c.Wait(); err != nil {
			t.Errorf("%s side: %v", name, err)
		}
	}
}

// startWithLines starts cmd and sends each line of its output (stdout and
// stderr), prefixed with name, to lines. Closing the returned stdin tells
// the helper to stop.
func startWithLines(t *testing.T, cmd *exec.Cmd, name string, lines chan<- string) io.WriteCloser {
	t.Helper()
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	r, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout // the same *os.File: one pipe for both
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			select {
			case lines <- name + ": " + sc.Text():
			default: // the test has stopped reading
			}
		}
		io.Copy(io.Discard, r)
	}()
	return in
}

func czmqHelper(t *testing.T) {
	s, err := beacon.New(beacon.Config{Interface: netns.IfName, Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Publish([]byte("from-go"))
	want := os.Getenv("CZMQ_PEER_ADDR")
	timeout := time.After(netnsDeadline)
	for {
		select {
		case p := <-s.Packets():
			if string(p.Payload) != "from-czmq" {
				continue
			}
			if p.From.Addr().String() != want || p.From.Port() != beacon.DefaultPort {
				t.Fatalf("from-czmq came from %v, want %s:%d", p.From, want, beacon.DefaultPort)
			}
			fmt.Printf("SEEN from-czmq from %v\n", p.From)
			io.Copy(io.Discard, os.Stdin) // keep publishing until the parent is done
			return
		case <-timeout:
			t.Fatalf("no beacon from czmq after %v (stats %+v)", netnsDeadline, s.Stats())
		}
	}
}
