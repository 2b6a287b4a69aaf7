package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
	"golang.org/x/sys/unix"
)

// TestPromptInterrupt: one Ctrl-C at the passphrase prompt (usertry #2)
// ends the command with status 130 and leaves the terminal's echo on; the
// echo is off as soon as the prompt shows.
func TestPromptInterrupt(t *testing.T) {
	zyre, err := exec.LookPath("zyre") // testscript.Main's copy of this binary
	if err != nil {
		t.Skip("no zyre command on PATH:", err)
	}
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	pass := filepath.Join(dir, "pass")
	if err := os.WriteFile(pass, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "XDG_RUNTIME_DIR="+dir, "ZYRE_AGENT_SOCKET=", "ZYRE_PASSPHRASE_FILE=", "ZYRE_HOME=")
	init := exec.Command(zyre, "keys", "init", "--home", home, "--name", "t", "--passphrase-file", pass, "--work-factor", "10")
	init.Env = env
	if out, err := init.CombinedOutput(); err != nil {
		t.Fatalf("keys init: %v\n%s", err, out)
	}

	ptmx, tty, cmd, done := startAtTerminal(t, zyre, env, "monitor", "--secure", "--home", home, "--loopback", "--port", strconv.Itoa(randomBeaconPort()))

	readUntil(t, ptmx, "passphrase for this node's keys: ", cmd, done, time.Minute)
	if echo(t, tty) {
		t.Error("the echo is on while the prompt shows")
	}
	// One Ctrl-C, as the terminal sends it.
	if _, err := ptmx.Write([]byte{3}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Errorf("exit %v, want status 130", err)
		}
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatal("one Ctrl-C did not end zyre in a minute")
	}
	if !echo(t, tty) {
		t.Error("the echo is off after zyre ended")
	}
}

// readUntil reads the terminal ptmx until want shows, and returns what it
// read; it fails t if cmd (its end reported on done) ends first, or after
// within (cmd killed).
func readUntil(t *testing.T, ptmx *os.File, want string, cmd *exec.Cmd, done <-chan error, within time.Duration) string {
	t.Helper()
	var out bytes.Buffer
	read := make(chan error, 1)
	go func() {
		buf := make([]byte, 1024)
		for {
			n, err := ptmx.Read(buf)
			out.Write(buf[:n])
			if strings.Contains(out.String(), want) {
				read <- nil
				return
			}
			if err != nil {
				read <- err
				return
			}
		}
	}()
	select {
	case err := <-read:
		if err != nil {
			t.Fatalf("reading the terminal: %v\n%s", err, out.String())
		}
	case err := <-done:
		t.Fatalf("zyre ended before %q showed: %v\n%s", want, err, out.String())
	case <-time.After(within):
		cmd.Process.Kill()
		t.Fatalf("no %q in %v:\n%s", want, within, out.String())
	}
	return out.String()
}

// startAtTerminal runs zyre with args on a new pseudo-terminal (its
// controlling terminal) and returns the terminal's two ends, the command
// and a channel that gets its end; the ends are closed when the test
// ends.
func startAtTerminal(t *testing.T, zyre string, env []string, args ...string) (ptmx, tty *os.File, cmd *exec.Cmd, done chan error) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skip("no pty:", err)
	}
	t.Cleanup(func() { ptmx.Close(); tty.Close() })
	cmd = exec.Command(zyre, args...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done = make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return ptmx, tty, cmd, done
}

// answerAtTerminal runs zyre with args on a new pseudo-terminal, answers
// its "[y/N] " question with answer (none when answer is empty) and returns
// its exit code and what it printed up to the question.
func answerAtTerminal(t *testing.T, zyre string, env []string, answer string, args ...string) (int, string) {
	t.Helper()
	ptmx, _, cmd, done := startAtTerminal(t, zyre, env, args...)
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
		t.Fatalf("zyre %v did not end in a minute (did it ask?)\n%s", args, out)
	}
	return 0, ""
}

// echo reports whether the terminal's echo is on.
func echo(t *testing.T, tty *os.File) bool {
	tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tio.Lflag&unix.ECHO != 0
}

// TestReceivePromptInterrupt: one Ctrl-C at "zyre receive"'s accept
// question (user trial 2, #9) ends the command with status 130; it used to
// decline the offer and wait for the next one, until a second Ctrl-C.
// Loopback only.
func TestReceivePromptInterrupt(t *testing.T) {
	zyre, err := exec.LookPath("zyre") // testscript.Main's copy of this binary
	if err != nil {
		t.Skip("no zyre command on PATH:", err)
	}
	dir := t.TempDir()
	env := append(os.Environ(), "XDG_RUNTIME_DIR="+dir, "ZYRE_AGENT_SOCKET=", "ZYRE_PASSPHRASE_FILE=", "ZYRE_HOME=")
	homeA, homeB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, h := range []struct{ home, name string }{{homeA, "laptop"}, {homeB, "tablet"}} {
		c := exec.Command(zyre, "keys", "init", "--insecure-plaintext", "--home", h.home, "--name", h.name)
		c.Env = env
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("keys init: %v\n%s", err, out)
		}
	}
	file := filepath.Join(dir, "note.txt")
	if err := os.WriteFile(file, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(randomBeaconPort())

	ptmx, _, recv, done := startAtTerminal(t, zyre, env, "receive", "--dir", filepath.Join(dir, "in"), "--trust", "tofu", "--home", homeB, "--loopback", "--port", port)
	send := exec.Command(zyre, "send", "tablet", file, "--trust", "tofu", "--home", homeA, "--loopback", "--port", port, "--wait", "1m", "--progress", "0")
	send.Env = env
	if err := send.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { send.Process.Kill(); send.Wait() })

	out := readUntil(t, ptmx, "? [y/N] ", recv, done, 2*time.Minute)
	if _, err := ptmx.Write([]byte{3}); err != nil { // one Ctrl-C
		t.Fatal(err)
	}
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Errorf("exit %v, want status 130\n%s", err, out)
		}
	case <-time.After(time.Minute):
		recv.Process.Kill()
		t.Fatalf("one Ctrl-C did not end zyre receive in a minute\n%s", out)
	}
}

