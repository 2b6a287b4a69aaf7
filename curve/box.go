package curve

import (
	"crypto/ecdh"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/nacl/secretbox"
	"golang.org/x/crypto/salsa20/salsa"
)

// Sentinel errors. Every error returned by this package wraps one of them
// (or ErrInvalidKey) and says in its text what failed.
var (
	// ErrHandshake is wrapped by every failure of a handshake command:
	// wrong size or name, a box that does not open, a bad cookie or vouch,
	// a short nonce that does not increase, or a command out of order. The
	// Client or Server that returned it is dead: every later call fails.
	ErrHandshake = errors.New("curve: handshake failed")
	// ErrRejected is wrapped when the server answered with an ERROR
	// command; the text quotes its reason.
	ErrRejected = errors.New("curve: rejected by server")
	// ErrBadMessage is wrapped by every failure to open a MESSAGE: wrong
	// size or name, a reused or decreasing nonce, a box that does not open
	// or reserved flag bits. The receiving side of the Session is dead
	// afterwards.
	ErrBadMessage = errors.New("curve: bad message")
)

// Command sizes on the wire, counting the name-length octet and the name.
const (
	HelloSize       = 200 // HELLO, exactly
	WelcomeSize     = 168 // WELCOME, exactly
	MinInitiateSize = 257 // INITIATE without metadata
	MinReadySize    = 30  // READY without metadata
	// MessageOverhead is what Seal adds to a payload: `\x07MESSAGE`,
	// the 8-octet short nonce, the flags octet and the 16-octet tag.
	MessageOverhead = 8 + 8 + 1 + secretbox.Overhead
)

// Flags carried inside a MESSAGE box, as libzmq sets them.
const (
	FlagMore    byte = 0x01 // more frames of this message follow
	FlagCommand byte = 0x02 // the payload is a ZMTP command (PING, PONG)
)

const flagMask = FlagMore | FlagCommand

// Command names with their length octet, as they start a command body.
const (
	nameHello    = "\x05HELLO"
	nameWelcome  = "\x07WELCOME"
	nameInitiate = "\x08INITIATE"
	nameReady    = "\x05READY"
	nameMessage  = "\x07MESSAGE"
	nameError    = "\x05ERROR"
)

// Nonce prefixes of RFC 26. Short nonces take a 16-octet prefix and an
// 8-octet big-endian counter; long nonces an 8-octet prefix and 16 random
// octets.
const (
	prefixHello    = "CurveZMQHELLO---"
	prefixInitiate = "CurveZMQINITIATE"
	prefixReady    = "CurveZMQREADY---"
	prefixMessageC = "CurveZMQMESSAGEC" // client to server
	prefixMessageS = "CurveZMQMESSAGES" // server to client
	prefixWelcome  = "WELCOME-"
	prefixCookie   = "COOKIE--"
	prefixVouch    = "VOUCH---"
)

const (
	boxOverhead = secretbox.Overhead
	longNonce   = 16
	shortNonce  = 8
	cookieSize  = longNonce + 2*KeySize + boxOverhead // 96
	vouchSize   = longNonce + 2*KeySize + boxOverhead // 96
)

// boxKey is the NaCl crypto_box_beforenm key for a secret and a peer's
// public key: HSalsa20 over the X25519 output, as box.Precompute does, but
// through SharedSecret so a low-order peer key is an error, not zeros.
func boxKey(sk *SecretKey, peer PublicKey) ([KeySize]byte, error) {
	priv, _ := sk.prepare()
	return preparedBoxKey(priv, peer)
}

// preparedBoxKey is boxKey with a prepared secret: one scalar
// multiplication.
func preparedBoxKey(priv *ecdh.PrivateKey, peer PublicKey) ([KeySize]byte, error) {
	var k [KeySize]byte
	ss, err := sharedSecret(priv, peer)
	if err != nil {
		return k, err
	}
	var zeros [16]byte
	salsa.HSalsa20(&k, &zeros, &ss, &salsa.Sigma)
	clear(ss[:])
	return k, nil
}

// shortNonceOf builds prefix (16 octets) + big-endian n.
func shortNonceOf(prefix string, n uint64) (nonce [24]byte) {
	copy(nonce[:], prefix)
	binary.BigEndian.PutUint64(nonce[16:], n)
	return nonce
}

// longNonceOf builds prefix (8 octets) + the 16 octets of r.
func longNonceOf(prefix string, r []byte) (nonce [24]byte) {
	copy(nonce[:], prefix)
	copy(nonce[8:], r)
	return nonce
}

// draw reads exactly len(b) random octets in one io.ReadFull call.
func draw(r io.Reader, b []byte, what string) error {
	if _, err := io.ReadFull(r, b); err != nil {
		return fmt.Errorf("curve: failed to draw %s: %w", what, err)
	}
	return nil
}

// hasName reports whether body starts with the given length-prefixed name.
func hasName(body []byte, name string) bool {
	return len(body) >= len(name) && string(body[:len(name)]) == name
}

// commandName returns the name a body claims, for error texts; it is
// sanitized so a hostile peer cannot inject text into logs.
func commandName(body []byte) string {
	if len(body) == 0 {
		return "empty command"
	}
	n := int(body[0])
	if n == 0 || len(body) < 1+n {
		return "malformed command"
	}
	return fmt.Sprintf("%q", body[1:1+n])
}

// checkPeerKey rejects a public key received from a peer that is not the
// canonical encoding of a field element (top bit set, or a value >= 2^255-19).
// X25519 ignores the top bit and reduces mod p, so such keys would give a
// peer two spellings of the same key; honest implementations never send them.
func checkPeerKey(k PublicKey) error {
	if k.b[31]&0x80 != 0 {
		return fmt.Errorf("%w: public key has its top bit set (non-canonical)", ErrInvalidKey)
	}
	if k.b[31] == 0x7f && k.b[0] >= 0xed {
		for _, c := range k.b[1:31] {
			if c != 0xff {
				return nil
			}
		}
		return fmt.Errorf("%w: public key is not below 2^255-19 (non-canonical)", ErrInvalidKey)
	}
	return nil
}

// peerBoxKey is preparedBoxKey after checkPeerKey.
func peerBoxKey(priv *ecdh.PrivateKey, peer PublicKey) ([KeySize]byte, error) {
	if err := checkPeerKey(peer); err != nil {
		return [KeySize]byte{}, err
	}
	return preparedBoxKey(priv, peer)
}
