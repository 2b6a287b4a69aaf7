package curve

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"

	"golang.org/x/crypto/nacl/secretbox"
)

// ClientConfig configures the client side of a CurveZMQ handshake.
type ClientConfig struct {
	Public    PublicKey // our long-term public key C (derived from Secret when zero)
	Secret    SecretKey // our long-term secret key c
	ServerKey PublicKey // the server's long-term public key S
	Rand      io.Reader // source of randomness; nil means crypto/rand
	// Key, when not nil, is our long-term key pair prepared once (see
	// KeyPair); Public and Secret are then ignored, and so is the check
	// of ServerKey against low-order points that NewClient otherwise
	// makes: the HELLO's X25519 with ServerKey makes it again, so a
	// low-order ServerKey fails Hello instead. A caller that makes many
	// Clients checks its configuration once with a NewClient without Key
	// (as zmtp.CurveClient does), and saves two of the six scalar
	// multiplications of every handshake (four remain: C' and the three
	// box keys c'S, c'S' and cS').
	Key *KeyPair
}

type clientState int

const (
	clientStart    clientState = iota // Hello next
	clientHello                       // HELLO sent, WELCOME next
	clientInitiate                    // INITIATE sent, READY next
	clientDone                        // Session handed out
	clientFailed
)

// Client is the client side of one CurveZMQ handshake (RFC 26). Drive it
// with Hello, Welcome and Ready in that order; it does no I/O and is not
// safe for concurrent use. Any error is final: the Client wipes its
// secrets and every later call fails.
type Client struct {
	pub    PublicKey
	sec    SecretKey        // a copy of the configured secret, wiped (zero with Key)
	key    *ecdh.PrivateKey // c, prepared; nil once wiped
	server PublicKey
	rand   io.Reader
	state  clientState

	cnPub    PublicKey        // C'
	cnSec    SecretKey        // c'
	cnKey    *ecdh.PrivateKey // c', prepared; nil once wiped
	helloKey [32]byte         // box key c' -> S, for HELLO and WELCOME
	precom   [32]byte         // box key c' -> S'
	nonce    uint64           // next short nonce we send
	cookie   [96]byte         // from WELCOME
	cnServer PublicKey        // S'
}

// NewClient checks the configuration and returns a Client ready for Hello.
// It fails with ErrInvalidKey if Public does not belong to Secret or if
// ServerKey is a low-order point.
func NewClient(cfg ClientConfig) (*Client, error) {
	c := &Client{server: cfg.ServerKey, rand: cfg.Rand, nonce: 1}
	if c.rand == nil {
		c.rand = rand.Reader
	}
	if cfg.Key != nil && cfg.Key.priv == nil {
		return nil, fmt.Errorf("curve: new client: %w: key pair not made by NewKeyPair", ErrInvalidKey)
	}
	if cfg.Key != nil {
		c.key, c.pub = cfg.Key.priv, cfg.Key.pub
	} else {
		c.sec.b = cfg.Secret.b
		key, pub := c.sec.prepare()
		if !cfg.Public.IsZero() && !cfg.Public.Equal(pub) {
			c.Wipe()
			return nil, fmt.Errorf("curve: new client: %w: public key does not match the secret key", ErrInvalidKey)
		}
		c.key, c.pub = key, pub
	}
	if cfg.ServerKey.IsZero() {
		c.Wipe()
		return nil, fmt.Errorf("curve: new client: %w: no server key", ErrInvalidKey)
	}
	if cfg.Key == nil {
		k, err := peerBoxKey(c.key, cfg.ServerKey)
		clear(k[:])
		if err != nil {
			c.Wipe()
			return nil, fmt.Errorf("curve: new client: server key: %w", err)
		}
	}
	return c, nil
}

// Wipe overwrites every secret the Client holds; call it when a handshake
// is abandoned. The Client is unusable afterwards. A Session already
// returned by Ready is not affected.
func (c *Client) Wipe() {
	c.sec.Wipe()
	c.key = nil
	c.cnSec.Wipe()
	c.cnKey = nil
	clear(c.helloKey[:])
	clear(c.precom[:])
	clear(c.cookie[:])
	c.state = clientFailed
}

func (c *Client) fail(format string, args ...any) error {
	c.Wipe()
	return fmt.Errorf(format, args...)
}

// Hello draws the transient key pair C' (one 32-octet draw) and returns the
// HELLO command body (200 octets).
func (c *Client) Hello() ([]byte, error) {
	if c.state != clientStart {
		return nil, c.fail("%w: HELLO out of order", ErrHandshake)
	}
	if err := draw(c.rand, c.cnSec.b[:], "transient secret key C'"); err != nil {
		c.Wipe()
		return nil, err
	}
	c.cnKey, c.cnPub = c.cnSec.prepare()
	c.cnSec.Wipe() // c.cnKey holds it from now on
	k, err := peerBoxKey(c.cnKey, c.server)
	if err != nil {
		return nil, c.fail("%w: HELLO: server key: %w", ErrHandshake, err)
	}
	c.helloKey = k
	clear(k[:])

	n := c.nonce
	c.nonce++
	nonce := shortNonceOf(prefixHello, n)
	b := make([]byte, 0, HelloSize)
	b = append(b, nameHello...)
	b = append(b, 1, 0)                // version 1.0
	b = append(b, make([]byte, 72)...) // anti-amplification padding
	b = append(b, c.cnPub.b[:]...)     // C'
	b = binary.BigEndian.AppendUint64(b, n)
	var zeros [64]byte
	b = secretbox.Seal(b, zeros[:], &nonce, &c.helloKey) // Box[64 zeros](C'->S)
	c.state = clientHello
	return b, nil
}

