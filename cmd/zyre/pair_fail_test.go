package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zyre-go/zyre/pairing"
	"github.com/zyre-go/zyre/trust"
)

// The showing side reports a timeout and exits 1. (A wrong code no
// longer ends the pairing: it spends that code and a fresh one is shown;
// pair_fresh_test.go.)
func TestPairCLIShowReportsFailures(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// Without a terminal nobody compares the numbers: no pairing by
	// short code without --yes (usertry #13), on either side.
	homeC, homeD := t.TempDir(), t.TempDir()
	s, wait := startShowArgs(t, ctx, "--home", homeC, "--insecure-plaintext", "--loopback", "--listen", "127.0.0.1:0", "--timeout", "60s")
	code, out, errs := runPairCmd(ctx, "--loopback", "--home", homeD, "--insecure-plaintext", "--code", s.code, "--peer", s.endpoint)
	if code != 1 || !strings.Contains(errs, "zyre: nobody compared the comparison numbers (stdin is not a terminal); nothing was recorded\nzyre: hint: run it on a terminal, or pass --yes") {
		t.Fatalf("joining side without a terminal: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if codeA, outA, errA := wait(); codeA != 1 || strings.Contains(outA, "recorded as verified") {
		t.Fatalf("showing side without a terminal: exit %d\nstdout:\n%s\nstderr:\n%s", codeA, outA, errA)
	}
	for _, h := range []string{homeC, homeD} {
		st, err := trust.Open(h, trust.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if recs, _ := st.List(); len(recs) != 0 {
			t.Fatalf("%s: recorded %+v without a comparison", h, recs)
		}
	}

	code, out, errs = runPairCmd(ctx, "--home", t.TempDir(), "--insecure-plaintext", "--loopback", "--timeout", "1s")
	if code != 1 || !strings.Contains(errs, "no device paired within 1s") {
		t.Fatalf("showing side with nobody joining: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
}

// Ctrl-C while the code shows is "interrupted", not "context canceled"
// (usertry #9).
func TestPairCLIInterrupted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sctx, interrupt := context.WithCancel(ctx)
	_, wait := startShowArgs(t, sctx, "--home", t.TempDir(), "--insecure-plaintext", "--loopback", "--listen", "127.0.0.1:0", "--timeout", "60s")
	interrupt()
	code, out, errs := wait()
	if code != 1 || !strings.HasSuffix(errs, "zyre: interrupted\n") || strings.Contains(errs, "context canceled") {
		t.Fatalf("interrupted: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
}

// The terminal's logger: plain "zyre: " lines with the cause in one
// sentence and the other attributes as k=v; a failure that ends the
// pairing is left to the command's error.
func TestPlainLog(t *testing.T) {
	var b strings.Builder
	log := plainLog(&cliEnv{stderr: &b})
	log.Info("not shown")
	log.Warn("pairing: failed attempt", "attempt", 1, "max", 3, "err", fmt.Errorf("pairing: from X: %w", pairing.ErrBadProof))
	log.Warn("trust: journal repaired", "path", "/a b/trust.journal")
	log.Warn("pairing: short code failed; the code is burnt", "err", fmt.Errorf("pairing: x: %w", pairing.ErrWrongCode))
	want := "zyre: failed attempt (1 of 3): the other device did not prove the pairing secret (a damaged token, or someone in the middle); nothing was recorded\n" +
		"zyre: trust: journal repaired path=\"/a b/trust.journal\"\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}
