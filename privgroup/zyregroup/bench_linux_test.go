//go:build linux

package zyregroup

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zyre-go/zyre/internal/testenv"
	"github.com/zyre-go/zyre/privgroup"
	"github.com/zyre-go/zyre/zre"
)

const plainGroup = "plain-bench"

// maxChunk is the largest ChunkSize, about 1 MiB.
const maxChunk = privgroup.MaxPlaintext - privgroup.ChunkHeaderSize

// benchPair is two secure nodes on loopback in this process: alice sends,
// bob receives, both through the private group and as plain SHOUTs in
// another group.
type benchPair struct {
	a, b       *member
	w          *Writer
	privBytes  atomic.Int64 // stream octets the Reader released (authenticated)
	privIn     atomic.Int64 // record octets of the private group that reached bob's pump
	plainBytes atomic.Int64
}

func newBenchPair(tb testing.TB, chunk int, suite privgroup.Suite) *benchPair {
	port := testBeaconPort()
	a, b := newNode(tb, "alice", port, false), newNode(tb, "bob", port, false)
	trusted := trustKeys(a, b)
	a.attach(group, Options{Trusted: trusted, ChunkSize: chunk, Crypto: privgroup.Options{Suite: suite}})
	g, err := Attach(b.n, group, Options{Secret: b.sk, Trusted: trusted})
	if err != nil {
		tb.Fatal(err)
	}
	b.g = g
	tb.Cleanup(func() { g.Close() })
	p := &benchPair{a: a, b: b}
	go func() {
		for ev := range b.n.Events() {
			if s, ok := ev.(*zre.Shout); ok && s.Group == group && len(s.Content) == 1 {
				p.privIn.Add(int64(len(s.Content[0])))
			}
			if g.Handle(ev) {
				continue
			}
			if s, ok := ev.(*zre.Shout); ok && s.Group == plainGroup && len(s.Content) == 1 {
				p.plainBytes.Add(int64(len(s.Content[0])))
				s.Release() // counted: handed back, as an application would once done
			}
		}
	}()
	for _, m := range []*member{a, b} {
		if err := m.n.Join(plainGroup); err != nil {
			tb.Fatal(err)
		}
	}
	b.awaitSender(a)
	waitFor(tb, "bob in the plain group", func() bool { return contains(a.n.PeersByGroup(plainGroup), b.n.UUID()) })
	rd, err := g.NewReader(a.n.UUID())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { rd.Close() })
	go func() {
		buf := make([]byte, 256<<10)
		for {
			n, err := rd.Read(buf)
			p.privBytes.Add(int64(n))
			var gap *privgroup.GapError
			if err != nil && !errors.As(err, &gap) {
				return
			}
		}
	}()
	if p.w, err = a.g.NewWriter(); err != nil {
		tb.Fatal(err)
	}
	return p
}

// window bounds the octets in flight between the nodes (sent, not yet at
// the receiving application's event pump), so neither mode overruns the
// receiving node's event queue (which drops SHOUTs beyond 10000 events).
const window = 4 << 20

// transfer sends total octets in chunks through send, keeping at most
// window octets in flight, and waits until received reaches total. arrived
// counts what reached the receiving pump, received what the receiver
// delivered: the same counter for plain SHOUTs; for the private stream the
// Reader releases data only once a batch record covers it, and flow
// control on that would stall the sender for a whole batch (a batch ends
// at 4 MiB, the whole window), measuring the batch latency rather than
// throughput. The time includes the final release.
func transfer(tb testing.TB, chunk []byte, total int64, arrived, received *atomic.Int64, send func([]byte) error, flush func() error) time.Duration {
	start := time.Now()
	base, inBase := received.Load(), arrived.Load()
	deadline := start.Add(2 * time.Minute)
	for sent := int64(0); sent < total; sent += int64(len(chunk)) {
		for sent-(arrived.Load()-inBase) > window {
			if time.Now().After(deadline) {
				tb.Fatalf("receiver stuck at %d of %d", arrived.Load()-inBase, sent)
			}
			time.Sleep(20 * time.Microsecond)
		}
		if err := send(chunk); err != nil {
			tb.Fatal(err)
		}
	}
	if flush != nil {
		if err := flush(); err != nil {
			tb.Fatal(err)
		}
	}
	for received.Load()-base < total {
		if time.Now().After(deadline) {
			tb.Fatalf("received %d of %d", received.Load()-base, total)
		}
		time.Sleep(20 * time.Microsecond)
	}
	return time.Since(start)
}

