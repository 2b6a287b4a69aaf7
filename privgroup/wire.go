package privgroup

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Wire format, version 1 (see spec/private-groups.md). Every record starts
// with a type octet: the high nibble is the version, the low nibble the
// kind.
//
//	data message  0x11 | key id (8) | counter (4, BE) | ciphertext | tag (16)
//	batch record  0x12 | key id (8) | first (4, BE) | count (2, BE) | Ed25519 signature (64)
//	sender key    0x13 | nonce (24) | secretbox(senderKeyBody)
const (
	// Version is the wire version this package speaks (high nibble of the
	// type octet).
	Version = 1

	typeData      byte = 0x11
	typeBatch     byte = 0x12
	typeSenderKey byte = 0x13

	// KeyIDSize is the size of a key id: it names one sender's epoch.
	KeyIDSize = 8
	// TagSize is the size of the AEAD tag (both suites).
	TagSize = 16
	// DataHeaderSize is the clear header of a data message.
	DataHeaderSize = 1 + KeyIDSize + 4
	// Overhead is what Seal adds to a plaintext: header and tag.
	Overhead = DataHeaderSize + TagSize // 29
	// BatchRecordSize is the exact size of a batch record.
	BatchRecordSize = 1 + KeyIDSize + 4 + 2 + signatureSize // 79
	// MaxPlaintext is the largest plaintext of one data message.
	MaxPlaintext = 1 << 20
	// MaxBatch is the largest number of messages one batch record covers.
	MaxBatch = 4096
	// MaxGroupLen is the longest group name (a ZRE short string).
	MaxGroupLen = 255

	signatureSize = 64
	boxNonceSize  = 24
	nonceSize     = 12 // AEAD nonce, both suites
	// senderKeyBodyFixed: sender key (32), recipient key (32), sender id
	// (16), epoch (4), counter (4), chain key (32), signing key (32),
	// suite (1), group length (1).
	senderKeyBodyFixed = 32 + 32 + 16 + 4 + 4 + 32 + 32 + 1 + 1
	senderKeyMinSize   = 1 + boxNonceSize + senderKeyBodyFixed + secretboxOverhead
	senderKeyMaxSize   = senderKeyMinSize + MaxGroupLen
	secretboxOverhead  = 16
)

// Sentinel errors. Every error of this package wraps exactly one of them
// and says in its text what failed; secrets never appear in error text.
var (
	// ErrMalformed: a record is truncated, too long, of an unknown kind or
	// has an invalid field. The parsers return it; nothing was changed.
	ErrMalformed = errors.New("privgroup: malformed record")
	// ErrVersion: a record of a version this package does not speak, or a
	// sender key of a suite it does not know.
	ErrVersion = errors.New("privgroup: unsupported version")
	// ErrUnknownKey: no sender key is known for the record's key id (an
	// untrusted member, an outsider, a member removed by rotation, or a
	// key that has not arrived yet).
	ErrUnknownKey = errors.New("privgroup: unknown sender key")
	// ErrAuth: the AEAD tag or the sender-key box does not verify. It is
	// deliberately opaque.
	ErrAuth = errors.New("privgroup: authentication failed")
	// ErrReplay: a counter that was already received.
	ErrReplay = errors.New("privgroup: replayed message")
	// ErrTooOld: a counter behind the reorder window, or in a range that
	// was already settled by a batch record.
	ErrTooOld = errors.New("privgroup: message too old")
	// ErrTooFarAhead: a counter further ahead than the skipped-key cap.
	ErrTooFarAhead = errors.New("privgroup: counter too far ahead")
	// ErrEpochExpired: a message of an old epoch after the grace window.
	ErrEpochExpired = errors.New("privgroup: epoch expired")
	// ErrBadSignature: a batch record whose Ed25519 signature does not
	// verify over the messages received (a forged record, or a forged or
	// altered message in its range).
	ErrBadSignature = errors.New("privgroup: bad batch signature")
	// ErrSenderKey: a sender-key message that is not for us, not from the
	// claimed sender, of a wrong group, stale or conflicting.
	ErrSenderKey = errors.New("privgroup: sender key refused")
	// ErrExhausted: the sender's epoch has used all its counters (or its
	// hard message limit); Rotate first.
	ErrExhausted = errors.New("privgroup: epoch exhausted, rotate")
	// ErrBatchFull: more messages are pending than half the window; the
	// caller must send a batch record (Batch) before sealing more.
	ErrBatchFull = errors.New("privgroup: too many messages not covered by a batch record")
	// ErrClosed: the Sender or Receiver was closed and its keys wiped.
	ErrClosed = errors.New("privgroup: closed")
	// ErrInvalidOptions: bad arguments to a constructor.
	ErrInvalidOptions = errors.New("privgroup: invalid options")
)

