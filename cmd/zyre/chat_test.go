package main

import (
	"fmt"
	"io"
	"testing"

	"github.com/zyre-go/zyre/zre"
)

func TestChat(t *testing.T) {
	port := randomBeaconPort()
	peer := testPeer(t, port, "tester", "room")
	in, inw := io.Pipe()
	defer inw.Close()
	chat := startCmd(t, in, "chat", "--loopback", "--port", fmt.Sprint(port), "--name", "chatter", "--group", "room")
	e := awaitEvent(t, peer, "ENTER chatter", enterNamed("chatter"))
	awaitEvent(t, peer, "JOIN chatter room", func(e zre.Event) bool {
		j, ok := e.(*zre.Join)
		return ok && j.Name == "chatter" && j.Group == "room"
	})
	// The chat must know we are in room before it shouts.
	id := uuidText(peer.UUID())
	chat.stdout.waitFor(t, "JOIN tester "+id+" room\n")
	if _, err := io.WriteString(inw, "hello room\n"); err != nil {
		t.Fatal(err)
	}
	s := awaitEvent(t, peer, "SHOUT", func(e zre.Event) bool { _, ok := e.(*zre.Shout); return ok }).(*zre.Shout)
	if s.Group != "room" || string(s.Content[0]) != "hello room" || s.Peer != e.PeerUUID() {
		t.Fatalf("shout %+v", s)
	}
	if err := peer.Shout("room", []byte("hi chatter")); err != nil {
		t.Fatal(err)
	}
	chat.stdout.waitFor(t, "SHOUT tester "+id+" room hi chatter\n")
	// EOF on stdin ends the chat, with a goodbye.
	inw.Close()
	if code := chat.wait(t); code != 0 {
		t.Fatalf("exit %d: %s", code, chat.stderr.String())
	}
	awaitEvent(t, peer, "EXIT chatter", exitOf(e.PeerUUID()))
}

func TestChatSecure(t *testing.T) {
	port := randomBeaconPort()
	peer := testSecurePeer(t, port, "tester", "room")
	in, inw := io.Pipe()
	defer inw.Close()
	chat := startCmd(t, in, "chat", "--ephemeral", "--public", "--loopback", "--port", fmt.Sprint(port), "--name", "chatter", "--group", "room")
	awaitEvent(t, peer, "JOIN chatter room", func(e zre.Event) bool {
		j, ok := e.(*zre.Join)
		return ok && j.Name == "chatter" && j.Group == "room"
	})
	chat.stdout.waitFor(t, "JOIN tester "+uuidText(peer.UUID())+" room\n")
	if _, err := io.WriteString(inw, "over curve\n"); err != nil {
		t.Fatal(err)
	}
	s := awaitEvent(t, peer, "SHOUT", func(e zre.Event) bool { _, ok := e.(*zre.Shout); return ok }).(*zre.Shout)
	if s.Group != "room" || string(s.Content[0]) != "over curve" {
		t.Fatalf("shout %+v", s)
	}
	inw.Close()
	if code := chat.wait(t); code != 0 {
		t.Fatalf("exit %d: %s", code, chat.stderr.String())
	}
}
