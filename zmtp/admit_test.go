package zmtp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/zyre-go/zyre/internal/testenv"
)

const testPreAdmit = 64 << 10

// strangerConn opens a raw NULL connection to r as a DEALER with identity
// id: greeting and READY written, the Router's bytes left unread.
func strangerConn(t *testing.T, r *Router, id string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	ready := appendCommand(nil, "READY", AppendMetadata(nil, Metadata{{"Socket-Type", []byte("DEALER")}, {"Identity", []byte(id)}}))
	b := AppendGreeting(nil, Greeting{Major: 3, Minor: 1, Mechanism: "NULL"})
	b = append(appendFrameHeader(b, FlagCommand, len(ready)), ready...)
	if _, err := nc.Write(b); err != nil {
		t.Fatal(err)
	}
	return nc
}

// waitClosed waits until the Router closes nc: its reads end in EOF or a
// reset, not in our deadline.
func waitClosed(t *testing.T, nc net.Conn, what string) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(testDeadline))
	_, err := io.Copy(io.Discard, nc)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: the router did not close the connection", what)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestPreAdmitHugeFrame: before its admission a connection that claims,
// or really sends, a frame far over PreAdmit is closed at once without the
// frame being allocated (the heap stays where it was), and counted; an
// honest peer beside it is served throughout.
func TestPreAdmitHugeFrame(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	r := listen(t, Options{PreAdmit: testPreAdmit})
	d := dial(t, r.Addr().String(), Options{Identity: []byte("good")})
	if err := d.SendContext(testCtx(t), []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if m := recvR(t, r); string(m.Frames[0]) != "hello" {
		t.Fatalf("got %q", m.Frames[0])
	}
	if err := r.Admit([]byte("good")); err != nil {
		t.Fatal(err)
	}
	before := heapInUse()

	// A header claiming 2^62 octets, then a little.
	liar := strangerConn(t, r, "liar")
	liar.Write(append([]byte{FlagLong, 0x40, 0, 0, 0, 0, 0, 0, 0}, make([]byte, 1000)...))
	waitClosed(t, liar, "a 2^62 header")

	// Three that really send 64 MiB frames, at once.
	chunk := bytes.Repeat([]byte{0xA5}, 1<<20)
	done := make(chan int64, 3)
	for i := range 3 {
		nc := strangerConn(t, r, "big"+string(rune('0'+i)))
		go func() {
			hdr := binary.BigEndian.AppendUint64([]byte{FlagLong}, 64<<20)
			var sent int64
			if _, err := nc.Write(hdr); err == nil {
				nc.SetWriteDeadline(time.Now().Add(testDeadline))
				for sent < 64<<20 {
					n, err := nc.Write(chunk)
					sent += int64(n)
					if err != nil {
						break
					}
				}
			}
			done <- sent
		}()
		waitClosed(t, nc, "a 64 MiB frame")
	}
	for range 3 {
		if sent := <-done; sent >= 64<<20 {
			t.Errorf("a stranger wrote its whole 64 MiB frame: the router read it")
		}
	}
	after := heapInUse()
	if after > before+8<<20 {
		t.Errorf("heap in use grew from %d to %d octets", before, after)
	}
	if got := r.Unadmitted(); got != 4 {
		t.Errorf("Unadmitted = %d, want 4", got)
	}
	// The admitted peer sends what it likes (up to MaxMsgSize).
	big := make([]byte, 1<<20)
	if err := d.SendContext(testCtx(t), big); err != nil {
		t.Fatal(err)
	}
	if m := recvR(t, r); len(m.Frames[0]) != len(big) {
		t.Fatalf("got %d octets", len(m.Frames[0]))
	}
}

// TestPreAdmitWaitsForTheDecision: a peer that sends a small message and
// at once a large one (a HELLO and a WHISPER) is not cut: its reader waits
// for Admit and goes on. One never admitted is closed after AdmitWait;
// one disconnected meanwhile, at once.
func TestPreAdmitWaitsForTheDecision(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	closed := make(chan string, 4)
	r := listen(t, Options{PreAdmit: testPreAdmit, AdmitWait: 300 * time.Millisecond,
		OnDisconnect: func(p *Peer) { closed <- string(p.Identity) }})
	big := bytes.Repeat([]byte{7}, 1<<20)

	d := dial(t, r.Addr().String(), Options{Identity: []byte("honest")})
	d.SendContext(testCtx(t), []byte("hello"))
	d.SendContext(testCtx(t), big)
	if m := recvR(t, r); string(m.Frames[0]) != "hello" {
		t.Fatalf("got %q", m.Frames[0])
	}
	if err := r.Admit([]byte("honest")); err != nil {
		t.Fatal(err)
	}
	if m := recvR(t, r); !bytes.Equal(m.Frames[0], big) {
		t.Fatalf("the large message after admission: %d octets", len(m.Frames[0]))
	}

	s := dial(t, r.Addr().String(), Options{Identity: []byte("stranger")})
	s.SendContext(testCtx(t), []byte("hello"))
	s.SendContext(testCtx(t), big)
	if m := recvR(t, r); string(m.Frames[0]) != "hello" {
		t.Fatalf("got %q", m.Frames[0])
	}
	select {
	case id := <-closed:
		if id != "stranger" {
			t.Fatalf("closed %q", id)
		}
	case <-testCtx(t).Done():
		t.Fatal("a connection never admitted was not closed")
	}
	if got := r.Unadmitted(); got != 1 {
		t.Errorf("Unadmitted = %d, want 1", got)
	}
	s.Close()
}

// TestPreAdmitAdmittedCallback: a connection that Options.Admitted
// admits (a peer that reconnects) sends a large first message; one it
// does not is closed.
func TestPreAdmitAdmittedCallback(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	r := listen(t, Options{PreAdmit: testPreAdmit,
		Admitted: func(p *Peer) bool { return string(p.Identity) == "known" }})
	big := bytes.Repeat([]byte{7}, 256<<10)
	d := dial(t, r.Addr().String(), Options{Identity: []byte("known")})
	d.SendContext(testCtx(t), big)
	if m := recvR(t, r); !bytes.Equal(m.Frames[0], big) {
		t.Fatalf("got %d octets", len(m.Frames[0]))
	}
	nc := strangerConn(t, r, "unknown")
	nc.Write(append(appendFrameHeader(nil, 0, len(big)), big...))
	waitClosed(t, nc, "a 256 KiB first message")
}
