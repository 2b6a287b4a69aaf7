//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zyre-go/zyre/trust"
)

// openPTY opens a pseudo-terminal: the master end, and the slave end a
// command reads as its terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	// The terminal echoes what is typed: read it away.
	go func() {
		b := make([]byte, 512)
		for {
			if _, err := m.Read(b); err != nil {
				return
			}
		}
	}()
	return m, s
}

// "zyre pair --code" through the agent asks the comparison in this
// command's terminal, and the answer typed there decides: "n" refuses on
// both sides and nothing is recorded, "y" pairs. Loopback only.
func TestPairThroughAgentAsksInTerminal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	homeA := filepath.Join(dir, "alice")
	if code, out, errs := runCmdOut(ctx, "keys", "init", "--home", homeA, "--name", "alice", "--insecure-plaintext"); code != 0 {
		t.Fatalf("keys init: %d\n%s\n%s", code, out, errs)
	}
	sock := filepath.Join(dir, "run", "agent.sock")
	ag := startCmd(t, strings.NewReader(""), "agent", "--home", homeA, "--loopback", "--port", fmt.Sprint(randomBeaconPort()), "--socket", sock)
	ag.stderr.waitFor(t, "control socket "+sock)

	for _, answer := range []string{"n", "y"} {
		master, slave := openPTY(t)
		homeC := t.TempDir()
		s, wait := startShow(t, ctx, homeC)
		if _, err := master.Write([]byte(answer + "\n")); err != nil {
			t.Fatal(err)
		}
		var out, errb lockedBuffer
		env := pairEnv(&out, &errb)
		env.stdin = slave
		code := run(ctx, env, []string{"pair", "--home", homeA, "--socket", sock, "--loopback", "--code", s.code, "--peer", s.endpoint})
		codeC, outC, errC := wait()
		errs := errb.String()
		_, n, _ := strings.Cut(outC, "comparison number: ")
		n, _, _ = strings.Cut(n, "\n")
		if n == "" || !strings.Contains(errs, "does the other screen show "+n+"? [y/N]") {
			t.Fatalf("answer %s: the comparison %q was not asked in the terminal\nstderr:\n%s\ncarol's stdout:\n%s", answer, n, errs, outC)
		}
		st, err := trust.Open(homeA, trust.Options{})
		if err != nil {
			t.Fatal(err)
		}
		recs, err := st.List()
		if err != nil {
			t.Fatal(err)
		}
		if answer == "n" {
			if code != 1 || !strings.Contains(errs, "not confirmed") || codeC == 0 || len(recs) != 0 {
				t.Fatalf("answer n: exit %d (carol %d), the agent's store %+v\nstderr:\n%s\ncarol's stderr:\n%s", code, codeC, recs, errs, errC)
			}
			continue
		}
		if code != 0 || codeC != 0 || !strings.Contains(out.String(), "comparison  "+n) {
			t.Fatalf("answer y: exit %d (carol %d)\nstdout:\n%s\nstderr:\n%s\ncarol's stderr:\n%s", code, codeC, out.String(), errs, errC)
		}
		verifiedIn(t, homeA, "code")
		verifiedIn(t, homeC, "code")
	}
}
