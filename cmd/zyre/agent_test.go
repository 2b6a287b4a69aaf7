package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/zre"
)

// awaitMember waits until the agent at sock lists a member named name in
// group.
func awaitMember(t *testing.T, sock, name, group string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	c, err := client.Dial(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for {
		ms, err := c.Members(ctx)
		if err != nil {
			t.Fatalf("waiting for member %s in %s: %v", name, group, err)
		}
		for _, m := range ms {
			if m.Name == name && slices.Contains(m.Groups, group) {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// monitor and chat through a running agent: monitor --json prints the
// agent's events, chat's lines are shouted by the agent's node and it
// leaves the group it joined at the end.
func TestMonitorAndChatThroughAgent(t *testing.T) {
	port := randomBeaconPort()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ag := startCmd(t, strings.NewReader(""), "agent", "--ephemeral", "--name", "agentnode", "--loopback", "--port", fmt.Sprint(port), "--socket", sock)
	ag.stderr.waitFor(t, "control socket "+sock)
	peer := testSecurePeer(t, port, "tester", "room")

	mon := startCmd(t, strings.NewReader(""), "monitor", "--socket", sock, "--json")
	mon.stderr.waitFor(t, "monitoring through the agent agentnode")
	in, inw := io.Pipe()
	defer inw.Close()
	chat := startCmd(t, in, "chat", "--socket", sock, "--group", "room")
	chat.stderr.waitFor(t, "chatting in room through the agent agentnode")
	awaitEvent(t, peer, "JOIN agentnode room", func(e zre.Event) bool {
		j, ok := e.(*zre.Join)
		return ok && j.Name == "agentnode" && j.Group == "room"
	})
	// The agent's node shouts to the peer once it knows the peer is in
	// the group (from the peer's HELLO).
	awaitMember(t, sock, "tester", "room")
	if _, err := io.WriteString(inw, "through the agent\n"); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("chat stderr:\n%s\nagent stderr:\n%s", chat.stderr.String(), ag.stderr.String())
		}
	}()
	awaitEvent(t, peer, "SHOUT", func(e zre.Event) bool {
		s, ok := e.(*zre.Shout)
		return ok && s.Group == "room" && string(s.Content[0]) == "through the agent"
	})
	if err := peer.Shout("room", []byte("back to you")); err != nil {
		t.Fatal(err)
	}
	chat.stdout.waitFor(t, "SHOUT tester "+shortID(peer.UUID())+" room back to you\n")
	mon.stdout.waitFor(t, `"type":"SHOUT","peer":"`+peer.UUID().String()+`","name":"tester","group":"room","content":["YmFjayB0byB5b3U="]`)
	inw.Close()
	if code := chat.wait(t); code != 0 {
		t.Fatalf("chat exit %d: %s", code, chat.stderr.String())
	}
	awaitEvent(t, peer, "LEAVE agentnode room", func(e zre.Event) bool {
		l, ok := e.(*zre.Leave)
		return ok && l.Name == "agentnode" && l.Group == "room"
	})
	// Node flags with --socket are a usage error: they would configure a
	// node of the command's own.
	r := startCmd(t, strings.NewReader(""), "members", "--socket", sock, "--loopback")
	if code := r.wait(t); code != 2 || !strings.Contains(r.stderr.String(), "--loopback configures a node of this command's own") {
		t.Fatalf("members --socket --loopback: exit %d: %s", code, r.stderr.String())
	}
}
