package keystore

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/keyid"
)

// The key-file format (spec/keystore.md, "Key files"): a first line
// "zyre-keystore v1 KIND", then one "field: value" per line, each field
// exactly once, in any order; lines starting with "#" are comments. Every
// line ends with "\n". KIND is "public" (identity.pub) or "secret" (the
// plaintext inside identity.key).
const (
	formatMagic    = "zyre-keystore"
	formatVersion  = 1
	kindPublic     = "public"
	kindSecret     = "secret"
	maxKeyFileSize = 4096
	maxKeyFileLine = 1024
)

var (
	publicFields = []string{"name", "uuid", "curve-public-key", "ed25519-public-key", "created"}
	secretFields = []string{"name", "created", "curve-secret-key", "ed25519-seed"}
)

// marshalPublic returns the public key file of p.
func marshalPublic(p *PublicIdentity) []byte {
	sk, _ := curve.EncodeZ85(p.SigningKey)
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s v%d %s\n", formatMagic, formatVersion, kindPublic)
	b.WriteString("# The public identity of a zyre node. Safe to share.\n")
	fmt.Fprintf(&b, "name: %s\n", p.Name)
	fmt.Fprintf(&b, "uuid: %s\n", p.UUID)
	fmt.Fprintf(&b, "curve-public-key: %s\n", p.CurveKey.Z85())
	fmt.Fprintf(&b, "ed25519-public-key: %s\n", sk)
	fmt.Fprintf(&b, "created: %s\n", p.Created.UTC().Format(time.RFC3339))
	return b.Bytes()
}

// marshalSecret returns the plaintext secret key file of id. The caller
// should clear it after use.
func marshalSecret(id *Identity) []byte {
	seed, _ := curve.EncodeZ85(id.signing.Seed())
	var b bytes.Buffer
	b.Grow(256)
	fmt.Fprintf(&b, "%s v%d %s\n", formatMagic, formatVersion, kindSecret)
	fmt.Fprintf(&b, "name: %s\n", id.Name)
	fmt.Fprintf(&b, "created: %s\n", id.Created.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "curve-secret-key: %s\n", id.curveSecret.Z85())
	fmt.Fprintf(&b, "ed25519-seed: %s\n", seed)
	return b.Bytes()
}

// parseRecord checks the header and returns the fields of a key file of the
// given kind. Values of a secret file never appear in errors.
func parseRecord(data []byte, kind string, fields []string) (map[string]string, error) {
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("%w: %s key file is %d octets, at most %d", ErrCorrupt, kind, len(data), maxKeyFileSize)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: %s key file is empty", ErrCorrupt, kind)
	}
	if data[len(data)-1] != '\n' {
		return nil, fmt.Errorf("%w: %s key file is truncated (no final newline)", ErrCorrupt, kind)
	}
	lines := strings.Split(string(data[:len(data)-1]), "\n")
	lineErr := func(n int, format string, args ...any) error {
		return fmt.Errorf("%w: %s key file line %d: %s", ErrCorrupt, kind, n, fmt.Sprintf(format, args...))
	}
	for i, l := range lines {
		if len(l) > maxKeyFileLine {
			return nil, lineErr(i+1, "line is %d octets, at most %d", len(l), maxKeyFileLine)
		}
		if !utf8.ValidString(l) {
			return nil, lineErr(i+1, "not UTF-8")
		}
		for _, r := range l {
			if r < 0x20 || r == 0x7f {
				return nil, lineErr(i+1, "control character %U", r)
			}
		}
	}
	hdr := strings.Fields(lines[0])
	if len(hdr) != 3 || hdr[0] != formatMagic || !strings.HasPrefix(hdr[1], "v") {
		return nil, lineErr(1, "not a zyre key file (want %q)", fmt.Sprintf("%s v%d %s", formatMagic, formatVersion, kind))
	}
	v, err := strconv.Atoi(hdr[1][1:])
	if err != nil || v < 1 {
		return nil, lineErr(1, "bad version %q", hdr[1])
	}
	if v != formatVersion {
		return nil, fmt.Errorf("%w: %s key file has version %d, this zyre reads version %d", ErrUnsupportedVersion, kind, v, formatVersion)
	}
	if hdr[2] != kind {
		return nil, lineErr(1, "kind %q, want %q", hdr[2], kind)
	}
	known := make(map[string]bool, len(fields))
	for _, f := range fields {
		known[f] = true
	}
	out := make(map[string]string, len(fields))
	for i, l := range lines[1:] {
		n := i + 2
		if strings.HasPrefix(l, "#") {
			continue
		}
		name, value, ok := strings.Cut(l, ": ")
		if !ok {
			return nil, lineErr(n, "want \"field: value\"")
		}
		if !known[name] {
			return nil, lineErr(n, "unknown field %q", name)
		}
		if _, dup := out[name]; dup {
			return nil, lineErr(n, "duplicate field %q", name)
		}
		out[name] = value
	}
	for _, f := range fields {
		if _, ok := out[f]; !ok {
			return nil, fmt.Errorf("%w: %s key file has no %q field", ErrCorrupt, kind, f)
		}
	}
	return out, nil
}

