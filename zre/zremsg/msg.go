package zremsg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
)

// ErrMalformed is wrapped by every error Decode returns for bytes that are
// not one well-formed ZRE message, and by Encode errors for a Msg that cannot
// be put on the wire.
var ErrMalformed = errors.New("zremsg: malformed message")

// Signature is the 2-octet signature that starts every ZRE message frame.
const Signature uint16 = 0xAAA1

// Version is the ZRE message version we send (RFC 36 and the C reference
// send 2). Decode also accepts VersionV3 (RFC 43), whose fields are the same.
const (
	Version   uint8 = 2
	VersionV3 uint8 = 3
)

// HeaderSize is the size of the fixed part of every message's first
// frame: signature, id, version and sequence.
const HeaderSize = 6

// MsgID is the type of a ZRE message, the third octet of its first frame.
type MsgID uint8

// The ten message types of the C reference (zre_msg.c). ELECT, LEADER and
// GOODBYE are zyre-only: they are not in RFC 36 or 43.
const (
	MsgHello   MsgID = 1
	MsgWhisper MsgID = 2
	MsgShout   MsgID = 3
	MsgJoin    MsgID = 4
	MsgLeave   MsgID = 5
	MsgPing    MsgID = 6
	MsgPingOK  MsgID = 7
	MsgElect   MsgID = 8
	MsgLeader  MsgID = 9
	MsgGoodbye MsgID = 10
)

var msgNames = [...]string{
	MsgHello: "HELLO", MsgWhisper: "WHISPER", MsgShout: "SHOUT", MsgJoin: "JOIN",
	MsgLeave: "LEAVE", MsgPing: "PING", MsgPingOK: "PING-OK", MsgElect: "ELECT",
	MsgLeader: "LEADER", MsgGoodbye: "GOODBYE",
}

// Valid reports whether id is one of the ten known message types.
func (id MsgID) Valid() bool { return id >= MsgHello && id <= MsgGoodbye }

// String returns the name the protocol uses ("HELLO", "PING-OK", ...), or
// "MsgID(n)" for an unknown id.
func (id MsgID) String() string {
	if id.Valid() {
		return msgNames[id]
	}
	return fmt.Sprintf("MsgID(%d)", uint8(id))
}

// HasContent reports whether messages of this type carry content frames
// (WHISPER and SHOUT).
func (id MsgID) HasContent() bool { return id == MsgWhisper || id == MsgShout }

// Header is one HELLO header property. HELLO headers are an ordered list,
// not a map, so that a decoded message re-encodes byte for byte: the C
// reference sends them in czmq's hash order, not in insertion order.
type Header struct {
	Key, Value string
}

// Msg is one ZRE message: the first ZMTP frame (signature, id, version,
// sequence, fields) plus, for WHISPER and SHOUT, the content frames. Only the
// fields of its ID are encoded; the others are ignored.
//
// Wire layout of the first frame (all integers big-endian):
//
//	AA A1 | id u8 | version u8 | sequence u16 | fields
//	HELLO   endpoint string, groups strings, status u8, name string, headers hash
//	WHISPER (none; content frames follow)
//	SHOUT   group string (content frames follow)
//	JOIN    group string, status u8
//	LEAVE   group string, status u8
//	PING, PING-OK, GOODBYE (none)
//	ELECT   group string, challenger_id string
//	LEADER  group string, leader_id string
//
// string = u8 length + octets; longstr = u32 length + octets; strings = u32
// count + longstr each; hash = u32 count + (string key, longstr value) each.
type Msg struct {
	ID       MsgID
	Version  uint8 // the decoded version (2 or 3); Encode always writes 2
	Sequence uint16

	Endpoint     string   // HELLO: "tcp://10.0.0.1:49152"
	Groups       []string // HELLO
	Status       uint8    // HELLO, JOIN, LEAVE
	Name         string   // HELLO
	Headers      []Header // HELLO, in wire order
	Group        string   // SHOUT, JOIN, LEAVE, ELECT, LEADER
	ChallengerID string   // ELECT
	LeaderID     string   // LEADER

	// Content holds the content frames of a WHISPER or SHOUT. After Decode
	// it aliases the input: Content is frames[1:].
	Content [][]byte
}

