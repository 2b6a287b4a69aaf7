package zmtp

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/zyre-go/zyre/curve"
)

// The CURVE mechanism (RFC 25) on top of package curve (RFC 26).
//
// Handshake, client to server, each in a ZMTP command frame:
//
//	C: HELLO     (200 octets: C', short nonce 1, Box[64 zeros](C'->S))
//	S: WELCOME   (168 octets: Box[S' + cookie](S->C'))
//	C: INITIATE  (257 + metadata: cookie, Box[C + vouch + metadata](C'->S'))
//	   the server checks the vouch, then asks the Authorizer about C
//	S: READY     (30 + metadata: Box[metadata](S'->C'))  or  ERROR (reason)
//
// After the handshake every logical frame, PING and PONG included, is sealed
// into a MESSAGE carried in a plain data frame (outer flags 0x00); the
// frame's MORE and COMMAND bits travel inside the box as CURVE's 0x01 and
// 0x02 (the zmtp layer's FlagMore 0x01 and FlagCommand 0x04).

// CurveServerConfig configures the server side of the CURVE mechanism: the
// side that owns the long-term key the clients know in advance.
type CurveServerConfig struct {
	Public curve.PublicKey // our long-term public key S; derived from Secret when zero
	Secret curve.SecretKey // our long-term secret key s
	// Rand is the source of randomness for the transient keys, cookies and
	// nonces; nil means crypto/rand. It is shared by every connection of
	// the socket, so it must be safe for concurrent use. Set it only in
	// tests that need reproducible bytes.
	Rand io.Reader
}

// CurveClientConfig configures the client side of the CURVE mechanism.
type CurveClientConfig struct {
	Public    curve.PublicKey // our long-term public key C; derived from Secret when zero
	Secret    curve.SecretKey // our long-term secret key c
	ServerKey curve.PublicKey // the server's long-term public key S
	// Rand is as in CurveServerConfig.
	Rand io.Reader
}

// CurveServer returns the server side of the CURVE mechanism. Use it on the
// socket that the other side knows by its public key (zyre: the ROUTER).
// Each connection gets its own handshake state and session keys; the
// Mechanism holds only the copied configuration. The Options.Authorize of a
// Router decides on the client's long-term key (AuthRequest.PublicKey) and
// its metadata before READY is sent; a refusal sends ERROR with the
// authorizer's error text (a ZAP status such as "400" makes libzmq clients
// report ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) and fails the connection with an
// error wrapping ErrDenied. The mechanism implements ServerRole, so the
// zmtp core passes Options.Authorize to it on a Dealer too (a Dealer with
// CurveServer, connecting out to a Router with CurveClient).
//
// An invalid configuration (Public not matching Secret) is reported by
// every NewSession, so each connection attempt fails with an error
// wrapping curve.ErrInvalidKey.
func CurveServer(cfg CurveServerConfig) Mechanism {
	m := &curveMechanism{server: true, rand: cfg.Rand}
	m.key, m.err = curve.NewKeyPair(cfg.Public, cfg.Secret)
	return m
}

// CurveClient returns the client side of the CURVE mechanism, which
// authenticates the server by cfg.ServerKey and proves our own key to it.
// HandshakeResult.PublicKey (and Peer.PublicKey) is the server's key. An
// ERROR from the server fails the connection with an error wrapping
// ErrDenied (and curve.ErrRejected) that quotes its reason.
//
// An invalid configuration (no server key, a low-order server key, Public
// not matching Secret) is reported by every NewSession, wrapping
// curve.ErrInvalidKey.
func CurveClient(cfg CurveClientConfig) Mechanism {
	m := &curveMechanism{rand: cfg.Rand, serverKey: cfg.ServerKey}
	// One NewClient checks the whole configuration (the server key against
	// low-order points included); the prepared key pair then saves every
	// connection's handshake the derivations and that check.
	c, err := curve.NewClient(curve.ClientConfig{Public: cfg.Public, Secret: cfg.Secret, ServerKey: cfg.ServerKey, Rand: cfg.Rand})
	if err != nil {
		m.err = err
		return m
	}
	c.Wipe()
	m.key, m.err = curve.NewKeyPair(cfg.Public, cfg.Secret)
	return m
}

// curveMechanism is immutable after construction and shared by all
// connections of a socket.
type curveMechanism struct {
	server    bool
	key       *curve.KeyPair  // our long-term key pair, prepared once
	serverKey curve.PublicKey // client only
	rand      io.Reader
	err       error // configuration error, reported by NewSession
}

