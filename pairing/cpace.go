package pairing

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/gtank/ristretto255"
)

// CPace (draft-irtf-cfrg-cpace-18) on ristretto255 with SHA-512, the
// CPACE-RISTR255-SHA512 suite, in the initiator-responder setting. The
// group arithmetic is github.com/gtank/ristretto255; this file only builds
// the strings and hashes the draft defines. See spec/pairing.md.

const (
	cpaceDSI        = "CPaceRistretto255"
	cpaceSInBytes   = 128 // SHA-512 input block size, H.s_in_bytes
	cpaceElemSize   = 32
	cpaceSIDSize    = 16
	cpaceTagSize    = sha512.Size
	cpaceCIPrefix   = "zyre-pair-code-v1"
	cpaceADScanner  = "zyre-pair scanner"
	cpaceADDisplay  = "zyre-pair displayer"
	cpaceInfoConfm  = "zyre-pair-code-v1 confirm"
	cpaceInfoNumber = "zyre-pair-code-v1 comparison"
)

// prependLen is the draft's prepend_len: the LEB128 length, then the data.
func prependLen(dst, data []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(data)))
	return append(dst, data...)
}

// lvCat is the draft's lv_cat.
func lvCat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = prependLen(out, p)
	}
	return out
}

// generatorString is the draft's generator_string(DSI, PRS, CI, sid, s_in_bytes).
func generatorString(prs, ci, sid []byte) []byte {
	zpad := cpaceSInBytes - 1 - len(prependLen(nil, prs)) - len(prependLen(nil, []byte(cpaceDSI)))
	if zpad < 0 {
		zpad = 0
	}
	return lvCat([]byte(cpaceDSI), prs, make([]byte, zpad), ci, sid)
}

// calculateGenerator hashes the generator string to 64 octets and maps
// them to the group with ristretto255's one-way map (element_derivation).
func calculateGenerator(prs, ci, sid []byte) *ristretto255.Element {
	h := sha512.Sum512(generatorString(prs, ci, sid))
	return ristretto255.NewElement().FromUniformBytes(h[:])
}

// cpaceCI is the channel identifier: both CURVE keys as this side sees them
// (displayer first). A man in the middle who terminates CURVE makes the two
// sides use different CIs, hence different generators.
func cpaceCI(displayerKey, scannerKey []byte) []byte {
	return lvCat([]byte(cpaceCIPrefix), displayerKey, scannerKey)
}

// cpaceParty is one side's state: its secret scalar and share.
type cpaceParty struct {
	y     *ristretto255.Scalar
	share []byte // Y = y*g, encoded
	sid   []byte
}

func newCPaceParty(r io.Reader, prs, ci, sid []byte) (*cpaceParty, error) {
	if r == nil {
		r = rand.Reader
	}
	var buf [64]byte
	if _, err := io.ReadFull(r, buf[:]); err != nil {
		return nil, fmt.Errorf("pairing: cpace: random scalar: %w", err)
	}
	y := ristretto255.NewScalar().FromUniformBytes(buf[:])
	clear(buf[:])
	return cpaceParty0(y, prs, ci, sid), nil
}

// cpacePartyFromScalar makes a party with a given scalar (32 octets, little
// endian, canonical), for the draft's test vectors.
func cpacePartyFromScalar(y32, prs, ci, sid []byte) (*cpaceParty, error) {
	y := ristretto255.NewScalar()
	if err := y.Decode(y32); err != nil {
		return nil, fmt.Errorf("pairing: cpace: scalar: %w", err)
	}
	return cpaceParty0(y, prs, ci, sid), nil
}

func cpaceParty0(y *ristretto255.Scalar, prs, ci, sid []byte) *cpaceParty {
	g := calculateGenerator(prs, ci, sid)
	Y := ristretto255.NewElement().ScalarMult(y, g)
	return &cpaceParty{y: y, share: Y.Encode(nil), sid: append([]byte(nil), sid...)}
}

// sharedK is the draft's scalar_mult_vfy: it decodes the peer's share,
// multiplies, and rejects an invalid encoding or the identity.
func (p *cpaceParty) sharedK(peer []byte) ([]byte, error) {
	if len(peer) != cpaceElemSize {
		return nil, fmt.Errorf("pairing: cpace: share of %d octets: %w", len(peer), ErrProtocol)
	}
	X := ristretto255.NewElement()
	if err := X.Decode(peer); err != nil {
		return nil, fmt.Errorf("pairing: cpace: invalid share: %w", ErrProtocol)
	}
	K := ristretto255.NewElement().ScalarMult(p.y, X)
	if K.Equal(ristretto255.NewElement().Zero()) == 1 {
		return nil, fmt.Errorf("pairing: cpace: share gives the identity: %w", ErrProtocol)
	}
	return K.Encode(nil), nil
}

// transcriptIR is the draft's transcript_ir(Ya, ADa, Yb, ADb).
func transcriptIR(ya, ada, yb, adb []byte) []byte {
	return append(lvCat(ya, ada), lvCat(yb, adb)...)
}

// cpaceISK is ISK = H.hash(lv_cat(DSI || "_ISK", sid, K) || transcript_ir(Ya, ADa, Yb, ADb)).
func cpaceISK(sid, K, ya, ada, yb, adb []byte) []byte {
	h := sha512.New()
	h.Write(lvCat([]byte(cpaceDSI+"_ISK"), sid, K))
	h.Write(transcriptIR(ya, ada, yb, adb))
	return h.Sum(nil)
}

// cpaceKeys are what both sides derive from the ISK.
type cpaceKeys struct {
	isk        []byte
	tagA, tagB []byte // key confirmation of the scanner (A) and the displayer (B)
	number     string // 6-digit comparison number
}

// deriveKeys computes ISK = H(lv_cat(DSI||"_ISK", sid, K) || transcript_ir(...))
// and from it (HKDF-SHA-512) the confirmation tags and comparison number.
func deriveKeys(sid, K, ya, yb []byte) (cpaceKeys, error) {
	tr := transcriptIR(ya, []byte(cpaceADScanner), yb, []byte(cpaceADDisplay))
	isk := cpaceISK(sid, K, ya, []byte(cpaceADScanner), yb, []byte(cpaceADDisplay))
	conf, err := hkdf.Key(sha512.New, isk, nil, cpaceInfoConfm, 2*32)
	if err != nil {
		return cpaceKeys{}, fmt.Errorf("pairing: cpace: hkdf: %w", err)
	}
	num, err := hkdf.Key(sha512.New, isk, nil, cpaceInfoNumber, 8)
	if err != nil {
		return cpaceKeys{}, fmt.Errorf("pairing: cpace: hkdf: %w", err)
	}
	k := cpaceKeys{isk: isk}
	k.tagA = macTag(conf[:32], "A", tr)
	k.tagB = macTag(conf[32:], "B", tr)
	k.number = fmt.Sprintf("%06d", binary.BigEndian.Uint64(num)%1_000_000)
	clear(conf)
	return k, nil
}

func macTag(key []byte, role string, tr []byte) []byte {
	m := hmac.New(sha512.New, key)
	m.Write([]byte(role))
	m.Write(tr)
	return m.Sum(nil)
}
