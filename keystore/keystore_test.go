package keystore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/atomicfile"
	"github.com/zyre-go/zyre/internal/atomicfile/atomicfiletest"
	"github.com/zyre-go/zyre/keystore"
	"github.com/zyre-go/zyre/zre"
)

// testWorkFactor keeps scrypt fast under -race on 2 cores.
const testWorkFactor = 4

var fixedNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func testOptions(seed uint64) keystore.Options {
	var s [32]byte
	s[0] = byte(seed)
	return keystore.Options{
		Rand:   rand.NewChaCha8(s),
		Now:    func() time.Time { return fixedNow },
		Logger: slog.New(slog.DiscardHandler),
	}
}

func pass(p string) keystore.Protection {
	return keystore.Protection{Passphrase: p, WorkFactor: testWorkFactor}
}

func unlockWith(p string) keystore.Unlock {
	return keystore.Unlock{Passphrase: func(context.Context) (string, error) { return p, nil }}
}

func newStore(t *testing.T, seed uint64) *keystore.Store {
	t.Helper()
	s, err := keystore.Open(filepath.Join(t.TempDir(), "zyre"), testOptions(seed))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readBoth(t *testing.T, s *keystore.Store) (pub, sec []byte) {
	t.Helper()
	pub, err := os.ReadFile(filepath.Join(s.Home(), keystore.PublicFile))
	if err != nil {
		t.Fatal(err)
	}
	sec, err = os.ReadFile(filepath.Join(s.Home(), keystore.SecretFile))
	if err != nil {
		t.Fatal(err)
	}
	return pub, sec
}

func TestInitLoad(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, 1)
	id, err := s.Init(ctx, keystore.InitOptions{Protection: pass("correct horse")})
	if err != nil {
		t.Fatal(err)
	}
	if id.UUID != zre.UUIDFromKey(id.CurveKey) {
		t.Error("UUID is not derived from the CURVE key")
	}
	want := strings.ToUpper(strings.ReplaceAll(id.UUID.String(), "-", ""))[:6]
	if id.Name != want {
		t.Errorf("default name %q, want %q", id.Name, want)
	}
	if !id.Created.Equal(fixedNow) {
		t.Errorf("created %v", id.Created)
	}
	// Modes: directory 0700, files 0600.
	for _, f := range []string{"", keystore.PublicFile, keystore.SecretFile} {
		fi, err := os.Stat(filepath.Join(s.Home(), f))
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o600)
		if f == "" {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%q has mode %04o, want %04o", f, fi.Mode().Perm(), want)
		}
	}
	// The secret file is an age file and holds no key in the clear.
	_, sec := readBoth(t, s)
	if !bytes.HasPrefix(sec, []byte("age-encryption.org/v1\n")) {
		t.Errorf("secret file is not an age file: %q", sec[:20])
	}
	if k, _ := s.Kind(); k != keystore.KindPassphrase {
		t.Errorf("Kind = %v", k)
	}

	// Public part without a passphrase.
	p, err := s.Public()
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != id.Name || p.UUID != id.UUID || !p.CurveKey.Equal(id.CurveKey) || !p.SigningKey.Equal(id.SigningKey) || !p.Created.Equal(id.Created) {
		t.Errorf("Public() = %+v, want %+v", p, id.PublicIdentity)
	}

	got, err := s.Load(ctx, unlockWith("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	gp, gs := got.CurveKeyPair()
	wp, ws := id.CurveKeyPair()
	if !gp.Equal(wp) || !gs.Equal(&ws) || !got.Signer().Equal(id.Signer()) || gs.Public() != gp {
		t.Fatal("loaded keys differ from the generated ones")
	}
	// Secrets never print.
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(verb, got) + fmt.Sprintf(verb, *got) + fmt.Sprintf(verb, []any{got})
		if strings.Contains(out, gs.Z85()) || strings.Contains(out, fmt.Sprint(got.Signer())) {
			t.Errorf("%s of an Identity leaks a secret: %s", verb, out)
		}
	}

	// A second Init refuses to overwrite.
	if _, err := s.Init(ctx, keystore.InitOptions{Protection: pass("x")}); !errors.Is(err, keystore.ErrExists) {
		t.Errorf("second Init = %v, want ErrExists", err)
	}
}

