package trust

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
)

// Errors about statements, matchable with errors.Is.
var (
	// ErrMalformed: the octets are not a statement.
	ErrMalformed = errors.New("trust: malformed statement")
	// ErrTooLarge: a statement longer than MaxStatementSize.
	ErrTooLarge = errors.New("trust: statement too large")
	// ErrBadSignature: the signature does not verify (forged or damaged).
	ErrBadSignature = errors.New("trust: bad statement signature")
	// ErrReplay: a statement already in the signer's log.
	ErrReplay = errors.New("trust: statement already applied")
	// ErrFork: a different statement at a sequence number already used:
	// the signer signed two histories.
	ErrFork = errors.New("trust: conflicting statement for a used sequence number")
	// ErrGap: statements are missing before this one; *GapError says which.
	ErrGap = errors.New("trust: statements missing")
	// ErrBrokenChain: the statement does not name the hash of the previous one.
	ErrBrokenChain = errors.New("trust: statement does not follow the previous one")
	// ErrBadTime: the timestamp goes back in time or is too far ahead.
	ErrBadTime = errors.New("trust: bad statement time")
	// ErrSignerFull: the signer has MaxStatementsPerSigner statements already.
	ErrSignerFull = errors.New("trust: too many statements from one signer")
	// ErrTooManySigners: MaxSigners logs are tracked already.
	ErrTooManySigners = errors.New("trust: too many signers")
	// ErrUnknownSigner: the signing key is not tied to a known peer.
	ErrUnknownSigner = errors.New("trust: unknown signer")
	// ErrSignerRevoked: the signer's key is revoked.
	ErrSignerRevoked = errors.New("trust: signer revoked")
	// ErrBindingMismatch: a binding names another CURVE key than the one
	// the connection authenticated.
	ErrBindingMismatch = errors.New("trust: binding is for another key")
)

// Kind is the type of a statement body.
type Kind byte

// Statement kinds.
const (
	// KindBinding: "my signing key is Signer and my CURVE key is K". Not
	// part of a log; sent over the CURVE connection authenticated as K.
	KindBinding Kind = 1
	// KindVouch: "I vouch for key K of peer U (name N)".
	KindVouch Kind = 2
	// KindRevoke: "I revoke key K (reason)".
	KindRevoke Kind = 3
	// KindUnrevoke: "I withdraw my revocation of key K (reason)".
	KindUnrevoke Kind = 4
)

func (k Kind) String() string {
	switch k {
	case KindBinding:
		return "binding"
	case KindVouch:
		return "vouch"
	case KindRevoke:
		return "revoke"
	case KindUnrevoke:
		return "unrevoke"
	}
	return fmt.Sprintf("Kind(%d)", byte(k))
}

// Body is the content of a statement: *Binding, *Vouch, *Revoke or
// *Unrevoke.
type Body interface {
	Kind() Kind
	appendBody(dst []byte) []byte
}

// Binding ties the signer's Ed25519 key to a CURVE key.
type Binding struct{ Key curve.PublicKey }

// Vouch says the signer checked that Key belongs to the peer UUID, Name.
type Vouch struct {
	Key  curve.PublicKey
	UUID uuid.UUID
	Name string
}

// Revoke says Key must not be trusted any more.
type Revoke struct {
	Key    curve.PublicKey
	Reason string
}

// Unrevoke withdraws the signer's own earlier revocation of Key: a
// mistaken revocation undone by its signer (spec/trust.md, "Undoing a
// revocation"). It withdraws no other signer's revocation, and a
// revocation signed by the revoked key itself can never be withdrawn.
type Unrevoke struct {
	Key    curve.PublicKey
	Reason string
}

// Kind returns KindUnrevoke.
func (*Unrevoke) Kind() Kind { return KindUnrevoke }

func (r *Unrevoke) appendBody(dst []byte) []byte {
	dst = append(dst, r.Key.Bytes()...)
	dst = append(dst, byte(len(r.Reason)))
	return append(dst, r.Reason...)
}

// Kind returns KindBinding.
func (*Binding) Kind() Kind { return KindBinding }

// Kind returns KindVouch.
func (*Vouch) Kind() Kind { return KindVouch }

// Kind returns KindRevoke.
func (*Revoke) Kind() Kind { return KindRevoke }

func (b *Binding) appendBody(dst []byte) []byte { return append(dst, b.Key.Bytes()...) }

