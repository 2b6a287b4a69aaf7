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

// A receiver that finds every trusted member there streaming nothing (a
// chat) says so at once, naming them, not only at the end of its --wait
// (usertry2 #4 of the brief); it keeps waiting for a stream to start, and
// reads the one that does. Bob's recv runs with a node of its own or
// through his agent.
func TestStreamRecvSaysNobodyStreamsAtOnce(t *testing.T) {
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
			if through == "agent" {
				sock := filepath.Join(t.TempDir(), "agent.sock")
				ag := startCmd(t, strings.NewReader(""), "agent", "--home", homeB, "--loopback", "--port", port, "--socket", sock)
				ag.stderr.waitFor(t, "control socket "+sock)
				bob = []string{"--socket", sock}
			}
			// Carol chats (a private chat of her own node).
			chatIn, chatInW := io.Pipe()
			defer chatInW.Close()
			chat, chatOut := startStreamCmdLive(ctx, chatIn, "chat", "--secure", "--group", "family", "--loopback", "--port", port, "--home", homeC)
			// Bob waits long for a stream: he is told at once that
			// nobody streams, naming carol.
			recv, recvOut := startStreamCmdLive(ctx, nil, append([]string{"stream", "recv", "family", "--progress", "0", "--wait", "2m"}, bob...)...)
			want := `nothing is being streamed in "family" yet: carol ` + shortID(idC.UUID) + " chats"
			deadline := time.Now().Add(40 * time.Second) // far less than --wait
			for !strings.Contains(recvOut.stderr.String(), want) {
				if time.Now().After(deadline) {
					t.Fatalf("bob's recv does not say at once that nobody streams (want %q):\n%s\ncarol's chat:\n%s", want, recvOut.stderr, chatOut.stderr)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if !strings.Contains(recvOut.stderr.String(), "waiting up to 2m0s for a stream to start") {
				t.Errorf("bob's recv does not say how long it waits:\n%s", recvOut.stderr)
			}
			// ... and keeps waiting: alice streams, bob reads her.
			var data bytes.Buffer
			for i := range 5000 {
				fmt.Fprintf(&data, "frame %d of the video\n", i)
			}
			send := startStreamCmd(ctx, data.Bytes(), "stream", "send", "family", "--loopback", "--port", port, "--home", homeA, "--members", "2", "--progress", "0")
			s, r := waitStreamCmd(t, "alice's send", send), waitStreamCmd(t, "bob's recv", recv)
			if s.code != 0 || r.code != 0 || !bytes.Equal(r.stdout.Bytes(), data.Bytes()) {
				t.Fatalf("send exit %d:\n%s\nbob's recv exit %d, %d of %d octets:\n%s", s.code, s.stderr, r.code, r.stdout.Len(), data.Len(), r.stderr)
			}
			if !strings.Contains(r.stderr.String(), "reading the stream of alice "+shortID(idA.UUID)) {
				t.Errorf("bob's recv does not say it reads alice:\n%s", r.stderr)
			}
			chatInW.Close()
			if c := waitStreamCmd(t, "carol's chat", chat); c.code != 0 {
				t.Errorf("carol's chat: exit %d:\n%s", c.code, c.stderr)
			}
		})
	}
}