// KeyID names one (group, sender, epoch): the first 8 octets of a SHA-256
// over them and the epoch's signing key. It is in clear in every record.
type KeyID [KeyIDSize]byte

// String returns the key id in hex.
func (k KeyID) String() string { return fmt.Sprintf("%x", k[:]) }

// Kind is the kind of a record.
type Kind uint8

// The record kinds.
const (
	KindData      Kind = 1
	KindBatch     Kind = 2
	KindSenderKey Kind = 3
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case KindData:
		return "data"
	case KindBatch:
		return "batch"
	case KindSenderKey:
		return "sender-key"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Header is the clear part of a data message or a batch record.
type Header struct {
	Kind    Kind
	KeyID   KeyID
	Counter uint32 // data: the message counter; batch: the first counter covered
	Count   uint16 // batch: the number of messages covered
}

// malformed builds "privgroup: <what>: <detail>" wrapping ErrMalformed.
func malformed(what, format string, args ...any) error {
	return errf("privgroup: %s: %w: %s", what, ErrMalformed, fmt.Sprintf(format, args...))
}

// checkType validates the type octet of b for the record kind want.
func checkType(what string, b []byte, want byte) error {
	if len(b) == 0 {
		return malformed(what, "empty")
	}
	if v := b[0] >> 4; v != Version {
		return errf("privgroup: %s: %w: version %d, want %d", what, ErrVersion, v, Version)
	}
	if b[0] != want {
		return malformed(what, "type 0x%02x, want 0x%02x", b[0], want)
	}
	return nil
}

// ParseHeader parses the clear header of a data message or a batch record,
// as found in a SHOUT of a private group. It checks sizes strictly and
// never looks at the ciphertext.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) == 0 {
		return h, malformed("message", "empty")
	}
	if v := b[0] >> 4; v != Version {
		return h, errf("privgroup: message: %w: version %d, want %d", ErrVersion, v, Version)
	}
	switch b[0] {
	case typeData:
		return parseData(b)
	case typeBatch:
		return parseBatch(b)
	case typeSenderKey:
		return h, malformed("message", "a sender-key record belongs in a whisper, not in the group")
	}
	return h, malformed("message", "unknown type 0x%02x", b[0])
}

func parseData(b []byte) (Header, error) {
	var h Header
	if err := checkType("message", b, typeData); err != nil {
		return h, err
	}
	if len(b) < Overhead {
		return h, malformed("message", "%d octets, want at least %d", len(b), Overhead)
	}
	if len(b)-Overhead > MaxPlaintext {
		return h, malformed("message", "%d octets of payload, limit %d", len(b)-Overhead, MaxPlaintext)
	}
	h.Kind = KindData
	copy(h.KeyID[:], b[1:])
	h.Counter = binary.BigEndian.Uint32(b[1+KeyIDSize:])
	return h, nil
}

