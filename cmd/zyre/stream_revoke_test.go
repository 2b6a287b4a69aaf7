package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// "zyre trust revoke bob" on alice's home while alice streams to bob and
// carol: alice's stream removes bob at once and names him with the
// reason; bob stops with a clear error and a non-zero exit; carol reads
// the whole stream, with no gap, and acknowledges it.
func TestStreamRevokeMidStream(t *testing.T) {
	homeA, idA := streamHome(t, "alice")
	homeB, idB := streamHome(t, "bob")
	homeC, idC := streamHome(t, "carol")
	streamVerify(t, homeA, idB, idC)
	streamVerify(t, homeB, idA)
	streamVerify(t, homeC, idA)
	_, _, port := streamPeers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	recvB, liveB := startStreamCmdLive(ctx, nil, "stream", "recv", "hotel-room", "--loopback", "--port", port, "--home", homeB, "--progress", "0")
	recvC, liveC := startStreamCmdLive(ctx, nil, "stream", "recv", "hotel-room", "--loopback", "--port", port, "--home", homeC, "--progress", "0")
	in, inw := io.Pipe()
	defer inw.Close()
	send, liveA := startStreamCmdLive(ctx, in, "stream", "send", "hotel-room", "--loopback", "--port", port, "--home", homeA, "--members", "2", "--progress", "0")
	chunk := []byte(strings.Repeat("the video of room 1207 ", 2000))
	written := 0
	feed := func(until func() bool) {
		for !until() {
			if _, err := inw.Write(chunk); err != nil {
				t.Fatal(err)
			}
			written += len(chunk)
			if written > 200<<20 {
				t.Fatal("200 MiB written and still waiting")
			}
		}
	}
	feed(func() bool { return liveB.stdout.Len() > 0 && liveC.stdout.Len() > 0 })
	rv := startStreamCmd(ctx, nil, "trust", "revoke", "bob", "--home", homeA, "--reason", "phone lost")
	if r := waitStreamCmd(t, "trust revoke", rv); r.code != 0 {
		t.Fatalf("trust revoke: exit %d:\n%s", r.code, r.stderr)
	}
	revokedAt := time.Now()
	var b streamCmdResult
	done := false
	for !done {
		select {
		case b = <-recvB:
			done = true
		default:
			if _, err := inw.Write(chunk); err != nil {
				t.Fatal(err)
			}
			written += len(chunk)
			if time.Since(revokedAt) > 30*time.Second {
				t.Fatalf("bob still receives 30s after his revocation:\n%s", liveB.stderr)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	t.Logf("bob stopped %v after the revocation", time.Since(revokedAt))
	if b.code == 0 || !strings.Contains(b.stderr.String(), "from the private group") {
		t.Errorf("bob: exit %d, want a clear error:\n%s", b.code, b.stderr)
	}
	awaitOutput(t, "alice names the removed member", func() bool {
		return strings.Contains(liveA.stderr.String(), "removed bob ") && strings.Contains(liveA.stderr.String(), "its key is revoked (phone lost)")
	})
	for range 20 {
		if _, err := inw.Write(chunk); err != nil {
			t.Fatal(err)
		}
		written += len(chunk)
	}
	inw.Close()
	a := waitStreamCmd(t, "stream send", send)
	c := waitStreamCmd(t, "carol's stream recv", recvC)
	if a.code != 0 || c.code != 0 {
		t.Fatalf("send exit %d:\n%s\ncarol exit %d:\n%s", a.code, a.stderr, c.code, c.stderr)
	}
	if c.stdout.Len() != written {
		t.Errorf("carol read %d octets, want %d", c.stdout.Len(), written)
	}
	if !strings.Contains(c.stderr.String(), "the stream ended\n") || strings.Contains(c.stderr.String(), "lost") {
		t.Errorf("carol:\n%s", c.stderr)
	}
	t.Logf("alice:\n%s\nbob:\n%s", a.stderr, b.stderr)
}

// Len is how many octets were written so far, without a copy.
func (l *lockedBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}
