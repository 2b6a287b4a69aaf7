// Package keyid owns the two names derived from a CURVE public key: the
// UUID a secure node uses (spec/identity.md) and the short fingerprint people
// compare (spec/keystore.md). zre, keystore and trust each expose them; this
// is the one place they are computed, so they cannot drift apart.
package keyid

import (
	"crypto/sha256"
	"encoding/base32"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
)

// namespace is the namespace of key-derived UUIDs; fixed forever: changing
// it would change every node's UUID.
var namespace = uuid.MustParse("6f1c2a44-5e0b-5d4b-9c1e-7a3f0e2d9b81")

// UUID returns the version 5 UUID over the 32 raw octets of pub.
func UUID(pub curve.PublicKey) uuid.UUID { return uuid.NewSHA1(namespace, pub.Bytes()) }

// IsBound reports whether id is the UUID derived from pub.
func IsBound(id uuid.UUID, pub curve.PublicKey) bool { return UUID(pub) == id }

var fingerprintEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Fingerprint returns the first 10 octets of SHA-256 over pub in base32 (upper
// case, no padding), as four groups of four characters joined by "-", e.g.
// "ABCD-EFGH-IJKL-MNOP".
func Fingerprint(pub curve.PublicKey) string {
	sum := sha256.Sum256(pub.Bytes())
	s := fingerprintEncoding.EncodeToString(sum[:10])
	return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
}
