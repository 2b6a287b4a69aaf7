// Package zmtp implements ZMTP 3.1 (RFC 37), the ZeroMQ wire protocol, as far
// as ZRE needs it: the greeting, the NULL security mechanism (and an interface
// through which CURVE plugs in), framing, ZMTP 3.1 heartbeats (PING/PONG), a
// ROUTER that accepts many peers and a DEALER that connects to one and
// reconnects with backoff.
//
// It owns the transport only: which bytes go on a TCP connection and when.
// Message contents (ZRE) live in package zre, CurveZMQ in package curve.
package zmtp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"
)

// Frame flags (RFC 37).
const (
	FlagMore    byte = 0x01 // MORE bit of a frame (also used inside CURVE boxes)
	FlagLong    byte = 0x02 // 8-octet size
	FlagCommand byte = 0x04 // command frame
)

// Sentinel errors; the errors returned wrap them with details, match with errors.Is.
var (
	ErrClosed            = errors.New("zmtp: socket closed")
	ErrPeerNotResponding = errors.New("zmtp: peer not responding (send queue full)")
	ErrTooLarge          = errors.New("zmtp: message too large")
	ErrProtocol          = errors.New("zmtp: protocol error")
	ErrUnknownPeer       = errors.New("zmtp: unknown peer")
	ErrDenied            = errors.New("zmtp: handshake denied")
	// ErrDisconnected: the connection closed before a Flush completed;
	// messages written before it may or may not have reached the peer.
	ErrDisconnected = errors.New("zmtp: connection lost")
)

// DeniedError is the ERROR command a peer sent in place of the next step
// of the handshake: the errors of a handshake the peer refused carry one
// (find it with errors.As) and wrap ErrDenied through it.
type DeniedError struct {
	// Reason is the peer's text as it sent it (at most 255 octets; CURVE
	// allows printable ASCII only, NULL anything): hostile input, to be
	// cleaned before it is shown. Empty for a malformed ERROR.
	Reason string
	// Instead is the command the ERROR came in place of: "WELCOME" or
	// "READY" for a CURVE client, "READY" for NULL. A CURVE ERROR in place
	// of READY comes after the server proved its long-term key (WELCOME);
	// like every ERROR it is not authenticated itself.
	Instead string
}

// Error returns ErrDenied's text: the callers' errors say the rest.
func (e *DeniedError) Error() string { return ErrDenied.Error() }

// Unwrap returns ErrDenied.
func (e *DeniedError) Unwrap() error { return ErrDenied }

// Property is one metadata property of READY or INITIATE.
type Property struct {
	Name  string
	Value []byte
}

// Metadata is the ordered list of properties, as on the wire.
type Metadata []Property

// Get returns the value of the first property named name (compared
// case-insensitively, as RFC 37 requires).
func (m Metadata) Get(name string) ([]byte, bool) {
	for _, p := range m {
		if len(p.Name) == len(name) && bytes.EqualFold([]byte(p.Name), []byte(name)) {
			return p.Value, true
		}
	}
	return nil, false
}

// AppendMetadata appends the RFC 37 encoding of m to dst: for each property a
// 1-octet name length, the name, a 4-octet big-endian value length, the value.
// Names longer than 255 octets are truncated to 255 (callers should not
// produce them).
func AppendMetadata(dst []byte, m Metadata) []byte {
	for _, p := range m {
		name := p.Name
		if len(name) > 255 {
			name = name[:255]
		}
		dst = append(dst, byte(len(name)))
		dst = append(dst, name...)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(p.Value)))
		dst = append(dst, p.Value...)
	}
	return dst
}

