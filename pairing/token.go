package pairing

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/netip"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/zre"
)

// Token sizes and limits (see spec/pairing.md).
const (
	TokenVersion = 1  // the only version this package reads and writes
	IDSize       = 8  // octets of a token id
	SecretSize   = 16 // octets of the one-time secret (128 bits)
	MaxHints     = 4  // endpoint hints in one token
	checksumSize = 4
	// fixed part: version, flags, id, key, uuid, secret, expiry, hint count
	tokenFixed    = 1 + 1 + IDSize + curve.KeySize + 16 + SecretSize + 8 + 1
	minTokenBytes = tokenFixed + checksumSize
	maxTokenBytes = tokenFixed + MaxHints*(1+16+2) + checksumSize
	// MaxTokenText bounds the text ParseToken looks at, separators included.
	MaxTokenText = 512
	// Scheme is the URI scheme of a token, in upper case so that the whole
	// URI fits the QR alphanumeric mode. It is matched case-insensitively.
	Scheme = "ZYRE"
	// DefaultTTL is how long a new token stays valid.
	DefaultTTL = 5 * time.Minute
	// CodeDigits is the number of decimal digits of a short code (39.8 bits).
	CodeDigits = 12
)

// Errors callers can branch on with errors.Is. Every error of this package
// wraps one of them.
var (
	// ErrBadToken: the text is not a well-formed pairing token.
	ErrBadToken = errors.New("pairing: bad token")
	// ErrChecksum: the token's checksum does not match; it was mistyped or
	// damaged. It wraps ErrBadToken too.
	ErrChecksum = errors.New("pairing: token: checksum mismatch (mistyped or damaged token)")
	// ErrBadCode: the short code is not CodeDigits digits.
	ErrBadCode = errors.New("pairing: bad short code")
	// ErrExpired: the token (and its short code) expired.
	ErrExpired = errors.New("pairing: token expired")
	// ErrUsed: the token already paired a device; tokens are single use.
	ErrUsed = errors.New("pairing: token already used")
	// ErrBurnt: too many failed attempts; the token was destroyed.
	ErrBurnt = errors.New("pairing: token burnt after too many failed attempts")
	// ErrBadProof: the proof of the one-time secret is wrong.
	ErrBadProof = errors.New("pairing: wrong proof of the pairing secret")
	// ErrCodeUsed: the short code was already tried once (one attempt per code).
	ErrCodeUsed = errors.New("pairing: short code already used")
	// ErrWrongCode: the PAKE key confirmation failed: the code was mistyped,
	// or someone is in the middle.
	ErrWrongCode = errors.New("pairing: wrong short code or man in the middle (key confirmation failed)")
	// ErrHandshake: the CURVE handshake with the displayer failed; the peer
	// at the endpoint does not hold the key in the token.
	ErrHandshake = errors.New("pairing: the displayer did not prove the key in the token")
	// ErrUnreachable: no endpoint answered in time.
	ErrUnreachable = errors.New("pairing: displayer unreachable")
	// ErrProtocol: a malformed or unexpected pairing message.
	ErrProtocol = errors.New("pairing: protocol error")
	// ErrRefused: the other side or the local user declined the pairing,
	// or recording it failed.
	ErrRefused = errors.New("pairing: refused")
	// ErrExposed: more than one device tried this token or short code
	// during one pairing window (someone else may have seen the screen),
	// and the displayer's user picked none of them, or nobody could be
	// asked (spec/pairing.md, "Exposure").
	ErrExposed = errors.New("pairing: more than one device tried this code or token")
	// ErrNoIdentity: Options.Identity is nil.
	ErrNoIdentity = errors.New("pairing: no identity")
)

// b32 is RFC 4648 base32, upper case, without padding.
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Token is what a displayer shows: everything a scanner needs to reach it
// and to prove that it saw the token. The one-time secret and the short
// code are unexported and never printed by String or fmt.
type Token struct {
	// ID names the token (random, public within the CURVE channel).
	ID [IDSize]byte
	// Key is the displayer's long-term CURVE public key.
	Key curve.PublicKey
	// UUID is the displayer's ZRE UUID, zre.UUIDFromKey(Key).
	UUID uuid.UUID
	// Expires is when the token stops being accepted (whole seconds).
	Expires time.Time
	// Hints are TCP endpoints where the displayer listens.
	Hints []netip.AddrPort

	secret [SecretSize]byte
	code   string // short code; not part of the URI
}

