package curve

import (
	"crypto/ecdh"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"

	"golang.org/x/crypto/nacl/secretbox"
)

// ServerConfig configures the server side of a CurveZMQ handshake.
type ServerConfig struct {
	Public PublicKey // our long-term public key S (derived from Secret when zero)
	Secret SecretKey // our long-term secret key s
	Rand   io.Reader // source of randomness; nil means crypto/rand
	// Key, when not nil, is our long-term key pair prepared once (see
	// KeyPair); Public and Secret are then ignored. It saves one of the
	// six scalar multiplications of every handshake (five remain: S', s'
	// prepared again from the cookie, and the box keys sC', s'C' and
	// s'C).
	Key *KeyPair
}

type serverState int

const (
	serverStart     serverState = iota // HELLO next
	serverWelcomed                     // WELCOME sent, INITIATE next
	serverInitiated                    // INITIATE accepted, Ready next
	serverDone
	serverFailed
)

// Server is the server side of one CurveZMQ handshake (RFC 26), for one
// connection. Drive it with Hello, Initiate and Ready in that order; it does
// no I/O and is not safe for concurrent use. Any error is final: the Server
// wipes its secrets and every later call fails.
//
// Between WELCOME and INITIATE the Server keeps only the cookie key and the
// client's HELLO short nonce: the transient keys C' and s' are recovered
// from the cookie the client sends back.
type Server struct {
	pub   PublicKey
	sec   SecretKey        // a copy of the configured secret, wiped (zero with Key)
	key   *ecdh.PrivateKey // s, prepared; nil once wiped
	rand  io.Reader
	state serverState

	sn         SecretKey // s', drawn by Prepare (or Hello), wiped by Hello
	snPub      PublicKey // S'
	prepared   bool      // Prepare drew s'
	cookieKey  [32]byte  // fresh per WELCOME, wiped on INITIATE
	helloNonce uint64    // client's HELLO short nonce
	precom     [32]byte  // box key s' -> C', after INITIATE
	peerNonce  uint64    // client's INITIATE short nonce
}

// NewServer checks the configuration and returns a Server waiting for a
// HELLO. It fails with ErrInvalidKey if Public does not belong to Secret.
func NewServer(cfg ServerConfig) (*Server, error) {
	s := &Server{rand: cfg.Rand}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if cfg.Key != nil && cfg.Key.priv == nil {
		return nil, fmt.Errorf("curve: new server: %w: key pair not made by NewKeyPair", ErrInvalidKey)
	}
	if cfg.Key != nil {
		s.key, s.pub = cfg.Key.priv, cfg.Key.pub
		return s, nil
	}
	s.sec.b = cfg.Secret.b
	key, pub := s.sec.prepare()
	if !cfg.Public.IsZero() && !cfg.Public.Equal(pub) {
		s.Wipe()
		return nil, fmt.Errorf("curve: new server: %w: public key does not match the secret key", ErrInvalidKey)
	}
	s.key, s.pub = key, pub
	return s, nil
}

// Wipe overwrites every secret the Server holds; call it when a handshake
// is abandoned. The Server is unusable afterwards. A Session already
// returned by Ready is not affected.
func (s *Server) Wipe() {
	s.sec.Wipe()
	s.key = nil
	s.sn.Wipe()
	clear(s.cookieKey[:])
	clear(s.precom[:])
	s.state = serverFailed
}

func (s *Server) fail(format string, args ...any) error {
	s.Wipe()
	return fmt.Errorf(format, args...)
}

// Prepare draws the transient key pair S' (the first of Hello's draws) and
// derives S' before the HELLO arrives: a server that waits for it anyway
// (the zmtp layer, while the greetings cross) takes that work off the
// handshake's path. It is optional, and allowed once, before Hello; s'
// is wiped by Hello, or by Wipe.
func (s *Server) Prepare() error {
	if s.state != serverStart || s.prepared {
		return s.fail("%w: Prepare out of order", ErrHandshake)
	}
	if err := s.drawTransient(); err != nil {
		s.Wipe()
		return err
	}
	s.prepared = true
	return nil
}

func (s *Server) drawTransient() error {
	if err := draw(s.rand, s.sn.b[:], "transient secret key s'"); err != nil {
		return err
	}
	_, s.snPub = s.sn.prepare()
	return nil
}

