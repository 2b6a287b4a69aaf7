package main

import (
	"bufio"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/zyre-go/zyre/internal/netns"
)

// TestInterfaceNetnsNoDefaultRoute runs zyre without --interface in two
// namespaces that have no default route (a network with no way to the
// Internet): "monitor" on one, "peers" on the other. Each picks the first
// up broadcast interface, says so, and meets the other.
func TestInterfaceNetnsNoDefaultRoute(t *testing.T) {
	bin := buildZyre(t)
	lab := netns.NewWith(t, 2, netns.Options{Prefix: "pa-", NoDefaultRoute: true})
	want := func(i int) string {
		return fmt.Sprintf("zyre: beacon on interface %s %v (broadcast %v, first broadcast interface)", netns.IfName, lab.Addr(i), lab.Broadcast())
	}
	// Host 1 monitors until the test ends; its lines go to a channel.
	mon := lab.Command(1, bin, "monitor", "--name", "dev1")
	stdout, err := mon.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	mon.Stderr = mon.Stdout
	if err := mon.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { mon.Process.Kill(); mon.Wait() }()
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// Host 0 lists the peers it met while the monitor runs.
	out, err := runIn(t, lab, 0, bin, "peers", "--name", "dev0", "--wait", "10s")
	if err != nil {
		t.Fatalf("peers: %v\n%s", err, out)
	}
	if !strings.Contains(out, want(0)) || !strings.Contains(out, "dev1") {
		t.Errorf("peers did not print %q and find dev1:\n%s", want(0), out)
	}
	var seen []string
	sawIface, sawEnter := false, false
	timeout := time.After(pairNetnsDeadline)
	for !sawIface || !sawEnter {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("monitor ended; it printed:\n%s", strings.Join(seen, "\n"))
			}
			seen = append(seen, l)
			sawIface = sawIface || l == want(1)
			sawEnter = sawEnter || strings.HasPrefix(l, "ENTER dev0 ")
		case <-timeout:
			t.Fatalf("monitor: no %q and ENTER dev0 within %v; it printed:\n%s", want(1), pairNetnsDeadline, strings.Join(seen, "\n"))
		}
	}
}

// TestInterfaceNetnsByAddress names the interface by its second IPv4
// address (--interface ADDR): the node and the pairing joiner must use
// that address and its subnet, not the interface's first address. One
// namespace (prefix "rp-") whose lab interface gets a second address on
// another subnet.
func TestInterfaceNetnsByAddress(t *testing.T) {
	bin := buildZyre(t)
	lab := netns.NewWith(t, 1, netns.Options{Prefix: "rp-"})
	second := netip.MustParseAddr("10.251.7.1")
	if out, err := lab.Command(0, "ip", "addr", "add", second.String()+"/24", "brd", "+", "dev", netns.IfName).CombinedOutput(); err != nil {
		t.Fatalf("ip addr add: %v: %s", err, out)
	}
	out, err := runIn(t, lab, 0, bin, "peers", "--interface", second.String(), "--wait", "300ms", "--verbose")
	if err != nil {
		t.Fatalf("peers: %v\n%s", err, out)
	}
	if want := "addr=" + second.String(); !strings.Contains(out, "beacon: started") || !strings.Contains(out, want) {
		t.Errorf("the node's beacon did not start on %s (%q):\n%s", second, want, out)
	}
	// The joiner looks for the showing device on the same address's
	// subnet: no announcement there, so it says where it looked.
	out, err = runIn(t, lab, 0, bin, "pair", "--home", t.TempDir(), "--insecure-plaintext", "--interface", second.String(), "--code", "1234-5678-9012", "--timeout", "2s")
	if err == nil {
		t.Fatalf("pair --code with nobody showing succeeded:\n%s", out)
	}
	if want := "10.251.7.255:5679"; !strings.Contains(out, want) {
		t.Errorf("the joiner did not look on %s's subnet (%q):\n%s", second, want, out)
	}
}
