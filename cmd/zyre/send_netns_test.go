package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zyre-go/zyre/internal/netns"
	"github.com/zyre-go/zyre/internal/testenv"
)

// cutFor is how long the link stays down: longer than the peers' expiry
// (zre.DefaultExpired, 30 s), so both sides see the other EXIT and the
// transfer must resume over a new connection, not ride on TCP's retries.
const cutFor = 35 * time.Second

// TestSendNetns: "zyre send" of 200 MB from one namespace to "zyre
// receive" in another, the link cut half-way (the receiver's partial file
// at half) for longer than the peers' expiry; the transfer resumes, the
// file arrives with the same SHA-256, and both sides printed progress with
// the total and percentage. Needs root.
func TestSendNetns(t *testing.T) {
	testenv.RequireRoot(t)
	if testing.Short() {
		t.Skip("200 MB and a 35 s cut")
	}
	lab := netns.New(t, 2)
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
	file := filepath.Join(t.TempDir(), "video.bin")
	data := make([]byte, 200_000_000)
	r := rand.New(rand.NewPCG(7, 8))
	for i := 0; i < len(data); i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < len(data); j++ {
			data[i+j] = byte(v >> (8 * j))
		}
	}
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
	data = nil
	dst := t.TempDir()

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
	recv, recvOut := start(1, "receive", "--dir", dst, "--home", homeB, "--trust", "tofu", "--yes", "--interface", netns.IfName, "--progress", "250ms", "--wait", "3m")
	send, sendOut := start(0, "send", "tablet", file, "--home", homeA, "--trust", "tofu", "--interface", netns.IfName, "--progress", "250ms", "--wait", "3m")

	// Half-way: cut the sender's port on the bridge.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if held := partialSize(dst); held >= 100_000_000 {
			t.Logf("cutting the link with %d octets held", held)
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("not half-way in 2 minutes; send:\n%s\nreceive:\n%s", sendOut, recvOut)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cutLink(t, lab, "p0", cutFor)
	waitBoth(t, ctx, send, recv, func() string { return fmt.Sprintf("send:\n%s\nreceive:\n%s", sendOut, recvOut) })
	checkSHA256(t, filepath.Join(dst, "video.bin"), want)
	for name, out := range map[string]string{"send": sendOut.String(), "receive": recvOut.String()} {
		for _, re := range []string{`zyre: (sending|receiving): [\d.]+ (B|KiB|MiB) of 190\.7 MiB \(\d+%\)\n`, `1 file\(s\), 190\.7 MiB`,
			`zyre: \w+ went away with \d+ of 200000000 octets held`, `zyre: resuming at \d+ of 200000000 octets`} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("%s output lacks %s:\n%s", name, re, lastLines(out, 8))
			}
		}
	}
	t.Logf("send:\n%s\nreceive:\n%s", lastLines(sendOut.String(), 6), lastLines(recvOut.String(), 6))
}

// partialSize returns the octets of the partial files in dir.
// cutLink takes port on lab's bridge down for cutFor, then up again.
func cutLink(t *testing.T, lab *netns.Lab, port string, cutFor time.Duration) {
	t.Helper()
	if out, err := exec.Command("ip", "-n", lab.BridgeNamespace(), "link", "set", port, "down").CombinedOutput(); err != nil {
		t.Fatalf("cut: %v\n%s", err, out)
	}
	time.Sleep(cutFor) // the cut itself, not a wait for something
	if out, err := exec.Command("ip", "-n", lab.BridgeNamespace(), "link", "set", port, "up").CombinedOutput(); err != nil {
		t.Fatalf("link up: %v\n%s", err, out)
	}
}

// waitBoth waits until send and recv exit, each successfully, or ctx
// ends; out tells what they printed.
func waitBoth(t *testing.T, ctx context.Context, send, recv *exec.Cmd, out func() string) {
	t.Helper()
	done := make(chan error, 2)
	go func() { done <- send.Wait() }()
	go func() { done <- recv.Wait() }()
	for range 2 {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%v; %s", err, out())
			}
		case <-ctx.Done():
			t.Fatalf("not done: %v; %s", ctx.Err(), out())
		}
	}
}

// checkSHA256 fails t unless the file at path has the sha256 want.
func checkSHA256(t *testing.T, path string, want [sha256.Size]byte) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("the sha256 of %s differs", path)
	}
}

func partialSize(dir string) int64 {
	var n int64
	filepath.Walk(filepath.Join(dir, ".zyre-partial"), func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r", "\n"), "\n")
	var keep []string
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			keep = append(keep, l)
		}
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return strings.Join(keep, "\n")
}
