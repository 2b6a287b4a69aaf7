package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// Not a terminal: plain progress lines at most every minLineEvery, never
// a \r frame (usertry #12).
func TestProgressLinesWithoutTerminal(t *testing.T) {
	var errb bytes.Buffer
	env := &cliEnv{stdout: &bytes.Buffer{}, stderr: &errb, getenv: func(string) string { return "" }}
	for _, tc := range []struct {
		size int64
		want string
	}{
		{4 << 20, "zyre: sending: 2.0 MiB of 4.0 MiB (50%), "},
		{-1, "zyre: sending: 2.0 MiB, "},
	} {
		errb.Reset()
		p := newProgress(env, "sending", tc.size, 100*time.Millisecond)
		if p.bar != nil || p.lines == nil {
			t.Fatal("a bar on a buffer")
		}
		clock := p.lines.start
		p.lines.now = func() time.Time { return clock }
		p.add(make([]byte, 1<<20))
		clock = clock.Add(minLineEvery - time.Millisecond)
		p.add(make([]byte, 1<<20)) // too soon: no line
		if errb.Len() != 0 {
			t.Fatalf("a line before %v: %q", minLineEvery, errb.String())
		}
		clock = clock.Add(time.Millisecond)
		p.lines.update(p.total, tc.size)
		p.done()
		if got := errb.String(); !strings.HasPrefix(got, tc.want) || strings.Count(got, "\n") != 1 || strings.Contains(got, "\r") {
			t.Errorf("size %d: %q, want one line starting %q", tc.size, got, tc.want)
		}
	}
	tb := newTransferBar(env, "receiving", 10, time.Second)
	if tb.bar != nil || tb.lines == nil {
		t.Fatal("a transfer bar on a buffer")
	}
}
