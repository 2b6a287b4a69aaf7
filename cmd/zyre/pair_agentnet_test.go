package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zyre-go/zyre/pairing"
)

// "zyre pair" without network flags through an agent run with --loopback
// shows a token on loopback: the pairing runs where the agent's node does,
// not on the default route's interface.
func TestPairThroughLoopbackAgentStaysOnLoopback(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	home := filepath.Join(dir, "alice")
	pass := filepath.Join(dir, "pass")
	if err := os.WriteFile(pass, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runCmdOut(ctx, "keys", "init", "--home", home, "--name", "alice", "--passphrase-file", pass, "--work-factor", "4"); code != 0 {
		t.Fatalf("keys init: %d\n%s\n%s", code, out, errs)
	}
	sock := filepath.Join(dir, "run", "agent.sock")
	ag := startCmd(t, strings.NewReader(""), "agent", "--home", home, "--passphrase-file", pass, "--loopback", "--port", fmt.Sprint(randomBeaconPort()), "--socket", sock)
	ag.stderr.waitFor(t, "control socket "+sock)

	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	s, wait := startShowArgs(t, pctx, "--home", home, "--socket", sock, "--timeout", "60s")
	pcancel()
	_, out, errs := wait()
	if !strings.Contains(errs, "pairing through the agent alice") || !strings.Contains(errs, "pairing on interface lo (loopback)") {
		t.Errorf("not on the agent's loopback; stdout:\n%s\nstderr:\n%s", out, errs)
	}
	if ap, err := netip.ParseAddrPort(s.endpoint); err != nil || !ap.Addr().IsLoopback() {
		t.Errorf("code endpoint %q (%v), want a loopback address", s.endpoint, err)
	}
	tok, err := pairing.ParseToken(s.token)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range tok.Hints {
		if !h.Addr().IsLoopback() {
			t.Errorf("the token's hint %s is not a loopback address", h)
		}
	}
	if len(tok.Hints) == 0 {
		t.Error("the token has no hints")
	}
}
