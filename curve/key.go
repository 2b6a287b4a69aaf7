// Package curve implements CurveZMQ (RFC 26) for the ZMTP CURVE mechanism
// (RFC 25): X25519 keypairs, Z85 text (RFC 32), the handshake commands and
// the MESSAGE boxes, on golang.org/x/crypto. It has no goroutines and does no
// I/O of its own; the zmtp package drives it.
package curve

import (
	"crypto/ecdh"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// KeySize is the size of a CURVE public or secret key in octets.
const KeySize = 32

// ErrInvalidKey is wrapped by every error about a malformed key.
var ErrInvalidKey = errors.New("curve: invalid key")

// PublicKey is a long-term or short-term X25519 public key. It is
// comparable, so it can be a map key; the zero value is not a valid key.
type PublicKey struct{ b [KeySize]byte }

// SecretKey is an X25519 secret key. It cannot be compared with == (use
// Equal, which is constant-time) and never prints its value.
type SecretKey struct {
	_ [0]func() // not comparable
	b [KeySize]byte
}

// NewPublicKey returns the public key with the given 32 raw octets.
func NewPublicKey(b []byte) (PublicKey, error) {
	var k PublicKey
	if len(b) != KeySize {
		return k, fmt.Errorf("%w: public key is %d octets, want %d", ErrInvalidKey, len(b), KeySize)
	}
	copy(k.b[:], b)
	return k, nil
}

// NewSecretKey returns the secret key with the given 32 raw octets.
func NewSecretKey(b []byte) (SecretKey, error) {
	var k SecretKey
	if len(b) != KeySize {
		return k, fmt.Errorf("%w: secret key is %d octets, want %d", ErrInvalidKey, len(b), KeySize)
	}
	copy(k.b[:], b)
	return k, nil
}

// ParsePublicKey parses a public key in its 40-character Z85 form (as
// libzmq's zmq_curve_keypair and czmq's zcert write it) or its 64-character
// hex form.
func ParsePublicKey(s string) (PublicKey, error) {
	b, err := parseKeyText(s)
	if err != nil {
		return PublicKey{}, fmt.Errorf("curve: public key: %w", err)
	}
	return NewPublicKey(b)
}

// ParseSecretKey parses a secret key in Z85 or hex form. Errors never
// contain the text.
func ParseSecretKey(s string) (SecretKey, error) {
	b, err := parseKeyText(s)
	if err != nil {
		return SecretKey{}, fmt.Errorf("curve: secret key: %w", ErrInvalidKey)
	}
	return NewSecretKey(b)
}

func parseKeyText(s string) ([]byte, error) {
	switch len(s) {
	case 40:
		return DecodeZ85(s)
	case 64:
		b, err := hex.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%w: bad hex", ErrInvalidKey)
		}
		return b, nil
	}
	return nil, fmt.Errorf("%w: %d characters, want 40 (Z85) or 64 (hex)", ErrInvalidKey, len(s))
}

// Bytes returns a copy of the 32 raw octets.
func (k PublicKey) Bytes() []byte { b := k.b; return b[:] }

// Array returns the raw octets as an array.
func (k PublicKey) Array() [KeySize]byte { return k.b }

// IsZero reports whether k is the zero value.
func (k PublicKey) IsZero() bool { return k.b == [KeySize]byte{} }

// Z85 returns the 40-character Z85 text of the key.
func (k PublicKey) Z85() string { s, _ := EncodeZ85(k.b[:]); return s }

// String returns the Z85 text of the key.
func (k PublicKey) String() string { return k.Z85() }

// Equal reports whether two public keys are the same, in constant time.
func (k PublicKey) Equal(o PublicKey) bool { return subtle.ConstantTimeCompare(k.b[:], o.b[:]) == 1 }

// Bytes returns a copy of the 32 raw secret octets.
func (k *SecretKey) Bytes() []byte { b := k.b; return b[:] }

// Z85 returns the 40-character Z85 text of the secret key. Call it only to
// write the key where the user asked for it.
func (k *SecretKey) Z85() string { s, _ := EncodeZ85(k.b[:]); return s }

// String never reveals the key.
func (k *SecretKey) String() string { return "curve.SecretKey(redacted)" }

// GoString never reveals the key.
func (k *SecretKey) GoString() string { return k.String() }

// Format never reveals the key, whatever the verb.
func (k SecretKey) Format(f fmt.State, _ rune) { io.WriteString(f, "curve.SecretKey(redacted)") }

