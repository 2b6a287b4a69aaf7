package keystore_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/testenv"
	"github.com/zyre-go/zyre/keystore"
)

// buildCZMQHelper compiles testdata/NAME.c against the real libczmq.
func buildCZMQHelper(t *testing.T, name string) string {
	t.Helper()
	return testenv.BuildCZMQ(t, name)
}

// TestReadRealCZMQ has the real czmq write a certificate (zcert_new,
// zcert_set_meta, zcert_save) and checks we read both files and import the
// secret one.
func TestReadRealCZMQ(t *testing.T) {
	bin := buildCZMQHelper(t, "czmq_save")
	dir := t.TempDir()
	path := filepath.Join(dir, "node.cert")
	out, err := exec.Command(bin, path, "name=Kitchen Pi", "email=ops@example.org", "note=it's ok").Output()
	if err != nil {
		t.Fatalf("czmq_save: %v", err)
	}
	keys := strings.Fields(string(out))
	if len(keys) != 2 {
		t.Fatalf("czmq_save printed %q", out)
	}
	wantPub, wantSec := keys[0], keys[1]

	for _, f := range []string{path, path + "_secret"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		z, err := keystore.ParseZcert(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v\n%s", f, err, b)
		}
		if z.PublicKey.Z85() != wantPub {
			t.Errorf("%s: public key %s, want %s", f, z.PublicKey.Z85(), wantPub)
		}
		secret := strings.HasSuffix(f, "_secret")
		if secret != (z.SecretKey != nil) {
			t.Fatalf("%s: secret key present = %v", f, z.SecretKey != nil)
		}
		if secret && z.SecretKey.Z85() != wantSec {
			t.Errorf("%s: secret key differs", f)
		}
		for name, want := range map[string]string{"name": "Kitchen Pi", "email": "ops@example.org", "note": "it's ok"} {
			if got, ok := z.Meta(name); !ok || got != want {
				t.Errorf("%s: meta %s = %q, %v; want %q", f, name, got, ok, want)
			}
		}
	}

	// Import the secret certificate: the identity has czmq's keys and name.
	ctx := context.Background()
	s := newStore(t, 20)
	sec, _ := os.ReadFile(path + "_secret")
	id, err := s.ImportZcert(ctx, bytes.NewReader(sec), keystore.ImportOptions{Protection: pass("p")})
	if err != nil {
		t.Fatal(err)
	}
	if id.Name != "Kitchen Pi" || id.CurveKey.Z85() != wantPub {
		t.Errorf("imported %v", id)
	}
	got, err := s.Load(ctx, unlockWith("p"))
	if err != nil {
		t.Fatal(err)
	}
	if _, sk := got.CurveKeyPair(); sk.Z85() != wantSec {
		t.Error("stored secret key differs from czmq's")
	}
	// The public file alone cannot be imported.
	pubOnly, _ := os.ReadFile(path)
	if _, err := newStore(t, 21).ImportZcert(ctx, bytes.NewReader(pubOnly), keystore.ImportOptions{Protection: pass("p")}); !errors.Is(err, keystore.ErrNoSecret) {
		t.Errorf("import of public cert = %v, want ErrNoSecret", err)
	}
	// Import refuses to overwrite without Force.
	if _, err := s.ImportZcert(ctx, bytes.NewReader(sec), keystore.ImportOptions{Protection: pass("p")}); !errors.Is(err, keystore.ErrExists) {
		t.Errorf("second import = %v, want ErrExists", err)
	}
}

