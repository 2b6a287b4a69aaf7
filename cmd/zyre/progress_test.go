package main

import (
	"bytes"
	"testing"
	"time"
)

// Not a terminal (a log, a file): no bar and no spinner, only plain lines
// ("zyre: sending: 3.5 MiB of 4.0 MiB (87%)"), at most every interval
// (minLineEvery unless --progress says) and none at the end (the command's summary says it); never
// a \r (usertry #12, usertry3 #11).
func TestProgressLinesWithoutTerminal(t *testing.T) {
	var errb bytes.Buffer
	env := &cliEnv{stdout: &bytes.Buffer{}, stderr: &errb, getenv: func(string) string { return "" }}
	p := newProgress(env, "sending", 4<<20, minLineEvery)
	if p.bar != nil || p.lines == nil {
		t.Fatal("a bar, or no lines, on a buffer")
	}
	clock := time.Now()
	p.lines.now = func() time.Time { return clock }
	p.lines.last = clock
	for range 3 { // within the interval: none
		clock = clock.Add(time.Second)
		p.add(make([]byte, 1<<20))
	}
	clock = clock.Add(minLineEvery)
	p.add(make([]byte, 1<<19)) // 3.5 MiB, a line
	p.add(make([]byte, 1<<19)) // 4 MiB, too soon
	p.done()                   // nothing more
	got := errb.String()
	if got != "zyre: sending: 3.5 MiB of 4.0 MiB (87%)\n" {
		t.Fatalf("got %q", got)
	}
	// unknown size, through a transfer bar
	errb.Reset()
	u := newProgress(env, "receiving", -1, minLineEvery)
	u.lines.now = func() time.Time { return clock }
	clock = clock.Add(minLineEvery)
	u.add(make([]byte, 3<<20))
	u.done()
	tb := newTransferBar(env, "receiving", 10<<20, minLineEvery)
	if tb.bar != nil || tb.lines == nil {
		t.Fatal("a transfer bar, or no lines, on a buffer")
	}
	tb.lines.now = func() time.Time { return clock }
	clock = clock.Add(minLineEvery)
	tb.set(5<<20, 10<<20)
	tb.done()
	if got := errb.String(); got != "zyre: receiving: 3.0 MiB\nzyre: receiving: 5.0 MiB of 10.0 MiB (50%)\n" {
		t.Fatalf("got %q", got)
	}
}
