package privgroup

import (
	"crypto/sha256"
	"encoding/binary"

	"golang.org/x/crypto/salsa20/salsa"

	"github.com/zyre-go/zyre/curve"
)

// Domain-separation labels. Each ends in a NUL so no label is a prefix of
// another's input.
const (
	labelKeyID = "zyre-privgroup keyid v1\x00"
	labelBatch = "zyre-privgroup batch v1\x00"
)

// hmacSHA256Byte returns HMAC-SHA256(key, []byte{b}) exactly as RFC 2104
// and crypto/hmac define it, on stack buffers: crypto/hmac allocates a new
// hasher for every key, and the ratchet changes key at every message. The
// tests check it against crypto/hmac.
func hmacSHA256Byte(key *[32]byte, b byte) [32]byte {
	var inner [sha256.BlockSize + 1]byte
	var outer [sha256.BlockSize + sha256.Size]byte
	for i := range sha256.BlockSize {
		var k byte
		if i < len(key) {
			k = key[i]
		}
		inner[i] = k ^ 0x36
		outer[i] = k ^ 0x5c
	}
	inner[sha256.BlockSize] = b
	ih := sha256.Sum256(inner[:])
	copy(outer[sha256.BlockSize:], ih[:])
	out := sha256.Sum256(outer[:])
	clear(inner[:])
	clear(outer[:sha256.BlockSize])
	return out
}

// ratchet steps a chain key: it returns the message key of this step and
// replaces *ck with the next chain key (the old one is overwritten).
//
//	msg_key_i      = HMAC-SHA256(chain_key_i, 0x01)
//	chain_key_i+1  = HMAC-SHA256(chain_key_i, 0x02)
func ratchet(ck *[32]byte) (mk [32]byte) {
	mk = hmacSHA256Byte(ck, 0x01)
	*ck = hmacSHA256Byte(ck, 0x02)
	return mk
}

// makeKeyID derives the key id of (group, sender, epoch, signing key).
func makeKeyID(group string, sender [16]byte, epoch uint32, signingKey []byte) KeyID {
	h := sha256.New()
	h.Write([]byte(labelKeyID))
	h.Write([]byte{byte(len(group))})
	h.Write([]byte(group))
	h.Write(sender[:])
	var e [4]byte
	binary.BigEndian.PutUint32(e[:], epoch)
	h.Write(e[:])
	h.Write(signingKey)
	var sum [32]byte
	h.Sum(sum[:0])
	var id KeyID
	copy(id[:], sum[:])
	return id
}

// newAD returns the associated-data buffer of a chain: 13 octets for the
// message header (filled per message), then the group name with its length,
// the sender id and the epoch, which are not on the wire but bound.
func newAD(group string, sender [16]byte, epoch uint32) []byte {
	ad := make([]byte, DataHeaderSize, DataHeaderSize+1+len(group)+16+4)
	ad = append(ad, byte(len(group)))
	ad = append(ad, group...)
	ad = append(ad, sender[:]...)
	return binary.BigEndian.AppendUint32(ad, epoch)
}

// nonceOf is the AEAD nonce: key id (which names group, sender and epoch)
// and the counter. It never repeats under one key id, and every message
// key is used once anyway.
func nonceOf(id KeyID, counter uint32) (n [nonceSize]byte) {
	copy(n[:], id[:])
	binary.BigEndian.PutUint32(n[KeyIDSize:], counter)
	return n
}

// putHeader writes a data-message header into h (13 octets).
func putHeader(h []byte, id KeyID, counter uint32) {
	h[0] = typeData
	copy(h[1:], id[:])
	binary.BigEndian.PutUint32(h[1+KeyIDSize:], counter)
}

// boxKey is the NaCl crypto_box_beforenm key of a secret key and a peer's
// public key: HSalsa20 over X25519, through curve.SecretKey.SharedSecret so
// that a low-order peer key is an error rather than an all-zero key (which
// box.Precompute would silently return).
func boxKey(sk *curve.SecretKey, peer curve.PublicKey) ([32]byte, error) {
	var k [32]byte
	ss, err := sk.SharedSecret(peer)
	if err != nil {
		return k, errf("privgroup: sender key: %w: %w", ErrSenderKey, err)
	}
	var zeros [16]byte
	salsa.HSalsa20(&k, &zeros, &ss, &salsa.Sigma)
	clear(ss[:])
	return k, nil
}

// batchSigned builds the message an Ed25519 batch signature covers:
//
//	label | suite | len(group) | group | sender id | epoch | record[0:15] | root
//
// root = H(h_first | ... | h_last), h_i = H(sealed message i), H the
// suite's hash.
func batchSigned(dst []byte, suite Suite, group string, sender [16]byte, epoch uint32, head []byte, root *[32]byte) []byte {
	dst = append(dst, labelBatch...)
	dst = append(dst, byte(suite))
	dst = append(dst, byte(len(group)))
	dst = append(dst, group...)
	dst = append(dst, sender[:]...)
	dst = binary.BigEndian.AppendUint32(dst, epoch)
	dst = append(dst, head...)
	return append(dst, root[:]...)
}
