package keystore

import (
	"crypto/ed25519"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/keyid"
)

// MaxNameLen is the longest node name we store, in octets (a ZRE short
// string holds at most 255).
const MaxNameLen = 255

// PublicIdentity is the part of a node's identity that is safe to share and
// is readable without a passphrase.
type PublicIdentity struct {
	// Name is the node's display name.
	Name string
	// UUID is the UUID bound to CurveKey (zre.UUIDFromKey, spec/identity.md).
	UUID uuid.UUID
	// CurveKey is the node's long-term CURVE (X25519) public key.
	CurveKey curve.PublicKey
	// SigningKey is the Ed25519 public key that verifies its trust statements.
	SigningKey ed25519.PublicKey
	// Created is when the identity was made (UTC, whole seconds).
	Created time.Time
}

// Fingerprint returns Fingerprint(p.CurveKey).
func (p *PublicIdentity) Fingerprint() string { return Fingerprint(p.CurveKey) }

// Identity is a node's full identity: its public part plus the CURVE secret
// key and the Ed25519 signing key. It never prints its secrets, whatever
// the fmt verb; Wipe zeroes them when the caller is done.
type Identity struct {
	PublicIdentity
	curveSecret curve.SecretKey
	signing     ed25519.PrivateKey
}

// CurveKeyPair returns the node's long-term CURVE keypair, for the ZRE node
// and its ZMTP CURVE sockets.
func (id *Identity) CurveKeyPair() (curve.PublicKey, curve.SecretKey) {
	var sk curve.SecretKey
	sk, _ = curve.NewSecretKey(id.curveSecret.Bytes())
	return id.CurveKey, sk
}

// Signer returns the Ed25519 private key for trust statements.
func (id *Identity) Signer() ed25519.PrivateKey { return id.signing }

// Public returns a copy of the public part.
func (id *Identity) Public() PublicIdentity {
	p := id.PublicIdentity
	p.SigningKey = append(ed25519.PublicKey(nil), p.SigningKey...)
	return p
}

// Wipe overwrites the secret keys in memory with zeros.
func (id *Identity) Wipe() {
	id.curveSecret.Wipe()
	clear(id.signing)
}

// Format prints only the public part, whatever the verb, for an Identity
// and a *Identity alike.
func (id Identity) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "keystore.Identity{name=%q uuid=%s key=%s}", id.Name, id.UUID, id.CurveKey.Z85())
}

// newIdentity assembles an identity from its secrets and checks them.
func newIdentity(name string, created time.Time, cs curve.SecretKey, seed []byte) (*Identity, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: ed25519 seed is %d octets, want %d", ErrCorrupt, len(seed), ed25519.SeedSize)
	}
	if cs.IsZero() {
		return nil, fmt.Errorf("%w: curve secret key is all zeros", ErrCorrupt)
	}
	id := &Identity{curveSecret: cs, signing: ed25519.NewKeyFromSeed(seed)}
	id.CurveKey = cs.Public()
	id.UUID = keyid.UUID(id.CurveKey)
	id.SigningKey = id.signing.Public().(ed25519.PublicKey)
	if name == "" {
		name = DefaultName(id.UUID)
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	id.Name = name
	id.Created = created.UTC().Truncate(time.Second)
	return id, nil
}

// generateIdentity makes a new identity from r.
func generateIdentity(r io.Reader, name string, now time.Time) (*Identity, error) {
	_, cs, err := curve.GenerateKeyPair(r)
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(r, seed); err != nil {
		return nil, fmt.Errorf("keystore: failed to generate signing key: %w", err)
	}
	defer clear(seed)
	return newIdentity(name, now, cs, seed)
}

// DefaultName is the name a node gets when none is given: like the C
// reference, the first 6 hex digits of its UUID in upper case.
func DefaultName(id uuid.UUID) string {
	return strings.ToUpper(strings.ReplaceAll(id.String(), "-", "")[:6])
}

// checkName accepts a non-empty UTF-8 name of at most MaxNameLen octets,
// without control characters or surrounding spaces.
func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty name", ErrInvalidName)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: name is %d octets, at most %d", ErrInvalidName, len(name), MaxNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: name is not UTF-8", ErrInvalidName)
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("%w: name %q starts or ends with a space", ErrInvalidName, name)
	case strings.ContainsRune(name, '"'):
		return fmt.Errorf("%w: name %q contains a double quote", ErrInvalidName, name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("%w: name %q contains a control character", ErrInvalidName, name)
		}
	}
	return nil
}

// Fingerprint is the short, human-comparable form of a CURVE public key:
// the first 10 octets of SHA-256 over the 32 raw key octets, in RFC 4648
// base32 (upper case, no padding), as four groups of four characters joined
// by "-", e.g. "ABCD-EFGH-IJKL-MNOP". 80 bits: enough to compare by eye or
// voice, not a replacement for the full key in storage. See spec/keystore.md.
func Fingerprint(pub curve.PublicKey) string { return keyid.Fingerprint(pub) }
