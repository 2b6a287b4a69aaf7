package zre

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/internal/testenv"
)

// releasePair starts two loopback nodes, a and b, that see each other
// (secure or plain), and returns them once each had the other's Enter.
func releasePair(tb testing.TB, secure bool) (a, b *Node) {
	tb.Helper()
	port := testBeaconPort()
	start := func(name string) *Node {
		cfg := Config{Name: name, Beacon: BeaconConfig{Port: port, Loopback: true, Interval: 100 * time.Millisecond}}
		if secure {
			cfg = secureConfig(tb, name, port)
			cfg.Beacon.Loopback, cfg.Beacon.Interval = true, 100*time.Millisecond
		}
		n, err := New(cfg)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { n.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Start(ctx); err != nil {
			tb.Fatal(err)
		}
		return n
	}
	a, b = start("a"), start("b")
	for _, p := range [][2]*Node{{a, b}, {b, a}} {
		awaitEvent(tb, p[0], "ENTER "+p[1].Name(), isEnter(p[1].UUID()))
	}
	return a, b
}

// awaitEvent is waitEvent for a testing.TB.
func awaitEvent(tb testing.TB, n *Node, what string, match func(Event) bool) Event {
	tb.Helper()
	deadline := time.NewTimer(eventTimeout)
	defer deadline.Stop()
	for {
		select {
		case e, ok := <-n.Events():
			if !ok {
				tb.Fatalf("%s: events closed while waiting for %s", n.Name(), what)
			}
			if match(e) {
				return e
			}
		case <-deadline.C:
			tb.Fatalf("%s: no %s within %v (stats %+v)", n.Name(), what, eventTimeout, n.Stats())
		}
	}
}

// numbered is a content frame of size octets that says which message it is
// in every octet group, so that a frame overwritten by a later one shows.
func numbered(i, size int) []byte {
	f := make([]byte, size)
	for off := 0; off+8 <= size; off += 8 {
		binary.BigEndian.PutUint64(f[off:], uint64(i)<<32|uint64(off))
	}
	return f
}

// Content that the receiver releases goes back to the inbox socket and
// later messages are read into it; content that the receiver keeps (not
// released) is never reused, whatever is released after it; Release may
// be called twice. Under CURVE and plain, for
// whispers and shouts, with a small frame beside the large one.
func TestReleaseContent(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(fmt.Sprintf("secure=%v", secure), func(t *testing.T) {
			a, b := releasePair(t, secure)
			if err := a.Join("g"); err != nil {
				t.Fatal(err)
			}
			awaitEvent(t, b, "JOIN g", isJoin(a.UUID(), "g"))
			if err := b.Join("g"); err != nil {
				t.Fatal(err)
			}
			awaitEvent(t, a, "JOIN g", isJoin(b.UUID(), "g"))
			const msgs = 200
			sizes := []int{1 << 10, 3000, 64 << 10, 200 << 10}
			var kept [][][]byte // content of the messages b keeps
			var keptIdx []int
			ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
			defer cancel()
			go func() {
				for i := range msgs {
					big := numbered(i, sizes[i%len(sizes)])
					small := []byte(fmt.Sprintf("m%d", i))
					var err error
					if i%2 == 0 {
						err = a.WhisperOwned(ctx, b.UUID(), small, big)
					} else {
						err = a.ShoutOwned(ctx, "g", small, big)
					}
					if err != nil {
						t.Errorf("send %d: %v", i, err)
						return
					}
				}
			}()
			for i := range msgs {
				e := awaitEvent(t, b, fmt.Sprintf("message %d", i), func(e Event) bool {
					switch e := e.(type) {
					case *Whisper:
						return e.Peer == a.UUID()
					case *Shout:
						return e.Peer == a.UUID() && e.Group == "g"
					}
					return false
				})
				var content [][]byte
				release := func() {}
				switch e := e.(type) {
				case *Whisper:
					content, release = e.Content, e.Release
					if i%2 != 0 {
						t.Fatalf("message %d: a whisper, want a shout", i)
					}
				case *Shout:
					content, release = e.Content, e.Release
					if i%2 == 0 {
						t.Fatalf("message %d: a shout, want a whisper", i)
					}
				}
				if len(content) != 2 || string(content[0]) != fmt.Sprintf("m%d", i) || !bytes.Equal(content[1], numbered(i, sizes[i%len(sizes)])) {
					t.Fatalf("message %d: wrong content (%d frames)", i, len(content))
				}
				if i%7 == 3 {
					kept = append(kept, content)
					keptIdx = append(keptIdx, i)
					continue
				}
				release()
				release() // a second time does nothing
			}
			for k, c := range kept {
				i := keptIdx[k]
				if string(c[0]) != fmt.Sprintf("m%d", i) || !bytes.Equal(c[1], numbered(i, sizes[i%len(sizes)])) {
					t.Fatalf("kept message %d was overwritten after later messages were released", i)
				}
			}
		})
	}
}

