package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zyre-go/zyre/internal/testenv"
)

// TestBenchLocalRemote runs "bench local 3 200" against "bench remote 3"
// in this process, on loopback with a random beacon port: the local side
// prints the C perf_local's four figure lines and gets every reply.
// With --secure, the same over CURVE with an ephemeral key per node.
func TestBenchLocalRemote(t *testing.T) {
	for _, mode := range []string{"plain", "secure"} {
		t.Run(mode, func(t *testing.T) {
			var extra []string
			if mode == "secure" {
				extra = []string{"--secure"}
			}
			testBenchLocalRemote(t, extra)
		})
	}
}

func testBenchLocalRemote(t *testing.T, extra []string) {
	port := fmt.Sprint(randomBeaconPort())
	common := append([]string{"--loopback", "--port", port, "--timeout", cmdTimeout.String()}, extra...)
	remote := startCmd(t, strings.NewReader(""), append([]string{"bench", "remote", "3"}, common...)...)
	remote.stdout.waitFor(t, "I: Started node 3\n")
	local := startCmd(t, strings.NewReader(""), append([]string{"bench", "local", "3", "200"}, common...)...)
	if code := local.wait(t); code != 0 {
		t.Fatalf("bench local: exit %d\nstdout:\n%s\nstderr:\n%s", code, local.stdout.String(), local.stderr.String())
	}
	remote.cancel()
	if code := remote.wait(t); code != 0 {
		t.Fatalf("bench remote: exit %d\nstderr:\n%s", code, remote.stderr.String())
	}
	wantMode := ", plain:"
	if len(extra) > 0 {
		wantMode = ", secure (CURVE):"
	}
	if !strings.Contains(local.stderr.String(), wantMode) {
		t.Errorf("bench local's stderr lacks %q:\n%s", wantMode, local.stderr.String())
	}
	out := local.stdout.String()
	t.Logf("bench local:\n%s", out)
	for _, re := range []string{
		`(?m)^Took \d+ ms to coordinate with all remote$`,
		`(?m)^Took \d+ ms to get greeting from all remote$`,
		`(?m)^Took \d+ ms to send/receive 200 message\. \d+\.\d\d msg/s $`,
		`(?m)^Took \d+ ms to send 66, recv 198 GROUP message\. \d+\.\d\d msg/s $`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output lacks a line matching %s", re)
		}
	}
	// The figure lines come in the C program's order.
	order := []string{"coordinate", "greeting", "send/receive", "GROUP"}
	last := -1
	for _, w := range order {
		i := strings.Index(out, w)
		if i < last {
			t.Errorf("%q printed out of order", w)
		}
		last = i
	}
	m := regexp.MustCompile(`whispers sent (\d+), replies (\d+); shouts sent (\d+), replies (\d+); retries \d+, send errors \d+, events dropped (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no counts line")
	}
	want := []int{200, 200, 66, 198, 0}
	for i, w := range want {
		if got, _ := strconv.Atoi(m[i+1]); got != w {
			t.Errorf("counts %q: field %d is %d, want %d", m[0], i+1, got, w)
		}
	}
	rout := remote.stdout.String()
	for _, w := range []string{"I: Started node 1\n", "I: Stopped node 3\n", "I: Stopped perf_remote\n"} {
		if !strings.Contains(rout, w) {
			t.Errorf("bench remote output lacks %q:\n%s", w, rout)
		}
	}
}

func TestBenchUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"bench"}, 2, "want local, remote, sim or idle"},
		{[]string{"bench", "nope"}, 2, "unknown bench"},
		{[]string{"bench", "local", "0"}, 2, "positive number"},
		{[]string{"bench", "local", "1", "2", "3"}, 2, "unexpected argument"},
		{[]string{"bench", "remote", "x"}, 2, "positive number"},
		{[]string{"bench", "local", "--port", "70000"}, 2, "bad --port"},
		{[]string{"bench", "remote", "--timeout", "-1s"}, 2, "negative --timeout"},
	} {
		var out, errb bytes.Buffer
		env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		if code := run(context.Background(), env, tc.args); code != tc.code || !strings.Contains(errb.String(), tc.msg) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d and %q", tc.args, code, errb.String(), tc.code, tc.msg)
		}
	}
}

// TestBenchSim runs "bench sim" with 20 nodes: full mesh, every shout
// delivered, nothing lost.
func TestBenchSim(t *testing.T) {
	r := startCmd(t, strings.NewReader(""), "bench", "sim", "--nodes", "20", "--timeout", cmdTimeout.String())
	if code := r.wait(t); code != 0 {
		t.Fatalf("exit %d: %s", code, r.stderr.String())
	}
	out := r.stdout.String()
	for _, want := range []string{
		"nodes 20, links 380 (in memory)\n",
		"full mesh (every node saw 19 ENTER): ",
		"shout fan-out: 20 shouts, 380 deliveries in ",
		" 0 refused (HWM), 0 lost, ",
		"0 send errors, 0 sequence gaps, 0 events dropped, 0 exits\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestBenchSimSecure runs "bench sim --secure" with 20 nodes: secure nodes
// (a key pair each) reach full mesh, every shout delivered, no peer
// refused.
func TestBenchSimSecure(t *testing.T) {
	r := startCmd(t, strings.NewReader(""), "bench", "sim", "--secure", "--nodes", "20", "--timeout", cmdTimeout.String())
	if code := r.wait(t); code != 0 {
		t.Fatalf("exit %d: %s", code, r.stderr.String())
	}
	out := r.stdout.String()
	for _, want := range []string{
		"nodes 20, links 380 (in memory, secure)\n",
		"full mesh (every node saw 19 ENTER): ",
		"shout fan-out: 20 shouts, 380 deliveries in ",
		" 0 refused (HWM), 0 lost, ",
		"0 send errors, 0 sequence gaps, 0 events dropped, 0 exits, 0 refused peers\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestBenchIdle runs "bench idle" with 4 loopback nodes and a 1 s window.
func TestBenchIdle(t *testing.T) {
	r := startCmd(t, strings.NewReader(""), "bench", "idle", "4", "--window", "1s", "--timeout", cmdTimeout.String())
	if code := r.wait(t); code != 0 {
		t.Fatalf("exit %d: %s", code, r.stderr.String())
	}
	out := r.stdout.String()
	for _, re := range []string{
		`(?m)^full mesh of 4 nodes \(4 here\) in \d+ ms$`,
		`(?m)^idle 4 nodes for \d+\.\d s: CPU \d+ ms = \d+\.\d\d% of one core \(\d+\.\d+% per node\)$`,
		`(?m)^in the window: \d+ beacons received .* \d+ exits$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output lacks a line matching %s:\n%s", re, out)
		}
	}
	if !strings.HasSuffix(strings.TrimSpace(out), " 0 exits") {
		t.Errorf("peers exited while idle:\n%s", out)
	}
}

