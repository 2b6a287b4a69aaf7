package zmtp

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/zyre-go/zyre/internal/testenv"
)

// pieces is a reader that returns its data in the given piece sizes, and
// tells how much of it has not been read yet.
type pieces struct {
	data  []byte
	sizes []int
	check func() // called before each read
}

func (p *pieces) Read(b []byte) (int, error) {
	if p.check != nil {
		p.check()
	}
	if len(p.data) == 0 {
		return 0, io.EOF
	}
	n := len(p.data)
	if len(p.sizes) > 0 {
		n, p.sizes = min(n, p.sizes[0]), p.sizes[1:]
	}
	n = copy(b, p.data[:n])
	p.data = p.data[n:]
	return n, nil
}

// readFull raises the low-water mark for a large body, never above what
// the body still needs from the socket (a peer that sends the body and
// then nothing must not leave the reader waiting), lowers it as the body
// arrives, and sets it back to 1 at the end; small bodies leave it alone.
func TestReadFullLowWaterMark(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 19))
	for _, tc := range []struct {
		name     string
		size     int
		buffered int   // octets of the body already in the bufio.Reader
		sizes    []int // what each read of the socket returns
	}{
		{"small", lowatMin - 1, 0, nil},
		{"one read", 1 << 20, 0, nil},
		{"many reads", 1 << 20, 0, []int{100 << 10, 300 << 10, 200 << 10, 1, 400 << 10}},
		{"all but one octet", 600 << 10, 0, []int{600<<10 - 1, 1}},
		{"partly buffered", 700 << 10, 40 << 10, []int{0, 500 << 10, 100, 1 << 20}},
		{"exactly the cap", lowatMax, 0, []int{lowatMax / 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := make([]byte, tc.size)
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			// The bufio.Reader first holds tc.buffered octets, as after
			// reading the frame's header.
			src := &pieces{data: append([]byte{0}, data...), sizes: append([]int{1 + tc.buffered}, tc.sizes...)}
			fr := frameReader{r: bufio.NewReaderSize(src, 64<<10)}
			if _, err := fr.r.ReadByte(); err != nil {
				t.Fatal(err)
			}
			var marks []int
			// A read of the socket waits for the mark: it must not
			// exceed what is still to come.
			src.check = func() {
				if len(marks) > 0 {
					if m := marks[len(marks)-1]; m > 1 && m > len(src.data) {
						t.Fatalf("read with a low-water mark of %d and %d octets still to come", m, len(src.data))
					}
				}
			}
			fr.lowat = func(n int) {
				// Octets the reader still needs that the socket has not
				// delivered yet: what a wait would wait for.
				if pending := len(src.data); n > 1 && n > pending {
					t.Fatalf("low-water mark %d with %d octets still to come", n, pending)
				}
				if len(marks) > 0 && n > marks[len(marks)-1] && n != 1 {
					t.Fatalf("low-water mark raised from %d to %d", marks[len(marks)-1], n)
				}
				if n > lowatMax {
					t.Fatalf("low-water mark %d over lowatMax", n)
				}
				marks = append(marks, n)
			}
			got := make([]byte, tc.size)
			if err := fr.readFull(got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatal("read other octets than were sent")
			}
			if tc.size < lowatMin {
				if len(marks) > 0 {
					t.Fatalf("low-water marks %v for a small body", marks)
				}
				return
			}
			if len(marks) < 2 || marks[len(marks)-1] != 1 {
				t.Fatalf("low-water marks %v: want some, then 1 at the end", marks)
			}
		})
	}
}

// A large frame whose last octets come after a pause, with nothing after
// them, is delivered: the low-water mark the reader raised never waits
// for octets the peer does not send. (The pauses make the reader likely
// to wait in between; the test holds however the pieces arrive.)
func TestLargeFrameInPieces(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	r := listen(t, Options{})
	nc, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	rawHandshake(t, nc, "DEALER", "pieces")
	for _, size := range []int{lowatMin, 600 << 10, 1<<20 + 7} {
		body := bytes.Repeat([]byte{byte(size)}, size)
		frame := append(appendFrameHeader(nil, 0, size), body...)
		// All but the last 1, then 100 000, octets; then those.
		for _, tail := range []int{1, 100000} {
			cut := len(frame) - tail
			if _, err := nc.Write(frame[:cut]); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond) // not a synchronization: see above
			if _, err := nc.Write(frame[cut:]); err != nil {
				t.Fatal(err)
			}
			m := recvR(t, r)
			if len(m.Frames) != 1 || !bytes.Equal(m.Frames[0], body) {
				t.Fatalf("frame of %d octets, last %d after a pause: got %d frames", size, tail, len(m.Frames))
			}
		}
	}
}

// A large frame that arrives more slowly than the heartbeat timeout lets
// nothing arrive is not taken for a silent peer: octets arrive all the
// time, below the low-water mark the reader raised for the body.
// (Without the check in deadlineReader the Router drops the connection
// after the idle timeout, half a second in.)
func TestSlowLargeFrameUnderHeartbeat(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	r := listen(t, Options{HeartbeatInterval: 100 * time.Millisecond, HeartbeatTimeout: 400 * time.Millisecond})
	nc, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	rawHandshake(t, nc, "DEALER", "slow")
	const size, piece = 300 << 10, 1 << 10
	body := bytes.Repeat([]byte("s"), size)
	frame := append(appendFrameHeader(nil, 0, size), body...)
	// 1 KiB every 10 ms: 3 s for the frame, while the idle timeout is
	// 0.5 s; each gap is far below it.
	go func() {
		for off := 0; off < len(frame); off += piece {
			if _, err := nc.Write(frame[off:min(off+piece, len(frame))]); err != nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	m := recvR(t, r)
	if len(m.Frames) != 1 || !bytes.Equal(m.Frames[0], body) {
		t.Fatalf("got %d frames", len(m.Frames))
	}
}

// A peer that stops in the middle of a large body is still dropped at the
// idle timeout: reading what arrived below the low-water mark finds
// nothing, and that is silence.
func TestStalledLargeFrameTimesOut(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	gone := make(chan *Peer, 1)
	r := listen(t, Options{
		HeartbeatInterval: 100 * time.Millisecond, HeartbeatTimeout: 400 * time.Millisecond,
		OnDisconnect: func(p *Peer) { gone <- p },
	})
	nc, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	rawHandshake(t, nc, "DEALER", "stalled")
	const size = 300 << 10
	frame := append(appendFrameHeader(nil, 0, size), make([]byte, 100<<10)...)
	if _, err := nc.Write(frame); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-gone:
		if string(p.Identity) != "stalled" {
			t.Fatalf("disconnected %q", p.Identity)
		}
	case <-time.After(testDeadline):
		t.Fatal("a peer silent in the middle of a frame was not dropped")
	}
}