// Header returns the value of the first header with the given key.
func (m *Msg) Header(key string) (string, bool) {
	for _, h := range m.Headers {
		if h.Key == key {
			return h.Value, true
		}
	}
	return "", false
}

func encErr(id MsgID, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrMalformed, id, fmt.Sprintf(format, args...))
}

// AppendEncode appends the first frame of m (always version 2) to dst. It
// fails on an unknown ID, a string field longer than 255 octets, a longstr
// or list longer than 2^32-1, a NUL octet in a text field, or content on a
// type that carries none. Duplicate header keys are not checked here, but
// Decode refuses them. On error it returns dst unchanged.
func (m *Msg) AppendEncode(dst []byte) ([]byte, error) {
	out, err := m.appendEncode(dst)
	if err != nil {
		return dst, err
	}
	return out, nil
}

func (m *Msg) appendEncode(dst []byte) ([]byte, error) {
	if !m.ID.Valid() {
		return dst, fmt.Errorf("%w: unknown message id %d", ErrMalformed, uint8(m.ID))
	}
	if len(m.Content) > 0 && !m.ID.HasContent() {
		return dst, encErr(m.ID, "%d content frames on a message type without content", len(m.Content))
	}
	dst = append(dst, 0xAA, 0xA1, byte(m.ID), Version)
	dst = binary.BigEndian.AppendUint16(dst, m.Sequence)
	var err error
	switch m.ID {
	case MsgHello:
		if dst, err = appendString(dst, m.ID, "endpoint", m.Endpoint); err != nil {
			return dst, err
		}
		if uint64(len(m.Groups)) > math.MaxUint32 {
			return dst, encErr(m.ID, "%d groups", len(m.Groups))
		}
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(m.Groups)))
		for _, g := range m.Groups {
			if dst, err = appendLongstr(dst, m.ID, "group", g); err != nil {
				return dst, err
			}
		}
		dst = append(dst, m.Status)
		if dst, err = appendString(dst, m.ID, "name", m.Name); err != nil {
			return dst, err
		}
		if uint64(len(m.Headers)) > math.MaxUint32 {
			return dst, encErr(m.ID, "%d headers", len(m.Headers))
		}
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(m.Headers)))
		for _, h := range m.Headers {
			if dst, err = appendString(dst, m.ID, "header key", h.Key); err != nil {
				return dst, err
			}
			if dst, err = appendLongstr(dst, m.ID, "header value", h.Value); err != nil {
				return dst, err
			}
		}
	case MsgShout:
		return appendString(dst, m.ID, "group", m.Group)
	case MsgJoin, MsgLeave:
		if dst, err = appendString(dst, m.ID, "group", m.Group); err != nil {
			return dst, err
		}
		dst = append(dst, m.Status)
	case MsgElect:
		if dst, err = appendString(dst, m.ID, "group", m.Group); err != nil {
			return dst, err
		}
		return appendString(dst, m.ID, "challenger_id", m.ChallengerID)
	case MsgLeader:
		if dst, err = appendString(dst, m.ID, "group", m.Group); err != nil {
			return dst, err
		}
		return appendString(dst, m.ID, "leader_id", m.LeaderID)
	}
	return dst, nil
}

// SetSequence writes seq into first, a first frame that AppendEncode
// made: copies of one message for several peers differ only in their
// sequence numbers, so a sender can encode it once and number each copy.
// It panics if first is shorter than the fixed header.
func SetSequence(first []byte, seq uint16) {
	binary.BigEndian.PutUint16(first[4:HeaderSize], seq)
}

// Frames returns the whole message ready for ZMTP: the first frame, then
// the content frames (shared with m.Content, not copied).
func (m *Msg) Frames() ([][]byte, error) {
	first, err := m.AppendEncode(make([]byte, 0, m.encodedSizeHint()))
	if err != nil {
		return nil, err
	}
	frames := make([][]byte, 0, 1+len(m.Content))
	frames = append(frames, first)
	return append(frames, m.Content...), nil
}

