package main

import (
	"fmt"
	"io"
	"time"
)

// pendingLines keeps, in order, the lines a chat reads while nobody is
// there to read them (no peer in the group, or in a private chat no
// trusted member), within chatPendingLines and chatPendingBytes. The
// chat's goroutine owns it.
type pendingLines struct {
	stderr io.Writer
	group  string
	who    string // whom the lines wait for: "peer", "trusted member"
	lines  []string
	size   int
	told   bool // the user was told that lines wait
}

// waiting is the number of lines that wait.
func (p *pendingLines) waiting() int { return len(p.lines) }

// add keeps a line, within bounds; the first one kept tells the user, a
// line beyond the bounds is dropped with a word.
func (p *pendingLines) add(l string) {
	if len(p.lines) >= chatPendingLines || p.size+len(l) > chatPendingBytes {
		fmt.Fprintf(p.stderr, "zyre: nobody is listening: no %s in %q; line dropped (%d lines wait already)\n", p.who, p.group, len(p.lines))
		return
	}
	p.lines = append(p.lines, l)
	p.size += len(l)
	if !p.told {
		p.told = true
		fmt.Fprintf(p.stderr, "zyre: no %s in %q yet: your lines wait (up to %d) and go out when one joins\n", p.who, p.group, chatPendingLines)
	}
}

// flush sends the waiting lines in order. On an error the lines not sent
// still wait.
func (p *pendingLines) flush(send func(string) error) error {
	for len(p.lines) > 0 {
		l := p.lines[0]
		if err := send(l); err != nil {
			return err
		}
		p.lines = p.lines[1:]
		p.size -= len(l)
	}
	p.lines, p.size, p.told = nil, 0, false
	return nil
}

// atEOF tells the user that stdin ended with lines waiting for wait.
func (p *pendingLines) atEOF(wait time.Duration) {
	fmt.Fprintf(p.stderr, "zyre: waiting up to %s for a %s to send %d line(s) to\n", wait, p.who, len(p.lines))
}

// nobody is the chat's error when nobody came within wait of stdin's end.
func (p *pendingLines) nobody(wait time.Duration) error {
	return fmt.Errorf("chat: nobody is listening: no %s joined %q within %s; %d line(s) not sent", p.who, p.group, wait, len(p.lines))
}
