package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// The showing side reports a wrong code and a timeout, and exits 1.
func TestPairCLIShowReportsFailures(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	homeA, homeB := t.TempDir(), t.TempDir()
	s, wait := startShow(t, ctx, homeA)
	wrong := []byte(s.code)
	wrong[0] = '0' + (wrong[0]-'0'+1)%10
	code, out, errs := runPairCmd(ctx, "--loopback", "--home", homeB, "--insecure-plaintext", "--code", string(wrong), "--peer", s.endpoint)
	if code != 1 || !strings.Contains(errs, "did not match") {
		t.Fatalf("joining side with a wrong code: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	codeA, outA, errA := wait()
	if codeA != 1 || !strings.Contains(errA, "did not match") {
		t.Fatalf("showing side after a wrong code: exit %d\nstdout:\n%s\nstderr:\n%s", codeA, outA, errA)
	}

	code, out, errs = runPairCmd(ctx, "--home", t.TempDir(), "--insecure-plaintext", "--loopback", "--timeout", "1s")
	if code != 1 || !strings.Contains(errs, "no device paired within 1s") {
		t.Fatalf("showing side with nobody joining: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
}
