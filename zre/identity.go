package zre

import (
	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
)

// keyUUIDNamespace is the namespace of the name-based (version 5) UUIDs that
// our secure nodes derive from their CURVE public keys. See spec/identity.md.
var keyUUIDNamespace = uuid.MustParse("6f1c2a44-5e0b-5d4b-9c1e-7a3f0e2d9b81")

// UUIDFromKey returns the UUID a secure node with public key pub uses: a
// version 5 UUID over the 32 raw key octets. A peer whose UUID equals
// UUIDFromKey of the key it authenticated with is "bound": nobody without its
// secret key can claim its UUID.
func UUIDFromKey(pub curve.PublicKey) uuid.UUID {
	return uuid.NewSHA1(keyUUIDNamespace, pub.Bytes())
}

// IsBound reports whether id is the UUID derived from pub.
func IsBound(id uuid.UUID, pub curve.PublicKey) bool {
	return UUIDFromKey(pub) == id
}
