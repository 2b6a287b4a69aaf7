package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

func TestErrorText(t *testing.T) {
	base := errors.New("pairing: short code already used")
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("pairing: %w (one attempt per code)", base), "zyre: pairing: short code already used (one attempt per code)\n"},
		{fmt.Errorf("%w: unknown command %q", errUsage, "x"), "zyre: unknown command \"x\"\n"},
		{withHint(withHint(errors.New(`keystore: no identity: f does not exist (run "zyre keys init")`), "run it"), "run it"),
			"zyre: keystore: no identity: f does not exist\nzyre: hint: run it\n"},
		{withHint(fmt.Errorf("outer: %w", withHint(errors.New("inner"), "b")), "a"), "zyre: outer: inner\nzyre: hint: a\nzyre: hint: b\n"},
		// Only a whole repeated word is said once; a repeated phrase at the
		// end is content.
		{errors.New("a: b: b"), "zyre: a: b: b\n"},
		// Text from a peer or the agent (a REJECT's reason, a DONE's
		// error) reaches the terminal without its escapes or line breaks.
		{errors.New("transfer: the receiver: \x1b]0;pwned\x07\x1b[2Jgone\nzyre: received 1 file\u202e\u009b"),
			`zyre: transfer: the receiver: \x1b]0;pwned\a\x1b[2Jgone` + "\n  " + `zyre: received 1 file\u202e\u009b` + "\n"},
		{withHint(errors.New("e"), "hint\x1b[1m"), "zyre: e\nzyre: hint: hint" + `\x1b` + "[1m\n"},
		{errors.New("photos/été 2026.jpg: 日本"), "zyre: photos/été 2026.jpg: 日本\n"},
	} {
		var b strings.Builder
		printError(&b, tc.err)
		if b.String() != tc.want {
			t.Errorf("%v:\n got %q\nwant %q", tc.err, b.String(), tc.want)
		}
	}
}

func TestParseFlagsAnywhere(t *testing.T) {
	for _, tc := range []struct {
		args []string
		pos  string
		n    int
	}{
		{[]string{"a", "--n", "3", "b"}, "a b", 3},
		{[]string{"--n=3", "a", "b"}, "a b", 3},
		{[]string{"a", "b", "-n", "3"}, "a b", 3},
		{[]string{"a", "--", "-n", "3"}, "a -n 3", 0},
	} {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		n := fs.Int("n", 0, "")
		env := &cliEnv{stderr: io.Discard}
		pos, err := parseFlags(env, fs, "", tc.args)
		if err != nil || strings.Join(pos, " ") != tc.pos || *n != tc.n {
			t.Errorf("%q: %q, n=%d, %v", tc.args, pos, *n, err)
		}
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.Int("n", 0, "a `number`")
	var help strings.Builder
	if _, err := parseFlags(&cliEnv{stdout: &help}, fs, "usage: x [flags] ARG", []string{"a", "--help"}); !errors.Is(err, flag.ErrHelp) ||
		!strings.Contains(help.String(), "usage: x [flags] ARG\n\nflags:\n  --n number") {
		t.Errorf("--help: %v\n%s", err, help.String())
	}
	if _, err := parseFlags(&cliEnv{stderr: io.Discard}, fs, "", []string{"--frob"}); !errors.Is(err, errUsage) {
		t.Errorf("bad flag: %v", err)
	}
}

// TestNotifyLineEscaped: a transfer's news names the peer by the name it
// chose, which reaches the terminal escaped. Not on a terminal (no bar to
// leave) it is one line, without a blank one before it.
func TestNotifyLineEscaped(t *testing.T) {
	var b strings.Builder
	env := &cliEnv{stderr: &b}
	notifyLine(env)("evil\x1b[2J\rzyre: received went away")
	if want := "zyre: evil\\x1b[2J\\rzyre: received went away\n"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

// TestInterruptedSaysSo: a command whose context ends (main cancels it on
// SIGINT, then exits 130) says "interrupted", not "context canceled".
func TestInterruptedSaysSo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb strings.Builder
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	if code := run(ctx, env, []string{"members", "--no-agent", "--loopback", "--port", "45999", "--wait", "5s"}); code != 1 {
		t.Errorf("exit %d", code)
	}
	if errb.String() != "zyre: interrupted\n" {
		t.Errorf("stderr %q", errb.String())
	}
}

// TestKeyChangedWarningHostileName: the peer's chosen name is shown
// escaped, and the command to paste names the key by its fingerprint.
func TestKeyChangedWarningHostileName(t *testing.T) {
	e := &zre.KeyChanged{EventHeader: zre.EventHeader{Peer: uuid.New(), Name: "carol; rm -rf ~\x1b[2J"},
		OldFingerprint: "OLD-FP", NewFingerprint: "NEW-FP", Addr: "127.0.0.1:5"}
	w := keyChangedWarning(e)
	if strings.ContainsRune(w, '\x1b') || strings.Contains(w, "accept carol") || !strings.HasSuffix(w, "run: zyre trust accept NEW-FP") {
		t.Errorf("%q", w)
	}
}

// TestAgentKeyChangedLineNamesKey: the KEY-CHANGED line of a command
// through the agent (chat, monitor) names the presented key by its
// fingerprint in the command to run, never by the peer's name: a
// stranger's later key under that name would be accepted instead
// (usertry3 #1).
func TestAgentKeyChangedLineNamesKey(t *testing.T) {
	pub, _, err := curve.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	fp := trust.Fingerprint(pub)
	e := client.Event{Type: zre.EventKeyChanged.String(), Peer: uuid.New().String(), Name: "phone1; rm -rf ~",
		Key: pub.Z85(), Addr: "10.0.0.4:1234", Reason: "key changed from OLD-FP to " + fp}
	line := agentEventLine(e)
	if !strings.HasSuffix(line, "run: zyre trust accept "+fp) || strings.Contains(line, "accept phone1") {
		t.Errorf("%q", line)
	}
}