// parsePublic parses identity.pub and checks that its UUID is the one its
// CURVE key derives.
func parsePublic(data []byte) (*PublicIdentity, error) {
	f, err := parseRecord(data, kindPublic, publicFields)
	if err != nil {
		return nil, err
	}
	var p PublicIdentity
	if err := checkName(f["name"]); err != nil {
		return nil, fmt.Errorf("%w: public key file: %w", ErrCorrupt, err)
	}
	p.Name = f["name"]
	if p.UUID, err = uuid.Parse(f["uuid"]); err != nil || len(f["uuid"]) != 36 {
		return nil, fmt.Errorf("%w: public key file: bad uuid %q", ErrCorrupt, f["uuid"])
	}
	if p.CurveKey, err = curve.ParsePublicKey(f["curve-public-key"]); err != nil || len(f["curve-public-key"]) != 40 {
		return nil, fmt.Errorf("%w: public key file: bad curve-public-key: %v", ErrCorrupt, err)
	}
	sk, err := decodeKey32(f["ed25519-public-key"])
	if err != nil {
		return nil, fmt.Errorf("%w: public key file: bad ed25519-public-key: %v", ErrCorrupt, err)
	}
	p.SigningKey = ed25519.PublicKey(sk)
	if p.Created, err = parseCreated(f["created"]); err != nil {
		return nil, fmt.Errorf("%w: public key file: %v", ErrCorrupt, err)
	}
	if want := keyid.UUID(p.CurveKey); want != p.UUID {
		return nil, fmt.Errorf("%w: public key file: uuid %s is not the one derived from its key (%s)", ErrCorrupt, p.UUID, want)
	}
	return &p, nil
}

// parseSecret parses the plaintext of identity.key.
func parseSecret(data []byte) (*Identity, error) {
	f, err := parseRecord(data, kindSecret, secretFields)
	if err != nil {
		return nil, err
	}
	if err := checkName(f["name"]); err != nil {
		return nil, fmt.Errorf("%w: secret key file: %w", ErrCorrupt, err)
	}
	created, err := parseCreated(f["created"])
	if err != nil {
		return nil, fmt.Errorf("%w: secret key file: %v", ErrCorrupt, err)
	}
	if len(f["curve-secret-key"]) != 40 {
		return nil, fmt.Errorf("%w: secret key file: bad curve-secret-key", ErrCorrupt)
	}
	cs, err := curve.ParseSecretKey(f["curve-secret-key"])
	if err != nil {
		return nil, fmt.Errorf("%w: secret key file: bad curve-secret-key", ErrCorrupt)
	}
	seed, err := decodeKey32(f["ed25519-seed"])
	if err != nil {
		return nil, fmt.Errorf("%w: secret key file: bad ed25519-seed", ErrCorrupt)
	}
	defer clear(seed)
	return newIdentity(f["name"], created, cs, seed)
}

// decodeKey32 decodes a 40-character Z85 key of 32 octets.
func decodeKey32(s string) ([]byte, error) {
	if len(s) != 40 {
		return nil, fmt.Errorf("%d characters, want 40 (Z85)", len(s))
	}
	b, err := curve.DecodeZ85(s)
	if err != nil {
		return nil, fmt.Errorf("not Z85")
	}
	return b, nil
}

func parseCreated(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad created time %q", s)
	}
	return t.UTC(), nil
}
