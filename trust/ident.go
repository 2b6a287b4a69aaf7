package trust

import (
	"crypto/sha256"
	"encoding/base32"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
)

// This package cannot import zre or keystore: the ZRE node (package zre)
// imports trust, and keystore imports zre. So the two derivations it needs
// are repeated here, and tests check them against zre.UUIDFromKey and
// keystore.Fingerprint so they cannot drift apart.

// keyUUIDNamespace is zre's namespace for key-derived UUIDs
// (spec/identity.md); fixed forever.
var keyUUIDNamespace = uuid.MustParse("6f1c2a44-5e0b-5d4b-9c1e-7a3f0e2d9b81")

// keyUUID is zre.UUIDFromKey.
func keyUUID(key curve.PublicKey) uuid.UUID { return uuid.NewSHA1(keyUUIDNamespace, key.Bytes()) }

// isBound reports whether id is derived from key, like zre.IsBound.
func isBound(id uuid.UUID, key curve.PublicKey) bool { return keyUUID(key) == id }

var fingerprintEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Fingerprint is keystore.Fingerprint: the first 10 octets of SHA-256 over
// the key, in base32, as four groups of four ("ABCD-EFGH-IJKL-MNOP").
func Fingerprint(key curve.PublicKey) string {
	sum := sha256.Sum256(key.Bytes())
	s := fingerprintEncoding.EncodeToString(sum[:10])
	return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
}
