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

// ratchet steps a chain key: it returns the message key of this step and
// replaces *ck with the next chain key (the old one is overwritten). Each
// is the one-step key derivation of NIST SP 800-56C rev. 2 (section 4.1,
// option 1, H = SHA-256) with the chain key as the secret Z and one octet
// of FixedInfo that tells the two outputs apart:
//
//	msg_key_i      = SHA-256(00000001 | chain_key_i | 0x01)
//	chain_key_i+1  = SHA-256(00000001 | chain_key_i | 0x02)
//
// Each input is 37 octets of fixed length, one SHA-256 block, so a step
// costs two compressions (an HMAC-SHA256 ratchet costs eight).
func ratchet(ck *[32]byte) (mk [32]byte) {
	var in [4 + 32 + 1]byte
	in[3] = 1
	copy(in[4:], ck[:])
	in[36] = 0x01
	mk = sha256.Sum256(in[:])
	in[36] = 0x02
	*ck = sha256.Sum256(in[:])
	clear(in[:])
	return mk
}

// advance replaces *ck with the next chain key without deriving the
// message key: ratchet's second half, for walking past counters.
func advance(ck *[32]byte) {
	var in [4 + 32 + 1]byte
	in[3] = 1
	copy(in[4:], ck[:])
	in[36] = 0x02
	*ck = sha256.Sum256(in[:])
	clear(in[:])
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
