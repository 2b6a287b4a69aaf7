package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// A private chat between two paired devices (verified both ways): a line
// typed before the other is present waits and goes out when it joins, own
// lines are echoed, and a stranger in the same group (a secure node that
// nobody trusts) receives nothing of the chat: no line in clear, and no
// record or key either (SEALED: it used to get them all, usertry4 #3).
func TestChatPrivate(t *testing.T) {
	homeA, homeB, port := streamPeers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	stranger, strangerOut := startStreamCmdLive(ctx, nil, "monitor", "--secure", "--ephemeral", "--loopback", "--port", port, "--name", "stranger", "--group", "family")
	inAw, chatA, outA := startPrivateChat(t, ctx, homeA, port)
	if _, err := io.WriteString(inAw, "typed before anyone listens\n"); err != nil {
		t.Fatal(err)
	}
	awaitOutput(t, "alice says her line waits", func() bool { return strings.Contains(outA.stderr.String(), "your lines wait") })

	inBw, chatB, outB := startPrivateChat(t, ctx, homeB, port)
	awaitOutput(t, "bob reads the waiting line", func() bool {
		return strings.Contains(outB.stdout.String(), "SHOUT alice ") && strings.Contains(outB.stdout.String(), " family typed before anyone listens\n")
	})
	if _, err := io.WriteString(inBw, "hello from the bar\n"); err != nil {
		t.Fatal(err)
	}
	awaitOutput(t, "alice reads bob's line", func() bool {
		return strings.Contains(outA.stdout.String(), "SHOUT bob ") && strings.Contains(outA.stdout.String(), " family hello from the bar\n")
	})
	if !strings.Contains(outB.stdout.String(), "SHOUT bob ") || !strings.Contains(outA.stdout.String(), "SHOUT alice ") {
		t.Errorf("own lines not echoed:\nalice:\n%s\nbob:\n%s", outA.stdout, outB.stdout)
	}
	awaitOutput(t, "the stranger sees alice and bob in the group", func() bool {
		s := strangerOut.stdout.String()
		return strings.Contains(s, "JOIN alice ") && strings.Contains(s, "JOIN bob ")
	})
	inAw.Close()
	inBw.Close()
	for name, ch := range map[string]chan streamCmdResult{"alice": chatA, "bob": chatB} {
		if r := waitStreamCmd(t, "chat "+name, ch); r.code != 0 {
			t.Errorf("chat %s: exit %d:\n%s", name, r.code, r.stderr)
		}
	}
	cancel()
	r := waitStreamCmd(t, "monitor", stranger)
	out := r.stdout.String()
	t.Logf("alice:\n%s%s\nbob:\n%s%s\nstranger:\n%s", outA.stdout, outA.stderr, outB.stdout, outB.stderr, out)
	for _, clear := range []string{"typed before anyone listens", "hello from the bar"} {
		if strings.Contains(out, clear) {
			t.Errorf("the stranger read %q in clear:\n%s", clear, out)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "SHOUT ") && strings.Contains(l, " family ") {
			t.Errorf("the stranger got a group line not shown as SEALED: %s", l)
		}
		if strings.HasPrefix(l, "SEALED ") {
			t.Errorf("the stranger got a record or a key of the chat: %s", l)
		}
	}
	if !strings.Contains(out, " family") {
		t.Errorf("monitor output:\n%s", out)
	}
}

// With nobody trusted present, a private chat tells the user at the end
// of stdin that nobody listened, and fails.
func TestChatPrivateNobodyListening(t *testing.T) {
	homeA, _, port := streamPeers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ch, _ := startStreamCmdLive(ctx, strings.NewReader("anyone?\n"), "chat", "--secure", "--loopback", "--port", port, "--home", homeA, "--group", "family", "--wait", "1s")
	r := waitStreamCmd(t, "chat", ch)
	if r.code == 0 || !strings.Contains(r.stderr.String(), "nobody is listening") || !strings.Contains(r.stderr.String(), "1 line(s) not sent") {
		t.Fatalf("exit %d:\n%s", r.code, r.stderr)
	}
}

// "zyre trust revoke bob" on alice's home during a private chat: alice's
// chat names bob as removed, with why; bob's chat stops with a clear error
// and a non-zero exit.
func TestChatPrivateRevoke(t *testing.T) {
	homeA, homeB, port := streamPeers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	inAw, _, outA := startPrivateChat(t, ctx, homeA, port)
	_, chatB, outB := startPrivateChat(t, ctx, homeB, port)
	if _, err := io.WriteString(inAw, "are you there\n"); err != nil {
		t.Fatal(err)
	}
	awaitOutput(t, "bob reads alice", func() bool { return strings.Contains(outB.stdout.String(), " family are you there\n") })
	rv := startStreamCmd(ctx, nil, "trust", "revoke", "bob", "--home", homeA, "--reason", "phone lost")
	if r := waitStreamCmd(t, "trust revoke", rv); r.code != 0 {
		t.Fatalf("trust revoke: exit %d:\n%s", r.code, r.stderr)
	}
	r := waitStreamCmd(t, "bob's chat", chatB)
	if r.code == 0 || !strings.Contains(r.stderr.String(), "from the private group") {
		t.Errorf("bob's chat: exit %d, want a clear error:\n%s", r.code, r.stderr)
	}
	awaitOutput(t, "alice names the removed member", func() bool {
		return strings.Contains(outA.stderr.String(), "removed bob ") && strings.Contains(outA.stderr.String(), "its key is revoked (phone lost)")
	})
}

// An idle member goes silent (SILENT: beacons, no message): the chat
// probes it, it answers, and the chat goes on. (Bob's chat is --verbose,
// to print the SILENT it waits for.)
func TestChatPrivateIdleGoesOn(t *testing.T) {
	homeA, homeB, port := streamPeers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	inAw, chatA, outA := startPrivateChat(t, ctx, homeA, port)
	_, chatB, outB := startPrivateChat(t, ctx, homeB, port, "--verbose")
	if _, err := io.WriteString(inAw, "hello\n"); err != nil {
		t.Fatal(err)
	}
	awaitOutput(t, "bob reads alice", func() bool { return strings.Contains(outB.stdout.String(), " family hello\n") })
	awaitOutput(t, "bob sees alice go silent", func() bool { return strings.Contains(outB.stdout.String(), "SILENT alice ") })
	silentAt := time.Now()
	// The probe's answer is due within probeWait: still chatting after it.
	for time.Since(silentAt) < probeWait+time.Second {
		select {
		case r := <-chatB:
			t.Fatalf("bob's chat ended while alice was only idle: exit %d\n%s", r.code, r.stderr)
		case r := <-chatA:
			t.Fatalf("alice's chat ended: exit %d\n%s", r.code, r.stderr)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if _, err := io.WriteString(inAw, "still here\n"); err != nil {
		t.Fatal(err)
	}
	awaitOutput(t, "bob reads alice after the silence", func() bool { return strings.Contains(outB.stdout.String(), " family still here\n") })
	_ = outA
}

// startPrivateChat starts "zyre chat --secure" of home in the group family
// on port, with the flags more; its stdin is the pipe returned, closed when
// the test ends.
func startPrivateChat(t *testing.T, ctx context.Context, home, port string, more ...string) (*io.PipeWriter, chan streamCmdResult, streamCmdResult) {
	t.Helper()
	in, inw := io.Pipe()
	t.Cleanup(func() { inw.Close() })
	ch, out := startStreamCmdLive(ctx, in, append([]string{"chat", "--secure", "--loopback", "--port", port, "--home", home, "--group", "family"}, more...)...)
	return inw, ch, out
}
