package beacon_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zyre-go/zyre/internal/beacon"
	"github.com/zyre-go/zyre/internal/netns"
)

const netnsDeadline = 30 * time.Second

// hostLine is a line a helper printed, and its namespace.
type hostLine struct {
	host int
	text string
}

// helpers are a test's helper processes, one per namespace, which publish
// until their stdin closes.
type helpers struct {
	stdins  []io.WriteCloser
	cmds    []*exec.Cmd
	stderrs []*strings.Builder
}

// startHelpers runs test testName in the first n namespaces of lab (killed
// when the test ends, if still running) and sends every line they print
// to lines.
func startHelpers(t *testing.T, lab *netns.Lab, n int, testName string, lines chan<- hostLine, env ...string) *helpers {
	t.Helper()
	hs := &helpers{}
	for i := range n {
		cmd := lab.TestHelper(i, testName, env...)
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() })
		hs.stdins, hs.cmds, hs.stderrs = append(hs.stdins, in), append(hs.cmds, cmd), append(hs.stderrs, &stderr)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- hostLine{i, sc.Text()}
			}
			io.Copy(io.Discard, out)
		}()
	}
	return hs
}

// logStderr logs what each helper wrote to stderr so far.
func (hs *helpers) logStderr(t *testing.T) {
	for i, e := range hs.stderrs {
		t.Logf("host %d stderr: %s", i, e.String())
	}
}

// stop closes the helpers' stdins, which tells them to stop, and fails
// t for each that does not exit cleanly.
func (hs *helpers) stop(t *testing.T) {
	t.Helper()
	for _, in := range hs.stdins {
		in.Close()
	}
	for i, c := range hs.cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("host %d helper: %v\n%s", i, err, hs.stderrs[i].String())
		}
	}
}

// TestNetnsBroadcast runs one Service in each of three namespaces on one
// bridge, by broadcast on the real port 5670 of the lab interface: each
// hears the other two. Host 0 finds its interface from the default route
// (Interface ""), the others name it.
func TestNetnsBroadcast(t *testing.T) {
	if i, ok := netns.HelperIndex(); ok {
		broadcastHelper(t, i)
		return
	}
	const n = 3
	lab := netns.New(t, n)
	lines := make(chan hostLine, 64)
	hs := startHelpers(t, lab, n, "TestNetnsBroadcast", lines, "BEACON_NODES="+strconv.Itoa(n))
	seen := map[int]string{}
	timeout := time.After(netnsDeadline)
	for len(seen) < n {
		select {
		case l := <-lines:
			t.Logf("host %d: %s", l.host, l.text)
			if rest, ok := strings.CutPrefix(l.text, "SEEN "); ok {
				seen[l.host] = rest
			}
			if rest, ok := strings.CutPrefix(l.text, "ADDR "); ok && rest != lab.Addr(l.host).String()+" "+lab.Broadcast().String() {
				t.Errorf("host %d: service addr/broadcast %q, want %v %v", l.host, rest, lab.Addr(l.host), lab.Broadcast())
			}
		case <-timeout:
			hs.logStderr(t)
			t.Fatalf("after %v only %d of %d hosts saw all others: %v", netnsDeadline, len(seen), n, seen)
		}
	}
	for i := range n {
		want := []string{}
		for j := range n {
			if j != i {
				want = append(want, fmt.Sprintf("node-%d@%v", j, lab.Addr(j)))
			}
		}
		if seen[i] != strings.Join(want, ",") {
			t.Errorf("host %d saw %q, want %q", i, seen[i], strings.Join(want, ","))
		}
	}
	hs.stop(t)
}

