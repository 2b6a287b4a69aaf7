package keystore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"filippo.io/age"

	"github.com/zyre-go/zyre/internal/atomicfile/atomicfiletest"
	"github.com/zyre-go/zyre/keystore"
)

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func backupPaths(s *keystore.Store) (key, pub string) {
	return filepath.Join(s.Home(), keystore.SecretFile+keystore.BackupSuffix),
		filepath.Join(s.Home(), keystore.PublicFile+keystore.BackupSuffix)
}

// TestRotate: a new key and UUID under the same name and passphrase (and
// work factor); the old files kept as backups; a second rotation refused
// without Force; a wrong passphrase changes nothing.
func TestRotate(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, 7)
	old, err := s.Init(ctx, keystore.InitOptions{Name: "phone", Protection: pass("p")})
	if err != nil {
		t.Fatal(err)
	}
	oldPub, oldSec := readBoth(t, s)

	// A wrong passphrase: nothing changes, no backup appears.
	if _, err := s.Rotate(ctx, unlockWith("wrong"), keystore.RotateOptions{}); !errors.Is(err, keystore.ErrWrongPassphrase) {
		t.Fatalf("Rotate with a wrong passphrase = %v, want ErrWrongPassphrase", err)
	}
	if pub, sec := readBoth(t, s); !bytes.Equal(pub, oldPub) || !bytes.Equal(sec, oldSec) {
		t.Fatal("a failed Rotate changed the store")
	}
	keyBak, pubBak := backupPaths(s)
	if _, err := os.Stat(keyBak); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed Rotate left a backup: %v", err)
	}

	id, err := s.Rotate(ctx, unlockWith("p"), keystore.RotateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if id.UUID == old.UUID || id.CurveKey.Equal(old.CurveKey) || id.SigningKey.Equal(old.SigningKey) {
		t.Fatal("Rotate kept a key or the UUID")
	}
	if id.Name != "phone" {
		t.Errorf("name = %q, want phone", id.Name)
	}
	if got := readFile(t, keyBak); !bytes.Equal(got, oldSec) {
		t.Error("identity.key.old is not the old secret file")
	}
	if got := readFile(t, pubBak); !bytes.Equal(got, oldPub) {
		t.Errorf("identity.pub.old is not the old public file:\n%s\nwant\n%s", got, oldPub)
	}
	for _, f := range []string{keyBak, pubBak} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", f, fi.Mode().Perm(), err)
		}
	}
	// The store now loads the new identity, with the same passphrase.
	p, err := s.Public()
	if err != nil || p.UUID != id.UUID {
		t.Fatalf("Public = %v, %v; want the new UUID %s", p, err, id.UUID)
	}
	got, err := s.Load(ctx, unlockWith("p"))
	if err != nil {
		t.Fatal(err)
	}
	if got.UUID != id.UUID || !got.SigningKey.Equal(id.SigningKey) {
		t.Fatal("Load does not return the new identity")
	}
	if got, err := keystore.LoadIdentity(ctx, s.Home(), unlockWith("p")); err != nil || got.UUID != id.UUID {
		t.Fatalf("LoadIdentity = %v, %v; want the new identity", got, err)
	}
	_, sec := readBoth(t, s)
	if !regexp.MustCompile(fmt.Sprintf(`(?m)^-> scrypt \S+ %d$`, testWorkFactor)).Match(sec) {
		t.Errorf("the new secret file lost the scrypt work factor %d:\n%s", testWorkFactor, sec)
	}

	// A second rotation would overwrite the first one's backup.
	before, _ := readBoth(t, s)
	if _, err := s.Rotate(ctx, unlockWith("p"), keystore.RotateOptions{}); !errors.Is(err, keystore.ErrBackupExists) {
		t.Fatalf("second Rotate = %v, want ErrBackupExists", err)
	}
	if after, _ := readBoth(t, s); !bytes.Equal(before, after) {
		t.Fatal("a refused Rotate changed the store")
	}
	third, err := s.Rotate(ctx, unlockWith("p"), keystore.RotateOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if third.UUID == id.UUID || third.UUID == old.UUID {
		t.Fatal("forced Rotate kept a UUID")
	}
	if got := readFile(t, pubBak); !bytes.Equal(got, before) {
		t.Error("forced Rotate did not back up the identity it replaced")
	}
}

