package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zyre-go/zyre/agent/client"
)

// Chat through the agent shows what the one-shot chat shows (usertry
// #11): the peers in the group when it starts (ENTER, JOIN), its own
// lines, and no presence noise (SILENT, EVASIVE) on stdout.
func TestChatThroughAgentAsOneShot(t *testing.T) {
	port := randomBeaconPort()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ag := startCmd(t, strings.NewReader(""), "agent", "--ephemeral", "--name", "agentnode", "--loopback", "--port", fmt.Sprint(port), "--socket", sock)
	ag.stderr.waitFor(t, "control socket "+sock)
	// tester is in the group before the chat starts.
	peer := testSecurePeer(t, port, "tester", "room")
	awaitMember(t, sock, "tester", "room")
	id := shortID(peer.UUID())

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	mon, err := client.Dial(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	if err := mon.Subscribe(ctx); err != nil {
		t.Fatal(err)
	}

	in, inw := io.Pipe()
	defer inw.Close()
	chat := startCmd(t, in, "chat", "--socket", sock, "--group", "room")
	defer func() {
		if t.Failed() {
			t.Logf("chat stdout:\n%s\nstderr:\n%s", chat.stdout.String(), chat.stderr.String())
		}
	}()
	chat.stderr.waitFor(t, "chatting in room through the agent agentnode")
	chat.stdout.waitFor(t, "ENTER tester "+id+" tcp://127.0.0.1:")
	chat.stdout.waitFor(t, "JOIN tester "+id+" room\n")
	if _, err := io.WriteString(inw, "hello from the agent\n"); err != nil {
		t.Fatal(err)
	}
	// Its own line, echoed as the one-shot chat does.
	chat.stdout.waitFor(t, "SHOUT agentnode ")
	chat.stdout.waitFor(t, " room hello from the agent\n")

	// tester sends nothing for a while: the agent's node reports it
	// SILENT; the chat does not print it. (A SHOUT after it shows the
	// chat got that far in the agent's events.)
	for {
		e, err := mon.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for tester to go silent: %v", err)
		}
		if e.Type == "SILENT" && e.Name == "tester" {
			break
		}
	}
	if err := peer.Shout("room", []byte("after the silence")); err != nil {
		t.Fatal(err)
	}
	chat.stdout.waitFor(t, "SHOUT tester "+id+" room after the silence\n")
	out := chat.stdout.String()
	if strings.Contains(out, "SILENT") || strings.Contains(out, "EVASIVE") {
		t.Errorf("presence noise on the chat's stdout:\n%s", out)
	}
	if n := strings.Count(out, "JOIN tester "); n != 1 {
		t.Errorf("%d JOIN lines for tester, want 1:\n%s", n, out)
	}
	inw.Close()
	if code := chat.wait(t); code != 0 {
		t.Fatalf("chat exit %d: %s", code, chat.stderr.String())
	}
}

// The sealed chat through an agent with a trust store shows the trusted
// members already in the group at its start, and echoes its lines.
func TestChatPrivateThroughAgentShowsPresent(t *testing.T) {
	homeA, homeB, port := streamPeers(t)
	dir := t.TempDir()
	sockA, sockB := filepath.Join(dir, "a.sock"), filepath.Join(dir, "b.sock")
	agA := startCmd(t, strings.NewReader(""), "agent", "--home", homeA, "--loopback", "--port", port, "--socket", sockA)
	agA.stderr.waitFor(t, "control socket "+sockA)
	agB := startCmd(t, strings.NewReader(""), "agent", "--home", homeB, "--loopback", "--port", port, "--socket", sockB, "--group", "family")
	agB.stderr.waitFor(t, "control socket "+sockB)
	awaitMember(t, sockA, "bob", "family")

	in, inw := io.Pipe()
	defer inw.Close()
	chat := startCmd(t, in, "chat", "--socket", sockA, "--group", "family")
	defer func() {
		if t.Failed() {
			t.Logf("chat stdout:\n%s\nstderr:\n%s", chat.stdout.String(), chat.stderr.String())
		}
	}()
	chat.stderr.waitFor(t, "private chat in family through the agent alice")
	chat.stdout.waitFor(t, "ENTER bob ")
	chat.stdout.waitFor(t, "JOIN bob ")
	if !strings.Contains(chat.stdout.String(), " family\n") {
		t.Errorf("no JOIN line for family:\n%s", chat.stdout.String())
	}
	if _, err := io.WriteString(inw, "sealed hello\n"); err != nil {
		t.Fatal(err)
	}
	chat.stdout.waitFor(t, "SHOUT alice ")
	chat.stdout.waitFor(t, " family sealed hello\n")
	inw.Close()
	if code := chat.wait(t); code != 0 {
		t.Fatalf("chat exit %d: %s", code, chat.stderr.String())
	}
}

// A chat prints presence changes only with --verbose; every other event
// as before.
func TestChatEventShown(t *testing.T) {
	for _, c := range []struct {
		typ     string
		verbose bool
		want    bool
	}{
		{"SILENT", false, false},
		{"EVASIVE", false, false},
		{"SILENT", true, true},
		{"EVASIVE", true, true},
		{"ENTER", false, true},
		{"EXIT", false, true},
		{"JOIN", false, true},
		{"LEAVE", false, true},
		{"SHOUT", false, true},
		{"WHISPER", false, true},
		{"REFUSED", false, true},
		{"KEY-CHANGED", false, true},
	} {
		if got := chatEventShown(c.typ, c.verbose); got != c.want {
			t.Errorf("chatEventShown(%s, verbose %v) = %v, want %v", c.typ, c.verbose, got, c.want)
		}
	}
}
