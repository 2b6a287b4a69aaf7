package main

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zyre-go/zyre/internal/netns"
	"github.com/zyre-go/zyre/pairing"
	"github.com/zyre-go/zyre/trust"
)

// pairNetnsDeadline bounds each command of the namespace tests.
const pairNetnsDeadline = 60 * time.Second

// TestPairNetnsDefaults pairs two "devices" (two namespaces on a bridge,
// names starting with "pa-") with the zyre binary and its defaults: no
// --listen, no --peer, no --interface. By token on a network with a
// default route; by short code on one without (a hotspot with no uplink);
// and a joiner whose key the showing side has revoked is told so at once.
func TestPairNetnsDefaults(t *testing.T) {
	bin := buildZyre(t)
	for _, tc := range []struct {
		name    string
		noRoute bool
		code    bool
	}{
		{"token", false, false},
		{"code-no-default-route", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lab := netns.NewWith(t, 2, netns.Options{Prefix: "pa-", NoDefaultRoute: tc.noRoute})
			homeA, homeB := t.TempDir(), t.TempDir()
			show := startPairShow(t, lab, bin, homeA)
			tok, err := pairing.ParseToken(show.token)
			if err != nil {
				t.Fatal(err)
			}
			if len(tok.Hints) == 0 || tok.Hints[0].Addr() != lab.Addr(0) {
				t.Fatalf("token hints %v, want %v first", tok.Hints, lab.Addr(0))
			}
			args := []string{"pair", "--home", homeB, "--insecure-plaintext", "--timeout", "60s"}
			if tc.code {
				args = append(args, "--yes", "--code", show.code)
			} else {
				args = append(args, show.token)
			}
			out, err := runIn(t, lab, 1, bin, args...)
			if err != nil {
				t.Fatalf("joining side: %v\n%s", err, out)
			}
			outA, err := show.wait(t)
			if err != nil {
				t.Fatalf("showing side: %v\n%s", err, outA)
			}
			if want := "zyre: pairing on interface " + netns.IfName + " " + lab.Addr(0).String(); !strings.Contains(outA, want) {
				t.Errorf("showing side did not say %q:\n%s", want, outA)
			}
			method := map[bool]string{false: "qr", true: "code"}[tc.code]
			verifiedIn(t, homeA, method)
			verifiedIn(t, homeB, method)
			if tc.code {
				if !strings.Contains(out, "looking for the showing device on interface "+netns.IfName) {
					t.Errorf("joining side did not say where it looked:\n%s", out)
				}
				if a, b := comparison(t, outA), comparison(t, out); a != b {
					t.Fatalf("comparison numbers %s and %s", a, b)
				}
			}

			// The showing side revokes the joiner; pairing again is refused
			// at once on both sides, with the reason.
			ts, err := trust.Open(homeA, trust.Options{})
			if err != nil {
				t.Fatal(err)
			}
			rs, err := ts.List()
			if err != nil || len(rs) != 1 {
				t.Fatalf("records in A: %v, %v", rs, err)
			}
			if _, err := ts.Revoke(context.Background(), rs[0].Key, "lost"); err != nil {
				t.Fatal(err)
			}
			show = startPairShow(t, lab, bin, homeA)
			args[len(args)-1] = show.token
			if tc.code {
				args[len(args)-1] = show.code
			}
			start := time.Now()
			out, err = runIn(t, lab, 1, bin, args...)
			if el := time.Since(start); err == nil || !strings.Contains(out, "refused") || !strings.Contains(out, "revoked") || el > pairing.DefaultTimeout {
				t.Fatalf("revoked joiner after %v: %v; want a refusal naming the revocation well within %v:\n%s", el, err, pairing.DefaultTimeout, out)
			}
			if outA, err := show.wait(t); err == nil || !strings.Contains(outA, "revoked") {
				t.Fatalf("showing side after refusing a revoked joiner: %v (want a non-zero exit)\n%s", err, outA)
			}
		})
	}
}

// buildZyre builds the zyre binary into a temporary directory.
func buildZyre(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "zyre")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runIn runs the binary in namespace i and returns its combined output.
func runIn(t *testing.T, lab *netns.Lab, i int, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pairNetnsDeadline)
	defer cancel()
	cmd := lab.Command(i, bin, args...)
	c := exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	out, err := c.CombinedOutput()
	return string(out), err
}

// netnsShow is a "zyre pair" showing a token in namespace 0.
type netnsShow struct {
	token, code string
	cmd         *exec.Cmd
	done        chan struct{}
	mu          sync.Mutex
	out, errb   strings.Builder
}

func (s *netnsShow) stderr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errb.String()
}

// wait returns the exit error and everything printed.
func (s *netnsShow) wait(t *testing.T) (string, error) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(pairNetnsDeadline):
		s.cmd.Process.Kill()
		<-s.done
	}
	err := s.cmd.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String() + s.errb.String(), err
}

// startPairShow starts "zyre pair" in namespace 0 and reads until it has
// printed its token and code.
func startPairShow(t *testing.T, lab *netns.Lab, bin, home string) *netnsShow {
	t.Helper()
	s := &netnsShow{cmd: lab.Command(0, bin, "pair", "--home", home, "--insecure-plaintext", "--timeout", "60s", "--yes"), done: make(chan struct{})}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.cmd.Process.Kill() })
	got := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.out.WriteString(line + "\n")
			if v, ok := strings.CutPrefix(line, "token: "); ok {
				s.token = v
			}
			if v, ok := strings.CutPrefix(line, "code: "); ok {
				s.code = v
			}
			ready := s.token != "" && s.code != ""
			s.mu.Unlock()
			if ready && !signalled {
				signalled = true
				close(got)
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.mu.Lock()
			s.errb.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
		}
	}()
	go func() { wg.Wait(); close(s.done) }()
	select {
	case <-got:
	case <-s.done:
		t.Fatalf("zyre pair ended without a token:\n%s%s", s.out.String(), s.stderr())
	case <-time.After(pairNetnsDeadline):
		t.Fatalf("zyre pair printed no token within %v:\n%s", pairNetnsDeadline, s.stderr())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s
}

// comparison returns the number after "comparison number: ".
func comparison(t *testing.T, out string) string {
	t.Helper()
	_, after, ok := strings.Cut(out, "comparison number: ")
	if !ok || len(after) < 6 {
		t.Fatalf("no comparison number in\n%s", out)
	}
	return after[:6]
}
