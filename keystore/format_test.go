package keystore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"filippo.io/age/armor"

	"github.com/zyre-go/zyre/zre"
)

// specExample returns the ```example KIND block of spec/keystore.md.
func specExample(t testing.TB, kind string) []byte {
	t.Helper()
	b, err := os.ReadFile("../spec/keystore.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "```example "+kind+"\n")
	if !ok {
		t.Fatalf("spec/keystore.md has no example %s block", kind)
	}
	block, _, _ := strings.Cut(rest, "```")
	return []byte(block)
}

// TestSpecExamples parses the key files shown in spec/keystore.md, checks
// that they belong together, and that marshalling gives them back byte for
// byte.
func TestSpecExamples(t *testing.T) {
	pubFile, secFile := specExample(t, "public"), specExample(t, "secret")
	p, err := parsePublic(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	id, err := parseSecret(secFile)
	if err != nil {
		t.Fatal(err)
	}
	if !samePublic(p, &id.PublicIdentity) {
		t.Fatalf("spec examples disagree: %+v vs %+v", p, id.PublicIdentity)
	}
	if p.Name != "kitchen-pi" || p.UUID != zre.UUIDFromKey(p.CurveKey) || !p.Created.Equal(time.Date(2026, 11, 24, 19, 20, 48, 0, time.UTC)) {
		t.Errorf("unexpected example: %+v", p)
	}
	if got := marshalPublic(p); !bytes.Equal(got, pubFile) {
		t.Errorf("marshalPublic:\n%s\nwant\n%s", got, pubFile)
	}
	if got := marshalSecret(id); !bytes.Equal(got, secFile) {
		t.Error("marshalSecret does not reproduce the spec example")
	}
}

func TestParseKeyFileErrors(t *testing.T) {
	good := string(specExample(t, "public"))
	cases := []struct {
		name, in string
		want     error
		msg      string
	}{
		{"empty", "", ErrCorrupt, "empty"},
		{"truncated", good[:len(good)-5], ErrCorrupt, "truncated"},
		{"cut after a line", good[:strings.Index(good, "ed25519")], ErrCorrupt, `no "ed25519-public-key" field`},
		{"newer version", strings.Replace(good, "v1", "v2", 1), ErrUnsupportedVersion, "version 2"},
		{"wrong kind", strings.Replace(good, "v1 public", "v1 secret", 1), ErrCorrupt, "line 1: kind"},
		{"not ours", "hello\n", ErrCorrupt, "line 1: not a zyre key file"},
		{"unknown field", good + "colour: blue\n", ErrCorrupt, `line 8: unknown field "colour"`},
		{"duplicate", good + "name: x\n", ErrCorrupt, `line 8: duplicate field "name"`},
		{"no colon", good + "name\n", ErrCorrupt, "line 8: want"},
		{"control", strings.Replace(good, "kitchen", "kit\x00chen", 1), ErrCorrupt, "line 3: control character"},
		{"bad key", strings.Replace(good, "T1q:", "T1q~", 1), ErrCorrupt, "curve-public-key"},
		{"uuid mismatch", strings.Replace(good, "97977fd7", "97977fd8", 1), ErrCorrupt, "not the one derived"},
		{"bad time", strings.Replace(good, "2026-11-24T", "2026-13-24T", 1), ErrCorrupt, "created"},
		{"too big", good + strings.Repeat("#\n", 3000), ErrCorrupt, "at most 4096"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parsePublic([]byte(c.in))
			if !errors.Is(err, c.want) {
				t.Fatalf("parsePublic = %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q should contain %q", err, c.msg)
			}
		})
	}
	// Secret values never appear in errors.
	sec := string(specExample(t, "secret"))
	for _, bad := range []string{
		strings.Replace(sec, "<:O?oC", "<:O?o~", 1),
		strings.Replace(sec, "sROdg", "sROd~", 1),
		strings.Replace(sec, "curve-secret-key: <", "curve-secret-key: <<", 1),
	} {
		_, err := parseSecret([]byte(bad))
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("parseSecret = %v", err)
		}
		if strings.Contains(err.Error(), "<:O?o") || strings.Contains(err.Error(), "sROd") {
			t.Errorf("error leaks the secret: %v", err)
		}
	}
}

// FuzzParseKeyFile: the key-file parsers never panic, and what they accept
// marshals back to a file that parses to the same identity.
func FuzzParseKeyFile(f *testing.F) {
	pub, sec := specExample(f, "public"), specExample(f, "secret")
	for _, b := range [][]byte{pub, sec} {
		f.Add(b)
		f.Add(b[:len(b)/2])
		f.Add(b[:len(b)-1])
		f.Add(bytes.Replace(b, []byte("v1"), []byte("v99999999999999999999"), 1))
		f.Add(bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")))
		f.Add(append(bytes.Clone(b), "name: again\n"...))
	}
	f.Add([]byte("zyre-keystore v1 public\n"))
	f.Add([]byte("\xff\x00\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if p, err := parsePublic(data); err == nil {
			p2, err := parsePublic(marshalPublic(p))
			if err != nil || !samePublic(p, p2) {
				t.Fatalf("public round trip: %v", err)
			}
		} else if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedVersion) {
			t.Fatalf("unexpected error class: %v", err)
		}
		if id, err := parseSecret(data); err == nil {
			id2, err := parseSecret(marshalSecret(id))
			if err != nil || !samePublic(&id.PublicIdentity, &id2.PublicIdentity) || !id.signing.Equal(id2.signing) {
				t.Fatalf("secret round trip: %v", err)
			}
			_, a := id.CurveKeyPair()
			_, b := id2.CurveKeyPair()
			if !a.Equal(&b) {
				t.Fatal("secret key changed in round trip")
			}
		} else if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedVersion) && !errors.Is(err, ErrInvalidName) {
			t.Fatalf("unexpected error class: %v", err)
		}
	})
}

// TestOpenArmored: the ASCII-armored age form is read too (spec/keystore.md).
func TestOpenArmored(t *testing.T) {
	plain := specExample(t, "secret")
	sealed, err := Protection{Passphrase: "p", WorkFactor: 4}.seal(plain)
	if err != nil {
		t.Fatal(err)
	}
	var arm bytes.Buffer
	w := armor.NewWriter(&arm)
	w.Write(sealed)
	w.Close()
	u := Unlock{Passphrase: func(context.Context) (string, error) { return "p", nil }}
	if k, err := kindOf(arm.Bytes()); err != nil || k != KindPassphrase {
		t.Fatalf("kindOf armored = %v, %v", k, err)
	}
	got, err := u.open(context.Background(), arm.Bytes())
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open armored: %v", err)
	}
	u.Passphrase = func(context.Context) (string, error) { return "q", nil }
	if _, err := u.open(context.Background(), arm.Bytes()); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase on armored file: %v", err)
	}
}
