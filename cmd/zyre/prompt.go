package main

// The passphrase prompt on a terminal: echo off before the prompt is
// written, and the terminal's state restored on every way out, SIGINT
// included (main exits 130 at once when a signal comes during a prompt:
// term.ReadPassword cannot be cancelled, and os.Exit skips deferred
// calls).

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/term"
)

// activePrompt is the terminal state to restore while a prompt reads, or
// nil. promptMu orders a prompt's start (its state saved, echo off) and
// restorePrompt: a signal never restores before echo goes off.
var (
	activePrompt atomic.Pointer[promptState]
	promptMu     sync.Mutex
)

type promptState struct {
	fd    int
	state *term.State
}

// restorePrompt restores the terminal of a prompt that is reading, if
// any, and reports whether there was one. main calls it on SIGINT, and
// exits when it reports true: then no prompt starts any more (promptMu
// stays held).
func restorePrompt(w io.Writer) bool {
	promptMu.Lock()
	p := activePrompt.Swap(nil)
	if p == nil {
		promptMu.Unlock()
		return false
	}
	term.Restore(p.fd, p.state)
	fmt.Fprintln(w) // the line the prompt left open
	return true
}

// readSecret writes prompt to w and reads a line from the terminal fd
// without echo. Echo goes off before the prompt shows, so nothing typed
// after the prompt appears can be echoed.
func readSecret(fd int, w io.Writer, prompt string) ([]byte, error) {
	old, err := term.GetState(fd)
	if err != nil {
		return nil, fmt.Errorf("failed to read the passphrase: %w", err)
	}
	promptMu.Lock()
	activePrompt.Store(&promptState{fd: fd, state: old})
	err = echoOff(fd)
	promptMu.Unlock()
	defer func() {
		if activePrompt.Swap(nil) != nil {
			term.Restore(fd, old)
		}
	}()
	if err != nil {
		return nil, fmt.Errorf("failed to read the passphrase: %w", err)
	}
	fmt.Fprint(w, prompt+": ")
	// Not term.ReadPassword: it sets the terminal's state itself once
	// it runs, which could undo restorePrompt's restore.
	p, err := readLine(fd)
	fmt.Fprintln(w)
	if err != nil {
		return nil, fmt.Errorf("failed to read the passphrase: %w", err)
	}
	return p, nil
}

var errNoEcho = errors.New("cannot turn the terminal's echo off")

// readLine reads one line from fd (a terminal in canonical mode, which
// edits the line) without its end; EOF after some text ends the line too.
func readLine(fd int) ([]byte, error) {
	var line []byte
	var b [1]byte
	for {
		n, err := readFd(fd, b[:])
		if n > 0 {
			switch b[0] {
			case '\n':
				return line, nil
			case '\r':
				// a terminal without ICRNL
				return line, nil
			default:
				if len(line) >= 4096 {
					return nil, errors.New("the passphrase is longer than 4096 octets")
				}
				line = append(line, b[0])
			}
			continue
		}
		if err != nil {
			if err == io.EOF && len(line) > 0 {
				return line, nil
			}
			return nil, err
		}
		if n == 0 {
			if len(line) > 0 {
				return line, nil
			}
			return nil, io.EOF
		}
	}
}

// askYes asks question (with " [y/N] ") on env.stderr and reads the answer
// from env.stdin: yes for "y" or "yes". ctx ending (Ctrl-C) ends the
// question with ctx's error; the line read meanwhile is left unread.
func askYes(ctx context.Context, env *cliEnv, question string) (bool, error) {
	fmt.Fprintf(env.stderr, "%s [y/N] ", question)
	answer := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(env.stdin).ReadString('\n')
		answer <- line
	}()
	select {
	case line := <-answer:
		a := strings.ToLower(strings.TrimSpace(line))
		return a == "y" || a == "yes", nil
	case <-ctx.Done():
		fmt.Fprintln(env.stderr)
		return false, ctx.Err()
	}
}
