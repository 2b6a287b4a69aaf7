package keystore

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zyre-go/zyre/curve"
)

// Limits of ParseZcert. czmq itself truncates lines at 1024 octets.
const (
	MaxZcertSize  = 64 << 10
	MaxZcertLines = 1024
	maxZcertLine  = 1024
	maxZcertMeta  = 256
)

// MetaItem is one "name = value" pair of a zcert's metadata section.
type MetaItem struct {
	Name, Value string
}

// Zcert is a czmq CURVE certificate (czmq's zcert_t): a ZPL text file
// (ZeroMQ RFC 4) with a "metadata" section of name/value pairs and a
// "curve" section holding "public-key" and, in the secret file
// ("NAME_secret"), "secret-key", both in Z85.
type Zcert struct {
	// Metadata in file order. Names are unique.
	Metadata []MetaItem
	// PublicKey is the certificate's CURVE public key.
	PublicKey curve.PublicKey
	// SecretKey is nil for a public certificate. When set, it matches
	// PublicKey.
	SecretKey *curve.SecretKey
}

// Meta returns the value of the named metadata item and whether it exists.
func (z *Zcert) Meta(name string) (string, bool) {
	for _, m := range z.Metadata {
		if m.Name == name {
			return m.Value, true
		}
	}
	return "", false
}

// zplNode is a parsed ZPL line: a name, an optional value, its children.
type zplNode struct {
	name, value string
	hasValue    bool
	line        int
	children    []*zplNode
}

func zcertErr(line int, format string, args ...any) error {
	return fmt.Errorf("%w line %d: %s", ErrZcert, line, fmt.Sprintf(format, args...))
}

// isZPLNameChar reports the characters czmq's zconfig accepts in a name.
func isZPLNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("$-_@.&+/", c) >= 0
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' }

// parseZPL parses the ZPL subset czmq writes and reads, strictly: 4-space
// indentation, names of zconfig's name characters, values quoted with " or
// ' (no escapes) or bare up to a "#" comment. It returns the root's children.
func parseZPL(data []byte) ([]*zplNode, error) {
	if len(data) > MaxZcertSize {
		return nil, fmt.Errorf("%w: file is larger than %d octets", ErrZcert, MaxZcertSize)
	}
	root := &zplNode{}
	// stack[i] is the last node at depth i (0 = root).
	stack := []*zplNode{root}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), MaxZcertSize+1)
	n := 0
	for sc.Scan() {
		n++
		if n > MaxZcertLines {
			return nil, fmt.Errorf("%w: more than %d lines", ErrZcert, MaxZcertLines)
		}
		raw := sc.Bytes()
		if len(raw) > maxZcertLine {
			return nil, zcertErr(n, "line is %d octets, at most %d", len(raw), maxZcertLine)
		}
		if !utf8.Valid(raw) {
			return nil, zcertErr(n, "not UTF-8")
		}
		l := strings.TrimRightFunc(string(raw), func(r rune) bool { return r < 0x80 && isSpace(byte(r)) })
		for _, r := range l {
			if (r < 0x20 && r != '\t') || r == 0x7f {
				return nil, zcertErr(n, "control character %U", r)
			}
		}
		indent := len(l) - len(strings.TrimLeft(l, " "))
		rest := l[indent:]
		if rest == "" || rest[0] == '#' {
			continue // blank line or comment
		}
		if indent%4 != 0 {
			return nil, zcertErr(n, "indent %d spaces: indent by 4 spaces at a time", indent)
		}
		level := indent/4 + 1
		if level > 3 {
			return nil, zcertErr(n, "nested too deep")
		}
		if level > len(stack) {
			return nil, zcertErr(n, "indentation error: no parent at depth %d", level-1)
		}
		i := 0
		for i < len(rest) && isZPLNameChar(rest[i]) {
			i++
		}
		name := rest[:i]
		if name == "" {
			return nil, zcertErr(n, "invalid syntax: want a name")
		}
		if name[0] == '/' || name[len(name)-1] == '/' {
			return nil, zcertErr(n, "'/' not valid at name start or end")
		}
		node := &zplNode{name: name, line: n}
		rest = strings.TrimLeft(rest[i:], " \t")
		switch {
		case rest == "" || rest[0] == '#':
		case rest[0] == '=':
			rest = strings.TrimLeft(rest[1:], " \t")
			node.hasValue = true
			if rest != "" && (rest[0] == '"' || rest[0] == '\'') {
				end := strings.IndexByte(rest[1:], rest[0])
				if end < 0 {
					return nil, zcertErr(n, "missing closing %c", rest[0])
				}
				node.value = rest[1 : 1+end]
				tail := strings.TrimLeft(rest[2+end:], " \t")
				if tail != "" && tail[0] != '#' {
					return nil, zcertErr(n, "invalid syntax after value")
				}
			} else {
				v, _, _ := strings.Cut(rest, "#")
				node.value = strings.TrimRight(v, " \t")
			}
		default:
			return nil, zcertErr(n, "invalid syntax: want \"name = value\"")
		}
		parent := stack[level-1]
		parent.children = append(parent.children, node)
		stack = append(stack[:level], node)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w line %d: %v", ErrZcert, n+1, err)
	}
	return root.children, nil
}

