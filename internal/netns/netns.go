// Package netns is a test lab of Linux network namespaces: n "hosts" on one
// private Ethernet segment, so that multi-host tests (beacons, ZRE nodes)
// broadcast and connect for real without touching the machine's own
// interfaces.
//
// Layout of a lab made by New(t, 3), with id a random suffix:
//
//	zyret-<id>-br   bridge namespace: br0, with ports p0 p1 p2
//	zyret-<id>-0    lo + zre0 (veth to p0), 10.X.Y.1/24, default route via zre0
//	zyret-<id>-1    lo + zre0 (veth to p1), 10.X.Y.2/24
//	zyret-<id>-2    lo + zre0 (veth to p2), 10.X.Y.3/24
//
// X and Y are random, so two labs never share a subnet, and the bridge sits
// in a namespace of its own: nothing is created in the host's namespace.
// Everything is deleted on t.Cleanup, also when the test fails or a step of
// New fails; processes still running in the lab's namespaces are killed.
// scripts/netns-clean deletes what a killed test run left behind
// (namespaces named with Prefix).
//
// Tests run code inside a namespace either with Command (any program,
// through "ip netns exec") or with TestHelper, which runs the current test
// binary again inside namespace i, restricted to one test function; that
// function calls HelperIndex to learn that it is the helper:
//
//	func TestX(t *testing.T) {
//		if i, ok := netns.HelperIndex(); ok {
//			runNode(t, i) // inside namespace i
//			return
//		}
//		lab := netns.New(t, 3) // skips unless root
//		cmd := lab.TestHelper(0, "TestX")
//		...
//	}
//
// Labs need root (or CAP_NET_ADMIN and CAP_SYS_ADMIN) and iproute2; New
// skips the test otherwise, through internal/testenv.
package netns

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/zyre-go/zyre/internal/testenv"
)

// Prefix starts the name of every namespace a lab creates.
const Prefix = "zyret-"

// IfName is the name of the lab interface inside every host namespace.
const IfName = "zre0"

// HelperEnv is the environment variable that gates TestHelper: in the
// helper process it holds the namespace index.
const HelperEnv = "ZYRE_NETNS_HELPER"

// Lab is a set of network namespaces on one bridge. Its methods may be
// called from several goroutines.
type Lab struct {
	t      testing.TB
	id     string
	bridge string
	hosts  []string
	prefix netip.Prefix // 10.X.Y.0/24
}

// New creates a lab of n host namespaces (1 <= n <= 250) and registers its
// removal with t.Cleanup. It skips the test unless it runs as root with
// iproute2, and fails it if a step fails.
func New(t testing.TB, n int) *Lab {
	t.Helper()
	return NewWith(t, n, Options{})
}

// Options vary a lab.
type Options struct {
	// Prefix replaces Prefix in the namespaces' names, so that a test's
	// namespaces carry its own mark ("pa-").
	Prefix string
	// NoDefaultRoute leaves the hosts without a default route, as on a
	// network with no way to the Internet (a car's hotspot).
	NoDefaultRoute bool
}

// NewWith is New with options.
func NewWith(t testing.TB, n int, o Options) *Lab {
	t.Helper()
	if o.Prefix == "" {
		o.Prefix = Prefix
	}
	testenv.RequireRoot(t)
	if n < 1 || n > 250 {
		t.Fatalf("netns: %d hosts, want 1 to 250", n)
	}
	var r [5]byte
	if _, err := rand.Read(r[:]); err != nil {
		t.Fatal(err)
	}
	l := &Lab{
		t:      t,
		id:     fmt.Sprintf("%x", r[:3]),
		prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, r[3], r[4], 0}), 24),
	}
	l.bridge = o.Prefix + l.id + "-br"
	for i := range n {
		l.hosts = append(l.hosts, fmt.Sprintf("%s%s-%d", o.Prefix, l.id, i))
	}
	// Registered first, so a failure half-way still removes what exists.
	t.Cleanup(l.destroy)

	l.ip("netns", "add", l.bridge)
	l.ip("-n", l.bridge, "link", "set", "lo", "up")
	l.ip("-n", l.bridge, "link", "add", "br0", "type", "bridge")
	l.ip("-n", l.bridge, "link", "set", "br0", "up")
	for i, ns := range l.hosts {
		port := fmt.Sprintf("p%d", i)
		l.ip("netns", "add", ns)
		l.ip("-n", ns, "link", "set", "lo", "up")
		// Created inside the host namespace, its peer inside the bridge's.
		l.ip("-n", ns, "link", "add", IfName, "type", "veth", "peer", "name", port, "netns", l.bridge)
		l.ip("-n", ns, "addr", "add", netip.PrefixFrom(l.Addr(i), 24).String(), "brd", "+", "dev", IfName)
		l.ip("-n", ns, "link", "set", IfName, "up")
		if !o.NoDefaultRoute {
			l.ip("-n", ns, "route", "add", "default", "dev", IfName)
		}
		l.ip("-n", l.bridge, "link", "set", port, "master", "br0")
		l.ip("-n", l.bridge, "link", "set", port, "up")
	}
	t.Logf("netns: lab %s: %d hosts on %v", l.id, n, l.prefix)
	return l
}