func TestInitOptionsChecked(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, 1)
	if _, err := s.Init(ctx, keystore.InitOptions{}); !errors.Is(err, keystore.ErrNoProtection) {
		t.Errorf("no protection: %v", err)
	}
	if _, err := s.Init(ctx, keystore.InitOptions{Protection: keystore.Protection{Passphrase: "a", Plaintext: true}}); !errors.Is(err, keystore.ErrNoProtection) {
		t.Errorf("two protections: %v", err)
	}
	for _, name := range []string{" lead", "a\nb", `q"uote`, strings.Repeat("x", 256)} {
		if _, err := s.Init(ctx, keystore.InitOptions{Name: name, Protection: pass("a")}); !errors.Is(err, keystore.ErrInvalidName) {
			t.Errorf("name %q: %v, want ErrInvalidName", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(s.Home(), keystore.SecretFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed Init left a secret file: %v", err)
	}
}

func TestWrongPassphrase(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, 2)
	if _, err := s.Init(ctx, keystore.InitOptions{Name: "node", Protection: pass("right")}); err != nil {
		t.Fatal(err)
	}
	pub0, sec0 := readBoth(t, s)
	_, err := s.Load(ctx, unlockWith("wrong"))
	if !errors.Is(err, keystore.ErrWrongPassphrase) {
		t.Fatalf("Load with wrong passphrase = %v, want ErrWrongPassphrase", err)
	}
	if strings.Contains(err.Error(), "wrong\"") || strings.Contains(err.Error(), "right") {
		t.Errorf("error leaks a passphrase: %v", err)
	}
	err = s.ChangePassphrase(ctx, unlockWith("wrong"), pass("new"))
	if !errors.Is(err, keystore.ErrWrongPassphrase) {
		t.Fatalf("ChangePassphrase with wrong passphrase = %v", err)
	}
	if _, err := s.Load(ctx, keystore.Unlock{}); !errors.Is(err, keystore.ErrNeedPassphrase) {
		t.Errorf("Load without passphrase = %v, want ErrNeedPassphrase", err)
	}
	pub1, sec1 := readBoth(t, s)
	if !bytes.Equal(pub0, pub1) || !bytes.Equal(sec0, sec1) {
		t.Fatal("files changed after wrong passphrases")
	}
	if _, err := s.Load(ctx, unlockWith("right")); err != nil {
		t.Fatal(err)
	}
}

func TestPermissionsRefused(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, 3)
	if _, err := s.Init(ctx, keystore.InitOptions{Protection: keystore.Protection{Plaintext: true}}); err != nil {
		t.Fatal(err)
	}
	sec := filepath.Join(s.Home(), keystore.SecretFile)
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o620} {
		if err := os.Chmod(sec, mode); err != nil {
			t.Fatal(err)
		}
		_, err := s.Load(ctx, keystore.Unlock{})
		if !errors.Is(err, keystore.ErrPermissions) {
			t.Fatalf("mode %04o: Load = %v, want ErrPermissions", mode, err)
		}
		if !strings.Contains(err.Error(), "chmod 600 "+sec) {
			t.Errorf("error does not say how to fix it: %v", err)
		}
	}
	os.Chmod(sec, 0o600)
	if _, err := s.Load(ctx, keystore.Unlock{}); err != nil {
		t.Fatalf("after chmod 600: %v", err)
	}
	// A directory others can write is refused too.
	os.Chmod(s.Home(), 0o777)
	if _, err := s.Load(ctx, keystore.Unlock{}); !errors.Is(err, keystore.ErrPermissions) || !strings.Contains(err.Error(), "chmod 700 "+s.Home()) {
		t.Fatalf("Load with a world-writable directory = %v", err)
	}
	os.Chmod(s.Home(), 0o700)
}

