package zmtp

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

const (
	// chunk is the most of a large frame allocated before its bytes
	// arrive: frames up to chunk are read into one allocation of their
	// size (a 1 MiB message under CURVE is 1 MiB + 33 octets on the wire);
	// a larger frame starts with chunk and doubles as its bytes arrive, so
	// that a header claiming a huge size costs at most chunk plus what
	// really arrives.
	chunk = 4 << 20
	// slabSize is the block small frame bodies are carved from.
	slabSize = 32 << 10
	// smallFrame is the largest frame taken from the slab.
	smallFrame = 1 << 10
)

// frameReader reads ZMTP frames from a bufio.Reader.
type frameReader struct {
	r        *bufio.Reader
	slab     []byte
	slabSize int // size of the last slab
	// lowat, when set, sets the connection's receive low-water mark
	// (SO_RCVLOWAT): readFull has the kernel wake the reader only once
	// much of a large body has arrived, not for every segment.
	lowat func(n int)
}

const (
	// lowatMin is the smallest body readFull reads with a raised
	// low-water mark.
	lowatMin = 256 << 10
	// lowatMax caps the low-water mark.
	lowatMax = 512 << 10
)

// readFull reads len(b) octets into b. For a body of lowatMin octets or
// more, when fr.lowat is set, the receive low-water mark is raised so that
// a wait for the socket ends once min(what the body still needs, lowatMax)
// octets have arrived: fewer wake-ups and larger reads. It never exceeds
// what the body still needs from the socket (a peer that sends the body
// and then nothing must not leave the reader waiting), and it is set back
// to 1 before readFull returns.
func (fr *frameReader) readFull(b []byte) error {
	if fr.lowat == nil || len(b) < lowatMin {
		_, err := io.ReadFull(fr.r, b)
		return err
	}
	set := 0 // the mark set; 0 = the default (1)
	defer func() {
		if set > 1 {
			fr.lowat(1)
		}
	}()
	for off := 0; off < len(b); {
		if need := len(b) - off - fr.r.Buffered(); need > 0 {
			if want := min(need, lowatMax); set == 0 && want > 1 || want < set {
				fr.lowat(want)
				set = want
			}
		}
		n, err := fr.r.Read(b[off:])
		off += n
		if err != nil && off < len(b) {
			return unexpected(err)
		}
	}
	return nil
}

// readHeader reads a frame's flags and size.
func (fr *frameReader) readHeader() (flags byte, size uint64, err error) {
	flags, err = fr.r.ReadByte()
	if err != nil {
		return 0, 0, err
	}
	if flags&FlagLong != 0 {
		b, err := fr.r.Peek(8)
		if err != nil {
			return 0, 0, unexpected(err)
		}
		size = binary.BigEndian.Uint64(b)
		fr.r.Discard(8)
	} else {
		s, err := fr.r.ReadByte()
		if err != nil {
			return 0, 0, unexpected(err)
		}
		size = uint64(s)
	}
	if flags&^(FlagMore|FlagLong|FlagCommand) != 0 {
		return 0, 0, fmt.Errorf("zmtp: frame flags %#x: reserved bits set: %w", flags, ErrProtocol)
	}
	return flags &^ FlagLong, size, nil
}

// readSize reads a frame's header and checks its size against limit (limit
// <0 means no limit).
func (fr *frameReader) readSize(limit int64) (flags byte, size int64, err error) {
	flags, usize, err := fr.readHeader()
	if err != nil {
		return 0, 0, err
	}
	if limit >= 0 && usize > uint64(limit) {
		return 0, 0, fmt.Errorf("zmtp: frame of %d octets over the limit of %d: %w", usize, limit, ErrTooLarge)
	}
	if usize > 1<<62 {
		return 0, 0, fmt.Errorf("zmtp: frame of %d octets: %w", usize, ErrTooLarge)
	}
	return flags, int64(usize), nil
}

// readFrame reads one frame whose body may be at most limit octets (limit <0
// means no limit). The body is freshly allocated (or carved from a slab no
// one else writes to) and owned by the caller.
func (fr *frameReader) readFrame(limit int64) (flags byte, body []byte, err error) {
	flags, size, err := fr.readSize(limit)
	if err != nil {
		return 0, nil, err
	}
	body, err = fr.readBody(size)
	return flags, body, err
}