// TestRealCZMQReadsOurs exports our identity (secret and public) and has
// the real czmq's zcert_load read it back.
func TestRealCZMQReadsOurs(t *testing.T) {
	bin := buildCZMQHelper(t, "czmq_load")
	ctx := context.Background()
	s := newStore(t, 22)
	id, err := s.Init(ctx, keystore.InitOptions{Name: "Bob's node", Protection: pass("p")})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "bob.cert")
	var sec, pub bytes.Buffer
	if err := id.ExportZcert(&sec, false); err != nil {
		t.Fatal(err)
	}
	if err := id.ExportZcert(&pub, true); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(pub.Bytes(), []byte("secret-key")) {
		t.Fatal("public export contains a secret key")
	}
	os.WriteFile(path+"_secret", sec.Bytes(), 0o600)
	os.WriteFile(path, pub.Bytes(), 0o644)
	pk, sk := id.CurveKeyPair()
	want := "public=" + pk.Z85() + "\nsecret=" + sk.Z85() + "\n" +
		"meta.created=" + id.Created.Format(time.RFC3339) + "\nmeta.name=Bob's node\nmeta.uuid=" + id.UUID.String() + "\n"
	out, err := exec.Command(bin, path).Output()
	if err != nil {
		t.Fatalf("czmq_load (secret): %v", err)
	}
	if string(out) != want {
		t.Errorf("czmq read our secret cert as\n%s\nwant\n%s", out, want)
	}
	// Public only: czmq falls back to the public file; secret is zeros.
	os.Remove(path + "_secret")
	out, err = exec.Command(bin, path).Output()
	if err != nil {
		t.Fatalf("czmq_load (public): %v", err)
	}
	wantPub := strings.Replace(want, sk.Z85(), strings.Repeat("0", 40), 1)
	if string(out) != wantPub {
		t.Errorf("czmq read our public cert as\n%s\nwant\n%s", out, wantPub)
	}
	// Public identity export (no passphrase) is the same file modulo time.
	p, _ := s.Public()
	var pub2 bytes.Buffer
	if err := p.ExportZcert(&pub2); err != nil {
		t.Fatal(err)
	}
	if a, b := dropFirstLine(pub.String()), dropFirstLine(pub2.String()); a != b {
		t.Errorf("PublicIdentity.ExportZcert differs:\n%s\n%s", a, b)
	}
}

func dropFirstLine(s string) string { _, r, _ := strings.Cut(s, "\n"); return r }