// ParseZcert reads a czmq certificate, public or secret, of at most
// MaxZcertSize octets. It accepts what czmq's zcert_save writes and rejects,
// with the line number, anything czmq would reject or misread: bad ZPL,
// unknown sections or curve fields, duplicates, keys that are not 40
// characters of Z85, a secret key that does not match the public key.
// Errors wrap ErrZcert and never contain the secret key.
func ParseZcert(r io.Reader) (*Zcert, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxZcertSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: failed to read: %w", ErrZcert, err)
	}
	defer clear(data)
	nodes, err := parseZPL(data)
	if err != nil {
		return nil, err
	}
	z := &Zcert{}
	var sawMeta, sawCurve, sawPublic bool
	for _, s := range nodes {
		if s.hasValue && s.value != "" {
			return nil, zcertErr(s.line, "section %q has a value", s.name)
		}
		switch s.name {
		case "metadata":
			if sawMeta {
				return nil, zcertErr(s.line, "duplicate section \"metadata\"")
			}
			sawMeta = true
			if len(s.children) > maxZcertMeta {
				return nil, zcertErr(s.line, "more than %d metadata items", maxZcertMeta)
			}
			seen := map[string]bool{}
			for _, m := range s.children {
				if len(m.children) > 0 {
					return nil, zcertErr(m.children[0].line, "metadata item %q has children", m.name)
				}
				if seen[m.name] {
					return nil, zcertErr(m.line, "duplicate metadata %q", m.name)
				}
				seen[m.name] = true
				z.Metadata = append(z.Metadata, MetaItem{Name: m.name, Value: m.value})
			}
		case "curve":
			if sawCurve {
				return nil, zcertErr(s.line, "duplicate section \"curve\"")
			}
			sawCurve = true
			var secretText string
			var secretLine int
			for _, k := range s.children {
				if len(k.children) > 0 {
					return nil, zcertErr(k.children[0].line, "curve field %q has children", k.name)
				}
				switch k.name {
				case "public-key":
					if sawPublic {
						return nil, zcertErr(k.line, "duplicate public-key")
					}
					sawPublic = true
					if len(k.value) != 40 {
						return nil, zcertErr(k.line, "public-key is %d characters, want 40 (Z85)", len(k.value))
					}
					pk, err := curve.ParsePublicKey(k.value)
					if err != nil {
						return nil, zcertErr(k.line, "public-key: %v", err)
					}
					z.PublicKey = pk
				case "secret-key":
					if secretLine != 0 {
						return nil, zcertErr(k.line, "duplicate secret-key")
					}
					secretText, secretLine = k.value, k.line
				default:
					return nil, zcertErr(k.line, "unknown curve field %q", k.name)
				}
			}
			if !sawPublic {
				return nil, zcertErr(s.line, "curve section has no public-key")
			}
			if secretLine != 0 {
				if len(secretText) != 40 {
					return nil, zcertErr(secretLine, "secret-key is %d characters, want 40 (Z85)", len(secretText))
				}
				sk, err := curve.ParseSecretKey(secretText)
				if err != nil {
					return nil, zcertErr(secretLine, "secret-key is not valid Z85")
				}
				if sk.IsZero() {
					return nil, zcertErr(secretLine, "secret-key is all zeros (czmq built without CURVE?)")
				}
				if !sk.Public().Equal(z.PublicKey) {
					return nil, zcertErr(secretLine, "secret-key does not match public-key")
				}
				z.SecretKey = &sk
			}
		default:
			return nil, zcertErr(s.line, "unknown section %q (want metadata or curve)", s.name)
		}
	}
	if !sawCurve {
		return nil, fmt.Errorf("%w: no curve section (is this a czmq certificate?)", ErrZcert)
	}
	return z, nil
}