// ip runs one iproute2 command and fails the test if it fails.
func (l *Lab) ip(args ...string) {
	l.t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("netns: ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
}

// destroy kills what still runs in the lab's namespaces and deletes them.
// Deleting a namespace deletes its veth, and with it the peer.
func (l *Lab) destroy() {
	existing, _ := exec.Command("ip", "netns", "list").Output()
	for _, ns := range append(append([]string(nil), l.hosts...), l.bridge) {
		if !hasNamespace(existing, ns) {
			continue
		}
		if out, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil {
			for _, f := range strings.Fields(string(out)) {
				if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
					syscall.Kill(pid, syscall.SIGKILL) // a process this test started in its own namespace
				}
			}
		}
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			l.t.Errorf("netns: failed to delete %s: %v: %s (scripts/netns-clean removes leftovers)", ns, err, bytes.TrimSpace(out))
		}
	}
}

func hasNamespace(list []byte, name string) bool {
	for _, line := range strings.Split(string(list), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == name {
			return true
		}
	}
	return false
}

// N returns the number of host namespaces.
func (l *Lab) N() int { return len(l.hosts) }

// Namespace returns the name of host namespace i.
func (l *Lab) Namespace(i int) string { l.check(i); return l.hosts[i] }

// BridgeNamespace returns the name of the namespace that holds the bridge.
func (l *Lab) BridgeNamespace() string { return l.bridge }

// Prefix returns the lab's subnet, 10.X.Y.0/24.
func (l *Lab) Prefix() netip.Prefix { return l.prefix }

// Addr returns the address of host i on IfName: 10.X.Y.(i+1).
func (l *Lab) Addr(i int) netip.Addr {
	l.check(i)
	a := l.prefix.Addr().As4()
	a[3] = byte(i + 1)
	return netip.AddrFrom4(a)
}

// Broadcast returns the subnet's broadcast address, 10.X.Y.255.
func (l *Lab) Broadcast() netip.Addr {
	a := l.prefix.Addr().As4()
	a[3] = 255
	return netip.AddrFrom4(a)
}

func (l *Lab) check(i int) {
	if i < 0 || i >= len(l.hosts) {
		l.t.Fatalf("netns: host %d out of range [0, %d)", i, len(l.hosts))
	}
}

// Command returns a command that runs name with args inside host namespace
// i (through "ip netns exec"). The caller starts and waits for it.
func (l *Lab) Command(i int, name string, args ...string) *exec.Cmd {
	l.check(i)
	return exec.Command("ip", append([]string{"netns", "exec", l.hosts[i], name}, args...)...)
}

// TestHelper returns a command that runs the current test binary inside
// host namespace i, restricted to the test function testName (a top-level
// test: "TestX"), with HelperEnv set to i and env (KEY=value) added to the
// environment. The helper run has a 2-minute test timeout so that it can
// never outlive a hung parent by much.
func (l *Lab) TestHelper(i int, testName string, env ...string) *exec.Cmd {
	cmd := l.Command(i, os.Args[0], "-test.run=^"+testName+"$", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(append(os.Environ(), fmt.Sprintf("%s=%d", HelperEnv, i)), env...)
	return cmd
}

// HelperIndex reports whether this process is a helper started by
// TestHelper, and in which namespace.
func HelperIndex() (int, bool) {
	v, ok := os.LookupEnv(HelperEnv)
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(v)
	if err != nil || i < 0 {
		return 0, false
	}
	return i, true
}