func (m *Msg) encodedSizeHint() int {
	n := HeaderSize
	switch m.ID {
	case MsgHello:
		n += 1 + len(m.Endpoint) + 4 + 1 + 1 + len(m.Name) + 4
		for _, g := range m.Groups {
			n += 4 + len(g)
		}
		for _, h := range m.Headers {
			n += 1 + len(h.Key) + 4 + len(h.Value)
		}
	case MsgShout, MsgJoin, MsgLeave:
		n += 2 + len(m.Group)
	case MsgElect:
		n += 2 + len(m.Group) + len(m.ChallengerID)
	case MsgLeader:
		n += 2 + len(m.Group) + len(m.LeaderID)
	}
	return n
}

func appendString(dst []byte, id MsgID, field, s string) ([]byte, error) {
	if len(s) > math.MaxUint8 {
		return dst, encErr(id, "%s is %d octets, longer than 255", field, len(s))
	}
	if strings.IndexByte(s, 0) >= 0 {
		return dst, encErr(id, "%s contains a NUL octet", field)
	}
	dst = append(dst, byte(len(s)))
	return append(dst, s...), nil
}

func appendLongstr(dst []byte, id MsgID, field, s string) ([]byte, error) {
	if uint64(len(s)) > math.MaxUint32 {
		return dst, encErr(id, "%s is %d octets, longer than 2^32-1", field, len(s))
	}
	if strings.IndexByte(s, 0) >= 0 {
		return dst, encErr(id, "%s contains a NUL octet", field)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...), nil
}

// Decode parses one WHOLE ZRE message: frames are all the frames of one ZMTP
// message (without a ROUTER's routing-id frame). It returns one Msg or an
// error wrapping ErrMalformed; it never parses part of the frames as a
// message and leaves the rest, which the C reference does (a spoofing hole).
// Extra frames after a type without content, and octets left over after the
// fields of the first frame, are errors. So are a NUL octet in a text field
// (the C reference reads every text field as a C string, so "chat\x00x"
// would be "chat" to it: a C sender never sends one, and refusing it keeps
// both sides seeing the same value) and a HELLO header key given twice.
//
// The string fields of the result share one copy of the first frame;
// Content aliases frames[1:], so the caller must not change the frames
// afterwards.
func Decode(frames [][]byte) (*Msg, error) {
	m := new(Msg)
	if err := m.UnmarshalFrames(frames); err != nil {
		return nil, err
	}
	return m, nil
}

