package curve

import (
	"errors"
	"fmt"
)

// Z85 is the ZeroMQ Base-85 encoding of RFC 32: every 4 octets become 5
// printable characters, so the input length must be a multiple of 4 and the
// text length a multiple of 5.

const z85Alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"

// z85Decoder maps a character to its digit value, or 0xff if it is not in the alphabet.
var z85Decoder = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < len(z85Alphabet); i++ {
		t[z85Alphabet[i]] = byte(i)
	}
	return t
}()

// ErrZ85 is wrapped by every Z85 decoding error.
var ErrZ85 = errors.New("curve: invalid Z85")

// Z85EncodedLen is the length of the Z85 text for n octets (n must be a multiple of 4).
func Z85EncodedLen(n int) int { return n / 4 * 5 }

// AppendZ85 appends the Z85 text of src to dst. len(src) must be a multiple of 4.
func AppendZ85(dst, src []byte) ([]byte, error) {
	if len(src)%4 != 0 {
		return dst, fmt.Errorf("%w: input length %d is not a multiple of 4", ErrZ85, len(src))
	}
	for i := 0; i < len(src); i += 4 {
		v := uint32(src[i])<<24 | uint32(src[i+1])<<16 | uint32(src[i+2])<<8 | uint32(src[i+3])
		var c [5]byte
		for j := 4; j >= 0; j-- {
			c[j] = z85Alphabet[v%85]
			v /= 85
		}
		dst = append(dst, c[:]...)
	}
	return dst, nil
}

// EncodeZ85 returns the Z85 text of src. len(src) must be a multiple of 4.
func EncodeZ85(src []byte) (string, error) {
	b, err := AppendZ85(make([]byte, 0, Z85EncodedLen(len(src))), src)
	return string(b), err
}

// DecodeZ85 decodes Z85 text. Its length must be a multiple of 5, every
// character must be in the alphabet and every group must fit in 32 bits.
func DecodeZ85(s string) ([]byte, error) {
	if len(s)%5 != 0 {
		return nil, fmt.Errorf("%w: length %d is not a multiple of 5", ErrZ85, len(s))
	}
	out := make([]byte, 0, len(s)/5*4)
	for i := 0; i < len(s); i += 5 {
		var v uint64
		for j := 0; j < 5; j++ {
			d := z85Decoder[s[i+j]]
			if d == 0xff {
				return nil, fmt.Errorf("%w: character %q at offset %d", ErrZ85, s[i+j], i+j)
			}
			v = v*85 + uint64(d)
		}
		if v > 0xffffffff {
			return nil, fmt.Errorf("%w: group at offset %d overflows 32 bits", ErrZ85, i)
		}
		out = append(out, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return out, nil
}