// checkMetaItem reports whether czmq can read back a metadata item as we
// write it.
func checkMetaItem(m MetaItem) error {
	if m.Name == "" || m.Name[0] == '/' || m.Name[len(m.Name)-1] == '/' {
		return fmt.Errorf("%w: bad metadata name %q", ErrZcert, m.Name)
	}
	for i := 0; i < len(m.Name); i++ {
		if !isZPLNameChar(m.Name[i]) {
			return fmt.Errorf("%w: bad metadata name %q", ErrZcert, m.Name)
		}
	}
	if strings.ContainsAny(m.Value, "\"\n\r") || !utf8.ValidString(m.Value) {
		return fmt.Errorf("%w: metadata %q: value cannot be written in ZPL", ErrZcert, m.Name)
	}
	for _, r := range m.Value {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return fmt.Errorf("%w: metadata %q: value has a control character", ErrZcert, m.Name)
		}
	}
	if 4+len(m.Name)+4+len(m.Value)+1 > maxZcertLine {
		return fmt.Errorf("%w: metadata %q is too long for czmq", ErrZcert, m.Name)
	}
	return nil
}

// Write writes z in czmq's format, as zcert_save_public (public true, or z
// has no secret key) or zcert_save_secret would; generated is the time in
// the header comment.
func (z *Zcert) Write(w io.Writer, public bool, generated time.Time) error {
	if z.SecretKey == nil {
		public = true
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "#   ****  Generated on %s by zyre  ****\n", generated.Format("2006-01-02 15:04:05"))
	if public {
		b.WriteString("#   ZeroMQ CURVE Public Certificate\n" +
			"#   Exchange securely, or use a secure mechanism to verify the contents\n" +
			"#   of this file after exchange. Store public certificates in your home\n" +
			"#   directory, in the .curve subdirectory.\n")
	} else {
		b.WriteString("#   ZeroMQ CURVE **Secret** Certificate\n" +
			"#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n")
	}
	b.WriteString("\nmetadata\n")
	seen := map[string]bool{}
	for _, m := range z.Metadata {
		if err := checkMetaItem(m); err != nil {
			return err
		}
		if seen[m.Name] {
			return fmt.Errorf("%w: duplicate metadata %q", ErrZcert, m.Name)
		}
		seen[m.Name] = true
		fmt.Fprintf(&b, "    %s = \"%s\"\n", m.Name, m.Value)
	}
	b.WriteString("curve\n")
	fmt.Fprintf(&b, "    public-key = \"%s\"\n", z.PublicKey.Z85())
	if !public {
		fmt.Fprintf(&b, "    secret-key = \"%s\"\n", z.SecretKey.Z85())
	}
	_, err := w.Write(b.Bytes())
	clear(b.Bytes())
	if err != nil {
		return fmt.Errorf("keystore: failed to write zcert: %w", err)
	}
	return nil
}

// newSecretCopy copies a secret key (curve.SecretKey has no copy method).
func newSecretCopy(k *curve.SecretKey) (curve.SecretKey, error) {
	b := k.Bytes()
	defer clear(b)
	return curve.NewSecretKey(b)
}

// zcertMetadata is the metadata we export: name, uuid, created.
func (p *PublicIdentity) zcertMetadata() []MetaItem {
	return []MetaItem{
		{"name", p.Name},
		{"uuid", p.UUID.String()},
		{"created", p.Created.UTC().Format(time.RFC3339)},
	}
}

// Zcert returns p as a public czmq certificate.
func (p *PublicIdentity) Zcert() *Zcert {
	return &Zcert{Metadata: p.zcertMetadata(), PublicKey: p.CurveKey}
}

// ExportZcert writes p as a public czmq certificate (what zcert_save_public
// writes), to share.
func (p *PublicIdentity) ExportZcert(w io.Writer) error {
	return p.Zcert().Write(w, true, time.Now())
}

// Zcert returns id as a czmq certificate with its secret key. Wipe the
// certificate's SecretKey when done.
func (id *Identity) Zcert() *Zcert {
	sk, _ := newSecretCopy(&id.curveSecret)
	return &Zcert{Metadata: id.zcertMetadata(), PublicKey: id.CurveKey, SecretKey: &sk}
}

// ExportZcert writes id as a czmq certificate: the secret one (what
// zcert_save_secret writes; czmq loads it with zcert_load), or with public
// set the public one.
func (id *Identity) ExportZcert(w io.Writer, public bool) error {
	z := id.Zcert()
	defer z.SecretKey.Wipe()
	return z.Write(w, public, time.Now())
}
