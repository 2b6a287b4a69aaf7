package zmtp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/zyre-go/zyre/internal/testenv"
)

func ioReadFull(r io.Reader, b []byte) (int, error) { return io.ReadFull(r, b) }

// TestHostileInput: a Router keeps serving a real Dealer while other hosts
// send it malformed READY properties, frame headers claiming 1 TiB, idle
// connections, old versions and garbage.
func TestHostileInput(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	r := listen(t, Options{HandshakeTimeout: 30 * time.Second})
	d := dial(t, r.Addr().String(), Options{Identity: []byte("good")})
	seq := 0
	roundTrip := func(after string) {
		t.Helper()
		seq++
		want := fmt.Sprintf("%s-%d", after, seq)
		if err := d.SendContext(testCtx(t), []byte(want)); err != nil {
			t.Fatal(err)
		}
		m := recvR(t, r)
		if string(m.Frames[0]) != want || string(m.Peer.Identity) != "good" {
			t.Fatalf("after %s: got %q from %q", after, m.Frames[0], m.Peer.Identity)
		}
	}
	roundTrip("start")

	greeting := AppendGreeting(nil, Greeting{Major: 3, Minor: 1, Mechanism: "NULL"})
	readyFrame := func(body []byte) []byte {
		cmd := appendCommand(nil, "READY", body)
		return append(appendFrameHeader(nil, FlagCommand, len(cmd)), cmd...)
	}
	goodReady := AppendMetadata(nil, Metadata{{"Socket-Type", []byte("DEALER")}})
	rng := rand.New(rand.NewPCG(1, 2))
	garbage := make([]byte, 4096)
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	oldVersion := bytes.Clone(greeting)
	oldVersion[10], oldVersion[11] = 2, 0

	// Idle connections that never send a greeting stay open throughout.
	var idle []net.Conn
	for range 5 {
		nc, err := net.Dial("tcp", r.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		idle = append(idle, nc)
	}
	roundTrip("idle connections")

	cases := []struct {
		name string
		data []byte
	}{
		{"malformed READY property", append(bytes.Clone(greeting), readyFrame([]byte{11, 'S', 'o', 'c', 'k', 'e', 't', '-', 'T', 'y', 'p', 'e', 0xff, 0xff, 0xff, 0xff, 'D'})...)},
		{"READY name past the end", append(bytes.Clone(greeting), readyFrame([]byte{200, 'x'})...)},
		{"1 TiB frame in handshake", append(bytes.Clone(greeting), FlagLong|FlagCommand, 0, 0, 1, 0, 0, 0, 0, 0)},
		{"1 TiB frame after handshake", append(append(append(bytes.Clone(greeting), readyFrame(goodReady)...), FlagLong, 0, 0, 1, 0, 0, 0, 0, 0), bytes.Repeat([]byte{1}, 1000)...)},
		{"wrong version greeting", oldVersion},
		{"ZMTP 1.0 greeting", []byte{6, 0, 'h', 'e', 'l', 'l', 'o'}},
		{"random garbage", garbage},
		{"garbage after greeting", append(bytes.Clone(greeting), garbage...)},
		{"PUB socket type", append(bytes.Clone(greeting), readyFrame(AppendMetadata(nil, Metadata{{"Socket-Type", []byte("PUB")}}))...)},
		{"data frame instead of READY", append(bytes.Clone(greeting), 0, 3, 'a', 'b', 'c')},
		{"bad PING after handshake", append(append(bytes.Clone(greeting), readyFrame(goodReady)...), FlagCommand, 5, 4, 'P', 'I', 'N', 'G')},
	}
	for _, tc := range cases {
		nc, err := net.Dial("tcp", r.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		nc.Write(tc.data)
		// The router closes the connection: reading reaches EOF (after the
		// router's own greeting), or a reset when it closed with our bytes
		// unread — anything but our timeout.
		nc.SetReadDeadline(time.Now().Add(testDeadline))
		if _, err := io.Copy(io.Discard, nc); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("%s: router did not close the connection: %v", tc.name, err)
			}
		}
		nc.Close()
		roundTrip(tc.name)
	}
	for _, nc := range idle {
		nc.Close()
	}
	roundTrip("end")
}

// TestIdleConnectionDoesNotBlockHandshake: an idle connection hits the
// handshake timeout while other peers connect freely.
func TestHandshakeTimeout(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	r := listen(t, Options{HandshakeTimeout: 200 * time.Millisecond})
	nc, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetReadDeadline(time.Now().Add(testDeadline))
	start := time.Now()
	if _, err := io.Copy(io.Discard, nc); err != nil {
		t.Fatalf("idle connection was not closed: %v", err)
	}
	if time.Since(start) > testDeadline {
		t.Fatal("too slow")
	}
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	defer cancel()
	d := dial(t, r.Addr().String(), Options{})
	d.Send([]byte("x"))
	if _, err := r.Recv(ctx); err != nil {
		t.Fatal(err)
	}
}
