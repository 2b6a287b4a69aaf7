package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// TestChatAgentStopped: a chat through the agent whose agent stops says
// so in a sentence ("the agent stopped; chat ended"), not "the agent's
// events: EOF" (usertry3 #11); private and --public.
func TestChatAgentStopped(t *testing.T) {
	for _, tc := range []struct{ name, started string }{
		{"private", "private chat in lab through the agent"},
		{"public", "chatting in lab through the agent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home, _ := streamHome(t, "alice")
			sock := filepath.Join(t.TempDir(), "a.sock")
			port := fmt.Sprint(randomBeaconPort())
			ag := startCmd(t, strings.NewReader(""), "agent", "--home", home, "--loopback", "--port", port, "--socket", sock)
			ag.stderr.waitFor(t, "control socket "+sock)
			in, feed := io.Pipe() // stdin stays open: only the agent ends the chat
			defer feed.Close()
			args := []string{"chat", "--socket", sock, "--group", "lab"}
			if tc.name == "public" {
				args = append(args, "--public")
			}
			chat := startCmd(t, in, args...)
			chat.stderr.waitFor(t, tc.started)
			ag.cancel()
			ag.wait(t)
			if code := chat.wait(t); code != 1 {
				t.Errorf("chat exit %d", code)
			}
			errs := chat.stderr.String()
			if !strings.HasSuffix(errs, "zyre: the agent stopped; chat ended\n") || strings.Contains(errs, "EOF") {
				t.Errorf("chat stderr:\n%s", errs)
			}
		})
	}
}
