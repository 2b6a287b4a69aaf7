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

// "zyre pair --timeout 3s" shows the time this command gives up (the
// earlier of the token's expiry and the timeout), and, when nobody came,
// says so once in plain words, without "context deadline exceeded" or
// the pairing package's layers (usertry3 #11); on its own and through
// the agent.
func TestPairTimeoutSaidPlainly(t *testing.T) {
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
	until := regexp.MustCompile(`(?m)^waiting until ([0-9:]{8}) \(--timeout 3s; the token works once\)`)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"alone", []string{"--home", home, "--passphrase-file", pass, "--no-agent"}},
		{"agent", []string{"--home", home, "--socket", sock}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "agent" {
				ag := startCmd(t, strings.NewReader(""), "agent", "--home", home, "--passphrase-file", pass, "--loopback", "--port", fmt.Sprint(randomBeaconPort()), "--socket", sock)
				ag.stderr.waitFor(t, "control socket "+sock)
			}
			start := time.Now()
			code, out, errs := runPairCmd(ctx, append(tc.args, "--loopback", "--listen", "127.0.0.1:0", "--timeout", "3s")...)
			m := until.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no \"waiting until ... (--timeout 3s; ...)\" line\nstdout:\n%s\nstderr:\n%s", out, errs)
			}
			at, err := time.ParseInLocation(time.TimeOnly, m[1], time.Local)
			if err != nil {
				t.Fatal(err)
			}
			y, mo, d := start.Date()
			at = time.Date(y, mo, d, at.Hour(), at.Minute(), at.Second(), 0, time.Local)
			if at.Before(start.Add(2*time.Second)) || at.After(start.Add(3*time.Second+5*time.Second)) {
				t.Errorf("waiting until %s; the command started at %s with --timeout 3s", m[1], start.Format(time.TimeOnly))
			}
			const want = "no device paired within 3s (--timeout)"
			if code != 1 || strings.Count(errs, want) != 1 || !strings.HasSuffix(errs, want+"\n") ||
				strings.Contains(errs, "deadline") || strings.Contains(errs, "pairing:") {
				t.Fatalf("exit %d, want 1 ending %q once\nstdout:\n%s\nstderr:\n%s", code, want, out, errs)
			}
		})
	}
}
