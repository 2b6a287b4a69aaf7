package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Not a terminal: the bar's frames become plain lines, the first at once,
// then at most every minLineEvery, the last at the end; never a \r
// (usertry #12).
func TestProgressLinesWithoutTerminal(t *testing.T) {
	var errb bytes.Buffer
	env := &cliEnv{stdout: &bytes.Buffer{}, stderr: &errb, getenv: func(string) string { return "" }}
	p := newProgress(env, "sending", 4<<20, time.Nanosecond)
	if p.bar == nil || p.lines == nil {
		t.Fatal("no bar, or no lines on a buffer")
	}
	clock := time.Now()
	p.lines.now = func() time.Time { return clock }
	for range 3 { // within the interval of the first line: none
		clock = clock.Add(time.Second)
		p.add(make([]byte, 1<<20))
	}
	clock = clock.Add(minLineEvery)
	p.add(make([]byte, 1<<19)) // 3.5 MiB, a line
	p.add(make([]byte, 1<<19)) // 4 MiB, too soon
	p.done()                   // the last one
	got := errb.String()
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if strings.Contains(got, "\r") || len(lines) != 3 {
		t.Fatalf("want 3 lines without \\r:\n%q", got)
	}
	for i, re := range []string{`^zyre: sending +0% \|.*\( ?0 B/4\.0 MiB`, `^zyre: sending +[1-9]\d% \|.*\(\d\.\d/4\.0 MiB`, `^zyre: sending +100% \|.*\(4\.0/4\.0 MiB`} {
		if !regexp.MustCompile(re).MatchString(lines[i]) {
			t.Errorf("line %d: %q, want %s", i, lines[i], re)
		}
	}
	tb := newTransferBar(env, "receiving", 10, time.Second)
	if tb.bar == nil || tb.lines == nil {
		t.Fatal("no transfer bar lines on a buffer")
	}
}