// BenchmarkNodeStream measures a stream between two secure nodes on
// loopback, encrypted (private group: Writer → SHOUT → Handle → Reader)
// beside the same octets as plain SHOUTs of the same sizes through the same
// nodes, alternating in every iteration, for each size and suite (the
// default, privgroup.PreferredSuite, is ChaCha20/SHA-256 below 8 KiB and
// AES-GCM/BLAKE3 from 8 KiB where the CPU has AES-NI, CLMUL and AVX2).
// "1KiB" sends each 1 KiB write as one message (ChunkSize 1 KiB);
// "1MiB" sends the largest chunk, 8 octets short of 1 MiB.
// "1KiB-writes" writes 1 KiB pieces into a stream with the default chunk
// size, and its plain counterpart coalesces them into SHOUTs of that size
// the same way. Metrics: MB/s of each and their ratio; the CPU of the
// whole process (both nodes, getrusage) per MB in each mode and their
// ratio, which the load of a shared machine moves less than the
// wall-clock figures. BenchmarkReceiver50Mbit measures the receiving
// process alone.
func BenchmarkNodeStream(b *testing.B) {
	for _, size := range []struct {
		name  string
		write int // octets per Write (and per plain SHOUT when msg is write)
		msg   int // ChunkSize: octets per message
		total int64
	}{
		{"1KiB", 1 << 10, 1 << 10, 8 << 20},
		{"1KiB-writes", 1 << 10, privgroup.DefaultChunkSize, 32 << 20},
		{"16KiB", 16 << 10, 16 << 10, 32 << 20},
		{"64KiB", 64 << 10, 64 << 10, 64 << 20},
		// The largest chunk a Writer sends (1 MiB of plaintext with the
		// chunk header), and plain SHOUTs of the same size.
		{"1MiB", maxChunk, maxChunk, 64 * maxChunk},
	} {
		for _, suite := range []privgroup.Suite{privgroup.SuiteChaCha20SHA256, privgroup.SuiteAESGCMBLAKE3} {
			b.Run(size.name+"/"+suite.String(), func(b *testing.B) {
				p := newBenchPair(b, size.msg, suite)
				chunk := randomBytes(size.write, 9)
				shout := func(c []byte) error {
					return p.a.n.ShoutContext(context.Background(), plainGroup, c)
				}
				plainSend, plainFlush := shout, func() error { return nil }
				if size.msg != size.write {
					c := &rxChunker{buf: make([]byte, 0, size.msg), send: shout}
					plainSend, plainFlush = func(p []byte) error { _, err := c.Write(p); return err }, c.Flush
				}
				privSend := func(c []byte) error { _, err := p.w.Write(c); return err }
				// Warm up both paths.
				transfer(b, chunk, 1<<20, &p.plainBytes, &p.plainBytes, plainSend, plainFlush)
				transfer(b, chunk, 1<<20, &p.privIn, &p.privBytes, privSend, p.w.Flush)
				var tPlain, tPriv, cpuPlain, cpuPriv time.Duration
				var bytes int64
				b.ResetTimer()
				// Each iteration alternates the modes in four rounds, so that
				// the load of a shared machine weighs on both alike.
				const rounds = 4
				part := size.total / rounds
				for range b.N {
					for range rounds {
						c0 := testenv.ProcessCPU()
						tPlain += transfer(b, chunk, part, &p.plainBytes, &p.plainBytes, plainSend, plainFlush)
						c1 := testenv.ProcessCPU()
						tPriv += transfer(b, chunk, part, &p.privIn, &p.privBytes, privSend, p.w.Flush)
						c2 := testenv.ProcessCPU()
						cpuPlain += c1 - c0
						cpuPriv += c2 - c1
						bytes += part
					}
				}
				b.StopTimer()
				mbPlain := float64(bytes) / tPlain.Seconds() / 1e6
				mbPriv := float64(bytes) / tPriv.Seconds() / 1e6
				b.ReportMetric(mbPlain, "plain-MB/s")
				b.ReportMetric(mbPriv, "private-MB/s")
				b.ReportMetric(mbPriv/mbPlain, "ratio")
				mb := float64(bytes) / 1e6
				b.ReportMetric(cpuPlain.Seconds()*1e3/mb, "plain-cpu-ms/MB")
				b.ReportMetric(cpuPriv.Seconds()*1e3/mb, "private-cpu-ms/MB")
				b.ReportMetric(cpuPlain.Seconds()/cpuPriv.Seconds(), "cpu-ratio")
				if st := p.b.g.Stats(); st.QueueDropped != 0 {
					b.Fatalf("queue dropped %d records", st.QueueDropped)
				}
			})
		}
	}
}