// String describes the token without its secret.
func (t Token) String() string {
	return fmt.Sprintf("pairing.Token{id=%s key=%s expires=%s hints=%v}", hex.EncodeToString(t.ID[:]), t.Key, t.Expires.UTC().Format(time.RFC3339), t.Hints)
}

// GoString is String: a token never prints its secret.
func (t Token) GoString() string { return t.String() }

// ShortCode returns the short code that goes with the token, formatted in
// groups of four digits ("1234-5678-9012"); it is empty for a token parsed
// from a URI, which does not carry it.
func (t Token) ShortCode() string {
	if len(t.code) != CodeDigits {
		return ""
	}
	return t.code[0:4] + "-" + t.code[4:8] + "-" + t.code[8:12]
}

// URI returns the token as "ZYRE:" followed by the base32 text of its
// binary form. It contains the one-time secret: show it only to the person
// pairing.
func (t Token) URI() string {
	return Scheme + ":" + b32.EncodeToString(t.marshal())
}

// marshal returns the binary form (layout in spec/pairing.md).
func (t Token) marshal() []byte {
	b := make([]byte, 0, maxTokenBytes)
	b = append(b, TokenVersion, 0)
	b = append(b, t.ID[:]...)
	b = append(b, t.Key.Bytes()...)
	b = append(b, t.UUID[:]...)
	b = append(b, t.secret[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(t.Expires.Unix()))
	hints := t.Hints
	if len(hints) > MaxHints {
		hints = hints[:MaxHints]
	}
	b = append(b, byte(len(hints)))
	for _, h := range hints {
		a := h.Addr().Unmap()
		if a.Is4() {
			b = append(b, 4)
			a4 := a.As4()
			b = append(b, a4[:]...)
		} else {
			b = append(b, 6)
			a16 := a.As16()
			b = append(b, a16[:]...)
		}
		b = binary.BigEndian.AppendUint16(b, h.Port())
	}
	sum := sha256.Sum256(b)
	return append(b, sum[:checksumSize]...)
}

func tokenErr(format string, args ...any) error {
	return fmt.Errorf("pairing: token: "+format+": %w", append(args, ErrBadToken)...)
}

// ParseToken parses a token from its URI ("ZYRE:..." or "zyre:...", or
// the bare base32 text). Spaces, line breaks and dashes between characters
// are ignored so that a typed token may be grouped. It checks the checksum
// first (ErrChecksum for a mistyped token), then every field; it never
// panics and reads at most MaxTokenText characters. It does not check the
// expiry: the caller compares Expires with its clock.
func ParseToken(s string) (Token, error) {
	if len(s) > MaxTokenText {
		return Token{}, tokenErr("%d characters, at most %d", len(s), MaxTokenText)
	}
	s = strings.TrimSpace(s)
	if scheme, rest, ok := strings.Cut(s, ":"); ok {
		if !strings.EqualFold(scheme, Scheme) {
			return Token{}, tokenErr("scheme %q, want %q", truncate(scheme, 16), Scheme)
		}
		s = rest
	}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '-':
			continue
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		case c >= 'A' && c <= 'Z', c >= '2' && c <= '7':
		default:
			return Token{}, tokenErr("character %q at offset %d is not base32", rune(c), i)
		}
		sb.WriteByte(c)
	}
	text := sb.String()
	if text == "" {
		return Token{}, tokenErr("empty")
	}
	b, err := b32.DecodeString(text)
	if err != nil {
		return Token{}, tokenErr("base32: %v", err)
	}
	return parseBinary(b)
}

