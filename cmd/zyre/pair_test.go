package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"rsc.io/qr"

	"github.com/zyre-go/zyre/pairing"
	"github.com/zyre-go/zyre/trust"
)

// lockedBuffer is a bytes.Buffer safe for a command's goroutine and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// Bytes returns a copy of what was written so far.
func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

func (l *lockedBuffer) String() string { return string(l.Bytes()) }

func pairEnv(stdout io.Writer, stderr io.Writer) *cliEnv {
	return &cliEnv{stdin: strings.NewReader(""), stdout: stdout, stderr: stderr, getenv: func(string) string { return "" }}
}

// shown is what "zyre pair" printed before a device joined.
type shown struct {
	lines                 []string
	token, code, endpoint string
}

// startShow runs "zyre pair" in the background until it has printed its
// token; wait returns its exit status and whole output.
func startShow(t *testing.T, ctx context.Context, home string) (shown, func() (int, string, string)) {
	t.Helper()
	return startShowArgs(t, ctx, "--home", home, "--insecure-plaintext", "--loopback", "--listen", "127.0.0.1:0", "--timeout", "60s", "--yes")
}

// startShowArgs is startShow with the arguments of "zyre pair" given.
func startShowArgs(t *testing.T, ctx context.Context, args ...string) (shown, func() (int, string, string)) {
	t.Helper()
	pr, pw := io.Pipe()
	var stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, pairEnv(pw, &stderr), append([]string{"pair"}, args...))
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var s shown
	for s.endpoint == "" && sc.Scan() {
		line := sc.Text()
		s.lines = append(s.lines, line)
		switch {
		case strings.HasPrefix(line, "token: "):
			s.token = strings.TrimPrefix(line, "token: ")
		case strings.HasPrefix(line, "code: "):
			s.code = strings.TrimPrefix(line, "code: ")
		case strings.HasPrefix(line, "code endpoint: "):
			s.endpoint = strings.TrimPrefix(line, "code endpoint: ")
		}
	}
	if s.endpoint == "" {
		pr.Close()
		t.Fatalf("zyre pair printed no token; exit %d; stderr:\n%s", <-done, stderr.String())
	}
	rest := make(chan string, 1)
	go func() {
		var b strings.Builder
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
		}
		io.Copy(io.Discard, pr)
		rest <- b.String()
	}()
	return s, func() (int, string, string) {
		code := <-done
		return code, <-rest, stderr.String()
	}
}

func runPairCmd(ctx context.Context, args ...string) (int, string, string) {
	var out, errb lockedBuffer
	code := run(ctx, pairEnv(&out, &errb), append([]string{"pair"}, args...))
	return code, out.String(), errb.String()
}

func verifiedIn(t *testing.T, home, method string) trust.Record {
	t.Helper()
	st, err := trust.Open(home, trust.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := st.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].State != trust.StateVerified || rs[0].VerifiedMethod != method {
		t.Fatalf("trust records in %s: %+v, want one verified by %s", home, rs, method)
	}
	return rs[0]
}

