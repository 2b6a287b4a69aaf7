package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/creack/pty"
)

// stream recv refuses to write its binary stream to a terminal (usertry
// #12), before it starts anything; a file or pipe takes it.
func TestStreamRecvRefusesTerminal(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skip("no pty:", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	var errb bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: tty, stderr: &errb, getenv: func(string) string { return "" }}
	code := run(context.Background(), env, []string{"stream", "recv", "g", "--loopback", "--home", t.TempDir()})
	want := "zyre: refusing to write the stream (binary) to the terminal\nzyre: hint: redirect stdout to a file or a pipe"
	if code != 2 || !strings.HasPrefix(errb.String(), want) {
		t.Fatalf("exit %d, stderr:\n%s", code, errb.String())
	}
	if err := binaryToTerminal(&cliEnv{stdout: &bytes.Buffer{}}); err != nil {
		t.Fatalf("a buffer taken for a terminal: %v", err)
	}
}
