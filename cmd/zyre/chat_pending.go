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
	who    string        // whom the lines wait for: "peer", "trusted member"
	wait   time.Duration // how long lines wait after stdin's end
	lines  []string
	size   int
	told   bool      // the user was told that lines wait
	eofAt  time.Time // stdin's end, while lines wait
}

// line takes l, a line read from stdin: an empty one is passed over; it
// waits while others wait or while nobody is there to read it (present
// false); else it goes out with send (its error).
func (p *pendingLines) line(l string, present bool, send func(string) error) error {
	if l == "" {
		return nil
	}
	if p.waiting() > 0 || !present {
		p.add(l)
		return nil
	}
	return send(l)
}

// stdinEnd takes the end of stdin (err, nil at EOF): done, the chat may
// end, when no line waits; else the lines wait up to p.wait (expired).
func (p *pendingLines) stdinEnd(err error) (done bool, _ error) {
	if err != nil {
		return false, fmt.Errorf("reading stdin: %w", err)
	}
	if p.waiting() == 0 {
		return true, nil
	}
	p.eofAt = time.Now()
	p.atEOF()
	return false, nil
}

// release sends the waiting lines once somebody is there to read them
// (present); done, the chat may end, when they were sent after stdin's
// end.
func (p *pendingLines) release(present bool, send func(string) error) (done bool, _ error) {
	if !present || p.waiting() == 0 {
		return false, nil
	}
	if err := p.flush(send); err != nil {
		return false, err
	}
	return p.stdinEnded(), nil
}

// stdinEnded reports whether stdin ended while lines waited.
func (p *pendingLines) stdinEnded() bool { return !p.eofAt.IsZero() }

// expired is the chat's error once stdin ended p.wait ago with lines still
// waiting for nobody; else nil.
func (p *pendingLines) expired() error {
	if p.stdinEnded() && time.Since(p.eofAt) >= p.wait {
		return p.nobody()
	}
	return nil
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

// atEOF tells the user that stdin ended with lines waiting for p.wait.
func (p *pendingLines) atEOF() {
	fmt.Fprintf(p.stderr, "zyre: waiting up to %s for a %s to send %d line(s) to\n", p.wait, p.who, len(p.lines))
}

// nobody is the chat's error when nobody came within p.wait of stdin's
// end.
func (p *pendingLines) nobody() error {
	err := fmt.Errorf("chat: nobody is listening: no %s joined %q within %s; %d line(s) not sent", p.who, p.group, p.wait, len(p.lines))
	p.lines, p.size = nil, 0 // said here: not again by unsent
	return err
}

// unsent tells the user, when the chat ends with lines still waiting
// (Ctrl-C, the agent stopping, a send that failed), that they were not
// sent: they were shown as typed, and nothing else would say so.
func (p *pendingLines) unsent() {
	if len(p.lines) > 0 {
		fmt.Fprintf(p.stderr, "zyre: %d line(s) not sent: no %s in %q read them before the chat ended\n", len(p.lines), p.who, p.group)
	}
}