func TestPlaintextAndAgeIdentity(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, 4)
	id, err := s.Init(ctx, keystore.InitOptions{Protection: keystore.Protection{Plaintext: true}})
	if err != nil {
		t.Fatal(err)
	}
	_, sec := readBoth(t, s)
	if !bytes.HasPrefix(sec, []byte("zyre-keystore v1 secret\n")) {
		t.Fatalf("plaintext secret file starts %q", sec[:24])
	}
	ai, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := keystore.RecipientsFromIdentities([]age.Identity{ai})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ChangePassphrase(ctx, keystore.Unlock{}, keystore.Protection{Recipients: rs}); err != nil {
		t.Fatal(err)
	}
	if k, _ := s.Kind(); k != keystore.KindAgeRecipients {
		t.Errorf("Kind = %v", k)
	}
	if _, err := s.Load(ctx, keystore.Unlock{}); !errors.Is(err, keystore.ErrNeedIdentity) {
		t.Errorf("Load without identity = %v", err)
	}
	other, _ := age.GenerateX25519Identity()
	if _, err := s.Load(ctx, keystore.Unlock{Identities: []age.Identity{other}}); !errors.Is(err, keystore.ErrWrongIdentity) {
		t.Errorf("Load with another identity = %v", err)
	}
	got, err := s.Load(ctx, keystore.Unlock{Identities: []age.Identity{ai}})
	if err != nil {
		t.Fatal(err)
	}
	if !got.CurveKey.Equal(id.CurveKey) {
		t.Fatal("different key after re-encryption")
	}
}

// TestChangePassphraseCrash crashes ChangePassphrase at every file-system
// step (after the temporary write, after the fsync, before and after the
// rename, ...): afterwards the secret file is the old or the new one, whole,
// and loads with the matching passphrase.
func TestChangePassphraseCrash(t *testing.T) {
	ctx := context.Background()
	const steps = 7 // create chmod write sync close rename syncdir
	for n := 1; n <= steps+1; n++ {
		t.Run(fmt.Sprint("crash-at-step-", n), func(t *testing.T) {
			home := filepath.Join(t.TempDir(), "zyre")
			s0, _ := keystore.Open(home, testOptions(5))
			id, err := s0.Init(ctx, keystore.InitOptions{Protection: pass("old")})
			if err != nil {
				t.Fatal(err)
			}
			_, before := readBoth(t, s0)
			opts := testOptions(5)
			c := &atomicfiletest.CrashFS{At: n, Torn: true}
			if n > steps {
				c.At = 0 // no crash: the control case
			}
			opts.FS = c
			s, _ := keystore.Open(home, opts)
			err = s.ChangePassphrase(ctx, unlockWith("old"), pass("new"))
			if n <= steps && !errors.Is(err, atomicfiletest.ErrCrash) {
				t.Fatalf("ChangePassphrase = %v, want the crash", err)
			}
			if n > steps && err != nil {
				t.Fatal(err)
			}
			_, after := readBoth(t, s0)
			var got *keystore.Identity
			if bytes.Equal(before, after) {
				if n > 6 {
					t.Fatalf("step %d is after the rename, but the file is the old one", n)
				}
				got, err = s0.Load(ctx, unlockWith("old"))
			} else {
				if n <= 6 {
					t.Fatalf("crash at step %d, before the rename, changed the file", n)
				}
				got, err = s0.Load(ctx, unlockWith("new"))
			}
			if err != nil {
				t.Fatalf("after crash at step %d the store does not load: %v", n, err)
			}
			if !got.CurveKey.Equal(id.CurveKey) {
				t.Fatal("different identity after crash")
			}
		})
	}
}

// TestCrashDuringImportRepairs crashes a forced import between writing the
// secret file and the public one; Load then rewrites the stale public file.
func TestCrashDuringImportRepairs(t *testing.T) {
	ctx := context.Background()
	home := filepath.Join(t.TempDir(), "zyre")
	s0, _ := keystore.Open(home, testOptions(6))
	if _, err := s0.Init(ctx, keystore.InitOptions{Protection: pass("p")}); err != nil {
		t.Fatal(err)
	}
	cert, err := os.ReadFile("testdata/czmq_cert_secret")
	if err != nil {
		t.Fatal(err)
	}
	opts := testOptions(6)
	opts.FS = &atomicfiletest.CrashFS{At: 8, Torn: true} // the secret file's 7 steps succeed, the public file's first fails
	s, _ := keystore.Open(home, opts)
	_, err = s.ImportZcert(ctx, bytes.NewReader(cert), keystore.ImportOptions{Protection: pass("p"), Force: true})
	if !errors.Is(err, atomicfiletest.ErrCrash) {
		t.Fatalf("import = %v, want crash", err)
	}
	z, _ := keystore.ParseZcert(bytes.NewReader(cert))
	if p, _ := s0.Public(); p.CurveKey.Equal(z.PublicKey) {
		t.Fatal("test setup: public file should still be the old one")
	}
	id, err := s0.Load(ctx, unlockWith("p"))
	if err != nil {
		t.Fatal(err)
	}
	if !id.CurveKey.Equal(z.PublicKey) {
		t.Fatal("Load did not return the imported key")
	}
	p, err := s0.Public()
	if err != nil || !p.CurveKey.Equal(z.PublicKey) {
		t.Fatalf("public file not repaired: %v", err)
	}
}

