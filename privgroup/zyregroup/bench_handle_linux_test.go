//go:build linux

package zyregroup

import (
	"bytes"
	"io"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zyre-go/zyre/internal/testenv"
	"github.com/zyre-go/zyre/privgroup"
	"github.com/zyre-go/zyre/zre"
)

// BenchmarkHandleRecord measures what a record costs the receiving side of
// a Group, without a network: a Writer of the sender (1 KiB chunks, suite
// 1) hands each record, as a SHOUT event, to Handle; a Reader reads the
// stream on another goroutine. Flat out, and paced at 50 Mbit/s (where
// each burst wakes the goroutines it passes through). The sealing is
// included. Metrics: ns/op (one op: one 1 KiB chunk), cpu-ns/op, the CPU
// of the process (sender and receiver), csw/op, its context switches
// (voluntary and not: threads parking and waking); paced, %core@50Mbit.
//
//	go test -run '^$' -bench HandleRecord -benchtime 20000x -count 3 ./privgroup/zyregroup/
func BenchmarkHandleRecord(b *testing.B) {
	for _, paced := range []bool{false, true} {
		name := "flat"
		if paced {
			name = "paced-50Mbit"
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
			cpu0, csw0 := testenv.ProcessCPU(), contextSwitches()
			start := time.Now()
			for i := range b.N {
				// Paced: 50 Mbit/s, the sender sleeping until the next
				// record is due (records then leave in small bursts).
				if due := start.Add(time.Duration(i) * time.Second * chunk * 8 / 50e6); paced && time.Until(due) > 0 {
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
			cpu, csw := testenv.ProcessCPU()-cpu0, contextSwitches()-csw0
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(csw)/float64(b.N), "csw/op")
			if paced {
				// Both ends' CPU for a second of a 50 Mbit/s stream.
				b.ReportMetric(100*cpu.Seconds()/(float64(b.N)*chunk*8/50e6), "%core@50Mbit")
			}
			if read.Load() != written || rd.Dropped() != 0 {
				b.Fatalf("read %d of %d octets, %d records dropped", read.Load(), written, rd.Dropped())
			}
		})
	}
}

// contextSwitches returns the context switches of the process so far.
func contextSwitches() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Nvcsw + ru.Nivcsw
}