// TestBenchNetns runs the perf protocol across two network namespaces with
// scripts/netns-run (local in 0, remote in 1), as BENCHMARKS.md documents,
// and checks that the script removed its namespaces. Needs root.
func TestBenchNetns(t *testing.T) {
	testenv.RequireRoot(t)
	bin := filepath.Join(t.TempDir(), "zyre")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	script := `if [ {i} = 0 ]; then exec ` + bin + ` bench local 3 200 --interface {if} --timeout 60s;
		else exec ` + bin + ` bench remote 3 --interface {if}; fi`
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "../../scripts/netns-run", "-k", "-t", "90", "2", "--", "sh", "-c", script)
	// On the deadline, SIGTERM: the script's trap removes the namespaces.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := stdout.String()
	if err != nil {
		t.Fatalf("netns-run: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	for _, re := range []string{
		`(?m)^\[0\] Took \d+ ms to coordinate with all remote$`,
		`(?m)^\[0\] Took \d+ ms to send/receive 200 message\. \d+\.\d\d msg/s $`,
		`(?m)^\[0\] Took \d+ ms to send 66, recv 198 GROUP message\. \d+\.\d\d msg/s $`,
		`(?m)^\[0\] whispers sent 200, replies 200; shouts sent 66, replies 198;`,
		`(?m)^\[1\] .*I: Stopped perf_remote$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output lacks a line matching %s", re)
		}
	}
	// The endpoints are the lab's private addresses, never loopback's
	// (netns-run merges each command's stderr into its prefixed output).
	if !regexp.MustCompile(`(?m)^\[0\] zyre: bench local [0-9A-Fa-f]+ at tcp://10\.\d+\.\d+\.1:\d+`).MatchString(out) {
		t.Errorf("bench local not on the lab's segment")
	}
	m := regexp.MustCompile(`namespaces (zyret-[0-9a-f]+)-`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("netns-run did not name its namespaces:\n%s", stderr.String())
	}
	list, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(list), m[1]+"-") {
		t.Errorf("namespaces %s-* left behind:\n%s", m[1], list)
	}
	if t.Failed() {
		t.Logf("stdout:\n%s\nstderr:\n%s", out, stderr.String())
	}
}
