// Package zgossip speaks ZGOSSIP, the gossip discovery protocol of czmq's
// zgossip actor, which the C reference of ZRE (zyre) uses to discover
// peers without UDP broadcast: each node publishes a tuple (its UUID and
// its inbox endpoint) to a gossip server it connects to, and every server
// forwards every new tuple to its clients and to the servers it connects
// to, so that the tuples reach every node of a loosely connected network.
//
// A Service is both a server (a ROUTER bound with Bind) and a client of
// other servers (a DEALER per Connect), as czmq's zgossip actor is. It
// runs over package zmtp, in plain mode (NULL) or with CURVE: a server
// with a keypair takes CURVE clients only; a client that connects with the
// server's public key authenticates that server.
//
// Messages (zgossip_msg.xml in czmq), one ZMTP frame each:
//
//	AA A0 | id u8 | version u8 (1) | fields
//	1 HELLO     client to server, first
//	2 PUBLISH   key string, value longstr, ttl u32 (milliseconds; czmq sends 0 and ignores it)
//	3 PING      client to server
//	4 PONG      server to client
//	5 INVALID   server to client: a message out of order; the client says HELLO again
//
// string = u8 length + octets, longstr = u32 length + octets, integers
// big-endian.
package zgossip

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Signature is the 2-octet signature that starts every ZGOSSIP message.
const Signature uint16 = 0xAAA0

// Version is the only protocol version (the octet after the id).
const Version = 1

// MsgID is a message's type.
type MsgID uint8

// The five messages.
const (
	MsgHello   MsgID = 1
	MsgPublish MsgID = 2
	MsgPing    MsgID = 3
	MsgPong    MsgID = 4
	MsgInvalid MsgID = 5
)

var msgNames = [...]string{MsgHello: "HELLO", MsgPublish: "PUBLISH", MsgPing: "PING", MsgPong: "PONG", MsgInvalid: "INVALID"}

// String returns the protocol's name of the message, or "MsgID(n)".
func (id MsgID) String() string {
	if id >= MsgHello && id <= MsgInvalid {
		return msgNames[id]
	}
	return fmt.Sprintf("MsgID(%d)", uint8(id))
}

// MaxValue bounds a tuple's value. czmq sets none; ZRE's values (an
// endpoint, and in secure mode "|" and a Z85 key) are under 100 octets.
// With DefaultMaxTuples it bounds what a Service holds at worst to about
// 130 MB (its table, each tuple also kept encoded: 87 MB; the deliveries
// queued, when a client keeps changing values: 43 MB) and 4.4 MB more for
// each connection that said HELLO and does not read (zmtp's SendHWM of
// 1000 messages; the messages are shared between connections).
const MaxValue = 4 << 10

// ErrMalformed is wrapped by every Decode error.
var ErrMalformed = errors.New("zgossip: malformed message")

// Msg is one ZGOSSIP message. Key, Value and TTL are PUBLISH's fields.
type Msg struct {
	ID    MsgID
	Key   string // at most 255 octets
	Value string // at most MaxValue octets
	TTL   uint32 // milliseconds
}

// Append appends m's encoding to dst.
func (m *Msg) Append(dst []byte) ([]byte, error) {
	if m.ID < MsgHello || m.ID > MsgInvalid {
		return dst, fmt.Errorf("zgossip: encode: unknown message %d", m.ID)
	}
	dst = binary.BigEndian.AppendUint16(dst, Signature)
	dst = append(dst, byte(m.ID), Version)
	if m.ID != MsgPublish {
		return dst, nil
	}
	if len(m.Key) > 255 {
		return dst, fmt.Errorf("zgossip: encode: key of %d octets, at most 255", len(m.Key))
	}
	if len(m.Value) > MaxValue {
		return dst, fmt.Errorf("zgossip: encode: value of %d octets, at most %d", len(m.Value), MaxValue)
	}
	dst = append(dst, byte(len(m.Key)))
	dst = append(dst, m.Key...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(m.Value)))
	dst = append(dst, m.Value...)
	return binary.BigEndian.AppendUint32(dst, m.TTL), nil
}

// Decode parses one message. It copies what it keeps; b may be reused.
// Trailing octets, an unknown id, another version or a value longer than
// MaxValue are errors wrapping ErrMalformed.
func Decode(b []byte) (Msg, error) {
	var m Msg
	if len(b) < 4 {
		return m, fmt.Errorf("%w: %d octets, want at least 4", ErrMalformed, len(b))
	}
	if sig := binary.BigEndian.Uint16(b); sig != Signature {
		return m, fmt.Errorf("%w: signature %#04x, want %#04x", ErrMalformed, sig, Signature)
	}
	m.ID = MsgID(b[2])
	if m.ID < MsgHello || m.ID > MsgInvalid {
		return m, fmt.Errorf("%w: unknown message id %d", ErrMalformed, b[2])
	}
	if b[3] != Version {
		return m, fmt.Errorf("%w: %s: version %d, want %d", ErrMalformed, m.ID, b[3], Version)
	}
	rest := b[4:]
	if m.ID == MsgPublish {
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return m, fmt.Errorf("%w: PUBLISH: key cut short", ErrMalformed)
		}
		m.Key = string(rest[1 : 1+rest[0]])
		rest = rest[1+int(rest[0]):]
		if len(rest) < 4 {
			return m, fmt.Errorf("%w: PUBLISH: value length cut short", ErrMalformed)
		}
		n := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if n > MaxValue {
			return m, fmt.Errorf("%w: PUBLISH: value of %d octets, at most %d", ErrMalformed, n, MaxValue)
		}
		if uint32(len(rest)) < n {
			return m, fmt.Errorf("%w: PUBLISH: value of %d octets, %d there", ErrMalformed, n, len(rest))
		}
		m.Value = string(rest[:n])
		rest = rest[n:]
		if len(rest) < 4 {
			return m, fmt.Errorf("%w: PUBLISH: ttl cut short", ErrMalformed)
		}
		m.TTL = binary.BigEndian.Uint32(rest)
		rest = rest[4:]
	}
	if len(rest) != 0 {
		return m, fmt.Errorf("%w: %s: %d trailing octets", ErrMalformed, m.ID, len(rest))
	}
	return m, nil
}
