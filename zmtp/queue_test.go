package zmtp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// SendContext waits for room while the Dealer's queue is full (nobody
// reads at the other end, so the socket buffers and the queue fill), gives
// up with ctx's error, and every message queued from several senders at
// once arrives, each sender's in order, once the receiver reads; a waiting
// SendContext returns ErrClosed when the Dealer is closed.
func TestSendContextWaitsForRoom(t *testing.T) {
	r := listen(t, Options{RecvHWM: 1})
	d := dial(t, r.Addr().String(), Options{SendHWM: 4})
	ctx := testCtx(t)
	const senders, each, size = 3, 24, 256 << 10
	msg := func(id, seq int) []byte {
		b := make([]byte, size)
		binary.BigEndian.PutUint32(b, uint32(id))
		binary.BigEndian.PutUint32(b[4:], uint32(seq))
		b[size-1] = byte(id + seq)
		return b
	}
	var wg sync.WaitGroup
	for id := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := range each {
				if err := d.SendContext(ctx, msg(id, seq)); err != nil {
					t.Errorf("sender %d, message %d: %v", id, seq, err)
					return
				}
			}
		}()
	}
	// The queue fills: a SendContext gives up with its context's error.
	// Messages that still found room count as one more sender's.
	extra := 0
	for {
		sctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := d.SendContext(sctx, msg(senders, extra))
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatalf("SendContext on a full queue: %v, want %v", err, context.DeadlineExceeded)
		}
		extra++
		if extra > 10000 {
			t.Fatal("the queue never filled")
		}
	}
	next := make([]int, senders+1)
	for range senders*each + extra {
		m := recvR(t, r)
		b := m.Frames[0]
		id, seq := int(binary.BigEndian.Uint32(b)), int(binary.BigEndian.Uint32(b[4:]))
		if id > senders || seq != next[id] || !bytes.Equal(b, msg(id, seq)) {
			t.Fatalf("got sender %d's message %d, want its %d", id, seq, next[min(id, senders)])
		}
		next[id]++
		m.Release()
	}
	wg.Wait()

	// Fill it again, then close the Dealer under a waiting SendContext.
	for {
		sctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := d.SendContext(sctx, msg(0, 0))
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- d.SendContext(ctx, msg(0, 0)) }()
	d.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("SendContext waiting when the Dealer closed: %v, want ErrClosed", err)
	}
}

// The reader delivers every whole message before a read that may wait:
// those complete in its buffer arrive although the next one is cut short
// (its rest never comes), and those before a frame that breaks the
// connection arrive too. (It guards any batching of deliveries; one was
// tried for issue 19 and not kept, see BENCHMARKS.md.)
func TestReaderDeliversBeforeWaiting(t *testing.T) {
	r := listen(t, Options{})
	greeting := AppendGreeting(nil, Greeting{Major: 3, Minor: 1, Mechanism: "NULL"})
	ready := appendCommand(nil, "READY", AppendMetadata(nil, Metadata{{"Socket-Type", []byte("DEALER")}, {"Identity", []byte("raw")}}))
	hello := append(bytes.Clone(greeting), appendFrameHeader(nil, FlagCommand, len(ready))...)
	hello = append(hello, ready...)
	const n = 48
	stream := func(tail []byte) []byte {
		b := bytes.Clone(hello)
		for i := range n {
			body := []byte(fmt.Sprintf("message %d", i))
			b = append(appendFrameHeader(b, 0, len(body)), body...)
		}
		return append(b, tail...)
	}
	for _, tc := range []struct {
		name string
		tail []byte
	}{
		{"cut short", []byte{0, 200, 'x', 'y'}},                        // a frame of 200 octets, 2 sent
		{"protocol error", []byte{0x40, 1, 'z', 0, 1, 'a', 0, 1, 'b'}}, // reserved flag bit
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := net.Dial("tcp", r.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if _, err := nc.Write(stream(tc.tail)); err != nil {
				t.Fatal(err)
			}
			for i := range n {
				m := recvR(t, r)
				if want := fmt.Sprintf("message %d", i); string(m.Frames[0]) != want || string(m.Peer.Identity) != "raw" {
					t.Fatalf("got %q from %q, want %q", m.Frames[0], m.Peer.Identity, want)
				}
			}
		})
	}
}