// decoder reads the fields of a first frame. s is the frame as a string, so
// that string fields are substrings of one allocation.
type decoder struct {
	id  MsgID
	s   string
	off int
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s: %s", ErrMalformed, d.id, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) left() int { return len(d.s) - d.off }

// u8 and u32 read an integer; field and suffix name it in an error (they
// are formatted only on failure, so decoding does not allocate for them).
func (d *decoder) u8(field, suffix string) uint8 {
	if d.err != nil {
		return 0
	}
	if d.left() < 1 {
		d.fail("%s%s: truncated, 0 octets left", field, suffix)
		return 0
	}
	v := d.s[d.off]
	d.off++
	return v
}

func (d *decoder) u32(field, suffix string) uint32 {
	if d.err != nil {
		return 0
	}
	if d.left() < 4 {
		d.fail("%s%s: truncated, %d octets left, want 4", field, suffix, d.left())
		return 0
	}
	s := d.s[d.off:]
	v := uint32(s[0])<<24 | uint32(s[1])<<16 | uint32(s[2])<<8 | uint32(s[3])
	d.off += 4
	return v
}

func (d *decoder) bytes(field string, n uint64) string {
	if d.err != nil {
		return ""
	}
	if n > uint64(d.left()) {
		d.fail("%s length %d exceeds remaining %d octets", field, n, d.left())
		return ""
	}
	v := d.s[d.off : d.off+int(n)]
	if strings.IndexByte(v, 0) >= 0 {
		d.fail("%s contains a NUL octet", field)
		return ""
	}
	d.off += int(n)
	return v
}

func (d *decoder) str(field string) string {
	n := d.u8(field, " length")
	return d.bytes(field, uint64(n))
}

func (d *decoder) longstr(field string) string {
	n := d.u32(field, " length")
	return d.bytes(field, uint64(n))
}

// count reads a u32 list count whose elements take at least min octets
// each, and refuses a count the remaining octets cannot hold, so that a
// hostile count never causes a large allocation.
func (d *decoder) count(field string, min int) int {
	n := d.u32(field, " count")
	if d.err != nil {
		return 0
	}
	if uint64(n) > uint64(d.left()/min) {
		d.fail("%s count %d exceeds remaining %d octets", field, n, d.left())
		return 0
	}
	return int(n)
}

// UnmarshalFrames is Decode into an existing Msg, so that a receive loop can
// reuse one (decoding a WHISPER then allocates nothing). Every field of m
// is overwritten; on error m is the zero Msg.
func (m *Msg) UnmarshalFrames(frames [][]byte) error {
	*m = Msg{}
	if len(frames) == 0 {
		return fmt.Errorf("%w: no frames", ErrMalformed)
	}
	f := frames[0]
	if len(f) < HeaderSize {
		return fmt.Errorf("%w: first frame is %d octets, shorter than the %d-octet header", ErrMalformed, len(f), HeaderSize)
	}
	if sig := binary.BigEndian.Uint16(f); sig != Signature {
		return fmt.Errorf("%w: bad signature %#04x, want %#04x", ErrMalformed, sig, Signature)
	}
	id := MsgID(f[2])
	if !id.Valid() {
		return fmt.Errorf("%w: unknown message id %d", ErrMalformed, f[2])
	}
	if v := f[3]; v != Version && v != VersionV3 {
		return fmt.Errorf("%w: %s: unsupported version %d (want 2 or 3)", ErrMalformed, id, v)
	}
	if len(frames) > 1 && !id.HasContent() {
		return fmt.Errorf("%w: %s: %d extra frames after a message without content", ErrMalformed, id, len(frames)-1)
	}
	*m = Msg{ID: id, Version: f[3], Sequence: binary.BigEndian.Uint16(f[4:])}
	if len(f) == HeaderSize {
		// Fast path: nothing to convert (WHISPER, PING, PING-OK, GOODBYE).
		switch id {
		case MsgWhisper:
			m.Content = frames[1:]
			return nil
		case MsgPing, MsgPingOK, MsgGoodbye:
			return nil
		}
	}
	d := decoder{id: id, s: string(f), off: HeaderSize}
	switch id {
	case MsgHello:
		m.Endpoint = d.str("endpoint")
		if n := d.count("groups", 4); n > 0 {
			m.Groups = make([]string, n)
			for i := range m.Groups {
				m.Groups[i] = d.longstr("group")
			}
		}
		m.Status = d.u8("status", "")
		m.Name = d.str("name")
		if n := d.count("headers", 5); n > 0 {
			m.Headers = make([]Header, n)
			for i := range m.Headers {
				m.Headers[i].Key = d.str("header key")
				m.Headers[i].Value = d.longstr("header value")
			}
			if d.err == nil {
				d.checkDuplicates(m.Headers)
			}
		}
	case MsgShout:
		m.Group = d.str("group")
		m.Content = frames[1:]
	case MsgJoin, MsgLeave:
		m.Group = d.str("group")
		m.Status = d.u8("status", "")
	case MsgElect:
		m.Group = d.str("group")
		m.ChallengerID = d.str("challenger_id")
	case MsgLeader:
		m.Group = d.str("group")
		m.LeaderID = d.str("leader_id")
	}
	if d.err == nil && d.left() > 0 {
		d.fail("%d trailing octets after the fields", d.left())
	}
	if d.err != nil {
		*m = Msg{}
		return d.err
	}
	return nil
}

// checkDuplicates refuses a HELLO that names the same header twice. czmq's
// hash keeps only the first of two equal keys, so a duplicate could make two
// implementations see different values (for X-PUBLICKEY, a different key);
// a C sender never produces one.
func (d *decoder) checkDuplicates(hs []Header) {
	if len(hs) <= 16 {
		for i := 1; i < len(hs); i++ {
			for j := 0; j < i; j++ {
				if hs[i].Key == hs[j].Key {
					d.fail("duplicate header %q", hs[i].Key)
					return
				}
			}
		}
		return
	}
	seen := make(map[string]struct{}, len(hs))
	for _, h := range hs {
		if _, ok := seen[h.Key]; ok {
			d.fail("duplicate header %q", h.Key)
			return
		}
		seen[h.Key] = struct{}{}
	}
}