// ParseMetadata parses an RFC 37 property list. It checks every length
// against the input and never panics; values are copied.
func ParseMetadata(b []byte) (Metadata, error) {
	var m Metadata
	for off := 0; off < len(b); {
		n := int(b[off])
		off++
		if n == 0 {
			return nil, fmt.Errorf("zmtp: metadata at offset %d: empty property name: %w", off-1, ErrProtocol)
		}
		if n > len(b)-off {
			return nil, fmt.Errorf("zmtp: metadata at offset %d: name of %d octets past the end: %w", off-1, n, ErrProtocol)
		}
		name := b[off : off+n]
		for _, c := range name {
			if !isNameChar(c) {
				return nil, fmt.Errorf("zmtp: metadata: bad character %#x in property name: %w", c, ErrProtocol)
			}
		}
		off += n
		if len(b)-off < 4 {
			return nil, fmt.Errorf("zmtp: metadata property %q: truncated value length: %w", name, ErrProtocol)
		}
		vlen := binary.BigEndian.Uint32(b[off:])
		off += 4
		if uint64(vlen) > uint64(len(b)-off) {
			return nil, fmt.Errorf("zmtp: metadata property %q: value of %d octets past the end: %w", name, vlen, ErrProtocol)
		}
		v := make([]byte, vlen)
		copy(v, b[off:])
		off += int(vlen)
		m = append(m, Property{Name: string(name), Value: v})
	}
	return m, nil
}

func isNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '+'
}

// Peer describes one connection after its handshake. Immutable; shared by all its messages.
type Peer struct {
	RemoteAddr net.Addr
	Identity   []byte // routing id (the peer's Identity property, or one the Router made up)
	SocketType string
	Metadata   Metadata // everything the peer sent in READY/INITIATE
	Mechanism  string   // "NULL", "CURVE"
	PublicKey  []byte   // the long-term key the mechanism authenticated (nil for NULL)
}

// Mechanism is a security mechanism; one value configures a socket,
// NewSession is called per connection.
type Mechanism interface {
	Name() string   // as in the greeting: "NULL", "CURVE"
	AsServer() bool // the as-server bit this side puts in its greeting
	NewSession() (Session, error)
}

// ServerRole is implemented by a Mechanism whose client or server role is
// set by its configuration rather than by which side accepted the TCP
// connection (CURVE: CurveServer or CurveClient). The core gives
// Options.Authorize to the sessions of such a mechanism exactly when
// IsServer reports true, on a Dealer as on a Router. For a mechanism
// without it (NULL) the accepting side, the Router, is the server.
type ServerRole interface {
	IsServer() bool
}

// CommandConn reads and writes whole command frames during a handshake.
type CommandConn interface {
	WriteCommand(name string, body []byte) error
	ReadCommand() (name string, body []byte, err error)
}

// AuthRequest is what an Authorizer decides on.
type AuthRequest struct {
	Mechanism  string
	RemoteAddr net.Addr
	PublicKey  []byte
	Metadata   Metadata
}

// Authorizer decides, on the server side, before READY, whether a client may
// connect (the role of ZAP, RFC 27). A non-nil error denies: the mechanism
// sends ERROR with err's text (<=255 octets).
type Authorizer func(ctx context.Context, req AuthRequest) error

// HandshakeResult is what a mechanism learned about the peer.
type HandshakeResult struct {
	Metadata  Metadata
	PublicKey []byte
}

// Session is one connection's state of a mechanism.
//
// A Session may also implement io.Closer: the core then calls Close
// exactly once for every session NewSession returned, when it is done
// with it — after the connection's reader and writer both stopped (so
// after the last Seal and Open of its FrameCodec), or after a failed
// handshake. The CURVE session wipes its keys there. An error from Close
// is logged.
type Session interface {
	// Handshake runs the mechanism's command exchange after both greetings. local is this side's
	// metadata (Socket-Type, Identity). auth is nil on the client side or when no authorizer is set.
	Handshake(ctx context.Context, c CommandConn, server bool, local Metadata, auth Authorizer) (HandshakeResult, error)
	// Codec returns the frame transform used after the handshake, or nil for none (NULL).
	Codec() FrameCodec
}

