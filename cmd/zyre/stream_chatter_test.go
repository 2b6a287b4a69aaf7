package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The README's story (usertry2 #2, #7): a private chat is open in the
// group, and "zyre stream recv GROUP" (no --peer-name) must read the
// member that streams, never one that only chats (before, it read the
// first whose key it held: the chatting phone, 0 octets, and the room's
// stream was never read). With nobody streaming, recv says so and names
// who is there. The chat does not print the stream as lines, and the
// member that chatted streams itself afterwards. Carol's chat runs with a
// node of its own or through her agent; bob's recv likewise.
func TestStreamRecvReadsTheStreamerNotAChatter(t *testing.T) {
	for _, through := range []string{"one-shot", "agent"} {
		t.Run(through, func(t *testing.T) {
			homeA, idA := streamHome(t, "alice")
			homeB, idB := streamHome(t, "bob")
			homeC, idC := streamHome(t, "carol")
			streamVerify(t, homeA, idB, idC)
			streamVerify(t, homeB, idA, idC)
			streamVerify(t, homeC, idA, idB)
			port := fmt.Sprint(randomBeaconPort())
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			bob := []string{"--loopback", "--port", port, "--home", homeB}
			carol := []string{"--loopback", "--port", port, "--home", homeC}
			chatMode := []string{"--secure"} // a private chat with a node of its own
			if through == "agent" {
				for _, a := range []struct {
					home string
					args *[]string
				}{{homeB, &bob}, {homeC, &carol}} {
					sock := filepath.Join(t.TempDir(), "agent.sock")
					ag := startCmd(t, strings.NewReader(""), "agent", "--home", a.home, "--loopback", "--port", port, "--socket", sock)
					ag.stderr.waitFor(t, "control socket "+sock)
					*a.args = []string{"--socket", sock}
				}
				chatMode = nil // through the agent: private
			}
			// Carol chats; her line reaches bob's node (it is sent once
			// bob holds her key, so he holds hers too).
			chatIn, chatInW := io.Pipe()
			defer chatInW.Close()
			chat, chatOut := startStreamCmdLive(ctx, chatIn, append(append([]string{"chat", "--group", "family"}, chatMode...), carol...)...)
			listen, listenOut := startStreamCmdLive(ctx, nil, append([]string{"stream", "recv", "family", "--progress", "0", "--wait", "4s"}, bob...)...)

			if _, err := io.WriteString(chatInW, "hello from phone2\n"); err != nil {
				t.Fatal(err)
			}
			awaitOutput(t, "carol's line goes out", func() bool {
				return strings.Contains(chatOut.stdout.String(), "family hello from phone2\n")
			})

			if through == "agent" {
				// Bob chats too, through the agent his recv goes through:
				// the chat and the stream share its group (usertry2 #4).
				bobIn, bobInW := io.Pipe()
				defer bobInW.Close()
				bobChat, bobOut := startStreamCmdLive(ctx, bobIn, append([]string{"chat", "--group", "family"}, bob...)...)
				awaitOutput(t, "bob's chat reads carol", func() bool {
					return strings.Contains(bobOut.stdout.String(), "family hello from phone2\n")
				})
				defer func() {
					if strings.Contains(bobOut.stdout.String(), "of the video") {
						t.Errorf("bob's chat printed alice's stream as lines:\n%.2000s", bobOut.stdout)
					}
					bobInW.Close()
					if c := waitStreamCmd(t, "bob's chat", bobChat); c.code != 0 {
						t.Errorf("bob's chat: exit %d:\n%s", c.code, c.stderr)
					}
				}()
				// Carol cannot stream beside her chat through her agent: it
				// says what to do.
				r := waitStreamCmd(t, "carol's send beside her chat", startStreamCmd(ctx, []byte("x"), append([]string{"stream", "send", "family"}, carol...)...))
				if r.code != 1 || !strings.Contains(r.stderr.String(), "end the chat (Ctrl-D), stream, then chat again") {
					t.Errorf("carol's send beside her chat: exit %d:\n%s", r.code, r.stderr)
				}
			}

			// Nobody streams: bob says so, naming carol, and reads nothing.
			l := waitStreamCmd(t, "bob's first recv", listen)
			if l.code != 1 || l.stdout.Len() != 0 || strings.Contains(l.stderr.String(), "reading the stream of carol") ||
				!strings.Contains(l.stderr.String(), `nothing is being streamed in "family": `) ||
				!strings.Contains(l.stderr.String(), "carol "+shortID(idC.UUID)) {
				t.Fatalf("bob's recv with nobody streaming: exit %d, %d octets, stderr:\n%s", l.code, l.stdout.Len(), l.stderr)
			}
			_ = listenOut

			// Alice streams: bob reads her, not carol.
			recv, recvOut := startStreamCmdLive(ctx, nil, append([]string{"stream", "recv", "family", "--progress", "0"}, bob...)...)
			var data bytes.Buffer
			for i := range 20000 {
				fmt.Fprintf(&data, "frame %d of the video of room 1207\n", i)
			}
			send := startStreamCmd(ctx, data.Bytes(), "stream", "send", "family", "--loopback", "--port", port, "--home", homeA, "--members", "2", "--progress", "0")
			s, r := waitStreamCmd(t, "alice's send", send), waitStreamCmd(t, "bob's recv", recv)
			if s.code != 0 || r.code != 0 || !bytes.Equal(r.stdout.Bytes(), data.Bytes()) {
				t.Fatalf("send exit %d:\n%s\nbob's recv exit %d, %d of %d octets:\n%s", s.code, s.stderr, r.code, r.stdout.Len(), data.Len(), r.stderr)
			}
			if !strings.Contains(r.stderr.String(), "reading the stream of alice "+shortID(idA.UUID)) {
				t.Errorf("bob's recv does not say it reads alice:\n%s", recvOut.stderr)
			}
			if strings.Contains(chatOut.stdout.String(), "of the video") {
				t.Errorf("carol's chat printed alice's stream as lines:\n%.2000s", chatOut.stdout)
			}

			// Alice chats after her stream: carol's chat, which read none
			// of the stream, reads her lines.
			aliceIn, aliceInW := io.Pipe()
			defer aliceInW.Close()
			aliceChat := startStreamCmdReader(ctx, aliceIn, "chat", "--secure", "--group", "family", "--loopback", "--port", port, "--home", homeA)
			if _, err := io.WriteString(aliceInW, "alice after her stream\n"); err != nil {
				t.Fatal(err)
			}
			awaitOutput(t, "carol's chat reads alice's line", func() bool {
				return strings.Contains(chatOut.stdout.String(), "family alice after her stream\n")
			})
			aliceInW.Close()
			if c := waitStreamCmd(t, "alice's chat", aliceChat); c.code != 0 {
				t.Fatalf("alice's chat: exit %d:\n%s", c.code, c.stderr)
			}

			// Carol ends her chat, then streams herself.
			chatInW.Close()
			if c := waitStreamCmd(t, "carol's chat", chat); c.code != 0 {
				t.Fatalf("carol's chat: exit %d:\n%s", c.code, c.stderr)
			}
			recv, _ = startStreamCmdLive(ctx, nil, append([]string{"stream", "recv", "family", "--progress", "0"}, bob...)...)
			own := []byte("carol's own stream, after her chat\n")
			send = startStreamCmd(ctx, own, append([]string{"stream", "send", "family", "--progress", "0"}, carol...)...)
			s, r = waitStreamCmd(t, "carol's send", send), waitStreamCmd(t, "bob's recv of carol", recv)
			if s.code != 0 || r.code != 0 || !bytes.Equal(r.stdout.Bytes(), own) {
				t.Fatalf("carol's send exit %d:\n%s\nbob's recv exit %d, %q:\n%s", s.code, s.stderr, r.code, r.stdout, r.stderr)
			}
		})
	}
}

