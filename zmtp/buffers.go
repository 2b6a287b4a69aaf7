package zmtp

import (
	"io"
	"math/bits"
	"net"
	"sync"
	"sync/atomic"
)

// Buffers for large frames, and the writer that sends frames without
// copying large bodies.

const (
	// poolMin is the smallest frame read into a pooled buffer: from it up
	// to chunk, a received frame's body (or, under CURVE, its plaintext)
	// lives in a buffer of a socket's bufPool, which Message.Release gives
	// back. Smaller frames are carved from a slab.
	poolMin = smallFrame + 1
	// scratchMax bounds the connection's own scratch buffer for sealed
	// frames; a larger sealed frame is read into a pooled buffer, given
	// back once opened.
	scratchMax = 64 << 10
	// poolStep is the granularity of pooled capacities over scratchMax:
	// a buffer for n octets has cap n rounded up to a multiple of
	// poolStep; up to scratchMax, to a power of two (2 KiB at least).
	poolStep = 64 << 10
	// smallClasses are the power-of-two classes, 2 KiB to 64 KiB.
	smallClasses = 6
	// bigBody is the smallest body the frameWriter does not copy: it is
	// written from where it is, by one writev with what precedes it.
	bigBody = 16 << 10
	// writeBatch bounds what the frameWriter queues (copied, or by
	// reference) before it writes.
	writeBatch = 256 << 10
)

// bufPool keeps the buffers of large frames of one socket (a Router or a
// Dealer, shared by its connections), by capacity class. Its zero value is
// ready; its classes are allocated by the first large frame, so that a
// socket that never receives one does not pay for them. A buffer is
// reused only after Message.Release gave it back.
type bufPool struct {
	once    sync.Once
	classes *[poolClasses]sync.Pool // class i holds buffers of cap classCap(i)
	// released is set by the first Message.Release: until then, received
	// frames are allocated at their size (getMsg), since nothing would
	// come back to a pool whose classes round sizes up.
	released atomic.Bool
	// poison, set by tests only, makes put fill a buffer with 0xDB before
	// pooling it, so that a buffer used after it was given back shows.
	poison atomic.Bool
}

// poolClasses: 2 KiB to 64 KiB by powers of two, then by poolStep up to
// chunk.
const poolClasses = smallClasses + (chunk-scratchMax)/poolStep

// classOf returns the class of the smallest capacity that holds n octets
// (poolMin <= n <= chunk).
func classOf(n int) int {
	if n <= scratchMax {
		return max(bits.Len(uint(n-1)), 11) - 11 // 2 KiB is 1<<11
	}
	return smallClasses + (n-scratchMax-1)/poolStep
}

// classCap is the capacity of the buffers of class i.
func classCap(i int) int {
	if i < smallClasses {
		return 2 << 10 << i
	}
	return scratchMax + (i-smallClasses+1)*poolStep
}

// get returns a buffer of len n (poolMin <= n <= chunk), not zeroed when it
// comes from the pool. The pointer is what put takes back.
func (p *bufPool) get(n int) *[]byte {
	p.once.Do(func() { p.classes = new([poolClasses]sync.Pool) })
	i := classOf(n)
	if b, ok := p.classes[i].Get().(*[]byte); ok {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, classCap(i))
	return &b
}

// getMsg returns a buffer of len n (poolMin <= n <= chunk) for a frame
// handed to the receiver: from the pool (pb its handle) once the socket's
// receiver has released a message, else a plain allocation of n octets
// (pb nil).
func (p *bufPool) getMsg(n int) (b []byte, pb *[]byte) {
	if !p.released.Load() {
		return make([]byte, n), nil
	}
	pb = p.get(n)
	return *pb, pb
}

// put gives back a buffer that get returned (so the classes exist).
func (p *bufPool) put(b *[]byte) {
	c := cap(*b)
	if p.classes == nil || c < poolMin || c > chunk {
		return
	}
	if p.poison.Load() {
		full := (*b)[:c]
		for i := range full {
			full[i] = 0xDB
		}
	}
	if i := classOf(c); classCap(i) == c {
		p.classes[i].Put(b)
	}
}

// Release gives the buffers of the message's frames of 1 KiB to 4 MiB
// back to the Router or Dealer that received it, which reads later frames
// into them instead of allocating (and zeroing) new ones. A socket pools
// from its receiver's first Release on: until then it allocates each frame
// at its size, as nothing would come back.
//
// The caller's duties: after Release, m.Frames is nil, and neither a frame
// of the message nor any copy of its Frames may be used any more, by any
// goroutine: the socket reads other messages into them, from any of its
// peers. That includes a Send of those frames (forwarding the message):
// release it only once a Flush after that Send returned. Release is
// optional (a message never released is collected like any other memory)
// and safe from any goroutine; the buffers go back once, however many
// times m or copies of m are released, from whichever goroutines. It may
// be called after the socket was closed.
func (m *Message) Release() {
	if m.pool != nil {
		if !m.pool.released.Load() {
			m.pool.released.Store(true)
		}
		if mb := m.bufs; mb != nil && mb.released.CompareAndSwap(false, true) {
			if mb.first != nil {
				m.pool.put(mb.first)
			}
			for _, b := range mb.rest {
				m.pool.put(b)
			}
			mb.first, mb.rest = nil, nil
		}
	}
	m.Frames, m.bufs, m.pool = nil, nil, nil
}

// frameWriter queues the frames of one connection and writes them with
// few system calls: headers and small bodies are copied into one buffer;
// a body of bigBody octets or more is not copied but written where it is,
// by one writev (net.Buffers) with everything queued before it. It owns
// no goroutine: the connection's writer (or, during the handshake, its
// handshake) is its only user.
type frameWriter struct {
	w      io.Writer
	buf    []byte      // headers and small bodies not yet written
	start  int         // buf[start:] is not yet referenced by vec
	vec    net.Buffers // queued segments when a big body is queued
	queued int         // octets queued, copied or not
}

// writeFrame queues one frame. A big body is referenced until the next
// flush: it must not change until then (the frames of a message never
// do; a codec's scratch buffer is flushed at once, see conn.writeLogical).
func (fw *frameWriter) writeFrame(flags byte, body []byte) error {
	fw.buf = appendFrameHeader(fw.buf, flags, len(body))
	if len(body) < bigBody {
		fw.buf = append(fw.buf, body...)
	} else {
		fw.vec = append(fw.vec, fw.buf[fw.start:len(fw.buf):len(fw.buf)], body)
		fw.start = len(fw.buf)
	}
	fw.queued += 9 + len(body)
	if fw.queued >= writeBatch {
		return fw.flush()
	}
	return nil
}

// buffered reports the octets queued and not yet written.
func (fw *frameWriter) buffered() int { return fw.queued }

// flush writes everything queued: one write, or one writev when big
// bodies are queued.
func (fw *frameWriter) flush() error {
	var err error
	if len(fw.vec) == 0 {
		if len(fw.buf) > 0 {
			_, err = fw.w.Write(fw.buf)
		}
	} else {
		if fw.start < len(fw.buf) {
			fw.vec = append(fw.vec, fw.buf[fw.start:])
		}
		v := fw.vec
		_, err = v.WriteTo(fw.w)
		clear(fw.vec[:cap(fw.vec)]) // drop the references to the bodies
		fw.vec = fw.vec[:0]
	}
	if cap(fw.buf) > 2*writeBatch {
		fw.buf = nil // one burst of small frames grew it: do not keep that
	}
	fw.buf, fw.start, fw.queued = fw.buf[:0], 0, 0
	return err
}
