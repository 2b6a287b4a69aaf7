package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A receiver that joins a live stream late: with --live it is normal
// (exit 0, the summary says what it missed); without, the output lacks the
// stream's beginning, which is an error that points to --live.
func TestStreamLateJoin(t *testing.T) {
	for _, tc := range []struct {
		name     string
		live     bool
		wantCode int
		want     []string
	}{
		{"live", true, 0, []string{"; the stream ended; joined late: the first 40000 octets were sent before\n"}},
		{"not live", false, 1, []string{"joined the stream late: its first 40000 octets were sent before",
			"zyre: stream: the output lacks the first 40000 octets: this receiver joined the stream late\n",
			"zyre: hint: with --live, joining a stream late is normal\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			homeA, homeB, port := streamPeers(t)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			in, feed := io.Pipe()
			defer feed.Close()
			send := startStreamCmdReader(ctx, in, "stream", "send", "g", "--live", "--loopback", "--port", port, "--home", homeA, "--progress", "0", "--chunk", "1000")
			// Two writes: when the second returns, the send has taken
			// the first (it reads one chunk ahead), before bob exists.
			for range 2 {
				if _, err := feed.Write(make([]byte, 20_000)); err != nil {
					t.Fatal(err)
				}
			}
			args := []string{"stream", "recv", "g", "--loopback", "--port", port, "--home", homeB, "--progress", "0"}
			if tc.live {
				args = append(args, "--live")
			}
			recv, bob := startStreamCmdLive(ctx, nil, args...)
			awaitOutput(t, "bob reading alice's stream", func() bool { return strings.Contains(bob.stderr.String(), "reading the stream of alice") })
			if _, err := feed.Write(make([]byte, 20_000)); err != nil {
				t.Fatal(err)
			}
			feed.Close()
			s := waitStreamCmd(t, "stream send", send)
			r := waitStreamCmd(t, "stream recv", recv)
			if s.code != 0 {
				t.Fatalf("send exit %d, stderr:\n%s", s.code, s.stderr)
			}
			if r.code != tc.wantCode || len(r.stdout.Bytes()) != 20_000 {
				t.Fatalf("recv exit %d with %d octets, want %d with 20000; stderr:\n%s", r.code, len(r.stdout.Bytes()), tc.wantCode, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr.String(), w) {
					t.Errorf("recv stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if !strings.Contains(s.stderr.String(), `(live): 58.6 KiB (60000 octets) in `) {
				t.Errorf("send stderr:\n%s", s.stderr)
			}
		})
	}
}

// stream send GROUP FILE: the progress bar knows the size (total,
// percentage, time left); both summaries give the same SHA-256.
func TestStreamSendFile(t *testing.T) {
	homeA, homeB, port := streamPeers(t)
	data := make([]byte, 300_000)
	for i := range data {
		data[i] = byte(i*13 + i/509)
	}
	file := filepath.Join(t.TempDir(), "video.bin")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	recv := startStreamCmd(ctx, nil, "stream", "recv", "g", "--loopback", "--port", port, "--home", homeB, "--progress", "0")
	send := startStreamCmd(ctx, nil, "stream", "send", "--loopback", "g", file, "--port", port, "--home", homeA, "--progress", "1ms", "--chunk", "1000")
	s := waitStreamCmd(t, "stream send", send)
	r := waitStreamCmd(t, "stream recv", recv)
	if s.code != 0 || r.code != 0 || string(r.stdout.Bytes()) != string(data) {
		t.Fatalf("send exit %d, stderr:\n%s\nrecv exit %d with %d octets, stderr:\n%s", s.code, s.stderr, r.code, len(r.stdout.Bytes()), r.stderr)
	}
	for _, re := range []string{`zyre: sending: [\d.]+ (B|KiB) of 293\.0 KiB \(\d+%\)\n`} { // plain lines: stderr is no terminal
		if !regexp.MustCompile(re).MatchString(s.stderr.String()) {
			t.Errorf("send stderr lacks %s:\n%q", re, s.stderr)
		}
	}
	sum := regexp.MustCompile(`sha256 ([0-9a-f]{64})`)
	a, b := sum.FindStringSubmatch(s.stderr.String()), sum.FindStringSubmatch(r.stderr.String())
	if a == nil || b == nil || a[1] != b[1] {
		t.Errorf("sha256 of send %v, of recv %v", a, b)
	}
	// A missing file fails before a node starts.
	var errb strings.Builder
	env := &cliEnv{stdin: strings.NewReader(""), stdout: io.Discard, stderr: &errb, getenv: func(string) string { return "" }}
	if code := run(ctx, env, []string{"stream", "send", "g", filepath.Join(t.TempDir(), "nope"), "--home", homeA, "--loopback"}); code != 1 || !strings.Contains(errb.String(), "no such file") || strings.Contains(errb.String(), "secure mode") {
		t.Errorf("missing file: exit %d, stderr:\n%s", code, errb.String())
	}
}
