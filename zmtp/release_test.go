package zmtp

import (
	"bufio"
	"bytes"
	"net"
	"testing"
	"time"
)

// poison makes bufPool.put fill what it pools with 0xDB for the test's
// duration, so that a buffer still in use after it went back shows.
func poison(t *testing.T) {
	poisonPut.Store(true)
	t.Cleanup(func() { poisonPut.Store(false) })
}

// TestPooledCommandKeptUntilHandled: a large command (a PING with a long
// context) read into a pooled buffer stays its own until the core handled
// it: the PONG carries the PING's context, not whatever the pool's next
// user (another connection of the socket) wrote into the buffer.
func TestPooledCommandKeptUntilHandled(t *testing.T) {
	checkNoLeak(t)
	poison(t)
	r := listen(t, Options{})
	// Pooling starts with the receiver's first Release.
	d := dial(t, r.Addr().String(), Options{Identity: []byte("d")})
	d.Send(make([]byte, 5000))
	m := recvR(t, r)
	m.Release()

	nc, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	rawHandshake(t, nc, "DEALER", "raw")
	pctx := bytes.Repeat([]byte{'c'}, 2000) // a command of over 1 KiB: pooled
	ping := appendCommand(nil, "PING", append([]byte{0, 10}, pctx...))
	if _, err := nc.Write(appendFrameHeader(nil, FlagCommand, len(ping))); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Write(ping); err != nil {
		t.Fatal(err)
	}
	// A small PING after it: its PONG must come second.
	small := appendCommand(nil, "PING", []byte("\x00\x0asecond"))
	if _, err := nc.Write(append(appendFrameHeader(nil, FlagCommand, len(small)), small...)); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(testDeadline))
	fr := frameReader{r: bufio.NewReader(nc)}
	for {
		flags, body, err := fr.readFrame(1 << 16)
		if err != nil {
			t.Fatalf("reading the PONG: %v", err)
		}
		if flags&FlagCommand == 0 {
			continue
		}
		name, data, err := parseCommand(body)
		if err != nil {
			t.Fatal(err)
		}
		if name != "PONG" {
			continue
		}
		if !bytes.Equal(data, pctx[:maxPingCtx]) {
			t.Fatalf("PONG context % x, want the PING's %q", data, pctx[:maxPingCtx])
		}
		return
	}
}
