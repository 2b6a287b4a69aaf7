package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestSendInterruptedSaysWhere: Ctrl-C of "zyre send" mid-transfer says
// how far it got and that the same command resumes ("interrupted after
// 12.0 MiB of 256.0 MiB: ..."), not a bare "interrupted" (usertry3 #10's
// twin for files).
func TestSendInterruptedSaysWhere(t *testing.T) {
	for _, through := range []string{"one-shot", "agent"} {
		t.Run(through, func(t *testing.T) {
			homeA, homeB, _ := streamPeers(t)
			port := fmt.Sprint(randomBeaconPort())
			file := filepath.Join(t.TempDir(), "big.bin")
			f, err := os.Create(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Truncate(256 << 20); err != nil { // sparse: quick to make, slow enough to send
				t.Fatal(err)
			}
			f.Close()
			alice := []string{"--no-agent", "--loopback", "--port", port, "--home", homeA}
			if through == "agent" {
				sockA := filepath.Join(t.TempDir(), "a.sock")
				agA := startCmd(t, strings.NewReader(""), "agent", "--home", homeA, "--loopback", "--port", port, "--socket", sockA)
				agA.stderr.waitFor(t, "control socket "+sockA)
				alice = []string{"--socket", sockA}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			recv, bob := startStreamCmdLive(ctx, nil, "receive", "--dir", t.TempDir(), "--yes", "--no-agent", "--loopback", "--port", port, "--home", homeB, "--progress", "10ms", "--wait", "1m")
			sctx, interrupt := context.WithCancel(ctx)
			send, _ := startStreamCmdLive(sctx, nil, append([]string{"send", "bob", file, "--progress", "10ms", "--wait", "1m"}, alice...)...)
			awaitOutput(t, "bob receiving", func() bool { return regexp.MustCompile(`zyre: receiving: [1-9]`).MatchString(bob.stderr.String()) })
			interrupt()
			s := waitStreamCmd(t, "send", send)
			if !regexp.MustCompile(`\nzyre: interrupted after [\d.]+ (B|KiB|MiB) of 256\.0 MiB: the receiver keeps what it holds; run the same command again to resume\n$`).MatchString(s.stderr.String()) {
				t.Errorf("send exit %d, stderr:\n%s", s.code, s.stderr)
			}
			cancel()
			waitStreamCmd(t, "receive", recv)
		})
	}
}