// Welcome reads the server's WELCOME command body and returns the INITIATE
// command body. metadata is the RFC 37 property list to send (libzmq sends
// Socket-Type and Identity); it travels encrypted. It draws the 16-octet
// vouch nonce. An ERROR body instead of WELCOME gives an error wrapping
// ErrRejected.
func (c *Client) Welcome(welcome []byte, metadata []byte) (initiate []byte, err error) {
	if c.state != clientHello {
		return nil, c.fail("%w: WELCOME out of order", ErrHandshake)
	}
	if hasName(welcome, nameError) {
		c.Wipe()
		return nil, rejected(welcome)
	}
	if !hasName(welcome, nameWelcome) {
		return nil, c.fail("%w: want WELCOME, got %s", ErrHandshake, commandName(welcome))
	}
	if len(welcome) != WelcomeSize {
		return nil, c.fail("%w: WELCOME is %d octets, want %d", ErrHandshake, len(welcome), WelcomeSize)
	}
	nonce := longNonceOf(prefixWelcome, welcome[8:24])
	var plain [KeySize + cookieSize]byte
	if _, ok := secretbox.Open(plain[:0], welcome[24:], &nonce, &c.helloKey); !ok {
		return nil, c.fail("%w: WELCOME box does not open (not from the server key %s?)", ErrHandshake, c.server)
	}
	clear(c.helloKey[:])
	copy(c.cnServer.b[:], plain[:KeySize])
	copy(c.cookie[:], plain[KeySize:])
	clear(plain[:])

	c.precom, err = peerBoxKey(c.cnKey, c.cnServer)
	if err != nil {
		return nil, c.fail("%w: WELCOME: server transient key: %w", ErrHandshake, err)
	}

	// vouch = vouch nonce + Box[C' + S](C->S')
	var vouchNonce [longNonce]byte
	if err := draw(c.rand, vouchNonce[:], "vouch nonce"); err != nil {
		c.Wipe()
		return nil, err
	}
	vk, err := peerBoxKey(c.key, c.cnServer)
	if err != nil {
		return nil, c.fail("%w: WELCOME: server transient key: %w", ErrHandshake, err)
	}
	var vouchPlain [2 * KeySize]byte
	copy(vouchPlain[:], c.cnPub.b[:])
	copy(vouchPlain[KeySize:], c.server.b[:])
	vn := longNonceOf(prefixVouch, vouchNonce[:])

	plainInit := make([]byte, 0, KeySize+vouchSize+len(metadata))
	plainInit = append(plainInit, c.pub.b[:]...)
	plainInit = append(plainInit, vouchNonce[:]...)
	plainInit = secretbox.Seal(plainInit, vouchPlain[:], &vn, &vk)
	clear(vk[:])
	plainInit = append(plainInit, metadata...)

	n := c.nonce
	c.nonce++
	in := shortNonceOf(prefixInitiate, n)
	b := make([]byte, 0, MinInitiateSize+len(metadata))
	b = append(b, nameInitiate...)
	b = append(b, c.cookie[:]...)
	b = binary.BigEndian.AppendUint64(b, n)
	b = secretbox.Seal(b, plainInit, &in, &c.precom) // Box[C + vouch + metadata](C'->S')
	clear(c.cookie[:])
	c.state = clientInitiate
	return b, nil
}

// Ready reads the server's READY command body and returns the server's
// metadata (RFC 37 properties, not parsed here) and the Session for the
// MESSAGE phase. The Client wipes its secrets and is done afterwards. An
// ERROR body instead of READY (the server refused our key) gives an error
// wrapping ErrRejected.
func (c *Client) Ready(ready []byte) (metadata []byte, s *Session, err error) {
	if c.state != clientInitiate {
		return nil, nil, c.fail("%w: READY out of order", ErrHandshake)
	}
	if hasName(ready, nameError) {
		c.Wipe()
		return nil, nil, rejected(ready)
	}
	if !hasName(ready, nameReady) {
		return nil, nil, c.fail("%w: want READY, got %s", ErrHandshake, commandName(ready))
	}
	if len(ready) < MinReadySize {
		return nil, nil, c.fail("%w: READY is %d octets, want at least %d", ErrHandshake, len(ready), MinReadySize)
	}
	n := binary.BigEndian.Uint64(ready[6:14])
	nonce := shortNonceOf(prefixReady, n)
	md, ok := secretbox.Open(nil, ready[14:], &nonce, &c.precom)
	if !ok {
		return nil, nil, c.fail("%w: READY box does not open", ErrHandshake)
	}
	if md == nil {
		md = []byte{}
	}
	s = newSession(&c.precom, prefixMessageC, c.nonce, prefixMessageS, n)
	c.Wipe()
	c.state = clientDone
	return md, s, nil
}
