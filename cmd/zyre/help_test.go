package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// Every command's --help (and zyre help CMD, and each subcommand's) is
// output: stdout, exit 0, nothing on stderr; it says what the command does
// in a paragraph after the synopsis, and shows flags as --flag (usertry
// #8).
func TestEveryHelp(t *testing.T) {
	var lines [][]string
	for name := range commands() {
		if name == "version" {
			continue
		}
		lines = append(lines, []string{name, "--help"}, []string{"help", name})
	}
	for _, sub := range []string{"keys init", "keys show", "keys export", "keys import", "keys passwd", "keys rotate",
		"trust list", "trust show", "trust revoke", "trust unrevoke", "trust forget", "trust accept", "trust log", "trust policy",
		"stream send", "stream recv"} {
		lines = append(lines, append(strings.Fields(sub), "--help"))
	}
	for _, args := range lines {
		var out, errb bytes.Buffer
		env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		code := run(context.Background(), env, args)
		text := out.String()
		if code != 0 || errb.Len() > 0 || !strings.HasPrefix(text, "usage:") {
			t.Errorf("%q: exit %d, stdout:\n%s\nstderr:\n%s", args, code, text, errb.String())
			continue
		}
		// A paragraph: a blank line, then a line of words, before the
		// flags.
		head, _, _ := strings.Cut(text, "\nflags:\n")
		if !strings.Contains(head, "\n\n") {
			t.Errorf("%q: no description paragraph:\n%s", args, text)
		}
		for _, l := range strings.Split(text, "\n") {
			if strings.HasPrefix(l, "  -") && !strings.HasPrefix(l, "  --") {
				t.Errorf("%q: a flag shown with one dash: %q", args, l)
			}
		}
	}
}