// broadcastHelper runs inside namespace i: it publishes node-i@addr, waits
// until it has heard every other node (checking each sender's address),
// prints SEEN, and keeps publishing until its stdin closes.
func broadcastHelper(t *testing.T, i int) {
	n, err := strconv.Atoi(os.Getenv("BEACON_NODES"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := beacon.Config{Interval: 100 * time.Millisecond}
	if i != 0 {
		cfg.Interface = netns.IfName
	}
	s, err := beacon.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Interface() != netns.IfName {
		t.Fatalf("interface %q, want %q", s.Interface(), netns.IfName)
	}
	fmt.Printf("ADDR %v %v\n", s.Addr(), s.Broadcast().Addr())
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	self := fmt.Sprintf("node-%d@%v", i, s.Addr())
	s.Publish([]byte(self))
	seen := map[int]string{}
	timeout := time.After(netnsDeadline)
	for len(seen) < n-1 {
		select {
		case p := <-s.Packets():
			name, at, ok := strings.Cut(string(p.Payload), "@")
			j, err := strconv.Atoi(strings.TrimPrefix(name, "node-"))
			if !ok || err != nil {
				t.Fatalf("unexpected payload %q from %v", p.Payload, p.From)
			}
			if j == i {
				t.Fatalf("heard our own payload %q", p.Payload)
			}
			if from, err := netip.ParseAddr(at); err != nil || from != p.From.Addr() || p.From.Port() != beacon.DefaultPort {
				t.Fatalf("payload %q came from %v", p.Payload, p.From)
			}
			seen[j] = string(p.Payload)
		case <-timeout:
			t.Fatalf("host %d heard only %v after %v (stats %+v)", i, seen, netnsDeadline, s.Stats())
		}
	}
	var all []string
	for j := range n {
		if j != i {
			all = append(all, seen[j])
		}
	}
	fmt.Printf("SEEN %s\n", strings.Join(all, ","))
	io.Copy(io.Discard, os.Stdin) // until the parent closes stdin
	if st := s.Stats(); st.Sent == 0 || st.Echoes == 0 {
		t.Errorf("stats %+v: want sends and echoes", st)
	}
}

// TestNetnsNoDefaultRoute runs two Services in two namespaces that have no
// default route (prefix "pa-"): host 0 with Interface "" falls back to the
// first broadcast interface, host 1 uses All. Each must pick the lab
// interface and hear the other.
func TestNetnsNoDefaultRoute(t *testing.T) {
	if i, ok := netns.HelperIndex(); ok {
		noRouteHelper(t, i)
		return
	}
	lab := netns.NewWith(t, 2, netns.Options{Prefix: "pa-", NoDefaultRoute: true})
	// Host 1 has a second broadcast interface, so that All means two.
	for _, args := range [][]string{
		{"link", "add", "pa-v0", "type", "veth", "peer", "name", "pa-v1"},
		{"addr", "add", "192.0.2.1/24", "brd", "+", "dev", "pa-v0"},
		{"link", "set", "pa-v1", "up"},
		{"link", "set", "pa-v0", "up"},
	} {
		if out, err := lab.Command(1, "ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	lines := make(chan hostLine, 16)
	hs := startHelpers(t, lab, 2, "TestNetnsNoDefaultRoute", lines)
	whys := []string{"first broadcast interface", "all"}
	want := map[string]bool{}
	for i := range 2 {
		want[fmt.Sprintf("%d BEACON chose %s %v (broadcast %v, %s)", i, netns.IfName, lab.Addr(i), lab.Broadcast(), whys[i])] = true
		want[fmt.Sprintf("%d BEACON heard node-%d from %v", i, 1-i, lab.Addr(1-i))] = true
	}
	want["0 BEACON interfaces zre0"] = true
	want["1 BEACON interfaces zre0,pa-v0"] = true
	timeout := time.After(netnsDeadline)
	for len(want) > 0 {
		select {
		case hl := <-lines:
			l := fmt.Sprintf("%d %s", hl.host, hl.text)
			t.Log(l)
			if strings.Contains(l, " BEACON ") && !want[l] {
				t.Errorf("unexpected line %q", l)
			}
			delete(want, l)
		case <-timeout:
			hs.logStderr(t)
			t.Fatalf("after %v still missing %v", netnsDeadline, want)
		}
	}
	hs.stop(t)
}

// noRouteHelper runs in namespace i: it prints the interface chosen, the
// first payload heard, and keeps publishing until stdin closes.
func noRouteHelper(t *testing.T, i int) {
	spec := ""
	if i == 1 {
		spec = beacon.All
	}
	s, err := beacon.New(beacon.Config{Interface: spec, Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fmt.Printf("BEACON chose %s\n", s.Choices()[0])
	fmt.Printf("BEACON interfaces %s\n", s.Interface())
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Publish([]byte(fmt.Sprintf("node-%d", i)))
	select {
	case p := <-s.Packets():
		if want := fmt.Sprintf("node-%d", 1-i); string(p.Payload) != want {
			t.Fatalf("heard %q from %v, want %q", p.Payload, p.From, want)
		}
		fmt.Printf("BEACON heard %s from %v\n", p.Payload, p.From.Addr())
	case <-time.After(netnsDeadline):
		t.Fatalf("heard nothing after %v (stats %+v)", netnsDeadline, s.Stats())
	}
	io.Copy(io.Discard, os.Stdin) // until the parent closes stdin
	if st := s.Stats(); st.SendErrors != 0 {
		t.Errorf("stats %+v: send errors", st)
	}
}