// FrameCodec transforms every frame (data and command frames such as PING/PONG) after the
// handshake. CURVE seals each logical frame (flags MORE/COMMAND inside the box) into a MESSAGE
// carried in a plain data frame whose wire flags carry neither MORE nor COMMAND.
type FrameCodec interface {
	// Seal appends the wire body carrying one logical frame to dst and returns the wire flags
	// (without FlagLong, which the framer adds).
	Seal(dst []byte, flags byte, body []byte) (wireFlags byte, out []byte, err error)
	// Open appends the logical body to dst and returns its flags; any error closes the connection.
	//
	// The core always passes dst == nil and hands wire over: wire is a buffer (or a part of a
	// slab) allocated for this one frame, which the core neither reads nor reuses afterwards
	// (a pooled buffer only once the receiver released the message it went to; see
	// Message.Release), so Open may write the logical body over wire and return a subslice of
	// it (as the CURVE codec does, allocating nothing), or return newly allocated storage. The body returned is
	// delivered to Recv as is and kept by the caller: it must not alias storage that the codec
	// reuses for later frames.
	Open(dst []byte, wireFlags byte, wire []byte) (flags byte, out []byte, err error)
}

// Null is the NULL mechanism (RFC 37): READY with metadata both ways, ERROR understood.
var Null Mechanism = nullMechanism{}

// Options configure a Router or a Dealer. The zero value is usable.
type Options struct {
	Mechanism  Mechanism  // nil = Null
	Authorize  Authorizer // server side (see ServerRole); called for NULL too
	Identity   []byte     // Dealer only: sent as the Identity property (0..255 octets)
	MaxMsgSize int64      // per message, all frames; 0 = default 256 MiB; <0 = no limit
	// MaxRecvSize, when not 0, replaces MaxMsgSize for the messages this
	// socket receives (sends keep MaxMsgSize): a ZRE DEALER, to which
	// nothing should come back, receives little and sends much. <0 = no
	// limit.
	MaxRecvSize int64
	// PreAdmit, when > 0, makes a Router's connections start unadmitted:
	// until Router.Admit names the connection (or Admitted said yes), it
	// may send at most PreAdmit octets in all (frames as on the wire,
	// headers and commands included). A frame that would go past it is
	// never read, let alone allocated: when the connection has delivered
	// no message yet, it is closed at once; otherwise its reader waits up
	// to AdmitWait for the receiver's decision on what it delivered (Admit,
	// or Disconnect), reading nothing meanwhile, and closes it if none
	// came. Router.Unadmitted counts those closed. So a stranger that
	// never gets admitted costs at most PreAdmit octets read per
	// connection, whatever it claims or sends. 0 = off (MaxMsgSize from
	// the first frame).
	PreAdmit int64
	// AdmitWait: see PreAdmit; 0 = HandshakeTimeout.
	AdmitWait time.Duration
	// Admitted, if set (with PreAdmit), is asked once per Router
	// connection after its handshake, once the Router knows its identity,
	// on the connection's goroutine before anything is read: true admits
	// it at once (a peer admitted before that reconnects). It must return
	// quickly and must not call the Router's Close. A connection that
	// takes over the identity of an admitted one with the same key is
	// admitted without asking.
	Admitted             func(*Peer) bool
	HandshakeTimeout     time.Duration // 0 = 10 s; greeting+handshake must finish within it
	HeartbeatInterval    time.Duration // ZMTP 3.1 PING every interval (idle or not); 0 = off
	HeartbeatTimeout     time.Duration // close if nothing arrives this long after a PING; 0 = 3*interval
	SendHWM              int           // Dealer: queued outgoing messages; Router: per connection; 0 = 1000
	RecvHWM              int           // queued incoming messages before reading stops (backpressure); 0 = 1000
	ReconnectInterval    time.Duration // Dealer: first retry delay, 0 = 100 ms
	ReconnectIntervalMax time.Duration // Dealer: backoff cap, 0 = 5 s
	Logger               *slog.Logger  // nil = discard
	// OnDisconnect, if set, is called once for every connection that completed its handshake
	// (and, on a Router, got its identity) when it is over: closed by either side, by a
	// protocol or heartbeat error, by Router.Disconnect, by an identity takeover, or by
	// Close. It runs on the connection's goroutine after its reader and writer stopped, and
	// Close waits for it: it must return quickly and must not call Close. The *Peer is the
	// one its messages carried.
	OnDisconnect func(*Peer)
	// OnHandshake, if set, is called by a Dealer after each handshake it
	// tried on a TCP connection it made: with nil when it completed, else
	// with its error (one wrapping a *DeniedError when the peer refused us
	// with ERROR). A failed TCP connect is not a handshake: it is not
	// reported. It runs on the Dealer's goroutine, which waits for it: it
	// must return quickly and must not call the Dealer's Close.
	OnHandshake func(err error)
	// SendBound bounds each send queue (a Dealer's, each Router
	// connection's) by the time its octets take to drain, beside
	// SendHWM; the zero value is off. See SendBound.
	SendBound SendBound
}