func TestZcertRoundTrip(t *testing.T) {
	b, err := os.ReadFile("testdata/czmq_cert_secret")
	if err != nil {
		t.Fatal(err)
	}
	z, err := keystore.ParseZcert(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	gen := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var w1 bytes.Buffer
	if err := z.Write(&w1, false, gen); err != nil {
		t.Fatal(err)
	}
	z2, err := keystore.ParseZcert(bytes.NewReader(w1.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var w2 bytes.Buffer
	if err := z2.Write(&w2, false, gen); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w1.Bytes(), w2.Bytes()) {
		t.Errorf("not stable:\n%s\n%s", w1.Bytes(), w2.Bytes())
	}
	// Our output is czmq's, line for line, except the "by CZMQ" stamp.
	mine := strings.Split(w1.String(), "\n")[1:]
	theirs := strings.Split(string(b), "\n")[1:]
	if strings.Join(mine, "\n") != strings.Join(theirs, "\n") {
		t.Errorf("our format differs from czmq's:\n%s\n---\n%s", w1.String(), b)
	}
}

const goodPub = `7OIuZ?m9V:hxfetWtkT9)PjPySjX3gd<XXqggn]S`

func TestParseZcertErrors(t *testing.T) {
	secret, _ := os.ReadFile("testdata/czmq_cert_secret")
	secretKey := `=HEVn/-vDMfQlSDbaUJV7DaiKO&bpvJ[yq63^jHJ`
	cases := []struct {
		name, in, want string
	}{
		{"empty", "", "no curve section"},
		{"no curve", "metadata\n    a = \"b\"\n", "no curve section"},
		{"bad indent", "curve\n  public-key = \"" + goodPub + "\"\n", "line 2: indent 2 spaces"},
		{"tab indent", "curve\n\tpublic-key = \"" + goodPub + "\"\n", "line 2: invalid syntax"},
		{"too deep", "curve\n        public-key = \"" + goodPub + "\"\n", "line 2: indentation error"},
		{"unterminated quote", "curve\n    public-key = \"" + goodPub + "\n", "line 2: missing closing \""},
		{"junk after value", "curve\n    public-key = \"" + goodPub + "\" x\n", "line 2: invalid syntax after value"},
		{"short key", "curve\n    public-key = \"abc\"\n", "line 2: public-key is 3 characters"},
		{"bad z85", "curve\n    public-key = \"" + strings.Repeat("~", 40) + "\"\n", "line 2: public-key"},
		{"no public key", "curve\n    secret-key = \"" + secretKey + "\"\n", "line 1: curve section has no public-key"},
		{"duplicate public", "curve\n    public-key = \"" + goodPub + "\"\n    public-key = \"" + goodPub + "\"\n", "line 3: duplicate public-key"},
		{"unknown section", "curves\n", "line 1: unknown section"},
		{"unknown field", "curve\n    public-keys = \"" + goodPub + "\"\n", "line 2: unknown curve field"},
		{"duplicate meta", "metadata\n    a = 1\n    a = 2\ncurve\n    public-key = \"" + goodPub + "\"\n", "line 3: duplicate metadata"},
		{"mismatched secret", "curve\n    public-key = \"" + goodPub + "\"\n    secret-key = \"" + strings.Repeat("1", 40) + "\"\n", "line 3: secret-key does not match"},
		{"zero secret", "curve\n    public-key = \"" + goodPub + "\"\n    secret-key = \"" + strings.Repeat("0", 40) + "\"\n", "line 3: secret-key is all zeros"},
		{"slash name", "metadata\n    /a = 1\n", "line 2: '/' not valid"},
		{"control char", "metadata\n    a = \"\x01\"\n", "line 2: control character"},
		{"long line", "metadata\n    a = \"" + strings.Repeat("x", 1100) + "\"\n", "line 2: line is"},
		{"too big", strings.Repeat("#\n", keystore.MaxZcertSize), "larger than"},
		{"too many lines", strings.Repeat("#\n", keystore.MaxZcertLines+1), "more than 1024 lines"},
		{"not utf8", "metadata\n    a = \"\xff\"\n", "line 2: not UTF-8"},
		{"truncated secret", string(secret[:len(secret)-10]), "zcert line 11: missing closing"},
		{"truncated before curve", string(secret[:bytes.Index(secret, []byte("curve"))]), "no curve section"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := keystore.ParseZcert(strings.NewReader(c.in))
			if err == nil {
				t.Fatalf("parsed without error")
			}
			if !errors.Is(err, keystore.ErrZcert) {
				t.Errorf("error %v does not wrap ErrZcert", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to contain %q", err, c.want)
			}
			if strings.Contains(err.Error(), secretKey) || strings.Contains(err.Error(), strings.Repeat("1", 40)) {
				t.Errorf("error leaks a secret key: %v", err)
			}
		})
	}
}

func TestParseZcertAccepts(t *testing.T) {
	// What czmq also accepts: CRLF, single quotes, bare values, comments
	// after values, blank lines, sections with "=" and no value.
	in := "# comment\r\n\r\nmetadata\r\n    a = 'x \"y\"'   # c\r\n    b = bare value # c\r\n    c\r\ncurve\r\n    # inner comment\r\n    public-key = \"" + goodPub + "\"\r\n"
	z, err := keystore.ParseZcert(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"a": `x "y"`, "b": "bare value", "c": ""} {
		if got, _ := z.Meta(name); got != want {
			t.Errorf("meta %s = %q, want %q", name, got, want)
		}
	}
	want, _ := curve.ParsePublicKey(goodPub)
	if !z.PublicKey.Equal(want) || z.SecretKey != nil {
		t.Error("wrong keys")
	}
	// A value with a double quote cannot be written for czmq.
	z.Metadata = append(z.Metadata, keystore.MetaItem{Name: "q", Value: `a"b`})
	if err := z.Write(new(bytes.Buffer), true, time.Now()); !errors.Is(err, keystore.ErrZcert) {
		t.Errorf("Write with a quote = %v", err)
	}
}

func FuzzParseZcert(f *testing.F) {
	for _, p := range []string{"testdata/czmq_cert", "testdata/czmq_cert_secret"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
		f.Add(b[:len(b)-3])
		f.Add(bytes.ReplaceAll(b, []byte("    "), []byte("   ")))
		f.Add(bytes.ReplaceAll(b, []byte("\""), []byte("'")))
		f.Add(bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")))
	}
	f.Add([]byte("curve\n    public-key = \"" + goodPub + "\"\n    secret-key = \"0000000000000000000000000000000000000000\"\n"))
	f.Add([]byte("metadata\n        deep = 1\n"))
	f.Add([]byte("\x00\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		z, err := keystore.ParseZcert(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, keystore.ErrZcert) {
				t.Fatalf("error %v does not wrap ErrZcert", err)
			}
			return
		}
		// What we parse, we can write, and read back the same.
		var w bytes.Buffer
		if err := z.Write(&w, false, time.Unix(0, 0)); err != nil {
			if errors.Is(err, keystore.ErrZcert) {
				return // e.g. a value with a double quote: czmq could not read it back
			}
			t.Fatal(err)
		}
		z2, err := keystore.ParseZcert(bytes.NewReader(w.Bytes()))
		if err != nil {
			t.Fatalf("cannot re-read our own output: %v\n%s", err, w.Bytes())
		}
		if !z2.PublicKey.Equal(z.PublicKey) || (z.SecretKey == nil) != (z2.SecretKey == nil) || len(z2.Metadata) != len(z.Metadata) {
			t.Fatal("round trip changed the certificate")
		}
		for i := range z.Metadata {
			if z.Metadata[i] != z2.Metadata[i] {
				t.Fatalf("metadata %d: %q became %q", i, z.Metadata[i], z2.Metadata[i])
			}
		}
	})
}
