package trust

import (
	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/keyid"
)

// keyUUID is zre.UUIDFromKey (trust cannot import zre, which imports trust).
func keyUUID(key curve.PublicKey) uuid.UUID { return keyid.UUID(key) }

// isBound reports whether id is derived from key, like zre.IsBound.
func isBound(id uuid.UUID, key curve.PublicKey) bool { return keyid.IsBound(id, key) }

// Fingerprint is keystore.Fingerprint: the first 10 octets of SHA-256 over
// the key, in base32, as four groups of four ("ABCD-EFGH-IJKL-MNOP").
func Fingerprint(key curve.PublicKey) string { return keyid.Fingerprint(key) }
