package netns

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const deadline = 20 * time.Second

func namespaces(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestLabLayout(t *testing.T) {
	if _, ok := HelperIndex(); ok {
		t.Skip("not a helper test")
	}
	lab := New(t, 3)
	other := New(t, 1)
	if lab.Namespace(0) == other.Namespace(0) {
		t.Fatalf("two labs share the name %s", lab.Namespace(0))
	}
	list := namespaces(t)
	for i := range lab.N() {
		ns := lab.Namespace(i)
		if !strings.HasPrefix(ns, Prefix) || !hasNamespace([]byte(list), ns) {
			t.Errorf("namespace %s missing from %q", ns, list)
		}
		out, err := lab.Command(i, "ip", "-4", "-o", "addr", "show", "dev", IfName).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		want := fmt.Sprintf("inet %s/24 brd %s", lab.Addr(i), lab.Broadcast())
		if !strings.Contains(string(out), want) {
			t.Errorf("host %d: %q does not contain %q", i, out, want)
		}
		out, err = lab.Command(i, "ip", "-o", "link", "show", "lo").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "UP") {
			t.Errorf("host %d: lo not up: %s %v", i, out, err)
		}
		out, err = lab.Command(i, "ip", "route", "show", "default").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "dev "+IfName) {
			t.Errorf("host %d: no default route via %s: %s %v", i, IfName, out, err)
		}
	}
	if !lab.Prefix().Contains(lab.Broadcast()) || lab.Addr(2).As4()[3] != 3 {
		t.Errorf("prefix %v, broadcast %v, addr(2) %v", lab.Prefix(), lab.Broadcast(), lab.Addr(2))
	}
}

// cleanupTB collects Cleanup functions so that a test can run them early.
type cleanupTB struct {
	testing.TB
	fns []func()
}

func (c *cleanupTB) Cleanup(f func()) { c.fns = append(c.fns, f) }

func TestLabCleanup(t *testing.T) {
	if _, ok := HelperIndex(); ok {
		t.Skip("not a helper test")
	}
	tb := &cleanupTB{TB: t}
	lab := New(tb, 2)
	// A process left running inside the lab does not keep it alive.
	sleeper := lab.Command(1, "sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	names := []string{lab.Namespace(0), lab.Namespace(1), lab.BridgeNamespace()}
	for i := len(tb.fns) - 1; i >= 0; i-- {
		tb.fns[i]()
	}
	waited := make(chan error, 1)
	go func() { waited <- sleeper.Wait() }()
	select {
	case <-waited:
	case <-time.After(deadline):
		sleeper.Process.Kill()
		t.Fatal("process in the lab survived its cleanup")
	}
	list := namespaces(t)
	for _, ns := range names {
		if hasNamespace([]byte(list), ns) {
			t.Errorf("namespace %s left after cleanup", ns)
		}
	}
}

// TestLabTCP runs the test binary in two namespaces: host 1 listens on
// TCP, host 0 connects to it across the bridge and gets an echo.
func TestLabTCP(t *testing.T) {
	if i, ok := HelperIndex(); ok {
		tcpHelper(t, i)
		return
	}
	lab := New(t, 2)
	addr := net.JoinHostPort(lab.Addr(1).String(), "7001")
	server := lab.TestHelper(1, "TestLabTCP", "LAB_TCP_ADDR="+addr)
	out, err := server.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var serverErr strings.Builder
	server.Stderr = &serverErr
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	defer server.Process.Kill()
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "LISTENING") {
				ready <- sc.Text()
			}
		}
		io.Copy(io.Discard, out)
	}()
	select {
	case <-ready:
	case <-time.After(deadline):
		t.Fatalf("server helper not listening after %v: %s", deadline, serverErr.String())
	}
	client := lab.TestHelper(0, "TestLabTCP", "LAB_TCP_ADDR="+addr)
	if b, err := client.CombinedOutput(); err != nil {
		t.Fatalf("client helper: %v\n%s", err, b)
	}
	if err := server.Wait(); err != nil {
		t.Fatalf("server helper: %v\n%s", err, serverErr.String())
	}
}

func tcpHelper(t *testing.T, i int) {
	addr := os.Getenv("LAB_TCP_ADDR")
	if i == 1 {
		ln, err := net.Listen("tcp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		fmt.Println("LISTENING", addr)
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(deadline))
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(deadline))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(c, line); err != nil {
			t.Fatal(err)
		}
		return
	}
	c, err := net.DialTimeout("tcp4", addr, deadline)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(deadline))
	if _, err := io.WriteString(c, "ping from host 0\n"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "ping from host 0\n" {
		t.Fatalf("echo %q, %v", line, err)
	}
}