func TestPairCLIQR(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	homeA, homeB := t.TempDir(), t.TempDir()
	s, wait := startShow(t, ctx, homeA)
	code, out, errs := runPairCmd(ctx, "--loopback", "--home", homeB, "--insecure-plaintext", s.token)
	if code != 0 || !strings.Contains(out, "paired with") || !strings.Contains(out, "method      qr") {
		t.Fatalf("joining side: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	codeA, outA, errA := wait()
	if codeA != 0 || !strings.Contains(outA, "paired with") {
		t.Fatalf("showing side: exit %d\nstdout:\n%s\nstderr:\n%s", codeA, outA, errA)
	}
	ra, rb := verifiedIn(t, homeA, "qr"), verifiedIn(t, homeB, "qr")
	if !strings.Contains(outA, ra.Fingerprint) || !strings.Contains(out, rb.Fingerprint) {
		t.Fatal("the fingerprints printed are not the recorded ones")
	}

	// The QR code printed decodes, module for module, to the token.
	checkQR(t, s.lines, s.token)

	// The token works once.
	code, _, errs = runPairCmd(ctx, "--loopback", "--home", t.TempDir(), "--insecure-plaintext", "--timeout", "10s", s.token)
	if code != 1 || !strings.Contains(errs, "zyre: the showing device did not answer: ") || strings.Contains(errs, "pairing:") {
		t.Fatalf("reused token: exit %d, stderr %q", code, errs)
	}
}

func TestPairCLICode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	homeA, homeB := t.TempDir(), t.TempDir()
	s, wait := startShow(t, ctx, homeA)
	code, out, errs := runPairCmd(ctx, "--loopback", "--home", homeB, "--insecure-plaintext", "--code", s.code, "--peer", s.endpoint, "--yes")
	if code != 0 || !strings.Contains(out, "method      code") {
		t.Fatalf("joining side: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	codeA, outA, errA := wait()
	if codeA != 0 {
		t.Fatalf("showing side: exit %d\nstdout:\n%s\nstderr:\n%s", codeA, outA, errA)
	}
	num := func(s string) string {
		_, after, ok := strings.Cut(s, "comparison number: ")
		if !ok || len(after) < 6 {
			t.Fatalf("no comparison number in\n%s", s)
		}
		return after[:6]
	}
	if num(out) != num(outA) {
		t.Fatalf("comparison numbers differ: %s and %s", num(out), num(outA))
	}
	verifiedIn(t, homeA, "code")
	verifiedIn(t, homeB, "code")
}

func TestPairCLIUsage(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--peer", "127.0.0.1:1"}, 2, "--peer goes with --code"},
		{[]string{"--code", "12", "--peer", "127.0.0.1:1"}, 2, "bad short code"},
		{[]string{"A", "B"}, 2, "more than one TOKEN"},
		// A bad token is a usage error, said before any passphrase
		// (usertry #13).
		{[]string{"--home", "", "--insecure-plaintext", "ZYRE:AAAA"}, 2, "zyre: not a pairing token"},
		{[]string{"--nope"}, 2, "flag provided but not defined"},
	} {
		if len(tc.args) > 1 && tc.args[0] == "--home" {
			tc.args[1] = t.TempDir()
		}
		code, _, errs := runPairCmd(ctx, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("zyre pair %q: exit %d, stderr %q; want exit %d and %q", tc.args, code, errs, tc.code, tc.want)
		}
	}
	code, _, errs := runPairCmd(ctx, "--loopback", "--home", t.TempDir(), "--timeout", "1s")
	if code != 1 || !strings.Contains(errs, "keys init") {
		t.Errorf("no identity: exit %d, stderr %q", code, errs)
	}
}

// checkQR reads the half-block QR code among lines (qrterminal's default
// characters: "█" light over light, " " dark over dark, "▀" light over
// dark, "▄" dark over light) and compares every module with what rsc.io/qr
// (the encoder qrterminal uses) makes of text, and the quiet zone.
func checkQR(t *testing.T, lines []string, text string) {
	t.Helper()
	var rows [][]bool // true = dark
	for _, l := range lines {
		if l == "" || strings.Trim(l, "█▀▄ ") != "" {
			if rows != nil {
				break
			}
			continue
		}
		top, bottom := []bool{}, []bool{}
		for _, r := range l {
			switch r {
			case '█':
				top, bottom = append(top, false), append(bottom, false)
			case ' ':
				top, bottom = append(top, true), append(bottom, true)
			case '▀':
				top, bottom = append(top, false), append(bottom, true)
			case '▄':
				top, bottom = append(top, true), append(bottom, false)
			}
		}
		rows = append(rows, top, bottom)
	}
	code, err := qr.Encode(text, qr.M)
	if err != nil {
		t.Fatal(err)
	}
	const quiet = 2
	if len(rows) < code.Size+2*quiet {
		t.Fatalf("QR has %d pixel rows, want at least %d", len(rows), code.Size+2*quiet)
	}
	dark := 0
	for y := 0; y < code.Size+2*quiet; y++ {
		for x := 0; x < code.Size+2*quiet; x++ {
			if x >= len(rows[y]) {
				t.Fatalf("row %d has %d columns, want %d", y, len(rows[y]), code.Size+2*quiet)
			}
			cx, cy := x-quiet, y-quiet
			want := cx >= 0 && cy >= 0 && cx < code.Size && cy < code.Size && code.Black(cx, cy)
			if rows[y][x] != want {
				t.Fatalf("module (%d,%d): dark=%v, want %v", cx, cy, rows[y][x], want)
			}
			if want {
				dark++
			}
		}
	}
	if dark == 0 {
		t.Fatal("empty QR code")
	}
	// And the text encoded is a token that parses.
	if _, err := pairing.ParseToken(text); err != nil {
		t.Fatal(err)
	}
}
