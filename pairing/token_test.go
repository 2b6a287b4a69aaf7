package pairing

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/zyre-go/zyre/curve"
)

func testToken(t testing.TB, hints ...string) Token {
	t.Helper()
	pub, _, err := curve.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	var hs []netip.AddrPort
	for _, h := range hints {
		hs = append(hs, netip.MustParseAddrPort(h))
	}
	tok, err := newToken(nil, pub, time.Unix(1_900_000_000, 0), hs)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestTokenRoundTrip(t *testing.T) {
	tok := testToken(t, "127.0.0.1:5670", "[::1]:49152", "192.168.1.20:1")
	uri := tok.URI()
	if !strings.HasPrefix(uri, "ZYRE:") || strings.ToUpper(uri) != uri {
		t.Fatalf("URI %q is not upper case with the ZYRE scheme", uri)
	}
	for _, c := range uri {
		if !strings.ContainsRune("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:", c) {
			t.Fatalf("URI character %q is outside the QR alphanumeric set", c)
		}
	}
	for _, text := range []string{uri, strings.ToLower(uri), uri[5:], "  " + uri[:20] + "\n" + uri[20:40] + "-" + uri[40:] + " "} {
		got, err := ParseToken(text)
		if err != nil {
			t.Fatalf("ParseToken(%q): %v", text, err)
		}
		if got.ID != tok.ID || got.Key != tok.Key || got.UUID != tok.UUID || got.secret != tok.secret || !got.Expires.Equal(tok.Expires) || len(got.Hints) != 3 {
			t.Fatalf("round trip: got %v, want %v", got, tok)
		}
		for i := range got.Hints {
			if got.Hints[i] != tok.Hints[i] {
				t.Fatalf("hint %d: %v, want %v", i, got.Hints[i], tok.Hints[i])
			}
		}
		if got.ShortCode() != "" {
			t.Fatal("a parsed token carries no short code")
		}
	}
	if s := tok.String(); strings.Contains(s, b32.EncodeToString(tok.secret[:])[:8]) {
		t.Fatalf("String leaks the secret: %s", s)
	}
	if c := tok.ShortCode(); len(c) != 14 || c[4] != '-' || c[9] != '-' {
		t.Fatalf("short code %q", c)
	}
	if n, err := NormalizeCode(tok.ShortCode()); err != nil || n != tok.code {
		t.Fatalf("NormalizeCode: %q %v", n, err)
	}
}

// reseal recomputes the checksum of a binary token body.
func reseal(body []byte) string {
	sum := sha256.Sum256(body)
	return Scheme + ":" + b32.EncodeToString(append(bytes.Clone(body), sum[:checksumSize]...))
}

func TestParseTokenBad(t *testing.T) {
	tok := testToken(t, "127.0.0.1:5670")
	good := tok.marshal()
	body := good[:len(good)-checksumSize]
	uri := tok.URI()
	mod := func(f func(b []byte) []byte) string { return reseal(f(bytes.Clone(body))) }
	typo := []byte(uri)
	if typo[30] == 'A' {
		typo[30] = 'B'
	} else {
		typo[30] = 'A'
	}
	tests := []struct {
		name, in string
		want     error
		text     string
	}{
		{"empty", "", ErrBadToken, "empty"},
		{"scheme only", "ZYRE:", ErrBadToken, "empty"},
		{"other scheme", "http:" + uri[5:], ErrBadToken, "scheme"},
		{"typo", string(typo), ErrChecksum, "mistyped"},
		{"not base32", uri[:40] + "1" + uri[41:], ErrBadToken, "not base32"},
		{"truncated", uri[:60], ErrBadToken, "octets"},
		{"too long", uri + strings.Repeat("A", MaxTokenText), ErrBadToken, "characters"},
		{"version", mod(func(b []byte) []byte { b[0] = 2; return b }), ErrBadToken, "version 2"},
		{"flags", mod(func(b []byte) []byte { b[1] = 1; return b }), ErrBadToken, "flags"},
		{"zero key", mod(func(b []byte) []byte { clear(b[10:42]); return b }), ErrBadToken, "zero key"},
		{"uuid not bound", mod(func(b []byte) []byte { b[42] ^= 1; return b }), ErrBadToken, "not derived"},
		{"zero expiry", mod(func(b []byte) []byte { clear(b[74:82]); return b }), ErrBadToken, "expiry"},
		{"too many hints", mod(func(b []byte) []byte { b[82] = MaxHints + 1; return b }), ErrBadToken, "at most"},
		{"hint kind", mod(func(b []byte) []byte { b[83] = 5; return b }), ErrBadToken, "address kind"},
		{"hint truncated", mod(func(b []byte) []byte { return b[:len(b)-1] }), ErrBadToken, "truncated"},
		{"port zero", mod(func(b []byte) []byte { b[len(b)-1], b[len(b)-2] = 0, 0; return b }), ErrBadToken, "port 0"},
		{"unspecified", mod(func(b []byte) []byte { clear(b[84:88]); return b }), ErrBadToken, "unusable"},
		{"mapped v4 in v6", mod(func(b []byte) []byte {
			b[83] = 6
			h := netip.MustParseAddr("::ffff:10.0.0.1").As16()
			return append(append(b[:84], h[:]...), 0x16, 0x26)
		}), ErrBadToken, "IPv4-mapped"},
		{"trailing", mod(func(b []byte) []byte { return append(b, 0) }), ErrBadToken, "trailing"},
		{"hint count low", mod(func(b []byte) []byte { b[82] = 0; return b }), ErrBadToken, "trailing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseToken(tt.in)
			if !errors.Is(err, tt.want) || !errors.Is(err, ErrBadToken) {
				t.Fatalf("ParseToken: %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "pairing: token: ") || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("error %q should start with %q and mention %q", err, "pairing: token: ", tt.text)
			}
		})
	}
}

func TestNormalizeCodeBad(t *testing.T) {
	for _, in := range []string{"", "1234", "1234-5678-901", "1234-5678-90123", "1234-5678-901x", strings.Repeat("1", 100)} {
		if _, err := NormalizeCode(in); !errors.Is(err, ErrBadCode) {
			t.Errorf("NormalizeCode(%q): %v, want ErrBadCode", in, err)
		}
	}
	if c, err := NormalizeCode(" 0000 0000-0007 "); err != nil || c != "000000000007" {
		t.Errorf("NormalizeCode: %q %v", c, err)
	}
}

func FuzzParseToken(f *testing.F) {
	tok := testToken(f, "127.0.0.1:5670", "[fe80::1]:9")
	f.Add(tok.URI())
	f.Add(testToken(f).URI())
	f.Add(strings.ToLower(tok.URI()))
	f.Add("ZYRE:")
	f.Add("zyre:AAAA")
	f.Add("")
	f.Add(tok.URI()[:50])
	f.Add(tok.URI() + "AAAAAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err != nil {
			if !errors.Is(err, ErrBadToken) {
				t.Fatalf("error %v does not wrap ErrBadToken", err)
			}
			return
		}
		// What parses re-encodes to a token that parses the same.
		again, err := ParseToken(tok.URI())
		if err != nil {
			t.Fatalf("re-parse of %q: %v", tok.URI(), err)
		}
		if !bytes.Equal(again.marshal(), tok.marshal()) {
			t.Fatalf("round trip changed the token")
		}
	})
}

