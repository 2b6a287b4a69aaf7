package curve

import (
	"golang.org/x/crypto/poly1305"
	"golang.org/x/crypto/salsa20/salsa"
)

// sealFlagged appends secretbox.Seal(nil, flags||payload, nonce, key) to
// out without first copying payload behind the flags octet, which costs a
// pass over the payload (a tenth of a MESSAGE's CPU at 1 MiB): it runs
// x/crypto's own HSalsa20, Salsa20 and Poly1305 in the order and on the
// octets that secretbox.Seal (x/crypto/nacl/secretbox) does, the flags
// octet and the first 31 of payload with the first keystream block's last
// 32 octets, the rest from block 1. No primitive is written here. The test
// FuzzSealFlagged checks the result against secretbox.Seal octet for octet.
//
// x/crypto marks its poly1305 package deprecated as a general-purpose MAC;
// here it is used as secretbox uses it, with a one-time key per box.
//
// out's spare capacity must not overlap payload (Session.Seal falls back
// to the copy when it does).
func sealFlagged(out []byte, flags byte, payload []byte, nonce *[24]byte, key *[32]byte) []byte {
	// XSalsa20: HSalsa20 of the key and the nonce's first 16 octets gives
	// the Salsa20 key; the last 8 octets are the Salsa20 nonce.
	var subKey [32]byte
	var hNonce [16]byte
	copy(hNonce[:], nonce[:16])
	salsa.HSalsa20(&subKey, &hNonce, key, &salsa.Sigma)
	var counter [16]byte
	copy(counter[:], nonce[16:])
	// Block 0: its first 32 octets are the Poly1305 key, its last 32
	// encrypt the first 32 octets of flags||payload.
	var block [64]byte
	salsa.XORKeyStream(block[:], block[:], &counter, &subKey)
	var polyKey [32]byte
	copy(polyKey[:], block[:32])

	ret, box := growFor(out, poly1305.TagSize+1+len(payload))
	ct := box[poly1305.TagSize:]
	ct[0] = block[32] ^ flags
	first := min(len(payload), 31)
	for i, x := range payload[:first] {
		ct[1+i] = block[33+i] ^ x
	}
	if rest := payload[first:]; len(rest) > 0 {
		counter[8] = 1 // block 1 onwards
		salsa.XORKeyStream(ct[1+first:], rest, &counter, &subKey)
	}
	var tag [poly1305.TagSize]byte
	poly1305.Sum(&tag, ct, &polyKey)
	copy(box, tag[:])
	clear(subKey[:])
	clear(block[:])
	clear(polyKey[:])
	return ret
}

// growFor returns out extended by n octets, and those n octets.
func growFor(out []byte, n int) (whole, tail []byte) {
	if total := len(out) + n; cap(out) >= total {
		whole = out[:total]
	} else {
		whole = make([]byte, total, total+total/8)
		copy(whole, out)
	}
	return whole, whole[len(out):]
}
