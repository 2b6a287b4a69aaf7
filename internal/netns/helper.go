package netns

import (
	"bufio"
	"errors"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Helper is a helper process (this test binary, started by TestHelper)
// running in one namespace, whose output the test reads line by line.
type Helper struct {
	Cmd   *exec.Cmd
	lines chan string // lines with the watched prefix
	done  chan error  // the process's exit, once
	mu    sync.Mutex
	out   strings.Builder // everything it printed, for failure messages
	exit  error
	ended bool
}

// StartHelper runs test testName in namespace i (see TestHelper) with its
// stdout and stderr captured. Lines starting with prefix are delivered to
// Next in order; every line is kept for Output. The process is killed and
// reaped when the test ends.
func (l *Lab) StartHelper(t testing.TB, i int, testName, prefix string, env ...string) *Helper {
	t.Helper()
	cmd := l.TestHelper(i, testName, env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	h := &Helper{Cmd: cmd, lines: make(chan string, 64), done: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			h.mu.Lock()
			h.out.WriteString(sc.Text() + "\n")
			h.mu.Unlock()
			if strings.HasPrefix(sc.Text(), prefix) {
				h.lines <- sc.Text()
			}
		}
		io.Copy(io.Discard, stdout)
		h.done <- cmd.Wait()
		close(h.lines)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		h.Wait(time.Minute)
	})
	return h
}

// Output returns everything the helper printed so far.
func (h *Helper) Output() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.out.String()
}

// Expect fails the test unless the next watched line is want, within
// timeout; the failure shows the helper's whole output.
func (h *Helper) Expect(t testing.TB, name, want string, timeout time.Duration) {
	t.Helper()
	select {
	case l, ok := <-h.lines:
		if ok && l == want {
			return
		}
		t.Fatalf("%s: got %q, want %q; output:\n%s", name, l, want, h.Output())
	case <-time.After(timeout):
		t.Fatalf("%s: no %q within %v; output:\n%s", name, want, timeout, h.Output())
	}
}

// Wait waits at most timeout for the process to end and returns its exit
// error; it reports a timeout as an error too. It may be called again.
func (h *Helper) Wait(timeout time.Duration) error {
	h.mu.Lock()
	if h.ended {
		defer h.mu.Unlock()
		return h.exit
	}
	h.mu.Unlock()
	select {
	case err := <-h.done:
		h.mu.Lock()
		h.exit, h.ended = err, true
		h.mu.Unlock()
		return err
	case <-time.After(timeout):
		return errHelperTimeout
	}
}

// errHelperTimeout is Wait's error when the process is still running.
var errHelperTimeout = errors.New("netns: helper process did not exit in time")
