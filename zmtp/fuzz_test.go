package zmtp

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

func FuzzParseMetadata(f *testing.F) {
	f.Add(AppendMetadata(nil, Metadata{{"Socket-Type", []byte("DEALER")}, {"Identity", nil}}))
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add([]byte{200, 'x'})
	f.Add([]byte{1, 'a', 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{1, 'a', 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMetadata(b)
		if err != nil {
			return
		}
		// Round trip: what parses re-encodes to the same bytes.
		if out := AppendMetadata(nil, m); !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs:\n in % x\nout % x", b, out)
		}
	})
}

func FuzzGreeting(f *testing.F) {
	f.Add(AppendGreeting(nil, Greeting{Major: 3, Minor: 1, Mechanism: "NULL"}))
	f.Add(AppendGreeting(nil, Greeting{Major: 3, Minor: 0, Mechanism: "CURVE", AsServer: true, IdentityLen: 17}))
	f.Add(AppendGreeting(nil, Greeting{Major: 2, Minor: 0, Mechanism: "NULL"}))
	f.Add(make([]byte, 64))
	f.Add([]byte{0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := ParseGreeting(b)
		if err != nil {
			return
		}
		if g.Major < 3 {
			t.Fatalf("accepted version %d.%d", g.Major, g.Minor)
		}
		// Re-encoding keeps version, mechanism and as-server (libzmq only checks bit 0 of octet 9).
		out := AppendGreeting(nil, g)
		if !bytes.Equal(out[10:33], b[10:33]) || out[0] != b[0] {
			t.Fatalf("re-encoding differs:\n in % x\nout % x", b[:64], out)
		}
	})
}

// FuzzFrameReader feeds arbitrary bytes to a live connection's reader (after
// a NULL handshake): no panic, and memory bounded by the message limit, not
// by what headers claim.
func FuzzFrameReader(f *testing.F) {
	f.Add([]byte{0, 3, 'a', 'b', 'c'})
	f.Add([]byte{FlagMore, 1, 'a', 0, 1, 'b'})
	f.Add([]byte{FlagLong, 0, 0, 1, 0, 0, 0, 0, 0, 1, 2, 3})
	f.Add([]byte{FlagCommand, 8, 4, 'P', 'I', 'N', 'G', 0, 10, 'c'})
	f.Add([]byte{FlagCommand, 5, 4, 'P', 'O', 'N', 'G'})
	f.Add([]byte{FlagCommand, 7, 5, 'E', 'R', 'R', 'O', 'R', 0})
	f.Add([]byte{FlagCommand, 0})
	f.Add([]byte{0x80, 0})
	// Two messages of one pooled frame (over 1 KiB), one of two, then
	// tail octets: the input's length chosen for pooling on and copies
	// released twice, with and without the codec. A buffer given back
	// twice would hold both frames of the third message.
	pooledMsgs := func(size int, tail ...byte) []byte {
		var b []byte
		for i, flags := range []byte{0, 0, FlagMore, 0} {
			b = appendFrameHeader(b, flags, size)
			b = append(b, bytes.Repeat([]byte{byte(i)}, size)...)
		}
		return append(b, tail...)
	}
	f.Add(pooledMsgs(1031, 0))       // 4161 octets: pooled, copies, no codec
	f.Add(pooledMsgs(1032, 0, 0, 0)) // 4167 octets: pooled, copies, codec
	f.Fuzz(func(t *testing.T, b []byte) {
		opts := Options{MaxMsgSize: 1 << 16}.withDefaults()
		a, z := net.Pipe()
		defer a.Close()
		defer z.Close()
		c := &conn{nc: a, opts: &opts, log: opts.Logger, ctrl: make(chan []byte, 8), done: make(chan struct{})}
		c.br = bufio.NewReaderSize(bytes.NewReader(b), 4096)
		c.fw.w = io.Discard
		// Half the inputs run with pooling on, their buffers given back
		// as soon as delivered (a receiver that releases at once).
		c.pool = &bufPool{}
		pooled := len(b)%2 == 1
		c.pool.released.Store(pooled)
		c.fr.r = c.br
		// A quarter of the inputs in each pooling case go through a codec
		// that opens into the core's storage, as CURVE does: the sealed
		// frame read into scratch or a pooled buffer, opened into a slab,
		// a pooled or an allocated buffer.
		if len(b)%4 >= 2 {
			c.codec = intoCodec{}
		}
		c.live.Store(true)
		// A fifth of the inputs come from a Router connection never
		// admitted (Options.PreAdmit): what it delivers stays within
		// PreAdmit, whatever the headers claim.
		var refused atomic.Uint64
		preAdmit := len(b)%5 == 0
		if preAdmit {
			opts.PreAdmit, opts.AdmitWait = 300, time.Nanosecond
			c.adm = newAdmission(&refused)
		}
		var total int
		// Each message is held until the next one arrived: the two share
		// no pooled buffer and the held one stays intact. It is then
		// released, and for a third of the inputs a copy of it too.
		var prev Message
		var prevCopy [][]byte
		err := c.readLoop(func(frames [][]byte, bufs *msgBufs) bool {
			for _, fr := range frames {
				total += len(fr)
			}
			// Pooling turns on at the first Release, ours of the
			// message before included: until then, none.
			if n := len(bufs.list()); n > 0 && !c.pool.released.Load() {
				t.Fatalf("%d pooled buffers before any release", n)
			}
			live := append(prev.bufs.list(), bufs.list()...)
			for i, x := range live {
				for _, y := range live[:i] {
					if x == y {
						t.Fatal("one pooled buffer behind two live frames")
					}
				}
			}
			for i, f := range prev.Frames {
				if !bytes.Equal(f, prevCopy[i]) {
					t.Fatalf("held message: frame %d changed", i)
				}
			}
			dup := prev
			prev.Release()
			if len(b)%3 == 0 {
				dup.Release()
			}
			prev = newMessage(frames, nil, bufs, c.pool)
			prevCopy = prevCopy[:0]
			for _, f := range frames {
				prevCopy = append(prevCopy, bytes.Clone(f))
			}
			return true
		})
		prev.Release()
		if err == nil {
			t.Fatal("readLoop ended without an error")
		}
		if total > len(b) {
			t.Fatalf("delivered %d octets from %d of input", total, len(b))
		}
		if preAdmit && total > 300 {
			t.Fatalf("delivered %d octets before admission, PreAdmit 300", total)
		}
	})
}

// intoCodec is a FrameCodec that opens into the core's storage (openInto)
// without sealing: the wire body is the logical one.
type intoCodec struct{}

func (intoCodec) Seal(dst []byte, flags byte, body []byte) (byte, []byte, error) {
	return flags, append(dst, body...), nil
}

func (intoCodec) Open(dst []byte, wireFlags byte, wire []byte) (byte, []byte, error) {
	return wireFlags, append(dst, wire...), nil
}

func (k intoCodec) openInto(dst []byte, wireFlags byte, wire []byte) (byte, []byte, error) {
	if cap(dst) < len(wire) || len(dst) != 0 {
		panic("openInto: dst without room")
	}
	return k.Open(dst, wireFlags, wire)
}