func (v *Vouch) appendBody(dst []byte) []byte {
	dst = append(dst, v.Key.Bytes()...)
	dst = append(dst, v.UUID[:]...)
	dst = append(dst, byte(len(v.Name)))
	return append(dst, v.Name...)
}

func (r *Revoke) appendBody(dst []byte) []byte {
	dst = append(dst, r.Key.Bytes()...)
	dst = append(dst, byte(len(r.Reason)))
	return append(dst, r.Reason...)
}

// Encoding sizes. A statement is, all integers big-endian:
//
//	magic     4  "ZTS" 0x01 (format version 1)
//	kind      1  1 binding, 2 vouch, 3 revoke
//	signer   32  Ed25519 public key
//	seq       8  position in the signer's log, from 1; 0 for a binding
//	prev     32  SHA-256 of the previous statement; zeros for seq 0 and 1
//	time      8  Unix seconds, signed
//	bodylen   2  n
//	body      n  kind-specific, see spec/trust.md
//	sig      64  Ed25519 over SignatureContext || all the octets above
const (
	headerSize       = 4 + 1 + 32 + 8 + 32 + 8 + 2
	sigSize          = ed25519.SignatureSize
	MaxStatementSize = 1024 // octets; larger statements are refused
	maxTextLen       = 255
)

var magic = [4]byte{'Z', 'T', 'S', 1}

// SignatureContext prefixes the signed octets, so a statement signature
// can never be mistaken for a signature of anything else.
const SignatureContext = "zyre trust statement v1\x00"

// Statement is one signed statement.
type Statement struct {
	Signer ed25519.PublicKey
	Seq    uint64
	Prev   [sha256.Size]byte
	Time   time.Time // whole seconds, UTC
	Body   Body
	Sig    []byte
	// Raw is the full encoding, as signed and hashed.
	Raw []byte
}

// Hash is SHA-256 over the full encoding; the next statement's Prev.
func (s *Statement) Hash() [sha256.Size]byte { return sha256.Sum256(s.Raw) }

// Kind returns the body's kind.
func (s *Statement) Kind() Kind { return s.Body.Kind() }

// String describes the statement for people.
func (s *Statement) String() string {
	sk, _ := curve.EncodeZ85(s.Signer)
	head := fmt.Sprintf("#%d %s by %s", s.Seq, s.Time.UTC().Format(time.RFC3339), sk)
	switch b := s.Body.(type) {
	case *Binding:
		return fmt.Sprintf("%s: binding to CURVE key %s", head, b.Key.Z85())
	case *Vouch:
		return fmt.Sprintf("%s: vouch for %s (%q, %s)", head, b.Key.Z85(), b.Name, b.UUID)
	case *Revoke:
		return fmt.Sprintf("%s: revoke %s (%q)", head, b.Key.Z85(), b.Reason)
	case *Unrevoke:
		return fmt.Sprintf("%s: withdraw the revocation of %s (%q)", head, b.Key.Z85(), b.Reason)
	}
	return head
}

// checkText accepts UTF-8 text of at most 255 octets without control
// characters: names and reasons end up on terminals.
func checkText(what, s string) error {
	if len(s) > maxTextLen {
		return fmt.Errorf("%s is %d octets, at most %d", what, len(s), maxTextLen)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not UTF-8", what)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("%s contains a control character", what)
		}
	}
	return nil
}