func TestHintsFor(t *testing.T) {
	got := hintsFor(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5670})
	if len(got) != 1 || got[0] != netip.MustParseAddrPort("127.0.0.1:5670") {
		t.Fatalf("hints for a loopback listener: %v", got)
	}
	// On all interfaces: this host's addresses (none may exist in a
	// sandbox), never loopback or unspecified, at most MaxHints.
	all := hintsFor(&net.TCPAddr{IP: net.IPv4zero, Port: 5670})
	if len(all) > MaxHints {
		t.Fatalf("%d hints", len(all))
	}
	for _, h := range all {
		if h.Port() != 5670 || h.Addr().IsLoopback() || h.Addr().IsUnspecified() {
			t.Fatalf("bad hint %v", h)
		}
	}
}

// FuzzParseTokenBody fuzzes the fields behind the checksum: it seals any
// body with a correct checksum, so the fuzzer gets past it.
func FuzzParseTokenBody(f *testing.F) {
	for _, tok := range []Token{testToken(f), testToken(f, "127.0.0.1:5670", "[::1]:1", "10.1.2.3:4", "[2001:db8::1]:65535")} {
		b := tok.marshal()
		f.Add(b[:len(b)-checksumSize])
	}
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, body []byte) {
		tok, err := ParseToken(reseal(body))
		if err != nil {
			if !errors.Is(err, ErrBadToken) || errors.Is(err, ErrChecksum) {
				t.Fatalf("error %v: want ErrBadToken, never ErrChecksum", err)
			}
			return
		}
		b := tok.marshal()
		if !bytes.Equal(b[:len(b)-checksumSize], body) {
			t.Fatalf("round trip changed the token:\n in %x\nout %x", body, b[:len(b)-checksumSize])
		}
	})
}