// Hello reads the client's HELLO command body and returns the WELCOME
// command body. It draws, in this order and in one read each: the
// transient secret key s' (32; unless Prepare drew it before), the cookie
// nonce (16), the cookie key (32) and the WELCOME nonce (16) — libzmq's
// order.
func (s *Server) Hello(hello []byte) (welcome []byte, err error) {
	if s.state != serverStart {
		return nil, s.fail("%w: HELLO out of order", ErrHandshake)
	}
	if !hasName(hello, nameHello) {
		return nil, s.fail("%w: want HELLO, got %s", ErrHandshake, commandName(hello))
	}
	if len(hello) != HelloSize {
		return nil, s.fail("%w: HELLO is %d octets, want %d", ErrHandshake, len(hello), HelloSize)
	}
	if hello[6] != 1 || hello[7] != 0 {
		return nil, s.fail("%w: HELLO has version %d.%d, want 1.0", ErrHandshake, hello[6], hello[7])
	}
	for i, c := range hello[8:80] {
		if c != 0 {
			return nil, s.fail("%w: HELLO padding octet %d is %#02x, want 0", ErrHandshake, i, c)
		}
	}
	var cn PublicKey // C'
	copy(cn.b[:], hello[80:112])
	s.helloNonce = binary.BigEndian.Uint64(hello[112:120])
	k, err := peerBoxKey(s.key, cn)
	if err != nil {
		return nil, s.fail("%w: HELLO client transient key: %w", ErrHandshake, err)
	}
	defer clear(k[:])
	nonce := shortNonceOf(prefixHello, s.helloNonce)
	var sig [64]byte
	if _, ok := secretbox.Open(sig[:0], hello[120:], &nonce, &k); !ok {
		return nil, s.fail("%w: HELLO box does not open (client uses another server key?)", ErrHandshake)
	}
	if sig != [64]byte{} {
		return nil, s.fail("%w: HELLO signature box does not hold 64 zeros", ErrHandshake)
	}

	// Transient key pair S', drawn per connection (by Prepare, or now).
	if !s.prepared {
		if err := s.drawTransient(); err != nil {
			s.Wipe()
			return nil, err
		}
	}
	defer s.sn.Wipe()
	sn, snPub := &s.sn, s.snPub

	// cookie = cookie nonce + Box[C' + s'](K)
	var cookieNonce [longNonce]byte
	if err := draw(s.rand, cookieNonce[:], "cookie nonce"); err != nil {
		s.Wipe()
		return nil, err
	}
	if err := draw(s.rand, s.cookieKey[:], "cookie key"); err != nil {
		s.Wipe()
		return nil, err
	}
	var cookiePlain [2 * KeySize]byte
	defer clear(cookiePlain[:])
	copy(cookiePlain[:], cn.b[:])
	copy(cookiePlain[KeySize:], sn.b[:])
	cnonce := longNonceOf(prefixCookie, cookieNonce[:])

	plain := make([]byte, 0, KeySize+cookieSize)
	plain = append(plain, snPub.b[:]...)
	plain = append(plain, cookieNonce[:]...)
	plain = secretbox.Seal(plain, cookiePlain[:], &cnonce, &s.cookieKey)

	var welcomeNonce [longNonce]byte
	if err := draw(s.rand, welcomeNonce[:], "WELCOME nonce"); err != nil {
		s.Wipe()
		return nil, err
	}
	wn := longNonceOf(prefixWelcome, welcomeNonce[:])
	b := make([]byte, 0, WelcomeSize)
	b = append(b, nameWelcome...)
	b = append(b, welcomeNonce[:]...)
	b = secretbox.Seal(b, plain, &wn, &k) // Box[S' + cookie](S->C')
	s.state = serverWelcomed
	return b, nil
}