var (
	_ Mechanism  = (*curveMechanism)(nil)
	_ ServerRole = (*curveMechanism)(nil)
	_ Session    = (*curveSession)(nil)
	_ io.Closer  = (*curveSession)(nil)
	_ FrameCodec = (*curveCodec)(nil)
	_ openInto   = (*curveCodec)(nil)
)

func (m *curveMechanism) Name() string { return "CURVE" }

// IsServer reports whether this is CurveServer: the CURVE role comes from
// the configuration, not from which side accepted the connection.
func (m *curveMechanism) IsServer() bool { return m.server }

// AsServer is false on both sides: libzmq 4.3.4 writes 0 in the greeting's
// as-server octet even on a CURVE server (it zero-fills the whole filler;
// see testdata/zre/curvezmq_server_to_client.hex) and never reads it. We
// send the same octets so our greetings are byte-identical to libzmq's. The
// role a session plays comes from the mechanism (CurveServer or
// CurveClient), not from this bit.
func (m *curveMechanism) AsServer() bool { return false }

func (m *curveMechanism) NewSession() (Session, error) {
	if m.err != nil {
		return nil, fmt.Errorf("zmtp: curve: configuration: %w", m.err)
	}
	return &curveSession{m: m}, nil
}

// curveSession is one connection's CURVE state.
type curveSession struct {
	m     *curveMechanism
	codec *curveCodec // set by a successful handshake
	// Made by prepare, while the greetings cross (one of them).
	cl    *curve.Client
	hello []byte
	sv    *curve.Server
}

// prepare starts the handshake before the peer's greeting arrives: a
// client draws C' and makes its HELLO, a server draws S' (see
// curve.Server.Prepare). A failure is the handshake's.
func (s *curveSession) prepare() error {
	m := s.m
	if m.server {
		sv, err := curve.NewServer(curve.ServerConfig{Key: m.key, Rand: m.rand})
		if err != nil {
			return fmt.Errorf("zmtp: curve: server: %w", err)
		}
		if err := sv.Prepare(); err != nil {
			return fmt.Errorf("zmtp: curve: server: %w", err)
		}
		s.sv = sv
		return nil
	}
	cl, err := curve.NewClient(curve.ClientConfig{Key: m.key, ServerKey: m.serverKey, Rand: m.rand})
	if err != nil {
		return fmt.Errorf("zmtp: curve: client: %w", err)
	}
	hello, err := cl.Hello()
	if err != nil {
		return fmt.Errorf("zmtp: curve: HELLO: %w", err)
	}
	s.cl, s.hello = cl, hello
	return nil
}

func (s *curveSession) Codec() FrameCodec {
	if s.codec == nil {
		return nil
	}
	return s.codec
}

// Close wipes the session keys and scratch buffers (curve.Session.Wipe).
// The zmtp core calls it once, after the connection's reader and writer
// stopped; Seal and Open fail afterwards. When the handshake did not
// complete, it wipes what prepare made and the handshake did not take.
func (s *curveSession) Close() error {
	if s.codec != nil {
		s.codec.s.Wipe()
	}
	if s.cl != nil {
		s.cl.Wipe()
	}
	if s.sv != nil {
		s.sv.Wipe()
	}
	return nil
}

// Handshake runs the CURVE command exchange. The CURVE role (client or
// server) comes from the Mechanism, not from server, which only says
// whether this socket accepted the connection; auth is used when the
// mechanism is the CURVE server.
func (s *curveSession) Handshake(ctx context.Context, c CommandConn, server bool, local Metadata, auth Authorizer) (HandshakeResult, error) {
	if s.m.server {
		return s.serverHandshake(ctx, c, local, auth)
	}
	return s.clientHandshake(ctx, c, local)
}