// readFramePooled is readFrame, except that a body of at most scratchMax
// octets is read into *scratch, when scratch is not nil (the caller's
// buffer, grown as needed and overwritten by the next call), and that
// otherwise a body of poolMin to chunk octets is read into a buffer from
// pool (bufPool.getMsg without scratch: a plain allocation until the
// socket's first Message.Release), returned as pb (nil otherwise).
func (fr *frameReader) readFramePooled(limit int64, pool *bufPool, scratch *[]byte) (flags byte, body []byte, pb *[]byte, err error) {
	flags, size, err := fr.readSize(limit)
	if err != nil {
		return 0, nil, nil, err
	}
	switch {
	case scratch != nil && size <= scratchMax:
		if int64(cap(*scratch)) < size {
			*scratch = make([]byte, min(max(size, int64(2*cap(*scratch))), scratchMax))
		}
		b := (*scratch)[:size]
		if _, err := io.ReadFull(fr.r, b); err != nil {
			return 0, nil, nil, unexpected(err)
		}
		return flags, b, nil, nil
	case pool != nil && size >= poolMin && size <= chunk:
		var b []byte
		if scratch != nil {
			pb = pool.get(int(size)) // scratch too: the caller gives it back
			b = *pb
		} else {
			b, pb = pool.getMsg(int(size))
		}
		if err := fr.readFull(b); err != nil {
			if pb != nil {
				pool.put(pb)
			}
			return 0, nil, nil, unexpected(err)
		}
		return flags, b, pb, nil
	}
	body, err = fr.readBody(size)
	return flags, body, nil, err
}

// carve returns an empty slice with room for n <= smallFrame octets from
// the slab. The slabs start small and grow, so that a connection that
// only shakes hands costs little.
func (fr *frameReader) carve(n int) []byte {
	if len(fr.slab) < n {
		fr.slabSize = min(max(2*fr.slabSize, 2*smallFrame), slabSize)
		fr.slab = make([]byte, fr.slabSize)
	}
	b := fr.slab[:0:n]
	fr.slab = fr.slab[n:]
	return b
}

func (fr *frameReader) readBody(size int64) ([]byte, error) {
	if size <= smallFrame {
		b := fr.carve(int(size))[:size]
		if _, err := io.ReadFull(fr.r, b); err != nil {
			return nil, unexpected(err)
		}
		return b, nil
	}
	if size <= chunk {
		b := make([]byte, size)
		if err := fr.readFull(b); err != nil {
			return nil, unexpected(err)
		}
		return b, nil
	}
	// Large frame: grow as bytes arrive.
	b := make([]byte, 0, chunk)
	for int64(len(b)) < size {
		n := size - int64(len(b))
		if free := int64(cap(b) - len(b)); n > free {
			if free == 0 {
				nc := int64(cap(b)) * 2
				if nc > size {
					nc = size
				}
				nb := make([]byte, len(b), nc)
				copy(nb, b)
				b = nb
				free = int64(cap(b) - len(b))
			}
			if n > free {
				n = free
			}
		}
		if err := fr.readFull(b[len(b) : len(b)+int(n)]); err != nil {
			return nil, unexpected(err)
		}
		b = b[:len(b)+int(n)]
	}
	return b, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// appendFrameHeader appends a frame header for a body of n octets.
func appendFrameHeader(dst []byte, flags byte, n int) []byte {
	if n > 255 {
		dst = append(dst, flags|FlagLong)
		return binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, flags, byte(n))
}

// appendCommand appends a command body: name length, name, data.
func appendCommand(dst []byte, name string, data []byte) []byte {
	dst = append(dst, byte(len(name)))
	dst = append(dst, name...)
	return append(dst, data...)
}

// parseCommand splits a command frame body into name and data.
func parseCommand(b []byte) (name string, data []byte, err error) {
	if len(b) == 0 {
		return "", nil, fmt.Errorf("zmtp: empty command frame: %w", ErrProtocol)
	}
	n := int(b[0])
	if n == 0 || n > len(b)-1 {
		return "", nil, fmt.Errorf("zmtp: command name of %d octets in a %d-octet frame: %w", n, len(b), ErrProtocol)
	}
	return string(b[1 : 1+n]), b[1+n:], nil
}
