package zmtp

import (
	"bytes"
	"errors"
	"testing"
)

// limitWriter takes n octets, then fails.
type limitWriter struct {
	buf bytes.Buffer
	n   int
}

var errLimit = errors.New("limit reached")

func (w *limitWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		w.buf.Write(p[:w.n])
		k := w.n
		w.n = 0
		return k, errLimit
	}
	w.n -= len(p)
	return w.buf.Write(p)
}

// TestFrameWriter: frames of several messages, small (copied) and big
// (referenced, written by writev), come out in order and byte for byte as
// readFrame reads them; a write that fails part way reports the error and
// keeps no reference to the bodies.
func TestFrameWriter(t *testing.T) {
	var bodies [][]byte
	for i, n := range []int{0, 1, 100, bigBody - 1, bigBody, 3, 200 << 10, 5, writeBatch, 7, 1 << 20} {
		bodies = append(bodies, bytes.Repeat([]byte{byte(i + 1)}, n))
	}
	w := &limitWriter{n: 1 << 30}
	fw := frameWriter{w: w}
	for i, b := range bodies {
		var flags byte
		if i%3 != 2 {
			flags = FlagMore
		}
		if err := fw.writeFrame(flags, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := fw.flush(); err != nil {
		t.Fatal(err)
	}
	fr := newTestReader(w.buf.Bytes())
	for i, want := range bodies {
		flags, got, err := fr.readFrame(-1)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if wantMore := i%3 != 2; (flags&FlagMore != 0) != wantMore || !bytes.Equal(got, want) {
			t.Fatalf("frame %d: flags %#x, %d octets (want %d), intact %v", i, flags, len(got), len(want), bytes.Equal(got, want))
		}
	}
	if _, _, err := fr.readFrame(-1); err == nil {
		t.Fatal("more than was written")
	}

	// A write failing part way: the error comes back, nothing is kept.
	for _, limit := range []int{0, 5, bigBody + 3, 300 << 10} {
		w := &limitWriter{n: limit}
		fw := frameWriter{w: w}
		var err error
		for _, b := range bodies {
			if err = fw.writeFrame(0, b); err != nil {
				break
			}
		}
		if err == nil {
			err = fw.flush()
		}
		if !errors.Is(err, errLimit) {
			t.Fatalf("limit %d: error %v", limit, err)
		}
		if fw.buffered() != 0 || len(fw.vec) != 0 {
			t.Fatalf("limit %d: %d octets, %d segments still queued", limit, fw.buffered(), len(fw.vec))
		}
		for i, s := range fw.vec[:cap(fw.vec)] {
			if s != nil {
				t.Fatalf("limit %d: segment %d still referenced", limit, i)
			}
		}
	}
}