func (s *curveSession) clientHandshake(ctx context.Context, c CommandConn, local Metadata) (HandshakeResult, error) {
	m := s.m
	if s.cl == nil {
		if err := s.prepare(); err != nil {
			return HandshakeResult{}, err
		}
	}
	cl, hello := s.cl, s.hello
	s.cl, s.hello = nil, nil
	defer cl.Wipe() // no-op on success: Ready already wiped it
	if err := writeCurveCommand(c, hello); err != nil {
		return HandshakeResult{}, fmt.Errorf("zmtp: curve: sending HELLO: %w", err)
	}
	welcome, err := readCurveCommand(ctx, c, "WELCOME")
	if err != nil {
		if errors.Is(err, ErrDenied) {
			return HandshakeResult{}, err
		}
		// libzmq closes without a word when HELLO does not open.
		return HandshakeResult{}, fmt.Errorf("%w (a server closing here usually means a wrong server key: we used %s)", err, m.serverKey)
	}
	initiate, err := cl.Welcome(welcome, AppendMetadata(nil, local))
	if err != nil {
		return HandshakeResult{}, fmt.Errorf("zmtp: curve: WELCOME from server %s: %w (%w)", m.serverKey, err, ErrProtocol)
	}
	if err := writeCurveCommand(c, initiate); err != nil {
		return HandshakeResult{}, fmt.Errorf("zmtp: curve: sending INITIATE: %w", err)
	}
	ready, err := readCurveCommand(ctx, c, "READY")
	if err != nil {
		return HandshakeResult{}, err
	}
	mdb, sess, err := cl.Ready(ready)
	if err != nil {
		return HandshakeResult{}, fmt.Errorf("zmtp: curve: READY from server %s: %w (%w)", m.serverKey, err, ErrProtocol)
	}
	md, err := ParseMetadata(mdb)
	if err != nil {
		sess.Wipe()
		return HandshakeResult{}, fmt.Errorf("zmtp: curve: READY from server %s: %w", m.serverKey, err)
	}
	s.codec = &curveCodec{s: sess}
	return HandshakeResult{Metadata: md, PublicKey: m.serverKey.Bytes()}, nil
}

func (s *curveSession) serverHandshake(ctx context.Context, c CommandConn, local Metadata, auth Authorizer) (HandshakeResult, error) {
	if s.sv == nil {
		if err := s.prepare(); err != nil {
			return HandshakeResult{}, err
		}
	}
	sv := s.sv
	s.sv = nil
	defer sv.Wipe() // no-op on success: Ready already wiped it
	hello, err := readCurveCommand(ctx, c, "HELLO")
	if err != nil {
		return HandshakeResult{}, err
	}
	// A HELLO that does not open (a client with another server key) gets
	// no answer, as in libzmq: the connection is closed.
	welcome, err := sv.Hello(hello)
	if err != nil {
		return HandshakeResult{}, fmt.Errorf("zmtp: curve: HELLO: %w (%w)", err, ErrProtocol)
	}
	if err := writeCurveCommand(c, welcome); err != nil {
		return HandshakeResult{}, fmt.Errorf("zmtp: curve: sending WELCOME: %w", err)
	}
	initiate, err := readCurveCommand(ctx, c, "INITIATE")
	if err != nil {
		return HandshakeResult{}, err
	}
	client, mdb, err := sv.Initiate(initiate)
	if err != nil {
		return HandshakeResult{}, fmt.Errorf("zmtp: curve: INITIATE: %w (%w)", err, ErrProtocol)
	}
	md, err := ParseMetadata(mdb)
	if err != nil {
		return HandshakeResult{}, fmt.Errorf("zmtp: curve: INITIATE from client %s: %w", client, err)
	}
	if auth != nil {
		if aerr := auth(ctx, AuthRequest{Mechanism: "CURVE", PublicKey: client.Bytes(), Metadata: md}); aerr != nil {
			if werr := writeCurveCommand(c, curve.ErrorCommand(aerr.Error())); werr != nil {
				return HandshakeResult{}, fmt.Errorf("zmtp: curve: authorizer refused client %s: %v (sending ERROR: %v): %w", client, aerr, werr, ErrDenied)
			}
			return HandshakeResult{}, fmt.Errorf("zmtp: curve: authorizer refused client %s: %v: %w", client, aerr, ErrDenied)
		}
	}
	if err := ctx.Err(); err != nil {
		return HandshakeResult{}, fmt.Errorf("zmtp: curve: before READY: %w", err)
	}
	ready, sess, err := sv.Ready(AppendMetadata(nil, local))
	if err != nil {
		return HandshakeResult{}, fmt.Errorf("zmtp: curve: READY: %w", err)
	}
	if err := writeCurveCommand(c, ready); err != nil {
		sess.Wipe()
		return HandshakeResult{}, fmt.Errorf("zmtp: curve: sending READY: %w", err)
	}
	s.codec = &curveCodec{s: sess}
	return HandshakeResult{Metadata: md, PublicKey: client.Bytes()}, nil
}

// writeCurveCommand sends a whole command body made by package curve.
func writeCurveCommand(c CommandConn, body []byte) error {
	name, data, err := curve.SplitCommand(body)
	if err != nil { // cannot happen: package curve makes these bodies
		return err
	}
	return c.WriteCommand(string(name), data)
}

