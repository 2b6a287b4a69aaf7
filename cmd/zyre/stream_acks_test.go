package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zyre-go/zyre/agent/client"
)

// Two receivers hold alice's key when her stream starts; with the default
// --members 1, send waits for the acknowledgement of both and names them
// (usertry #7: it ended after the first, "1 acknowledged the end"). When
// one stops before the end, send names it and fails. The same with a
// one-shot sender and with one through alice's agent.
func TestStreamSendWaitsForEveryReceiver(t *testing.T) {
	for _, through := range []string{"one-shot", "agent"} {
		t.Run(through, func(t *testing.T) {
			homeA, idA := streamHome(t, "alice")
			homeB, idB := streamHome(t, "bob")
			homeC, idC := streamHome(t, "carol")
			streamVerify(t, homeA, idB, idC)
			streamVerify(t, homeB, idA)
			streamVerify(t, homeC, idA)
			port := fmt.Sprint(randomBeaconPort())
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			sender := []string{"--loopback", "--port", port, "--home", homeA}
			if through == "agent" {
				sock := filepath.Join(t.TempDir(), "agent.sock")
				ag := startCmd(t, strings.NewReader(""), "agent", "--home", homeA, "--loopback", "--port", port, "--socket", sock)
				ag.stderr.waitFor(t, "control socket "+sock)
				sender = []string{"--socket", sock}
			}
			data := bytes.Repeat([]byte("the video of room 1207 "), 20000)
			b, c := shortID(idB.UUID), shortID(idC.UUID)

			// Both read the whole stream and acknowledge its end.
			send := func(carolArgs ...string) (streamCmdResult, streamCmdResult, streamCmdResult) {
				recvB, liveB := startStreamCmdLive(ctx, nil, "stream", "recv", "g", "--loopback", "--port", port, "--home", homeB, "--progress", "0")
				recvC, liveC := startStreamCmdLive(ctx, nil, append([]string{"stream", "recv", "g", "--loopback", "--port", port, "--home", homeC, "--progress", "0"}, carolArgs...)...)
				in, inw := io.Pipe()
				defer inw.Close()
				s := startStreamCmdReader(ctx, in, append([]string{"stream", "send", "g", "--progress", "0", "--wait", "60s"}, sender...)...)
				// Both hold alice's key before her first octet.
				awaitOutput(t, "bob reads alice", func() bool { return strings.Contains(liveB.stderr.String(), "reading the stream of alice") })
				awaitOutput(t, "carol reads alice", func() bool { return strings.Contains(liveC.stderr.String(), "reading the stream of alice") })
				if _, err := inw.Write(data); err != nil {
					t.Fatal(err)
				}
				inw.Close()
				return waitStreamCmd(t, "stream send", s), waitStreamCmd(t, "bob's recv", recvB), waitStreamCmd(t, "carol's recv", recvC)
			}
			s, rb, rc := send()
			if s.code != 0 || rb.code != 0 || rc.code != 0 {
				t.Fatalf("send exit %d:\n%s\nbob exit %d:\n%s\ncarol exit %d:\n%s", s.code, s.stderr, rb.code, rb.stderr, rc.code, rc.stderr)
			}
			if !bytes.Equal(rb.stdout.Bytes(), data) || !bytes.Equal(rc.stdout.Bytes(), data) {
				t.Fatalf("bob read %d octets, carol %d, want %d", rb.stdout.Len(), rc.stdout.Len(), len(data))
			}
			both := regexp.MustCompile(`; 2 acknowledged the end: (bob ` + b + `, carol ` + c + `|carol ` + c + `, bob ` + b + `)\n`)
			if !both.MatchString(s.stderr.String()) {
				t.Errorf("send's summary does not name both receivers:\n%s", s.stderr)
			}

			// Carol stops after 1000 octets: she never acknowledges.
			s, rb, rc = send("--bytes", "1000")
			if rb.code != 0 || rc.code != 0 || rc.stdout.Len() != 1000 {
				t.Fatalf("bob exit %d:\n%s\ncarol exit %d with %d octets:\n%s", rb.code, rb.stderr, rc.code, rc.stdout.Len(), rc.stderr)
			}
			errs := s.stderr.String()
			if s.code != 1 {
				t.Errorf("send exit %d, want 1:\n%s", s.code, errs)
			}
			for _, want := range []string{
				"; 1 acknowledged the end: bob " + b + "; removed on the way: carol " + c + "\n",
				"stream: 1 of 2 members acknowledged the end; not acknowledged by carol " + c + " (it left the group or stopped)",
			} {
				if !strings.Contains(errs, want) {
					t.Errorf("send's stderr lacks %q:\n%s", want, errs)
				}
			}
		})
	}
}