// Initiate reads the client's INITIATE command body. It opens the cookie
// (recovering C' and s'), the initiate box and the vouch, and checks that
// the vouch names this connection's C' and our key S. It returns the
// client's long-term key C, which the caller must authorize, and the
// client's metadata (RFC 37 properties, not parsed here). Then call Ready
// to accept, or send ErrorCommand and close to refuse.
func (s *Server) Initiate(initiate []byte) (client PublicKey, metadata []byte, err error) {
	if s.state != serverWelcomed {
		return PublicKey{}, nil, s.fail("%w: INITIATE out of order", ErrHandshake)
	}
	if !hasName(initiate, nameInitiate) {
		return PublicKey{}, nil, s.fail("%w: want INITIATE, got %s", ErrHandshake, commandName(initiate))
	}
	if len(initiate) < MinInitiateSize {
		return PublicKey{}, nil, s.fail("%w: INITIATE is %d octets, want at least %d", ErrHandshake, len(initiate), MinInitiateSize)
	}
	// The cookie key serves one INITIATE, good or bad.
	cnonce := longNonceOf(prefixCookie, initiate[9:25])
	var cookiePlain [2 * KeySize]byte
	defer clear(cookiePlain[:])
	_, ok := secretbox.Open(cookiePlain[:0], initiate[25:105], &cnonce, &s.cookieKey)
	clear(s.cookieKey[:])
	if !ok {
		return PublicKey{}, nil, s.fail("%w: INITIATE cookie does not open", ErrHandshake)
	}
	var cn PublicKey // C'
	copy(cn.b[:], cookiePlain[:KeySize])
	var sn SecretKey // s'
	defer sn.Wipe()
	copy(sn.b[:], cookiePlain[KeySize:])

	n := binary.BigEndian.Uint64(initiate[105:113])
	if n <= s.helloNonce {
		return PublicKey{}, nil, s.fail("%w: INITIATE short nonce %d does not follow HELLO's %d", ErrHandshake, n, s.helloNonce)
	}
	snKey, _ := sn.prepare()
	s.precom, err = peerBoxKey(snKey, cn)
	if err != nil {
		return PublicKey{}, nil, s.fail("%w: INITIATE: %w", ErrHandshake, err)
	}
	in := shortNonceOf(prefixInitiate, n)
	plain, ok := secretbox.Open(nil, initiate[113:], &in, &s.precom)
	if !ok {
		return PublicKey{}, nil, s.fail("%w: INITIATE box does not open", ErrHandshake)
	}
	defer clear(plain[:KeySize+vouchSize])
	copy(client.b[:], plain[:KeySize])

	vk, err := peerBoxKey(snKey, client)
	if err != nil {
		return PublicKey{}, nil, s.fail("%w: INITIATE client key: %w", ErrHandshake, err)
	}
	vn := longNonceOf(prefixVouch, plain[KeySize:KeySize+longNonce])
	var vouch [2 * KeySize]byte
	_, ok = secretbox.Open(vouch[:0], plain[KeySize+longNonce:KeySize+vouchSize], &vn, &vk)
	clear(vk[:])
	if !ok {
		return PublicKey{}, nil, s.fail("%w: INITIATE vouch does not open (not from client key %s)", ErrHandshake, client)
	}
	if subtle.ConstantTimeCompare(vouch[:KeySize], cn.b[:]) != 1 {
		return PublicKey{}, nil, s.fail("%w: INITIATE vouch names another transient key", ErrHandshake)
	}
	if subtle.ConstantTimeCompare(vouch[KeySize:], s.pub.b[:]) != 1 {
		return PublicKey{}, nil, s.fail("%w: INITIATE vouch names another server key", ErrHandshake)
	}
	s.peerNonce = n
	s.sec.Wipe() // the long-term secret is no longer needed
	s.key = nil
	s.state = serverInitiated
	md := make([]byte, len(plain)-KeySize-vouchSize)
	copy(md, plain[KeySize+vouchSize:])
	return client, md, nil
}

// Ready accepts the client authorized after Initiate: it returns the READY
// command body carrying our metadata (RFC 37 properties; libzmq sends
// Socket-Type and Identity) and the Session for the MESSAGE phase. The
// Server wipes its secrets and is done afterwards.
func (s *Server) Ready(metadata []byte) (ready []byte, sess *Session, err error) {
	if s.state != serverInitiated {
		return nil, nil, s.fail("%w: READY out of order", ErrHandshake)
	}
	const n = 1 // our first short nonce
	nonce := shortNonceOf(prefixReady, n)
	b := make([]byte, 0, MinReadySize+len(metadata))
	b = append(b, nameReady...)
	b = binary.BigEndian.AppendUint64(b, n)
	b = secretbox.Seal(b, metadata, &nonce, &s.precom) // Box[metadata](S'->C')
	sess = newSession(&s.precom, prefixMessageS, n+1, prefixMessageC, s.peerNonce)
	s.Wipe()
	s.state = serverDone
	return b, sess, nil
}
