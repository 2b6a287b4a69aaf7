package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

// TestRevokeByPrefixAsks: "zyre trust revoke" of a paired device named by
// a prefix (usertry3 #1: a fingerprint prefix named another record than
// the user meant) asks on a terminal, naming the record exactly: "n"
// revokes nothing; by its exact name it does not ask.
func TestRevokeByPrefixAsks(t *testing.T) {
	zyre, err := exec.LookPath("zyre") // testscript.Main's copy of this binary
	if err != nil {
		t.Skip("no zyre command on PATH:", err)
	}
	dir := t.TempDir()
	env := append(os.Environ(), "XDG_RUNTIME_DIR="+dir, "ZYRE_AGENT_SOCKET=", "ZYRE_PASSPHRASE_FILE=", "ZYRE_HOME=")
	home := filepath.Join(dir, "room")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	pub, _, err := curve.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := trust.Open(home, trust.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := st.MarkVerified(context.Background(), pub, zre.UUIDFromKey(pub), "phone", "qr", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	revoke := func(answer string, peer string) (int, string) {
		ptmx, tty, err := pty.Open()
		if err != nil {
			t.Skip("no pty:", err)
		}
		defer ptmx.Close()
		defer tty.Close()
		cmd := exec.Command(zyre, "trust", "revoke", peer, "--local", "--home", home)
		cmd.Env = env
		cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		out := ""
		if answer != "" {
			out = readUntil(t, ptmx, "[y/N] ", cmd, done, time.Minute)
			if _, err := ptmx.Write([]byte(answer + "\n")); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case err := <-done:
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return ee.ExitCode(), out
			}
			if err != nil {
				t.Fatal(err)
			}
			return 0, out
		case <-time.After(time.Minute):
			cmd.Process.Kill()
			t.Fatalf("trust revoke did not end in a minute (did it ask?)\n%s", out)
		}
		return 0, ""
	}
	revoked := func() bool {
		st, err := trust.Open(home, trust.Options{})
		if err != nil {
			t.Fatal(err)
		}
		r, _, err := st.Lookup(pub)
		if err != nil {
			t.Fatal(err)
		}
		return r.State == trust.StateRevoked
	}
	code, out := revoke("n", rec.Fingerprint[:4])
	if code != 1 || revoked() || !strings.Contains(out, "phone (fingerprint "+rec.Fingerprint+", uuid "+rec.UUID.String()+") is verified: revoke it here?") {
		t.Fatalf("answer n: exit %d, revoked %v\n%s", code, revoked(), out)
	}
	if code, out := revoke("", "phone"); code != 0 || !revoked() {
		t.Fatalf("by name: exit %d, revoked %v\n%s", code, revoked(), out)
	}
}