// The end of a sender's summary names who acknowledged, who did not (once
// the end was sent) and who was removed on the way.
func TestAckText(t *testing.T) {
	bob := client.StreamReceiver{Peer: "746b83b2-0000-4000-8000-000000000000", Name: "bob", AtStart: true}
	carol := client.StreamReceiver{Peer: "5178850c-0000-4000-8000-000000000000", Name: "carol", AtStart: true}
	acked := func(r client.StreamReceiver) client.StreamReceiver { r.Acked = true; return r }
	removed := func(r client.StreamReceiver) client.StreamReceiver { r.Removed = "its key is revoked"; return r }
	for _, c := range []struct {
		rs    []client.StreamReceiver
		ended bool
		want  string
	}{
		{nil, true, "0 acknowledged the end"},
		{[]client.StreamReceiver{acked(bob), acked(carol)}, true, "2 acknowledged the end: bob 746b83b2, carol 5178850c"},
		{[]client.StreamReceiver{acked(bob), carol}, true, "1 acknowledged the end: bob 746b83b2; not acknowledged: carol 5178850c"},
		{[]client.StreamReceiver{bob, carol}, false, "0 acknowledged the end"},
		{[]client.StreamReceiver{acked(bob), removed(carol)}, true, "1 acknowledged the end: bob 746b83b2; removed on the way: carol 5178850c"},
		{[]client.StreamReceiver{{Peer: "0a0b0c0d-0000-4000-8000-000000000000", Name: "late\x1b[2J", Acked: true}}, true, `1 acknowledged the end: "late\x1b[2J" 0a0b0c0d`},
	} {
		if got := ackText(c.rs, c.ended); got != c.want {
			t.Errorf("ackText(%v, %v) = %q, want %q", c.rs, c.ended, got, c.want)
		}
	}
}

// "zyre trust revoke bob" through alice's agent while the agent streams
// to bob and carol: bob is removed on the way, named with the reason, and
// owes no acknowledgement; carol's is enough (before, the agent waited
// for bob's until --wait ran out).
func TestStreamRevokeMidStreamThroughAgent(t *testing.T) {
	homeA, idA := streamHome(t, "alice")
	homeB, idB := streamHome(t, "bob")
	homeC, idC := streamHome(t, "carol")
	streamVerify(t, homeA, idB, idC)
	streamVerify(t, homeB, idA)
	streamVerify(t, homeC, idA)
	port := fmt.Sprint(randomBeaconPort())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ag := startCmd(t, strings.NewReader(""), "agent", "--home", homeA, "--loopback", "--port", port, "--socket", sock)
	ag.stderr.waitFor(t, "control socket "+sock)

	recvB, liveB := startStreamCmdLive(ctx, nil, "stream", "recv", "hotel-room", "--loopback", "--port", port, "--home", homeB, "--progress", "0")
	recvC, liveC := startStreamCmdLive(ctx, nil, "stream", "recv", "hotel-room", "--loopback", "--port", port, "--home", homeC, "--progress", "0")
	in, inw := io.Pipe()
	defer inw.Close()
	send, liveA := startStreamCmdLive(ctx, in, "stream", "send", "hotel-room", "--socket", sock, "--members", "2", "--progress", "0", "--wait", "60s")
	chunk := []byte(strings.Repeat("the video of room 1207 ", 2000))
	written := 0
	write := func() {
		if _, err := inw.Write(chunk); err != nil {
			t.Fatal(err)
		}
		written += len(chunk)
		if written > 200<<20 {
			t.Fatal("200 MiB written and still waiting")
		}
	}
	for liveB.stdout.Len() == 0 || liveC.stdout.Len() == 0 {
		write()
	}
	rv := startStreamCmd(ctx, nil, "trust", "revoke", "bob", "--home", homeA, "--socket", sock, "--reason", "phone lost")
	if r := waitStreamCmd(t, "trust revoke", rv); r.code != 0 {
		t.Fatalf("trust revoke: exit %d:\n%s", r.code, r.stderr)
	}
	// Bob is cut off: his node no longer hears alice's.
	var b streamCmdResult
	for done := false; !done; {
		select {
		case b = <-recvB:
			done = true
		case <-ctx.Done():
			t.Fatalf("bob still receives:\n%s", liveB.stderr)
		default:
			write()
			time.Sleep(5 * time.Millisecond)
		}
	}
	if b.code == 0 {
		t.Errorf("bob: exit 0 after his revocation:\n%s", b.stderr)
	}
	for range 20 {
		write()
	}
	inw.Close()
	a := waitStreamCmd(t, "stream send", send)
	c := waitStreamCmd(t, "carol's stream recv", recvC)
	errs := a.stderr.String()
	if a.code != 0 || c.code != 0 {
		t.Fatalf("send exit %d:\n%s\ncarol exit %d:\n%s", a.code, errs, c.code, c.stderr)
	}
	if c.stdout.Len() != written {
		t.Errorf("carol read %d octets, want %d", c.stdout.Len(), written)
	}
	for _, want := range []string{
		"zyre: removed bob " + shortID(idB.UUID) + ` from the private group "hotel-room": its key is revoked (phone lost)` + "\n",
		"; 1 acknowledged the end: carol " + shortID(idC.UUID) + "; removed on the way: bob " + shortID(idB.UUID) + "\n",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("send's stderr lacks %q:\n%s", want, errs)
		}
	}
	_ = liveA
}
