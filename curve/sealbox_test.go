package curve

import (
	"bytes"
	"testing"

	"golang.org/x/crypto/nacl/secretbox"
)

// sealFlagged is secretbox.Seal of flags||payload, octet for octet, for
// every payload length around the first block's edges and beyond, whatever
// out already holds.
func FuzzSealFlagged(f *testing.F) {
	for _, n := range []int{0, 1, 30, 31, 32, 33, 63, 64, 65, 95, 96, 97, 200, 4096, 70000} {
		f.Add(byte(n), bytes.Repeat([]byte{byte(n)}, n), []byte("key material"), []byte("nonce"), []byte("prefix"))
	}
	f.Fuzz(func(t *testing.T, flags byte, payload, keySeed, nonceSeed, prefix []byte) {
		var key [32]byte
		var nonce [24]byte
		copy(key[:], keySeed)
		copy(nonce[:], nonceSeed)
		msg := append([]byte{flags}, payload...)
		want := secretbox.Seal(bytes.Clone(prefix), msg, &nonce, &key)
		if got := sealFlagged(bytes.Clone(prefix), flags, payload, &nonce, &key); !bytes.Equal(got, want) {
			t.Fatalf("%d octets: sealFlagged differs from secretbox.Seal", len(payload))
		}
		// Into spare capacity, as the connection's writer calls it.
		out := make([]byte, len(prefix), len(prefix)+len(msg)+secretbox.Overhead)
		copy(out, prefix)
		if got := sealFlagged(out, flags, payload, &nonce, &key); !bytes.Equal(got, want) || &got[:1][0] != &out[:1][0] {
			t.Fatalf("%d octets into spare capacity: differs, or not in place", len(payload))
		}
		// And it opens.
		opened, ok := secretbox.Open(nil, want[len(prefix):], &nonce, &key)
		if !ok || !bytes.Equal(opened, msg) {
			t.Fatal("does not open")
		}
	})
}

// Session.Seal gives the same MESSAGE whether dst's spare capacity is
// apart from payload (sealFlagged) or overlaps it (the copy).
func TestSealOverlap(t *testing.T) {
	var key [32]byte
	key[0] = 7
	for _, n := range []int{0, 1, 31, 32, 100, 5000} {
		a := newSession(&key, "CurveZMQMESSAGEC", 1, "CurveZMQMESSAGES", 0)
		b := newSession(&key, "CurveZMQMESSAGEC", 1, "CurveZMQMESSAGES", 0)
		payload := bytes.Repeat([]byte{0xA5}, n)
		apart, err := a.Seal(nil, FlagMore, payload)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 0, SealedSize(n)+n)
		buf = append(buf, payload...)
		over, err := b.Seal(buf[:0], FlagMore, buf[:n]) // payload in dst's spare capacity
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(apart, over) {
			t.Fatalf("%d octets: sealing over the payload differs", n)
		}
	}
}
