package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/keystore"
)

// "zyre pair" through a running agent of the same home: the agent pairs
// with the identity it unlocked at its start (the pair commands get no
// passphrase), this process shows the token and the comparison, and
// --json prints the result. Both the showing and the joining side, by
// token and by short code; loopback only.
func TestPairThroughAgentCLI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	homeA, homeB, homeC := filepath.Join(dir, "alice"), t.TempDir(), t.TempDir()
	pass := filepath.Join(dir, "pass")
	if err := os.WriteFile(pass, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runCmdOut(ctx, "keys", "init", "--home", homeA, "--name", "alice", "--passphrase-file", pass, "--work-factor", "4"); code != 0 {
		t.Fatalf("keys init: %d\n%s\n%s", code, out, errs)
	}
	sock := filepath.Join(dir, "run", "agent.sock")
	ag := startCmd(t, strings.NewReader(""), "agent", "--home", homeA, "--passphrase-file", pass, "--loopback", "--port", fmt.Sprint(randomBeaconPort()), "--socket", sock)
	ag.stderr.waitFor(t, "control socket "+sock)
	// Only the agent holds the unlocked identity from now on.
	if err := os.Remove(pass); err != nil {
		t.Fatal(err)
	}
	ks, _ := keystore.Open(homeA, keystore.Options{})
	alice, err := ks.Public()
	if err != nil {
		t.Fatal(err)
	}

	// The agent shows; bob joins on his own with the token.
	s, wait := startShowArgs(t, ctx, "--home", homeA, "--socket", sock, "--loopback", "--listen", "127.0.0.1:0", "--timeout", "60s")
	code, out, errs := runPairCmd(ctx, "--loopback", "--home", homeB, "--insecure-plaintext", "--no-agent", "--json", s.token)
	if code != 0 {
		t.Fatalf("joining side: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	var res client.PairResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("pair --json: %v\n%s", err, out)
	}
	if res.Name != "alice" || res.UUID != alice.UUID.String() || res.Method != "qr" || res.Fingerprint != keystore.Fingerprint(alice.CurveKey) {
		t.Errorf("pair --json: %+v", res)
	}
	codeA, outA, errA := wait()
	if codeA != 0 || !strings.Contains(outA, "paired with \"") || !strings.Contains(outA, "recorded as verified in the agent's trust store") ||
		!strings.Contains(errA, "pairing through the agent alice") {
		t.Fatalf("showing side: exit %d\nstdout:\n%s\nstderr:\n%s", codeA, outA, errA)
	}
	checkQR(t, s.lines, s.token)
	verifiedIn(t, homeA, "qr")

	// Carol shows on her own; the agent joins by the short code, and the
	// comparison is shown here (stderr with --json: stdout is the JSON).
	s, wait = startShow(t, ctx, homeC)
	code, out, errs = runPairCmd(ctx, "--home", homeA, "--socket", sock, "--loopback", "--code", s.code, "--peer", s.endpoint, "--json", "--yes")
	if code != 0 {
		t.Fatalf("joining side: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("pair --json: %v\n%s", err, out)
	}
	codeC, outC, errC := wait()
	if codeC != 0 {
		t.Fatalf("showing side: exit %d\nstdout:\n%s\nstderr:\n%s", codeC, outC, errC)
	}
	if res.Method != "code" || !strings.Contains(outC, "comparison number: "+res.Comparison) || !strings.Contains(errs, "comparison number: "+res.Comparison) {
		t.Fatalf("comparison: result %+v\nagent side stderr:\n%s\ncarol's stdout:\n%s", res, errs, outC)
	}
	verifiedIn(t, homeC, "code")

	// --timeout means what it means without an agent: a long one is no
	// protocol error (the pairing cannot outlive its token anyway), and
	// one of 0 or less is a usage error, not the agent's default.
	code, _, errs = runPairCmd(ctx, "--home", homeA, "--socket", sock, "--loopback", "--code", "1234-5678-9012", "--peer", "127.0.0.1:1", "--timeout", "2h")
	if code != 1 || !strings.Contains(errs, "the showing device did not answer") || strings.Contains(errs, "timeout_ms") {
		t.Fatalf("pair --timeout 2h through the agent: exit %d\n%s", code, errs)
	}
	for _, d := range []string{"0", "-1s", "100us"} {
		code, _, errs = runPairCmd(ctx, "--home", homeA, "--socket", sock, "--loopback", "--code", "1234-5678-9012", "--peer", "127.0.0.1:1", "--timeout", d)
		if code != 2 || !strings.Contains(errs, "--timeout") {
			t.Fatalf("pair --timeout %s through the agent: exit %d\n%s", d, code, errs)
		}
	}

	// --socket insists on that agent: another home is an error.
	code, _, errs = runPairCmd(ctx, "--home", homeB, "--socket", sock, "--loopback", "--code", "1234-5678-9012")
	if code != 2 || !strings.Contains(errs, "serves the home") {
		t.Fatalf("pair --socket with another home: exit %d\n%s", code, errs)
	}
}

// runCmdOut runs a zyre command in-process.
func runCmdOut(ctx context.Context, args ...string) (int, string, string) {
	var out, errb lockedBuffer
	code := run(ctx, pairEnv(&out, &errb), args)
	return code, out.String(), errb.String()
}
