package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
)

// TestProgressBarStopsWhereItWas: on a terminal, the bar of a stream cut
// part-way (Ctrl-C) ends where it was, not drawn at 100% with the whole
// size just before "interrupted after 25.0 MiB" (usertry5 #3); a stream
// that passed whole ends at 100%.
func TestProgressBarStopsWhereItWas(t *testing.T) {
	for _, c := range []struct {
		name     string
		chunks   int
		want     string
		unwanted string
	}{
		{"cut", 25, "26%", "100%"},
		{"whole", 95, "100%", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			ptmx, tty, err := pty.Open()
			if err != nil {
				t.Skip("no pty:", err)
			}
			defer ptmx.Close()
			out := make(chan []byte, 1)
			go func() {
				var b bytes.Buffer
				io.Copy(&b, ptmx) // until tty is closed
				out <- b.Bytes()
			}()
			env := &cliEnv{stdout: &bytes.Buffer{}, stderr: tty, getenv: func(string) string { return "" }}
			p := newProgress(env, "sending", 95<<20, time.Nanosecond)
			if p.bar == nil {
				t.Fatal("no bar on a terminal")
			}
			for range c.chunks {
				p.add(make([]byte, 1<<20))
			}
			p.done()
			tty.Close()
			var got []byte
			select {
			case got = <-out:
			case <-time.After(30 * time.Second):
				t.Fatal("the terminal's output did not end")
			}
			// The last drawing, after the last \r.
			text := string(got)
			last := strings.TrimRight(text[strings.LastIndex(strings.TrimRight(text, "\r\n"), "\r")+1:], "\r\n")
			if !strings.Contains(last, c.want) || c.unwanted != "" && strings.Contains(text, c.unwanted) {
				t.Fatalf("last drawing %q (want %s, not %q anywhere); all:\n%q", last, c.want, c.unwanted, text)
			}
		})
	}
}