// Equal reports whether two secret keys are the same, in constant time.
func (k *SecretKey) Equal(o *SecretKey) bool { return subtle.ConstantTimeCompare(k.b[:], o.b[:]) == 1 }

// IsZero reports whether k is the zero value.
func (k *SecretKey) IsZero() bool { return k.b == [KeySize]byte{} }

// Public computes the public key of k (one scalar multiplication).
func (k *SecretKey) Public() PublicKey {
	_, p := k.prepare()
	return p
}

// prepare returns k ready for X25519 and its public key, for one scalar
// multiplication (crypto/ecdh derives the public key when it takes a
// private key; golang.org/x/crypto/curve25519.X25519 goes through it too,
// so that each of its calls costs two multiplications). The returned key
// holds a copy of the secret that Wipe cannot reach: the caller drops it
// when done, as the garbage collector then may reuse its memory.
func (k *SecretKey) prepare() (*ecdh.PrivateKey, PublicKey) {
	var p PublicKey
	priv, err := ecdh.X25519().NewPrivateKey(k.b[:])
	if err != nil { // cannot happen: any 32 octets are an X25519 scalar
		panic("curve: X25519 private key: " + err.Error())
	}
	copy(p.b[:], priv.PublicKey().Bytes())
	return priv, p
}

// Wipe overwrites the secret with zeros.
func (k *SecretKey) Wipe() { clear(k.b[:]) }

// GenerateKeyPair makes a new long-term keypair from rand (crypto/rand when
// nil). Like zmq_curve_keypair it draws 32 random octets as the secret key.
// A public key whose first octet is zero is drawn again: the C zyre reference
// reads such a key in a beacon as "no key".
func GenerateKeyPair(r io.Reader) (PublicKey, SecretKey, error) {
	if r == nil {
		r = rand.Reader
	}
	for {
		var sk SecretKey
		if _, err := io.ReadFull(r, sk.b[:]); err != nil {
			return PublicKey{}, SecretKey{}, fmt.Errorf("curve: generate keypair: %w", err)
		}
		pk := sk.Public()
		if pk.b[0] != 0 {
			return pk, sk, nil
		}
	}
}

// SharedSecret computes X25519(k, peer) and rejects a low-order peer key
// (an all-zero result) with an error wrapping ErrInvalidKey.
func (k *SecretKey) SharedSecret(peer PublicKey) ([KeySize]byte, error) {
	priv, _ := k.prepare()
	return sharedSecret(priv, peer)
}

// sharedSecret is X25519(priv, peer): one scalar multiplication. A
// low-order peer key (an all-zero result) is an error wrapping
// ErrInvalidKey.
func sharedSecret(priv *ecdh.PrivateKey, peer PublicKey) ([KeySize]byte, error) {
	var out [KeySize]byte
	pk, err := ecdh.X25519().NewPublicKey(peer.b[:])
	if err != nil { // cannot happen: any 32 octets are an X25519 point
		return out, fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	s, err := priv.ECDH(pk)
	if err != nil {
		return out, fmt.Errorf("%w: low-order peer public key", ErrInvalidKey)
	}
	copy(out[:], s)
	clear(s)
	return out, nil
}

// KeyPair is a long-term key pair prepared once for many handshakes: its
// public key derived (and checked against the one given) and its secret
// ready for X25519, so that a handshake spends no scalar multiplication on
// it. Give it to ServerConfig.Key or ClientConfig.Key. It is immutable and
// safe for concurrent use. It keeps a copy of the secret key for its
// whole life, which nothing wipes: hold it as long as the socket that
// uses it, as one holds the SecretKey itself.
type KeyPair struct {
	pub  PublicKey
	priv *ecdh.PrivateKey
}

// NewKeyPair prepares the key pair of sec. It fails with ErrInvalidKey when
// pub is not zero and does not belong to sec.
func NewKeyPair(pub PublicKey, sec SecretKey) (*KeyPair, error) {
	priv, derived := sec.prepare()
	sec.Wipe()
	if !pub.IsZero() && !pub.Equal(derived) {
		return nil, fmt.Errorf("curve: key pair: %w: public key does not match the secret key", ErrInvalidKey)
	}
	return &KeyPair{pub: derived, priv: priv}, nil
}

// Public returns the public key of the pair.
func (k *KeyPair) Public() PublicKey { return k.pub }