func parseBatch(b []byte) (Header, error) {
	var h Header
	if err := checkType("batch", b, typeBatch); err != nil {
		return h, err
	}
	if len(b) != BatchRecordSize {
		return h, malformed("batch", "%d octets, want %d", len(b), BatchRecordSize)
	}
	h.Kind = KindBatch
	copy(h.KeyID[:], b[1:])
	h.Counter = binary.BigEndian.Uint32(b[1+KeyIDSize:])
	h.Count = binary.BigEndian.Uint16(b[1+KeyIDSize+4:])
	if h.Count == 0 || h.Count > MaxBatch {
		return h, malformed("batch", "covers %d messages, want 1..%d", h.Count, MaxBatch)
	}
	if uint64(h.Counter)+uint64(h.Count) > 1<<32 {
		return h, malformed("batch", "range %d+%d overflows the counter", h.Counter, h.Count)
	}
	return h, nil
}

// senderKeyBody is the plaintext inside a sender-key box.
type senderKeyBody struct {
	senderKey    [32]byte // the sender's long-term X25519 public key
	recipientKey [32]byte // the member's long-term X25519 public key
	senderID     [16]byte
	epoch        uint32
	counter      uint32 // the chain key is the one of this counter
	chainKey     [32]byte
	signingKey   [32]byte // Ed25519 public key of this epoch
	suite        Suite
	group        string
}

func (k *senderKeyBody) appendMarshal(b []byte) []byte {
	b = append(b, k.senderKey[:]...)
	b = append(b, k.recipientKey[:]...)
	b = append(b, k.senderID[:]...)
	b = binary.BigEndian.AppendUint32(b, k.epoch)
	b = binary.BigEndian.AppendUint32(b, k.counter)
	b = append(b, k.chainKey[:]...)
	b = append(b, k.signingKey[:]...)
	b = append(b, byte(k.suite))
	b = append(b, byte(len(k.group)))
	return append(b, k.group...)
}

// parseSenderKeyBody parses the opened plaintext of a sender-key box.
func parseSenderKeyBody(b []byte) (senderKeyBody, error) {
	var k senderKeyBody
	if len(b) < senderKeyBodyFixed {
		return k, malformed("sender key", "body of %d octets, want at least %d", len(b), senderKeyBodyFixed)
	}
	p := b
	p = p[copy(k.senderKey[:], p):]
	p = p[copy(k.recipientKey[:], p):]
	p = p[copy(k.senderID[:], p):]
	k.epoch = binary.BigEndian.Uint32(p)
	k.counter = binary.BigEndian.Uint32(p[4:])
	p = p[8:]
	p = p[copy(k.chainKey[:], p):]
	p = p[copy(k.signingKey[:], p):]
	k.suite = Suite(p[0])
	n := int(p[1])
	p = p[2:]
	if len(p) != n {
		return k, malformed("sender key", "group name of %d octets, %d present", n, len(p))
	}
	if n == 0 {
		return k, malformed("sender key", "empty group name")
	}
	if !k.suite.known() {
		return k, errf("privgroup: sender key: %w: unknown %s", ErrVersion, k.suite)
	}
	k.group = string(p)
	return k, nil
}

// checkSenderKeyOuter validates the outer frame of a sealed sender key.
func checkSenderKeyOuter(b []byte) error {
	if err := checkType("sender key", b, typeSenderKey); err != nil {
		return err
	}
	if len(b) < senderKeyMinSize || len(b) > senderKeyMaxSize {
		return malformed("sender key", "%d octets, want %d..%d", len(b), senderKeyMinSize, senderKeyMaxSize)
	}
	return nil
}

// pgError is an error of this package: its text names the package once,
// however deep the wrapping ("privgroup: open message 3 from …: replayed
// message"), and it unwraps to what fmt.Errorf built, so errors.Is finds
// the sentinels.
type pgError struct {
	msg string
	err error
}

func (e *pgError) Error() string { return e.msg }
func (e *pgError) Unwrap() error { return e.err }

// errf is fmt.Errorf for this package; format starts with "privgroup: ".
func errf(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	const p = "privgroup: "
	return &pgError{msg: p + strings.ReplaceAll(strings.TrimPrefix(err.Error(), p), p, ""), err: err}
}