func parseBinary(b []byte) (Token, error) {
	if len(b) < minTokenBytes {
		return Token{}, tokenErr("%d octets, at least %d (truncated token?)", len(b), minTokenBytes)
	}
	if len(b) > maxTokenBytes {
		return Token{}, tokenErr("%d octets, at most %d", len(b), maxTokenBytes)
	}
	body, sum := b[:len(b)-checksumSize], b[len(b)-checksumSize:]
	want := sha256.Sum256(body)
	if [checksumSize]byte(sum) != [checksumSize]byte(want[:checksumSize]) {
		return Token{}, fmt.Errorf("%w: %w", ErrChecksum, ErrBadToken)
	}
	if body[0] != TokenVersion {
		return Token{}, tokenErr("version %d, this zyre reads version %d", body[0], TokenVersion)
	}
	if body[1] != 0 {
		return Token{}, tokenErr("unknown flags %#02x", body[1])
	}
	var t Token
	off := 2
	copy(t.ID[:], body[off:])
	off += IDSize
	key, err := curve.NewPublicKey(body[off : off+curve.KeySize])
	if err != nil {
		return Token{}, tokenErr("key: %v", err)
	}
	if key.IsZero() {
		return Token{}, tokenErr("zero key")
	}
	t.Key = key
	off += curve.KeySize
	copy(t.UUID[:], body[off:])
	off += 16
	if !zre.IsBound(t.UUID, t.Key) {
		return Token{}, tokenErr("uuid %s is not derived from the key", t.UUID)
	}
	copy(t.secret[:], body[off:])
	off += SecretSize
	exp := binary.BigEndian.Uint64(body[off:])
	off += 8
	if exp == 0 || exp > 1<<40 {
		return Token{}, tokenErr("expiry %d out of range", exp)
	}
	t.Expires = time.Unix(int64(exp), 0).UTC()
	n := int(body[off])
	off++
	if n > MaxHints {
		return Token{}, tokenErr("%d endpoint hints, at most %d", n, MaxHints)
	}
	for i := 0; i < n; i++ {
		if off >= len(body) {
			return Token{}, tokenErr("hint %d: truncated", i)
		}
		kind := body[off]
		off++
		var alen int
		switch kind {
		case 4:
			alen = 4
		case 6:
			alen = 16
		default:
			return Token{}, tokenErr("hint %d: unknown address kind %d", i, kind)
		}
		if len(body)-off < alen+2 {
			return Token{}, tokenErr("hint %d: truncated", i)
		}
		a, _ := netip.AddrFromSlice(body[off : off+alen])
		off += alen
		port := binary.BigEndian.Uint16(body[off:])
		off += 2
		if port == 0 {
			return Token{}, tokenErr("hint %d: port 0", i)
		}
		if !a.IsValid() || a.Unmap().IsUnspecified() {
			return Token{}, tokenErr("hint %d: unusable address %s", i, a)
		}
		if a.Is4In6() {
			return Token{}, tokenErr("hint %d: IPv4-mapped address %s in an IPv6 hint", i, a)
		}
		t.Hints = append(t.Hints, netip.AddrPortFrom(a, port))
	}
	if off != len(body) {
		return Token{}, tokenErr("%d trailing octets", len(body)-off)
	}
	return t, nil
}

// newToken makes a token for the given key with fresh id, secret and code.
func newToken(r io.Reader, key curve.PublicKey, expires time.Time, hints []netip.AddrPort) (Token, error) {
	if r == nil {
		r = rand.Reader
	}
	t := Token{Key: key, UUID: zre.UUIDFromKey(key), Expires: time.Unix(expires.Unix(), 0).UTC()}
	if len(hints) > MaxHints {
		hints = hints[:MaxHints]
	}
	t.Hints = append([]netip.AddrPort(nil), hints...)
	if _, err := io.ReadFull(r, t.ID[:]); err != nil {
		return Token{}, fmt.Errorf("pairing: token id: %w", err)
	}
	if _, err := io.ReadFull(r, t.secret[:]); err != nil {
		return Token{}, fmt.Errorf("pairing: token secret: %w", err)
	}
	code, err := newShortCode(r)
	if err != nil {
		return Token{}, err
	}
	t.code = code
	return t, nil
}

// newShortCode draws a short code (CodeDigits digits) from r (nil:
// crypto/rand).
func newShortCode(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	max := new(big.Int).Exp(big.NewInt(10), big.NewInt(CodeDigits), nil)
	n, err := rand.Int(r, max)
	if err != nil {
		return "", fmt.Errorf("pairing: short code: %w", err)
	}
	return fmt.Sprintf("%0*d", CodeDigits, n), nil
}

// formatCode groups a short code's digits as people read them:
// 1234-5678-9012.
func formatCode(code string) string {
	if len(code) != CodeDigits {
		return code
	}
	return code[0:4] + "-" + code[4:8] + "-" + code[8:12]
}

// NormalizeCode returns the CodeDigits digits of a short code typed with
// any spaces or dashes, or an error wrapping ErrBadCode.
func NormalizeCode(code string) (string, error) {
	if len(code) > 64 {
		return "", fmt.Errorf("%w: %d characters", ErrBadCode, len(code))
	}
	var sb strings.Builder
	for _, c := range code {
		switch {
		case c == ' ' || c == '-' || c == '\t':
		case c >= '0' && c <= '9':
			sb.WriteRune(c)
		default:
			return "", fmt.Errorf("%w: %q is not a digit", ErrBadCode, c)
		}
	}
	if sb.Len() != CodeDigits {
		return "", fmt.Errorf("%w: %d digits, want %d", ErrBadCode, sb.Len(), CodeDigits)
	}
	return sb.String(), nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