// A receiver that names a member which then leaves having streamed it
// nothing (here a chat that stops; as well a stream that ended before the
// receiver started) says so, not "left before the end of its stream,
// after 0 octets: unexpected EOF" (usertry2 #7).
func TestStreamRecvNamedLeavesWithoutStreaming(t *testing.T) {
	homeA, homeB, port := streamPeers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	recv, recvOut := startStreamCmdLive(ctx, nil, "stream", "recv", "family", "--peer-name", "alice", "--progress", "0", "--loopback", "--port", port, "--home", homeB)
	chatCtx, stopChat := context.WithCancel(ctx)
	defer stopChat()
	chatIn, chatInW := io.Pipe()
	defer chatInW.Close()
	chat := startStreamCmdReader(chatCtx, chatIn, "chat", "--secure", "--group", "family", "--loopback", "--port", port, "--home", homeA)
	awaitOutput(t, "bob reads alice", func() bool { return strings.Contains(recvOut.stderr.String(), "reading the stream of alice") })
	stopChat() // alice's chat stops: her node leaves
	waitStreamCmd(t, "alice's chat", chat)
	r := waitStreamCmd(t, "bob's recv", recv)
	if r.code != 1 || !strings.Contains(r.stderr.String(), "left without streaming anything to this device") {
		t.Fatalf("bob's recv: exit %d:\n%s", r.code, r.stderr)
	}
}