// Release on an event that no node made (a test's or an application's
// own) does nothing.
func TestReleaseForeignEvent(t *testing.T) {
	w := &Whisper{EventHeader: EventHeader{Peer: uuid.New()}, Content: [][]byte{[]byte("x")}}
	w.Release()
	s := &Shout{Group: "g", Content: [][]byte{[]byte("y")}}
	s.Release()
	s.Release()
	if string(w.Content[0]) != "x" || string(s.Content[0]) != "y" {
		t.Fatal("Release changed a foreign event's content")
	}
}

// BenchmarkNodeWhisper streams whispers of one content frame from a to b
// over loopback; b either keeps every event's content (keep: what every
// receiver did before Release existed) or releases it (release). Run both
// in one process and alternate them to compare.
func BenchmarkNodeWhisper(b *testing.B) {
	for _, secure := range []bool{false, true} {
		mode := "plain"
		if secure {
			mode = "curve"
		}
		for _, size := range []int{4 << 10, 64 << 10, 1 << 20} {
			for _, rel := range []bool{false, true} {
				how := "keep"
				if rel {
					how = "release"
				}
				b.Run(fmt.Sprintf("%s/%dKiB/%s", mode, size>>10, how), func(b *testing.B) {
					benchWhisper(b, secure, size, rel)
				})
			}
		}
	}
}

func benchWhisper(b *testing.B, secure bool, size int, release bool) {
	na, nb := releasePair(b, secure)
	frame := make([]byte, size)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// At most window octets in flight, so that no event is dropped for
	// the event budget (Config.EventBytes) while the consumer lags: the
	// sender takes a token per message, the consumer gives it back (a
	// channel, so that waiting costs no CPU).
	const window = 16 << 20
	tokens := make(chan struct{}, max(window/size, 1))
	done := make(chan int)
	go func() {
		got := 0
		for e := range nb.Events() {
			w, ok := e.(*Whisper)
			if !ok {
				continue
			}
			if len(w.Content) != 1 || len(w.Content[0]) != size {
				b.Errorf("whisper of %d frames", len(w.Content))
			}
			if release {
				w.Release()
			}
			<-tokens
			got++
			if got == b.N {
				break
			}
		}
		done <- got
	}()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := testenv.ProcessCPU()
	for range b.N {
		select {
		case tokens <- struct{}{}:
		case <-ctx.Done():
			b.Fatalf("receiver stuck (stats %+v)", nb.Stats())
		}
		// WhisperOwned: the sender's copy is not what is measured. The
		// frame is never changed, so sharing it between messages is safe.
		if err := na.WhisperOwned(ctx, nb.UUID(), frame); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case got := <-done:
		if got != b.N {
			b.Fatalf("received %d of %d (stats %+v)", got, b.N, nb.Stats())
		}
	case <-ctx.Done():
		b.Fatalf("timed out (stats %+v)", nb.Stats())
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
	// CPU of the whole process (both nodes) per message: it moves far
	// less than msg/s on a loaded machine.
	b.ReportMetric(float64((testenv.ProcessCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}
