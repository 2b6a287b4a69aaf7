package curve

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"golang.org/x/crypto/nacl/secretbox"
)

// Session encrypts and decrypts the MESSAGE commands of one connection
// after a successful handshake. Both directions use the box key between
// the two transient keys C' and S'; they differ by nonce prefix
// ("CurveZMQMESSAGEC" from the client, "CurveZMQMESSAGES" from the
// server) and by counter.
//
// Seal and Open keep separate state: one goroutine may Seal while another
// Opens. Two concurrent Seals (or two Opens) are not allowed. Each side
// keeps a scratch buffer as large as the largest message it has handled.
type Session struct {
	key  [32]byte
	send sealer
	recv opener
}

type sealer struct {
	prefix string
	next   uint64 // short nonce of the next MESSAGE we send
	done   bool   // counter exhausted
	buf    []byte // flags || payload
}

type opener struct {
	prefix string
	last   uint64 // highest short nonce seen from the peer (handshake included)
	err    error  // first failure; the receive side is dead after it
	buf    []byte // flags || payload after opening
}

func newSession(key *[32]byte, sendPrefix string, next uint64, recvPrefix string, last uint64) *Session {
	s := &Session{key: *key}
	s.send.prefix, s.send.next = sendPrefix, next
	s.recv.prefix, s.recv.last = recvPrefix, last
	return s
}

// Wipe overwrites the session key and the scratch buffers. Call it when the
// connection is closed, after the goroutines that Seal and Open have
// stopped; Seal and Open fail afterwards.
func (s *Session) Wipe() {
	clear(s.key[:])
	clear(s.send.buf[:cap(s.send.buf)])
	clear(s.recv.buf[:cap(s.recv.buf)])
	s.send.done = true
	s.recv.err = fmt.Errorf("%w: session wiped", ErrBadMessage)
}

// SealedSize is the size of the MESSAGE body Seal makes for a payload of n
// octets.
func SealedSize(n int) int { return n + MessageOverhead }

// Seal appends to dst the MESSAGE command body carrying flags and payload:
// `\x07MESSAGE`, the next short nonce, and the box of flags||payload. flags
// may hold only FlagMore and FlagCommand. It does not allocate when dst
// has room for SealedSize(len(payload)) more octets (after the first use
// at that size). dst may overlap payload.
func (s *Session) Seal(dst []byte, flags byte, payload []byte) ([]byte, error) {
	st := &s.send
	if flags&^flagMask != 0 {
		return dst, fmt.Errorf("curve: seal: flags %#02x have reserved bits set", flags)
	}
	if st.done {
		return dst, fmt.Errorf("curve: seal: session is closed or out of nonces")
	}
	st.buf = append(st.buf[:0], flags)
	st.buf = append(st.buf, payload...)
	n := st.next
	if n == math.MaxUint64 {
		st.done = true
	}
	st.next++
	nonce := shortNonceOf(st.prefix, n)
	dst = append(dst, nameMessage...)
	dst = binary.BigEndian.AppendUint64(dst, n)
	return secretbox.Seal(dst, st.buf, &nonce, &s.key), nil
}

// Open reads a MESSAGE command body, checks that its short nonce is higher
// than every nonce seen before from the peer, and appends the payload to
// dst. It does not allocate when dst has room (after the first use at that
// size). dst may overlap body (dst = body[:0] opens in place, through the
// Session's scratch buffer and a copy). When dst is empty, does not
// overlap body and has room for the payload and one octet more, the box
// is opened straight into dst's storage, without a copy: the payload
// returned then starts one octet into it (the flags octet first). Any
// failure wraps ErrBadMessage and ends the receive side: every later Open
// fails.
func (s *Session) Open(dst []byte, body []byte) (flags byte, payload []byte, err error) {
	st := &s.recv
	if st.err != nil {
		return 0, dst, fmt.Errorf("%w: receive side ended by an earlier error", ErrBadMessage)
	}
	if !hasName(body, nameMessage) {
		return 0, dst, st.fail("%w: want MESSAGE, got %s", ErrBadMessage, commandName(body))
	}
	if len(body) < MessageOverhead {
		return 0, dst, st.fail("%w: MESSAGE is %d octets, want at least %d", ErrBadMessage, len(body), MessageOverhead)
	}
	n := binary.BigEndian.Uint64(body[8:16])
	if n <= st.last {
		return 0, dst, st.fail("%w: MESSAGE short nonce %d is not above %d (replayed or reordered)", ErrBadMessage, n, st.last)
	}
	nonce := shortNonceOf(st.prefix, n)
	box := body[16:]
	if len(dst) == 0 && cap(dst) >= len(box)-boxOverhead && !overlap(dst[:cap(dst)], body) {
		// Straight into dst's storage, no copy: flags first, the payload
		// one octet further.
		out, ok := secretbox.Open(dst, box, &nonce, &s.key)
		if !ok {
			return 0, dst, st.fail("%w: MESSAGE box with nonce %d does not open", ErrBadMessage, n)
		}
		return st.accept(n, out)
	}
	out, ok := secretbox.Open(st.buf[:0], box, &nonce, &s.key)
	if !ok {
		return 0, dst, st.fail("%w: MESSAGE box with nonce %d does not open", ErrBadMessage, n)
	}
	st.buf = out
	flags, payload, err = st.accept(n, out)
	if err != nil {
		return 0, dst, err
	}
	return flags, append(dst, payload...), nil
}

// accept checks the flags of an opened box (flags || payload) and records
// its short nonce as the highest seen.
func (st *opener) accept(n uint64, out []byte) (flags byte, payload []byte, err error) {
	flags = out[0]
	if flags&^flagMask != 0 {
		return 0, nil, st.fail("%w: MESSAGE flags %#02x have reserved bits set", ErrBadMessage, flags)
	}
	st.last = n
	return flags, out[1:], nil
}

// overlap reports whether x and y share any memory (as
// golang.org/x/crypto/internal/alias.AnyOverlap, which secretbox checks).
func overlap(x, y []byte) bool {
	return len(x) > 0 && len(y) > 0 &&
		uintptr(unsafe.Pointer(&x[0])) <= uintptr(unsafe.Pointer(&y[len(y)-1])) &&
		uintptr(unsafe.Pointer(&y[0])) <= uintptr(unsafe.Pointer(&x[len(x)-1]))
}

func (st *opener) fail(format string, args ...any) error {
	st.err = fmt.Errorf(format, args...)
	return st.err
}
