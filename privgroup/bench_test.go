package privgroup

import (
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"
)

// Run with: go test -run '^$' -bench . -benchtime 2000x ./privgroup/
// (or -benchtime 1s). Each runs for both suites. Open reports the share of
// one core a receiver needs for a 50 Mbit/s (6.25 MB/s) stream as
// %core@50Mbit/s.

var benchSizes = []struct {
	name string
	n    int
}{{"1KiB", 1 << 10}, {"4KiB", 4 << 10}, {"16KiB", 16 << 10}, {"64KiB", 64 << 10},
	{"1MiB", MaxPlaintext - ChunkHeaderSize}} // 1MiB: the largest chunk a Writer sends

func benchPair(b *testing.B, suite Suite) (*member, *member, *Sender) {
	c := newClock()
	a, m := newMember(b, "a", 1, Options{Now: c.Now}), newMember(b, "b", 2, Options{Now: c.Now})
	s := a.sender(b, Options{Suite: suite})
	give(b, s, a, m)
	return a, m, s
}

func BenchmarkSeal(b *testing.B) {
	for _, su := range suites {
		for _, sz := range benchSizes {
			b.Run(su.String()+"/"+sz.name, func(b *testing.B) {
				_, _, s := benchPair(b, su)
				pt := make([]byte, sz.n)
				out := make([]byte, 0, sz.n+Overhead)
				rec := make([]byte, 0, BatchRecordSize)
				b.SetBytes(int64(sz.n))
				b.ReportAllocs()
				for b.Loop() {
					var err error
					if out, err = s.Seal(out[:0], pt); err != nil {
						b.Fatal(err)
					}
					if s.Pending() >= batchEvery(sz.n) { // signing amortised, as in a stream
						if rec, err = s.Batch(rec[:0]); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}

// batchEvery is how many messages of size octets a batch record covers
// under the default options when they are sent faster than BatchInterval.
func batchEvery(size int) int { return max(1, min(DefaultBatchSize, DefaultBatchBytes/size)) }

// BenchmarkOpen opens data messages and the batch records that
// authenticate them (signature verification amortised over a batch, as
// batchEvery says).
func BenchmarkOpen(b *testing.B) {
	for _, su := range suites {
		for _, sz := range benchSizes {
			b.Run(su.String()+"/"+sz.name, func(b *testing.B) {
				_, m, s := benchPair(b, su)
				pt := make([]byte, sz.n)
				k := batchEvery(sz.n)
				recs := make([][]byte, k+1)
				for i := range recs {
					recs[i] = make([]byte, 0, sz.n+Overhead)
				}
				dst := make([]byte, 0, sz.n)
				refill := func() {
					for i := range k {
						var err error
						if recs[i], err = s.Seal(recs[i][:0], pt); err != nil {
							b.Fatal(err)
						}
					}
					recs[k], _ = s.Batch(recs[k][:0])
				}
				b.SetBytes(int64(sz.n))
				b.ReportAllocs()
				b.StopTimer()
				refill()
				b.StartTimer()
				start, i := time.Now(), 0
				var paused time.Duration
				for b.Loop() {
					if _, _, err := m.recv.Open(dst[:0], recs[i]); err != nil {
						b.Fatal(err)
					}
					i++
					if i == k {
						if _, info, err := m.recv.Open(dst[:0], recs[k]); err != nil || info.Status != Authenticated {
							b.Fatalf("batch: %+v %v", info, err)
						}
						b.StopTimer()
						p := time.Now()
						refill()
						paused += time.Since(p)
						b.StartTimer()
						i = 0
					}
				}
				elapsed := time.Since(start) - paused
				mbps := float64(b.N) * float64(sz.n) / elapsed.Seconds()
				b.ReportMetric(100*6.25e6/mbps, "%core@50Mbit/s")
			})
		}
	}
}

// ring is a bounded in-memory transport with reused buffers; the same for
// the encrypted and the null pipeline.
type ring struct {
	bufs       [][]byte
	head, tail int
}

var errDrained = errors.New("drained")

func (r *ring) send(p []byte) error {
	if r.tail == len(r.bufs) {
		r.bufs = append(r.bufs, nil)
	}
	r.bufs[r.tail] = append(r.bufs[r.tail][:0], p...)
	r.tail++
	return nil
}

func (r *ring) recv() ([]byte, error) {
	if r.head == r.tail {
		return nil, errDrained
	}
	b := r.bufs[r.head]
	if r.head++; r.head == r.tail {
		r.head, r.tail = 0, 0 // reuse the slots; b is used before the next send
	}
	return b, nil
}

// nullWriter and nullReader are the same pipeline with a null cipher:
// chunks framed with the offset word and copied through the ring.
type nullWriter struct {
	r     *ring
	chunk []byte
	off   uint64
}

func (w *nullWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := copy(w.chunk[len(w.chunk):cap(w.chunk)], p)
		w.chunk = w.chunk[:len(w.chunk)+k]
		p, n = p[k:], n+k
		if len(w.chunk) == cap(w.chunk) {
			binary.BigEndian.PutUint64(w.chunk, w.off)
			w.off += uint64(len(w.chunk) - ChunkHeaderSize)
			w.r.send(w.chunk)
			w.chunk = w.chunk[:ChunkHeaderSize]
		}
	}
	return n, nil
}

type nullReader struct {
	r   *ring
	cur []byte
}

func (rd *nullReader) Read(p []byte) (int, error) {
	if len(rd.cur) == 0 {
		m, err := rd.r.recv()
		if err != nil {
			return 0, err
		}
		rd.cur = m[ChunkHeaderSize:]
	}
	n := copy(p, rd.cur)
	rd.cur = rd.cur[n:]
	return n, nil
}

// BenchmarkPipeline pushes a stream through writer → ring → reader, in
// rounds of one batch (batchEvery), with privgroup and with a null cipher; MB/s are of
// stream data.
func BenchmarkPipeline(b *testing.B) {
	for _, sz := range benchSizes {
		for _, mode := range []string{"null", SuiteChaCha20SHA256.String(), SuiteAESGCMBLAKE3.String()} {
			b.Run(mode+"/"+sz.name, func(b *testing.B) {
				q := &ring{}
				var w io.Writer
				var rd io.Reader
				if mode == "null" {
					w = &nullWriter{r: q, chunk: make([]byte, ChunkHeaderSize, ChunkHeaderSize+sz.n)}
					rd = &nullReader{r: q}
				} else {
					su := SuiteChaCha20SHA256
					if mode == SuiteAESGCMBLAKE3.String() {
						su = SuiteAESGCMBLAKE3
					}
					a, m, s := benchPair(b, su)
					ww, err := NewWriter(s, q.send, WriterOptions{ChunkSize: sz.n})
					if err != nil {
						b.Fatal(err)
					}
					w, rd = ww, NewReader(m.recv, a.id, q.recv)
				}
				round := batchEvery(sz.n)
				data := make([]byte, sz.n)
				buf := make([]byte, sz.n)
				b.SetBytes(int64(sz.n))
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, err := w.Write(data); err != nil {
						b.Fatal(err)
					}
					if i++; i%round != 0 {
						continue
					}
					if f, ok := w.(interface{ Flush() error }); ok { // end of a "frame"
						if err := f.Flush(); err != nil {
							b.Fatal(err)
						}
					}
					got := 0
					for {
						n, err := rd.Read(buf)
						got += n
						if errors.Is(err, errDrained) {
							break
						}
						if err != nil {
							b.Fatal(err)
						}
					}
					if got != round*sz.n {
						b.Fatalf("read %d, want %d", got, round*sz.n)
					}
				}
			})
		}
	}
}

// BenchmarkReader is the receiving end of a stream alone: opening,
// authenticating, reordering and copying out; the records are made with
// the timer stopped. It reports the share of a core for 50 Mbit/s.
func BenchmarkReader(b *testing.B) {
	for _, su := range suites {
		for _, sz := range benchSizes {
			b.Run(su.String()+"/"+sz.name, func(b *testing.B) {
				a, m, s := benchPair(b, su)
				q := &ring{}
				w, err := NewWriter(s, q.send, WriterOptions{ChunkSize: sz.n})
				if err != nil {
					b.Fatal(err)
				}
				rd := NewReader(m.recv, a.id, q.recv)
				round := batchEvery(sz.n)
				data := make([]byte, round*sz.n)
				buf := make([]byte, sz.n)
				b.SetBytes(int64(sz.n))
				b.ReportAllocs()
				var busy time.Duration
				i := 0
				for b.Loop() {
					if i%round == 0 {
						b.StopTimer()
						if _, err := w.Write(data); err != nil {
							b.Fatal(err)
						}
						if err := w.Flush(); err != nil { // a batch may have been cut by time
							b.Fatal(err)
						}
						b.StartTimer()
					}
					i++
					t0 := time.Now()
					got := 0
					for got < sz.n {
						n, err := rd.Read(buf[:sz.n-got])
						got += n
						if err != nil {
							b.Fatal(err)
						}
					}
					busy += time.Since(t0)
				}
				mbps := float64(b.N) * float64(sz.n) / busy.Seconds()
				b.ReportMetric(100*6.25e6/mbps, "%core@50Mbit/s")
			})
		}
	}
}

// BenchmarkOpenJunkFarAhead measures what a receiver spends on a record
// that anyone who sees a key id can make: 29 octets of junk with a counter
// just under MaxAhead beyond the newest one, whose tag fails. The chain's
// marks make every such record after the first walk at most markEvery-1
// steps (before them: up to MaxAhead steps, about 0.36 ms each).
func BenchmarkOpenJunkFarAhead(b *testing.B) {
	_, m, s := benchPair(b, SuiteChaCha20SHA256)
	junk := make([]byte, Overhead)
	r := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	for b.Loop() {
		putHeader(junk, s.KeyID(), uint32(DefaultMaxAhead-1-r.IntN(markEvery)))
		if _, _, err := m.recv.Open(nil, junk); !errors.Is(err, ErrAuth) {
			b.Fatal(err)
		}
	}
}