// TestRotateProtections: plaintext stays plaintext, an age-encrypted store
// stays encrypted to the same identity, and a default name follows the new
// UUID.
func TestRotateProtections(t *testing.T) {
	ctx := context.Background()
	ai, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := keystore.RecipientsFromIdentities([]age.Identity{ai})
	if err != nil {
		t.Fatal(err)
	}
	ageUnlock := keystore.Unlock{Identities: []age.Identity{ai}}
	for _, tc := range []struct {
		name string
		prot keystore.Protection
		u    keystore.Unlock
		kind keystore.SecretKind
	}{
		{"plaintext", keystore.Protection{Plaintext: true}, keystore.Unlock{}, keystore.KindPlaintext},
		{"age", keystore.Protection{Recipients: rs}, ageUnlock, keystore.KindAgeRecipients},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, 8)
			old, err := s.Init(ctx, keystore.InitOptions{Protection: tc.prot})
			if err != nil {
				t.Fatal(err)
			}
			if old.Name != keystore.DefaultName(old.UUID) {
				t.Fatalf("setup: name %q is not the default", old.Name)
			}
			id, err := s.Rotate(ctx, tc.u, keystore.RotateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if id.UUID == old.UUID {
				t.Fatal("UUID unchanged")
			}
			if want := keystore.DefaultName(id.UUID); id.Name != want {
				t.Errorf("name = %q, want the new default %q", id.Name, want)
			}
			if k, err := s.Kind(); err != nil || k != tc.kind {
				t.Errorf("Kind = %v, %v; want %v", k, err, tc.kind)
			}
			got, err := s.Load(ctx, tc.u)
			if err != nil || got.UUID != id.UUID {
				t.Fatalf("Load = %v, %v", got, err)
			}
		})
	}
}

// TestRotateCrash crashes Rotate at every file-system step of its four
// atomic writes (backup key, backup public, key, public). Afterwards the
// store loads, with the passphrase, either the old identity or the new one
// (identity.key is never a mixture); a stale identity.pub is repaired by
// Load; and rotating again without Force works when the crash left the old
// identity in place.
func TestRotateCrash(t *testing.T) {
	ctx := context.Background()
	const stepsPerFile = 7 // create chmod write sync close rename syncdir
	const steps = 4 * stepsPerFile
	const secretRenamed = 2*stepsPerFile + 6 // crash at this step or earlier: old identity.key
	for n := 1; n <= steps+1; n++ {
		t.Run(fmt.Sprint("crash-at-step-", n), func(t *testing.T) {
			home := filepath.Join(t.TempDir(), "zyre")
			s0, _ := keystore.Open(home, testOptions(9))
			old, err := s0.Init(ctx, keystore.InitOptions{Name: "phone", Protection: pass("p")})
			if err != nil {
				t.Fatal(err)
			}
			_, before := readBoth(t, s0)
			opts := testOptions(10)
			c := &atomicfiletest.CrashFS{At: n, Torn: true}
			if n > steps {
				c.At = 0 // no crash: the control case
			}
			opts.FS = c
			s, _ := keystore.Open(home, opts)
			id, err := s.Rotate(ctx, unlockWith("p"), keystore.RotateOptions{})
			if n <= steps && !errors.Is(err, atomicfiletest.ErrCrash) {
				t.Fatalf("Rotate = %v, want the crash", err)
			}
			if n > steps && err != nil {
				t.Fatal(err)
			}
			_, after := readBoth(t, s0)
			got, err := s0.Load(ctx, unlockWith("p"))
			if err != nil {
				t.Fatalf("after a crash at step %d the store does not load: %v", n, err)
			}
			if p, err := s0.Public(); err != nil || p.UUID != got.UUID {
				t.Fatalf("after Load, identity.pub = %v, %v; want %s", p, err, got.UUID)
			}
			if n <= secretRenamed {
				if !bytes.Equal(before, after) || got.UUID != old.UUID {
					t.Fatalf("crash at step %d, before the secret file's rename, changed the identity", n)
				}
				// The user can simply run it again.
				if _, err := s0.Rotate(ctx, unlockWith("p"), keystore.RotateOptions{}); err != nil {
					t.Fatalf("Rotate after a crash at step %d: %v", n, err)
				}
				return
			}
			if got.UUID == old.UUID || got.Name != "phone" {
				t.Fatalf("crash at step %d, after the secret file's rename: loaded %v, want the new identity", n, got)
			}
			if n > steps && got.UUID != id.UUID {
				t.Fatal("control case: Load disagrees with Rotate")
			}
			keyBak, _ := backupPaths(s0)
			if b := readFile(t, keyBak); !bytes.Equal(b, before) {
				t.Fatal("the new identity is in place but the backup is not the old one")
			}
		})
	}
}
