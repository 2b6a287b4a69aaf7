package zmtp

import (
	"bufio"
	"bytes"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/testenv"
)

// poison makes the pool's put fill what it pools with 0xDB, so that a
// buffer still in use after it went back shows.
func poison(p *bufPool) { p.poison.Store(true) }

// TestPooledCommandKeptUntilHandled: a large command (a PING with a long
// context) read into a pooled buffer stays its own until the core handled
// it: the PONG carries the PING's context, not whatever the pool's next
// user (another connection of the socket) wrote into the buffer.
func TestPooledCommandKeptUntilHandled(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	r := listen(t, Options{})
	poison(&r.pool)
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

// pooledBufs returns the pooled buffers behind m's frames.
func (m *Message) pooledBufs() []*[]byte {
	return m.bufs.list()
}

// list returns the pooled buffers (mb may be nil).
func (mb *msgBufs) list() []*[]byte {
	if mb == nil || mb.first == nil {
		return nil
	}
	return append([]*[]byte{mb.first}, mb.rest...)
}

// TestReleaseCopies: releasing a Message and a copy of it, or the same
// one twice, gives its buffers back once, so that the pool never hands
// one buffer to two later messages.
func TestReleaseCopies(t *testing.T) {
	var p bufPool
	p.released.Store(true)
	b := p.get(5000)
	mb := new(msgBufs)
	mb.add(b)
	m := newMessage([][]byte{*b}, nil, mb, &p)
	m2 := m
	m.Release()
	m2.Release()
	m.Release()
	x, y := p.get(5000), p.get(5000)
	if x == y {
		t.Fatal("one released buffer handed out twice")
	}
}

// mechPair is a Router and a Dealer of identity connected to it, with
// mech "NULL" or "CURVE" (fresh keys).
func mechPair(t *testing.T, mech, identity string) (*Router, *Dealer) {
	t.Helper()
	ro, do := Options{}, Options{Identity: []byte(identity)}
	if mech == "CURVE" {
		spub, ssec, err := curve.GenerateKeyPair(nil)
		if err != nil {
			t.Fatal(err)
		}
		cpub, csec, err := curve.GenerateKeyPair(nil)
		if err != nil {
			t.Fatal(err)
		}
		ro.Mechanism = CurveServer(CurveServerConfig{Public: spub, Secret: ssec})
		do.Mechanism = CurveClient(CurveClientConfig{Public: cpub, Secret: csec, ServerKey: spub})
	}
	r := listen(t, ro)
	return r, dial(t, r.Addr().String(), do)
}

// TestReleaseStress: a Dealer sends messages of pooled sizes, each filled
// with its own octet; the receiver checks each one, then releases it in
// one of several patterns (once; a copy and the original at the same time
// from two goroutines; twice; or kept a while and checked again before
// its release). No message may ever show another's octets. Bounded by a
// count and by the test deadline.
func TestReleaseStress(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	for _, mech := range []string{"NULL", "CURVE"} {
		t.Run(mech, func(t *testing.T) {
			r, d := mechPair(t, mech, "s")
			const n = 400
			sizes := []int{1500, 5000, 20000, 70000, 200000}
			ctx := testCtx(t)
			go func() {
				for i := range n {
					body := bytes.Repeat([]byte{byte(i)}, sizes[i%len(sizes)])
					if d.SendContext(ctx, []byte{byte(i)}, body) != nil {
						return
					}
				}
			}()
			check := func(m Message, i int) {
				t.Helper()
				want := byte(i)
				if len(m.Frames) != 2 || len(m.Frames[0]) != 1 || m.Frames[0][0] != want || len(m.Frames[1]) != sizes[i%len(sizes)] {
					t.Fatalf("message %d: %d frames", i, len(m.Frames))
				}
				for j, c := range m.Frames[1] {
					if c != want {
						t.Fatalf("message %d: octet %d is %#x, want %#x (another message's)", i, j, c, want)
					}
				}
			}
			type kept struct {
				m Message
				i int
			}
			var keep []kept
			var wg sync.WaitGroup
			for i := range n {
				m, err := r.Recv(ctx)
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				check(m, i)
				switch i % 4 {
				case 0:
					m.Release()
				case 1:
					c := m
					wg.Add(2)
					go func() { defer wg.Done(); c.Release() }()
					go func() { defer wg.Done(); m.Release() }()
				case 2:
					c := m
					m.Release()
					m.Release()
					c.Release()
				case 3:
					keep = append(keep, kept{m, i})
					if len(keep) > 4 {
						check(keep[0].m, keep[0].i)
						keep[0].m.Release()
						keep = keep[1:]
					}
				}
			}
			wg.Wait()
			for _, k := range keep {
				check(k.m, k.i)
			}
			r.Close()
			for _, k := range keep {
				k.m.Release() // after the socket closed
			}
		})
	}
}

// TestPooledFrameCapacity: a frame read into a pooled buffer ends where
// its octets end: its capacity does not reach the rest of the buffer,
// which holds an earlier message's octets (from any peer of the socket).
func TestPooledFrameCapacity(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	for _, mech := range []string{"NULL", "CURVE"} {
		t.Run(mech, func(t *testing.T) {
			r, d := mechPair(t, mech, "c")
			for i, size := range []int{8000, 8000, 5000, 5000} { // one class, 8 KiB
				if err := d.SendContext(testCtx(t), bytes.Repeat([]byte{'a' + byte(i)}, size)); err != nil {
					t.Fatal(err)
				}
				m := recvR(t, r)
				f := m.Frames[0]
				if len(f) != size || cap(f) != len(f) {
					t.Fatalf("message %d: frame of %d octets has capacity %d", i, len(f), cap(f))
				}
				m.Release()
			}
		})
	}
}

// TestPeerTTLZero: a peer that announced a TTL in a PING and then a TTL
// of 0 (RFC 37: no timeout) is not dropped by the first TTL's deadline
// while it keeps sending (our own heartbeats are off).
func TestPeerTTLZero(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	r := listen(t, Options{})
	nc, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	rawHandshake(t, nc, "DEALER", "ttl")
	write := func(b []byte) {
		t.Helper()
		if _, err := nc.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	for _, ttl := range []byte{2, 0} { // 200 ms, then none
		ping := appendCommand(nil, "PING", []byte{0, ttl})
		write(append(appendFrameHeader(nil, FlagCommand, len(ping)), ping...))
		// A message after each PING, received: the Router read again
		// (and moved its deadline) after taking the PING's TTL.
		write(append(appendFrameHeader(nil, 0, 1), 'p'))
		if m := recvR(t, r); string(m.Frames[0]) != "p" {
			t.Fatalf("got %q", m.Frames)
		}
	}
	// Messages for well over the first TTL, each received before the next
	// is sent.
	start := time.Now()
	for i := 0; time.Since(start) < 600*time.Millisecond; i++ {
		write(append(appendFrameHeader(nil, 0, 1), byte(i)))
		if m := recvR(t, r); m.Frames[0][0] != byte(i) {
			t.Fatalf("message %d: got %q", i, m.Frames)
		}
		time.Sleep(20 * time.Millisecond) // pacing, not synchronisation
	}
}
