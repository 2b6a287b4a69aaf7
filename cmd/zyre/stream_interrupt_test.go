package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStreamSendInterruptedSaysOneLine: Ctrl-C of a stream sender (its
// context ends) mid-stream prints one line, "interrupted after N:
// receivers see the stream cut", and no "sent to" summary before it
// (usertry3 #10); one-shot and through the agent. (main then exits 130.)
func TestStreamSendInterruptedSaysOneLine(t *testing.T) {
	for _, through := range []string{"one-shot", "agent"} {
		t.Run(through, func(t *testing.T) {
			homeA, homeB, _ := streamPeers(t)
			port := fmt.Sprint(randomBeaconPort())
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			alice := []string{"--loopback", "--port", port, "--home", homeA}
			if through == "agent" {
				sockA := filepath.Join(t.TempDir(), "a.sock")
				agA := startCmd(t, strings.NewReader(""), "agent", "--home", homeA, "--loopback", "--port", port, "--socket", sockA)
				agA.stderr.waitFor(t, "control socket "+sockA)
				alice = []string{"--socket", sockA}
			}
			recv, bob := startStreamCmdLive(ctx, nil, "stream", "recv", "g", "--loopback", "--port", port, "--home", homeB, "--progress", "0")
			sctx, interrupt := context.WithCancel(ctx)
			in, feed := io.Pipe()
			defer feed.Close()
			send, _ := startStreamCmdLive(sctx, in, append([]string{"stream", "send", "g", "--progress", "0", "--chunk", "1000"}, alice...)...)
			if _, err := feed.Write(make([]byte, 50_000)); err != nil {
				t.Fatal(err)
			}
			awaitOutput(t, "bob reading alice's stream", func() bool { return bob.stdout.Len() >= 50_000 })
			interrupt()
			s := waitStreamCmd(t, "stream send", send)
			if s.code != 1 || !strings.HasSuffix(s.stderr.String(), "\nzyre: interrupted after 48.8 KiB: receivers see the stream cut\n") {
				t.Errorf("send exit %d, stderr:\n%s", s.code, s.stderr)
			}
			if strings.Contains(s.stderr.String(), "sent to") || strings.Contains(s.stderr.String(), "context canceled") {
				t.Errorf("a summary or a raw error after Ctrl-C:\n%s", s.stderr)
			}
			// the receiver says it in words, not "unexpected EOF"
			if r := waitStreamCmd(t, "stream recv", recv); r.code != 1 || !strings.Contains(r.stderr.String(), "before the end of its stream") || strings.Contains(r.stderr.String(), "EOF") {
				t.Errorf("recv exit %d, stderr:\n%s", r.code, r.stderr)
			}
		})
	}
}