func checkBody(b Body) error {
	switch b := b.(type) {
	case *Binding:
		if b.Key.IsZero() {
			return fmt.Errorf("%w: binding: zero key", ErrMalformed)
		}
	case *Vouch:
		if b.Key.IsZero() {
			return fmt.Errorf("%w: vouch: zero key", ErrMalformed)
		}
		if err := checkText("vouch: name", b.Name); err != nil {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
	case *Revoke:
		if b.Key.IsZero() {
			return fmt.Errorf("%w: revoke: zero key", ErrMalformed)
		}
		if err := checkText("revoke: reason", b.Reason); err != nil {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
	case *Unrevoke:
		if b.Key.IsZero() {
			return fmt.Errorf("%w: unrevoke: zero key", ErrMalformed)
		}
		if err := checkText("unrevoke: reason", b.Reason); err != nil {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
	case nil:
		return fmt.Errorf("%w: no body", ErrMalformed)
	default:
		return fmt.Errorf("%w: unknown body type %T", ErrMalformed, b)
	}
	return nil
}

// signStatement encodes and signs a statement.
func signStatement(priv ed25519.PrivateKey, seq uint64, prev [32]byte, t time.Time, body Body) (*Statement, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: signing key is %d octets", ErrInvalidKey, len(priv))
	}
	if err := checkBody(body); err != nil {
		return nil, err
	}
	t = t.UTC().Truncate(time.Second)
	pub := priv.Public().(ed25519.PublicKey)
	buf := appendUnsigned(make([]byte, 0, headerSize+64+sigSize), pub, seq, prev, t, body)
	if len(buf)+sigSize > MaxStatementSize {
		return nil, fmt.Errorf("%w: %d octets, at most %d", ErrTooLarge, len(buf)+sigSize, MaxStatementSize)
	}
	sig := ed25519.Sign(priv, signedMessage(buf))
	buf = append(buf, sig...)
	return &Statement{
		Signer: pub, Seq: seq, Prev: prev, Time: t, Body: body,
		Sig: buf[len(buf)-sigSize:], Raw: buf,
	}, nil
}

// appendUnsigned appends the encoding of a statement without its signature.
func appendUnsigned(buf []byte, signer ed25519.PublicKey, seq uint64, prev [32]byte, t time.Time, body Body) []byte {
	buf = append(buf, magic[:]...)
	buf = append(buf, byte(body.Kind()))
	buf = append(buf, signer...)
	buf = binary.BigEndian.AppendUint64(buf, seq)
	buf = append(buf, prev[:]...)
	buf = binary.BigEndian.AppendUint64(buf, uint64(t.Unix()))
	lenAt := len(buf)
	buf = append(buf, 0, 0)
	buf = body.appendBody(buf)
	binary.BigEndian.PutUint16(buf[lenAt:], uint16(len(buf)-lenAt-2))
	return buf
}

func signedMessage(unsigned []byte) []byte {
	m := make([]byte, 0, len(SignatureContext)+len(unsigned))
	m = append(m, SignatureContext...)
	return append(m, unsigned...)
}

// ParseStatement decodes a statement and checks its signature. It never
// panics; every error wraps ErrTooLarge, ErrMalformed or ErrBadSignature.
// The result owns a copy of raw.
func ParseStatement(raw []byte) (*Statement, error) {
	s, err := parseUnverified(raw)
	if err != nil {
		return nil, err
	}
	if !ed25519.Verify(s.Signer, signedMessage(s.Raw[:len(s.Raw)-sigSize]), s.Sig) {
		return nil, fmt.Errorf("%w: statement #%d", ErrBadSignature, s.Seq)
	}
	return s, nil
}

// parseUnverified decodes without checking the signature (for the local
// store file, whose statements were verified when applied).
func parseUnverified(raw []byte) (*Statement, error) {
	if len(raw) > MaxStatementSize {
		return nil, fmt.Errorf("%w: %d octets, at most %d", ErrTooLarge, len(raw), MaxStatementSize)
	}
	if len(raw) < headerSize+sigSize {
		return nil, fmt.Errorf("%w: %d octets, too short", ErrMalformed, len(raw))
	}
	if [4]byte(raw[:4]) != magic {
		if string(raw[:3]) == "ZTS" {
			return nil, fmt.Errorf("%w: unsupported version %d", ErrMalformed, raw[3])
		}
		return nil, fmt.Errorf("%w: bad magic", ErrMalformed)
	}
	raw = append([]byte(nil), raw...)
	s := &Statement{Raw: raw}
	kind := Kind(raw[4])
	s.Signer = ed25519.PublicKey(raw[5:37])
	s.Seq = binary.BigEndian.Uint64(raw[37:45])
	copy(s.Prev[:], raw[45:77])
	ts := int64(binary.BigEndian.Uint64(raw[77:85]))
	// Keep times in a range every time function handles (year 0..9999).
	if ts < -62135596800 || ts > 253402300799 {
		return nil, fmt.Errorf("%w: time out of range", ErrMalformed)
	}
	s.Time = time.Unix(ts, 0).UTC()
	n := int(binary.BigEndian.Uint16(raw[85:87]))
	if len(raw) != headerSize+n+sigSize {
		return nil, fmt.Errorf("%w: body length %d does not fit %d octets", ErrMalformed, n, len(raw))
	}
	body := raw[headerSize : headerSize+n]
	s.Sig = raw[headerSize+n:]
	b, err := parseBody(kind, body)
	if err != nil {
		return nil, err
	}
	s.Body = b
	if kind == KindBinding && s.Seq != 0 {
		return nil, fmt.Errorf("%w: binding with sequence number %d", ErrMalformed, s.Seq)
	}
	if kind != KindBinding && s.Seq == 0 {
		return nil, fmt.Errorf("%w: %s with sequence number 0", ErrMalformed, kind)
	}
	if s.Seq <= 1 && s.Prev != ([32]byte{}) {
		return nil, fmt.Errorf("%w: first statement names a previous one", ErrMalformed)
	}
	return s, nil
}

func parseBody(kind Kind, b []byte) (Body, error) {
	key := func() (curve.PublicKey, error) {
		if len(b) < curve.KeySize {
			return curve.PublicKey{}, fmt.Errorf("%w: %s: short key", ErrMalformed, kind)
		}
		k, _ := curve.NewPublicKey(b[:curve.KeySize])
		b = b[curve.KeySize:]
		return k, nil
	}
	text := func(what string) (string, error) {
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			return "", fmt.Errorf("%w: %s: short %s", ErrMalformed, kind, what)
		}
		s := string(b[1 : 1+int(b[0])])
		b = b[1+int(b[0]):]
		return s, nil
	}
	var body Body
	switch kind {
	case KindBinding:
		k, err := key()
		if err != nil {
			return nil, err
		}
		body = &Binding{Key: k}
	case KindVouch:
		k, err := key()
		if err != nil {
			return nil, err
		}
		if len(b) < 16 {
			return nil, fmt.Errorf("%w: vouch: short uuid", ErrMalformed)
		}
		v := &Vouch{Key: k}
		copy(v.UUID[:], b[:16])
		b = b[16:]
		if v.Name, err = text("name"); err != nil {
			return nil, err
		}
		body = v
	case KindRevoke:
		k, err := key()
		if err != nil {
			return nil, err
		}
		r := &Revoke{Key: k}
		if r.Reason, err = text("reason"); err != nil {
			return nil, err
		}
		body = r
	case KindUnrevoke:
		k, err := key()
		if err != nil {
			return nil, err
		}
		r := &Unrevoke{Key: k}
		if r.Reason, err = text("reason"); err != nil {
			return nil, err
		}
		body = r
	default:
		return nil, fmt.Errorf("%w: unknown kind %d", ErrMalformed, byte(kind))
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %s: %d trailing octets", ErrMalformed, kind, len(b))
	}
	if err := checkBody(body); err != nil {
		return nil, err
	}
	return body, nil
}

// NewBinding makes the binding statement a node sends over every CURVE
// connection it opens (see spec/trust.md): signed with signer, it names the
// node's CURVE key. Peers pass it to Admit in Observation.Binding.
func NewBinding(signer ed25519.PrivateKey, key curve.PublicKey, now time.Time) ([]byte, error) {
	s, err := signStatement(signer, 0, [32]byte{}, now, &Binding{Key: key})
	if err != nil {
		return nil, err
	}
	return s.Raw, nil
}

// VerifyBinding checks a binding received over a connection authenticated
// as key and returns the signing key it teaches and its time.
func VerifyBinding(raw []byte, key curve.PublicKey) (ed25519.PublicKey, time.Time, error) {
	s, err := ParseStatement(raw)
	if err != nil {
		return nil, time.Time{}, err
	}
	b, ok := s.Body.(*Binding)
	if !ok {
		return nil, time.Time{}, fmt.Errorf("%w: a %s is not a binding", ErrMalformed, s.Kind())
	}
	if !b.Key.Equal(key) {
		return nil, time.Time{}, fmt.Errorf("%w: binding names %s, connection authenticated %s", ErrBindingMismatch, b.Key.Z85(), key.Z85())
	}
	return append(ed25519.PublicKey(nil), s.Signer...), s.Time, nil
}

// BindingHeader is the ZRE HELLO header that carries a node's binding
// (NewBinding), in base64 (RFC 4648, with padding). See spec/trust.md.
const BindingHeader = "X-ZYRE-BINDING"

// EncodeBindingHeader returns the value of BindingHeader for a binding.
func EncodeBindingHeader(binding []byte) string { return base64.StdEncoding.EncodeToString(binding) }

// DecodeBindingHeader decodes the value of BindingHeader; the result goes
// in Observation.Binding. Errors wrap ErrMalformed or ErrTooLarge.
func DecodeBindingHeader(v string) ([]byte, error) {
	if len(v) > base64.StdEncoding.EncodedLen(MaxStatementSize) {
		return nil, fmt.Errorf("%w: %s header of %d characters", ErrTooLarge, BindingHeader, len(v))
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %s header: bad base64", ErrMalformed, BindingHeader)
	}
	return b, nil
}