// readCurveCommand reads the next command and returns its whole body. An
// ERROR gives an error wrapping ErrDenied and curve.ErrRejected; any other
// command than want one wrapping ErrProtocol.
func readCurveCommand(ctx context.Context, c CommandConn, want string) ([]byte, error) {
	name, data, err := c.ReadCommand()
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("zmtp: curve: waiting for %s: %w (%w)", want, err, cerr)
		}
		return nil, fmt.Errorf("zmtp: curve: waiting for %s: %w", want, err)
	}
	body := curve.AppendCommand(make([]byte, 0, 1+len(name)+len(data)), name, data)
	switch name {
	case want:
		return body, nil
	case "ERROR":
		reason, perr := curve.ParseError(body)
		if perr != nil {
			return nil, fmt.Errorf("zmtp: curve: peer sent a malformed ERROR instead of %s: %w (%w)", want, perr, &DeniedError{Instead: want})
		}
		return nil, fmt.Errorf("zmtp: curve: peer sent ERROR %q instead of %s: %w (%w)", reason, want, &DeniedError{Reason: reason, Instead: want}, curve.ErrRejected)
	}
	return nil, fmt.Errorf("zmtp: curve: got command %q, want %s: %w", truncName(name), want, ErrProtocol)
}

func truncName(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}

// curveCodec seals and opens MESSAGEs with one connection's curve.Session.
// The connection's writer is the only caller of Seal and its reader the
// only caller of Open, which curve.Session allows.
type curveCodec struct {
	s        *curve.Session
	openDead bool // an Open failed: the receive side is over (Open's goroutine only)
}

// Seal maps the zmtp flags to CURVE's inner flags and seals body into a
// MESSAGE carried in a data frame with outer flags 0x00, as libzmq does.
func (k *curveCodec) Seal(dst []byte, flags byte, body []byte) (byte, []byte, error) {
	if flags&^(FlagMore|FlagCommand) != 0 {
		return 0, dst, fmt.Errorf("zmtp: curve: seal: flags %#02x: only MORE and COMMAND may be sealed: %w", flags, ErrProtocol)
	}
	var in byte
	if flags&FlagMore != 0 {
		in |= curve.FlagMore
	}
	if flags&FlagCommand != 0 {
		in |= curve.FlagCommand
	}
	out, err := k.s.Seal(dst, in, body)
	if err != nil {
		return 0, dst, fmt.Errorf("zmtp: %w", err)
	}
	return 0, out, nil
}

// Open opens the MESSAGE in wire and returns the logical frame with the
// zmtp flags. When dst is nil the payload is written over wire's own
// storage (the connection's reader owns wire and passes nil), so opening a
// frame allocates nothing. The outer frame must not carry MORE (libzmq sets
// neither MORE nor COMMAND outside; a COMMAND bit is tolerated, as RFC 26
// calls MESSAGE a command). Any error wraps ErrProtocol (and
// curve.ErrBadMessage when the box is at fault) and ends the receive side:
// every later Open fails.
func (k *curveCodec) Open(dst []byte, wireFlags byte, wire []byte) (byte, []byte, error) {
	if k.openDead {
		return 0, dst, fmt.Errorf("zmtp: curve: receive side ended by an earlier bad MESSAGE: %w (%w)", curve.ErrBadMessage, ErrProtocol)
	}
	if wireFlags&FlagMore != 0 {
		k.openDead = true
		return 0, dst, fmt.Errorf("zmtp: curve: MESSAGE in a frame with the MORE bit outside the box: %w", ErrProtocol)
	}
	if dst == nil {
		dst = wire[:0]
	}
	// With dst wire[:0], curve.Session.Open opens through its scratch
	// buffer and copies; with the core's own dst (openInto), straight into
	// dst.
	in, out, err := k.s.Open(dst, wire)
	if err != nil {
		k.openDead = true
		return 0, dst, fmt.Errorf("zmtp: %w (%w)", err, ErrProtocol)
	}
	var flags byte
	if in&curve.FlagMore != 0 {
		flags |= FlagMore
	}
	if in&curve.FlagCommand != 0 {
		flags |= FlagCommand
	}
	return flags, out, nil
}

// openInto is Open with the core's dst (see openInto in conn.go): the box
// is opened straight into dst's storage, which has room for len(wire)
// octets and does not overlap wire, so a frame costs one pass of the
// cipher and no copy.
func (k *curveCodec) openInto(dst []byte, wireFlags byte, wire []byte) (byte, []byte, error) {
	return k.Open(dst[:0:cap(dst)], wireFlags, wire)
}