// Defaults.
const (
	DefaultMaxMsgSize           = 256 << 20
	DefaultHandshakeTimeout     = 10 * time.Second
	DefaultHWM                  = 1000
	DefaultReconnectInterval    = 100 * time.Millisecond
	DefaultReconnectIntervalMax = 5 * time.Second
)

// withDefaults returns a copy of o with zero fields filled in.
func (o Options) withDefaults() Options {
	if o.Mechanism == nil {
		o.Mechanism = Null
	}
	if o.MaxMsgSize == 0 {
		o.MaxMsgSize = DefaultMaxMsgSize
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if o.MaxRecvSize == 0 {
		o.MaxRecvSize = o.MaxMsgSize
	}
	if o.AdmitWait <= 0 {
		o.AdmitWait = o.HandshakeTimeout
	}
	if o.HeartbeatInterval > 0 && o.HeartbeatTimeout <= 0 {
		o.HeartbeatTimeout = 3 * o.HeartbeatInterval
	}
	if o.SendHWM <= 0 {
		o.SendHWM = DefaultHWM
	}
	if o.RecvHWM <= 0 {
		o.RecvHWM = DefaultHWM
	}
	if o.ReconnectInterval <= 0 {
		o.ReconnectInterval = DefaultReconnectInterval
	}
	if o.ReconnectIntervalMax <= 0 {
		o.ReconnectIntervalMax = DefaultReconnectIntervalMax
	}
	if o.ReconnectIntervalMax < o.ReconnectInterval {
		o.ReconnectIntervalMax = o.ReconnectInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Identity = bytes.Clone(o.Identity)
	return o
}

// Message is one whole multipart message and the connection it came from.
// The frames belong to the receiver; Release may hand the large ones back
// to the socket once they are no longer needed.
type Message struct {
	Frames [][]byte
	Peer   *Peer

	pool *bufPool // the receiving socket's pool (see Release)
	bufs *msgBufs // pooled buffers behind large frames; nil when none
}

// msgBufs are the pooled buffers of one received message (the first one
// inline: one allocation for the common message with one large frame).
// Every copy of the Message points to the same msgBufs, so that they go
// back to the pool once, whichever copy is released and however often.
type msgBufs struct {
	released atomic.Bool
	first    *[]byte
	rest     []*[]byte
}

// add records one more pooled buffer of the message.
func (mb *msgBufs) add(b *[]byte) {
	if mb.first == nil {
		mb.first = b
	} else {
		mb.rest = append(mb.rest, b)
	}
}

// newMessage makes the Message the receiver gets: frames, and the pooled
// buffers behind some of them (nil when none), from pool.
func newMessage(frames [][]byte, peer *Peer, bufs *msgBufs, pool *bufPool) Message {
	return Message{Frames: frames, Peer: peer, pool: pool, bufs: bufs}
}
