package zre

import (
	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/keyid"
)

// UUIDFromKey returns the UUID a secure node with public key pub uses: a
// version 5 UUID over the 32 raw key octets (spec/identity.md). A peer whose
// UUID equals UUIDFromKey of the key it authenticated with is "bound":
// nobody without its secret key can claim its UUID.
func UUIDFromKey(pub curve.PublicKey) uuid.UUID { return keyid.UUID(pub) }

// IsBound reports whether id is the UUID derived from pub.
func IsBound(id uuid.UUID, pub curve.PublicKey) bool { return keyid.IsBound(id, pub) }
