package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/internal/netns"
)

// TestSendAgentNetns: "zyre send" and "zyre receive" through two agents
// in two namespaces: 60 MB, the link cut half-way for longer than the
// peers' expiry; the agents' transfer resumes, the file arrives with the
// same SHA-256, and both commands printed progress with the total and
// percentage, and the cut. Needs root.
func TestSendAgentNetns(t *testing.T) {
	if testing.Short() {
		t.Skip("60 MB and a 35 s cut")
	}
	lab := netns.NewWith(t, 2, netns.Options{Prefix: "ax-"})
	bin := filepath.Join(t.TempDir(), "zyre")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	homeA, homeB := t.TempDir(), t.TempDir()
	for _, h := range []struct{ home, name string }{{homeA, "laptop"}, {homeB, "tablet"}} {
		if out, err := exec.Command(bin, "keys", "init", "--home", h.home, "--name", h.name, "--insecure-plaintext").CombinedOutput(); err != nil {
			t.Fatalf("keys init: %v\n%s", err, out)
		}
	}
	const size = 60_000_000
	file := filepath.Join(t.TempDir(), "video.bin")
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(9, 10))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
	data = nil
	dst := t.TempDir()
	run := t.TempDir()
	sockA, sockB := filepath.Join(run, "a", "agent.sock"), filepath.Join(run, "b", "agent.sock")

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	start := func(i int, args ...string) (*exec.Cmd, *lockedBuffer) {
		cmd := lab.Command(i, bin, args...)
		var out lockedBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd, &out
	}
	_, agentA := start(0, "agent", "--home", homeA, "--interface", netns.IfName, "--socket", sockA)
	_, agentB := start(1, "agent", "--home", homeB, "--interface", netns.IfName, "--socket", sockB)
	// Each agent meets the other (the socket is a file: reachable from here).
	for _, w := range []struct{ sock, name string }{{sockA, "tablet"}, {sockB, "laptop"}} {
		for {
			if c, err := client.Dial(ctx, w.sock); err == nil {
				ms, _ := c.Members(ctx)
				c.Close()
				if len(ms) > 0 && ms[0].Name == w.name {
					break
				}
			}
			if ctx.Err() != nil {
				t.Fatalf("the agents did not meet; a:\n%s\nb:\n%s", agentA, agentB)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	recv, recvOut := start(1, "receive", "--socket", sockB, "--dir", dst, "--trust", "tofu", "--yes", "--progress", "250ms", "--wait", "3m")
	send, sendOut := start(0, "send", "tablet", file, "--socket", sockA, "--trust", "tofu", "--progress", "250ms", "--wait", "3m")

	deadline := time.Now().Add(2 * time.Minute)
	for {
		if held := partialSize(dst); held >= size/2 {
			t.Logf("cutting the link with %d octets held", held)
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("not half-way in 2 minutes; send:\n%s\nreceive:\n%s", sendOut, recvOut)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cutLink(t, lab, "p0", cutFor)
	waitBoth(t, ctx, send, recv, func() string {
		return fmt.Sprintf("send:\n%s\nreceive:\n%s\nagent a:\n%s\nagent b:\n%s", sendOut, recvOut, agentA, agentB)
	})
	checkSHA256(t, filepath.Join(dst, "video.bin"), want)
	for name, out := range map[string]string{"send": sendOut.String(), "receive": recvOut.String()} {
		for _, re := range []string{`through the agent`, `zyre: (sending|receiving): [\d.]+ (B|KiB|MiB) of 57\.2 MiB \(\d+%\)\n`, `1 file\(s\), 57\.2 MiB`,
			`zyre: \w+ went away with \d+ of 60000000 octets held`} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("%s output lacks %s:\n%s", name, re, lastLines(out, 40))
			}
		}
	}
	t.Logf("send:\n%s\nreceive:\n%s", lastLines(sendOut.String(), 12), lastLines(recvOut.String(), 6))
}
