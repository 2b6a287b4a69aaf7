package zyregroup

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zyre-go/zyre/internal/testenv"
	"github.com/zyre-go/zyre/privgroup"
	"github.com/zyre-go/zyre/zre"
)

// The Group hands the content of the records it received back to the node
// (zre's Shout.Release) only once it is done with it: records waiting in a
// sender's queue keep their buffers while the node reads later messages
// (more records, and plain whispers that the application releases) into
// the buffers released before, and the stream then reads back intact —
// a record released too early would be overwritten and fail to open
// (Dropped, a gap). Records the Reader opened are released (most of them:
// the last one is held until the next read). Every record took the fast
// path (queued on the caller's goroutine). Under both suites, chunks
// from 1 KiB up (the node pools frames of 1 KiB to 4 MiB).
func TestReleaseAfterOpen(t *testing.T) {
	for _, c := range []struct {
		name  string
		chunk int
		suite privgroup.Suite
	}{
		{"1KiB", 1 << 10, privgroup.SuiteChaCha20SHA256},
		{"20KiB", 20 << 10, privgroup.SuiteAESGCMBLAKE3},
	} {
		t.Run(c.name, func(t *testing.T) {
			port := testBeaconPort()
			a, b := newNode(t, "alice", port, false), newNode(t, "bob", port, false)
			trusted := trustKeys(a, b)
			a.attach(group, Options{Trusted: trusted, ChunkSize: c.chunk, Crypto: privgroup.Options{Suite: c.suite}})
			b.attach(group, Options{Trusted: trusted})
			b.awaitSender(a)
			w, err := a.g.NewWriter()
			if err != nil {
				t.Fatal(err)
			}
			const chunks = 150
			data := randomBytes(chunks*c.chunk, 19)
			ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
			defer cancel()
			// Phase 1: the first half is queued at bob, no Reader yet.
			half := len(data) / 2
			if _, err := w.Write(data[:half]); err != nil {
				t.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			queued := b.g.Stats().Records
			waitFor(t, "the first half queued", func() bool {
				st := b.g.Stats()
				queued = st.Records
				return st.Records >= chunks/2
			})
			// Plain whispers of the chunk size, released by bob's
			// application: the node reads later messages into their buffers.
			for i := range 40 {
				if err := a.n.WhisperOwned(ctx, b.n.UUID(), bytes.Repeat([]byte{byte(i)}, c.chunk)); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 40 {
				e := b.await("a plain whisper", func(e zre.Event) bool { _, ok := e.(*zre.Whisper); return ok })
				wh := e.(*zre.Whisper)
				if len(wh.Content) != 1 || len(wh.Content[0]) != c.chunk || wh.Content[0][0] != byte(i) {
					t.Fatalf("plain whisper %d: wrong content", i)
				}
				wh.Release()
			}
			rd, err := b.g.NewReader(a.n.UUID())
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			// Phase 2: the second half is sent while bob reads.
			go func() {
				if _, err := w.Write(data[half:]); err != nil {
					t.Errorf("write: %v", err)
				}
				if err := w.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			}()
			got := make([]byte, 0, len(data))
			buf := make([]byte, 7000)
			for {
				n, err := rd.Read(buf)
				got = append(got, buf[:n]...)
				if err == io.EOF {
					break
				}
				var gap *privgroup.GapError
				if errors.As(err, &gap) {
					t.Fatalf("gap after %d octets (%d records queued before reading): %v; %d dropped", len(got), queued, err, rd.Dropped())
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("read %d octets, not the %d written (or changed); %d records dropped", len(got), len(data), rd.Dropped())
			}
			if rd.Dropped() != 0 {
				t.Fatalf("%d records dropped", rd.Dropped())
			}
			if r, st := b.g.released.Load(), b.g.Stats(); r < st.Records-1 {
				t.Fatalf("%d events released, want at least %d of the %d records read", r, st.Records-1, st.Records)
			}
			// Every record came after the sender's key: Handle queued each
			// on the pump's goroutine (fastShout).
			if f, st := b.g.fast.records.Load(), b.g.Stats(); f != st.Records || f < chunks {
				t.Fatalf("%d records queued by fastShout of %d, want all, at least %d", f, st.Records, chunks)
			}
		})
	}
}

// BenchmarkHandleRecord measures what a record costs the receiving side of
// a Group, without a network: a Writer of the sender (1 KiB chunks, suite
// 1) hands each record, as a SHOUT event, to Handle; a Reader reads the
// stream on another goroutine. "fast" is Handle as it is (the record of a
// known sender queued on the caller's goroutine, fastShout); "slow" turns
// fastShout off, so that each record takes the way through the Group's
// goroutine (as before it). The sealing is in both alike. Flat out, and
// paced at 50 Mbit/s (where each burst wakes the goroutines it passes
// through). Metrics: ns/op (one op: one 1 KiB chunk), cpu-ns/op, the CPU
// of the process (sender and receiver); paced, %core@50Mbit.
//
//	go test -run '^$' -bench HandleRecord -benchtime 20000x -count 3 ./privgroup/zyregroup/
func BenchmarkHandleRecord(b *testing.B) {
	for _, c := range []struct {
		path  string
		paced bool
	}{{"slow", false}, {"fast", false}, {"slow", true}, {"fast", true}} {
		path := c.path
		name := path
		if c.paced {
			name += "/paced-50Mbit"
		}
		b.Run(name, func(b *testing.B) {
			f := newFakeGroup(b, 0xff)
			// Suite 1, the default for 1 KiB chunks: a new epoch whose key
			// the Group takes.
			if err := f.s.SetSuite(privgroup.SuiteChaCha20SHA256); err != nil {
				b.Fatal(err)
			}
			if _, err := f.s.Rotate(nil); err != nil {
				b.Fatal(err)
			}
			key, err := f.s.KeyFor(f.g.opts.Secret.Public())
			if err != nil {
				b.Fatal(err)
			}
			if f.g.Handle(keyWhisper(f.p, key, 0xff)); f.g.Stats().KeysReceived != 2 {
				b.Fatalf("the new key was not taken: %+v", f.g.Stats())
			}
			rd, err := f.g.NewReader(f.p)
			if err != nil {
				b.Fatal(err)
			}
			defer rd.Close()
			if path == "slow" {
				f.g.read(func() { f.g.routes.Store(nil) }) // republished only when keys or queues change
			}
			const chunk = 1 << 10
			var read atomic.Int64
			done := make(chan error, 1)
			go func() {
				buf := make([]byte, 64<<10)
				for {
					n, err := rd.Read(buf)
					read.Add(int64(n))
					if err != nil {
						done <- err
						return
					}
				}
			}()
			var written int64
			w, err := privgroup.NewWriter(f.s, func(rec []byte) error {
				// A node's SHOUT content is the receiver's own: a copy.
				f.g.Handle(&zre.Shout{EventHeader: zre.EventHeader{Peer: f.p}, Group: group, Content: [][]byte{bytes.Clone(rec)}})
				return nil
			}, privgroup.WriterOptions{ChunkSize: chunk})
			if err != nil {
				b.Fatal(err)
			}
			data := randomBytes(chunk, 3)
			b.SetBytes(chunk)
			b.ResetTimer()
			cpu0 := testenv.ProcessCPU()
			start := time.Now()
			for i := range b.N {
				// Paced: 50 Mbit/s, the sender sleeping until the next
				// record is due (records then leave in small bursts).
				if due := start.Add(time.Duration(i) * time.Second * chunk * 8 / 50e6); c.paced && time.Until(due) > 0 {
					time.Sleep(time.Until(due))
				}
				// At most 2 MiB ahead of the Reader (a batch is 256 records).
				for written-read.Load() > 2<<20 {
					runtime.Gosched()
				}
				if _, err := w.Write(data); err != nil {
					b.Fatal(err)
				}
				written += chunk
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
			if err := <-done; err != io.EOF {
				b.Fatalf("read: %v", err)
			}
			b.StopTimer()
			cpu := testenv.ProcessCPU() - cpu0
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			if c.paced {
				// Both ends' CPU for a second of a 50 Mbit/s stream.
				b.ReportMetric(100*cpu.Seconds()/(float64(b.N)*chunk*8/50e6), "%core@50Mbit")
			}
			if read.Load() != written || rd.Dropped() != 0 {
				b.Fatalf("read %d of %d octets, %d records dropped", read.Load(), written, rd.Dropped())
			}
			if fast := f.g.fast.records.Load(); (path == "fast") != (fast > 0) {
				b.Fatalf("%s: %d records by fastShout", path, fast)
			}
		})
	}
}