// TestForgetVerifiedAsks: "zyre trust forget" of a verified peer on a
// terminal asks first (user trial 2, #10): "n" keeps it (exit 1, "not
// forgotten"), "y" forgets it; --yes does not ask.
func TestForgetVerifiedAsks(t *testing.T) {
	zyre, err := exec.LookPath("zyre") // testscript.Main's copy of this binary
	if err != nil {
		t.Skip("no zyre command on PATH:", err)
	}
	dir := t.TempDir()
	env := append(os.Environ(), "XDG_RUNTIME_DIR="+dir, "ZYRE_AGENT_SOCKET=", "ZYRE_PASSPHRASE_FILE=", "ZYRE_HOME=")
	home := filepath.Join(dir, "room")
	c := exec.Command(zyre, "keys", "init", "--insecure-plaintext", "--home", home, "--name", "room")
	c.Env = env
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("keys init: %v\n%s", err, out)
	}
	pub, _, err := curve.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := trust.Open(home, trust.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.MarkVerified(context.Background(), pub, zre.UUIDFromKey(pub), "phone", "qr", nil); err != nil {
		t.Fatal(err)
	}
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	forget := func(answer string, args ...string) (int, string) {
		return answerAtTerminal(t, zyre, env, answer, append([]string{"trust", "forget", "phone", "--home", home}, args...)...)
	}
	known := func() bool {
		st, err := trust.Open(home, trust.Options{})
		if err != nil {
			t.Fatal(err)
		}
		_, found, err := st.Lookup(pub)
		if err != nil {
			t.Fatal(err)
		}
		return found
	}
	if code, out := forget("n"); code != 1 || !strings.Contains(out, "phone") || !strings.Contains(out, "is verified: forget it?") || !known() {
		t.Fatalf("answer n: exit %d, known %v\n%s", code, known(), out)
	}
	if code, out := forget("y"); code != 0 || known() {
		t.Fatalf("answer y: exit %d, known %v\n%s", code, known(), out)
	}
	if _, err := st.MarkVerified(context.Background(), pub, zre.UUIDFromKey(pub), "phone", "qr", nil); err != nil {
		t.Fatal(err)
	}
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, _ := forget("", "--yes"); code != 0 || known() {
		t.Fatalf("--yes: exit %d, known %v", code, known())
	}
}

// TestKeysInitWeakPassphrase: a short new passphrase typed at a terminal
// is taken with a warning that says why and how to change it (user trial
// 5: "x" was taken silently); a long one draws no warning.
func TestKeysInitWeakPassphrase(t *testing.T) {
	zyre, err := exec.LookPath("zyre")
	if err != nil {
		t.Skip("no zyre command on PATH:", err)
	}
	for _, tc := range []struct {
		pass string
		weak bool
	}{{"x", true}, {"correct horse battery", false}} {
		dir := t.TempDir()
		env := append(os.Environ(), "XDG_RUNTIME_DIR="+dir, "ZYRE_AGENT_SOCKET=", "ZYRE_PASSPHRASE_FILE=", "ZYRE_HOME=")
		ptmx, _, cmd, done := startAtTerminal(t, zyre, env, "keys", "init", "--home", filepath.Join(dir, "home"), "--name", "t", "--work-factor", "10")
		readUntil(t, ptmx, "new passphrase for this node's keys", cmd, done, time.Minute)
		ptmx.Write([]byte(tc.pass + "\n"))
		readUntil(t, ptmx, "repeat the passphrase", cmd, done, time.Minute)
		ptmx.Write([]byte(tc.pass + "\n"))
		out := readUntil(t, ptmx, "protection:", cmd, done, time.Minute)
		if got := strings.Contains(out, "passphrase of 1 character(s) is weak"); got != tc.weak {
			t.Errorf("passphrase %q: warned %v, want %v:\n%s", tc.pass, got, tc.weak, out)
		}
		if tc.weak && !strings.Contains(out, "zyre keys passwd") {
			t.Errorf("the warning does not say how to change it:\n%s", out)
		}
		if err := <-done; err != nil {
			t.Errorf("keys init with %q: %v\n%s", tc.pass, err, out)
		}
	}
}