// TestConcurrentInit: two stores on one directory race to Init; exactly one
// wins, the other gets ErrExists, and the result is consistent.
func TestConcurrentInit(t *testing.T) {
	ctx := context.Background()
	home := filepath.Join(t.TempDir(), "zyre")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, _ := keystore.Open(home, testOptions(uint64(10+i)))
			_, errs[i] = s.Init(ctx, keystore.InitOptions{Protection: pass("p")})
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, keystore.ErrExists):
			t.Fatal(err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d Inits succeeded, want 1: %v", ok, errs)
	}
	s, _ := keystore.Open(home, keystore.Options{})
	id, err := s.Load(ctx, unlockWith("p"))
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := s.Public(); !p.CurveKey.Equal(id.CurveKey) {
		t.Fatal("public and secret files disagree")
	}
}

func TestFingerprint(t *testing.T) {
	vecs := specVectors(t, "fingerprint")
	if len(vecs) == 0 {
		t.Fatal("no fingerprint vectors in spec/keystore.md")
	}
	for _, v := range vecs {
		k, err := curve.ParsePublicKey(v[0])
		if err != nil {
			t.Fatal(err)
		}
		if got := keystore.Fingerprint(k); got != v[1] {
			t.Errorf("Fingerprint(%s) = %s, want %s", v[0], got, v[1])
		}
	}
}

// specVectors reads lines "KEY VALUE" from the ```vectors NAME block of
// spec/keystore.md, so the document and the code cannot drift apart.
func specVectors(t *testing.T, name string) [][2]string {
	t.Helper()
	b, err := os.ReadFile("../spec/keystore.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "```vectors "+name+"\n")
	if !ok {
		t.Fatalf("spec/keystore.md has no vectors %s block", name)
	}
	block, _, _ := strings.Cut(rest, "```")
	var out [][2]string
	for _, l := range strings.Split(strings.TrimSpace(block), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			t.Fatalf("bad vector line %q", l)
		}
		out = append(out, [2]string{f[0], f[1]})
	}
	return out
}

func TestDefaultHome(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"ZYRE_HOME": "/z", "XDG_CONFIG_HOME": "/x", "HOME": "/h"}, "/z"},
		{map[string]string{"XDG_CONFIG_HOME": "/x", "HOME": "/h"}, "/x/zyre"},
		{map[string]string{"HOME": "/h"}, "/h/.config/zyre"},
	}
	for _, c := range cases {
		got, err := keystore.DefaultHome(env(c.env))
		if err != nil || got != c.want {
			t.Errorf("DefaultHome(%v) = %q, %v; want %q", c.env, got, err, c.want)
		}
	}
	if _, err := keystore.DefaultHome(env(nil)); err == nil {
		t.Error("DefaultHome with no environment should fail")
	}
}

func TestCorruptStoreFiles(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, 8)
	if _, err := s.Init(ctx, keystore.InitOptions{Protection: pass("p")}); err != nil {
		t.Fatal(err)
	}
	sec := filepath.Join(s.Home(), keystore.SecretFile)
	data, _ := os.ReadFile(sec)
	// Truncated age file, flipped byte, garbage: clear errors, no panic.
	for name, b := range map[string][]byte{
		"truncated": data[:len(data)/2],
		"flipped":   flip(data, len(data)-5),
		"garbage":   []byte("hello\n"),
		"empty":     nil,
	} {
		if err := atomicfile.Write(sec, b, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := s.Load(ctx, unlockWith("p"))
		if err == nil {
			t.Errorf("%s: Load succeeded", name)
		} else if !errors.Is(err, keystore.ErrCorrupt) && !errors.Is(err, keystore.ErrWrongPassphrase) {
			t.Errorf("%s: Load = %v, want ErrCorrupt", name, err)
		}
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x40
	return c
}
