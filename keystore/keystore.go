// Package keystore owns a node's identity at rest: its CURVE keypair (and
// the UUID derived from it), its Ed25519 signing key for trust statements,
// and its display name. The secret keys are encrypted with age, to a
// passphrase (scrypt) or to age recipients, or, when asked explicitly,
// stored in plaintext. Identities import from and export to czmq's zcert
// certificate files.
//
// A store is a directory (see DefaultHome) holding two files, both mode
// 0600 in a 0700 directory:
//
//	identity.pub  the public identity; readable without a passphrase
//	identity.key  the secret keys (age-encrypted, or plaintext)
//
// and, after Rotate, identity.key.old and identity.pub.old: the identity it
// replaced, which nothing loads.
//
// Their format is in spec/keystore.md. The secret file is the source of
// truth; identity.pub is rewritten from it when Load finds it missing or
// stale. Every change takes the store's lock and replaces files atomically
// (internal/atomicfile), so concurrent zyre processes and crashes cannot
// corrupt it.
//
// A ZRE node gets its identity with one call:
//
//	id, err := keystore.LoadIdentity(ctx, home, keystore.Unlock{Passphrase: ask})
//	pub, sec := id.CurveKeyPair() // and id.UUID, id.Name
//
// The package has no goroutines and no package-level mutable state.
package keystore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/zyre-go/zyre/internal/atomicfile"
)

// Errors callers can branch on with errors.Is.
var (
	// ErrNotFound: the store has no identity yet (run "zyre keys init").
	ErrNotFound = errors.New("keystore: no identity")
	// ErrExists: Init or ImportZcert would overwrite an existing identity.
	ErrExists = errors.New("keystore: an identity already exists")
	// ErrWrongPassphrase: the passphrase does not decrypt the secret file.
	ErrWrongPassphrase = errors.New("keystore: wrong passphrase")
	// ErrWrongIdentity: none of the age identities decrypts the secret file.
	ErrWrongIdentity = errors.New("keystore: the age identity does not match the secret key file")
	// ErrNeedPassphrase: the secret file is passphrase-encrypted and no
	// passphrase was given.
	ErrNeedPassphrase = errors.New("keystore: passphrase needed")
	// ErrNeedIdentity: the secret file is encrypted to age recipients and
	// no age identity was given.
	ErrNeedIdentity = errors.New("keystore: age identity needed")
	// ErrPermissions: a secret file is accessible by group or others.
	ErrPermissions = errors.New("keystore: permissions too open")
	// ErrCorrupt: a key file is malformed, or its parts disagree.
	ErrCorrupt = errors.New("keystore: corrupt key file")
	// ErrUnsupportedVersion: a key file from a newer version of zyre.
	ErrUnsupportedVersion = errors.New("keystore: unsupported key file version")
	// ErrNoProtection: a Protection sets none, or more than one, method.
	ErrNoProtection = errors.New("keystore: no protection chosen")
	// ErrInvalidName: a node name that cannot be stored.
	ErrInvalidName = errors.New("keystore: invalid name")
	// ErrZcert: a malformed czmq certificate.
	ErrZcert = errors.New("keystore: zcert")
	// ErrNoSecret: a certificate without a secret key was given for import.
	ErrNoSecret = errors.New("keystore: certificate has no secret key")
	// ErrBackupExists: Rotate would overwrite the backup of an earlier
	// rotation (RotateOptions.Force replaces it).
	ErrBackupExists = errors.New("keystore: a backup of an earlier identity exists")
)

// File names inside the store directory.
const (
	PublicFile = "identity.pub"
	SecretFile = "identity.key"
	// BackupSuffix names the backups Rotate keeps of the identity it
	// replaces (identity.key.old, identity.pub.old). Nothing loads them.
	BackupSuffix = ".old"
	lockName     = "keystore" // the lock file is keystore.lock
)

// DefaultHome returns the store directory: $ZYRE_HOME, else
// $XDG_CONFIG_HOME/zyre, else $HOME/.config/zyre. getenv is os.Getenv or a
// test's replacement.
func DefaultHome(getenv func(string) string) (string, error) {
	if h := getenv("ZYRE_HOME"); h != "" {
		return h, nil
	}
	if x := getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "zyre"), nil
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "zyre"), nil
	}
	return "", errors.New("keystore: cannot find a home directory: set ZYRE_HOME or HOME")
}

// Options tune a Store. The zero value is ready to use.
type Options struct {
	// Rand is the source of key material; nil means crypto/rand.
	Rand io.Reader
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Logger gets warnings, such as a repaired public file (never
	// secrets); nil means slog.Default(). Warning the user about plaintext
	// storage is the caller's job.
	Logger *slog.Logger
	// FS performs atomic file replacement; nil means the real file system.
	// Tests use it to inject crashes.
	FS atomicfile.FS
}

// Store is one keystore directory. Its methods are safe for concurrent use
// by goroutines and processes: changes are serialised by a file lock.
type Store struct {
	home string
	opts Options
}

// Open returns the store in directory home. It does not touch the disk; the
// directory is created (mode 0700) by the first change.
func Open(home string, opts Options) (*Store, error) {
	if home == "" {
		return nil, errors.New("keystore: empty home directory")
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Store{home: home, opts: opts}, nil
}

// LoadIdentity opens the store in home and loads the identity: the one
// call a node needs.
func LoadIdentity(ctx context.Context, home string, u Unlock) (*Identity, error) {
	s, err := Open(home, Options{})
	if err != nil {
		return nil, err
	}
	return s.Load(ctx, u)
}

// Home returns the store's directory.
func (s *Store) Home() string { return s.home }

func (s *Store) publicPath() string { return filepath.Join(s.home, PublicFile) }
func (s *Store) secretPath() string { return filepath.Join(s.home, SecretFile) }

// writeSecret seals id's secret keys with p and writes the secret file
// atomically; the plaintext and the sealed copy are wiped after.
func (s *Store) writeSecret(id *Identity, p Protection) error {
	plain := marshalSecret(id)
	sealed, err := p.seal(plain)
	clear(plain)
	if err != nil {
		return err
	}
	err = atomicfile.WriteWith(s.secretPath(), sealed, 0o600, atomicfile.Options{FS: s.opts.FS})
	clear(sealed)
	if err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	return nil
}

// lock creates the directory if needed and takes the store's lock.
func (s *Store) lock(ctx context.Context) (func() error, error) {
	if err := os.MkdirAll(s.home, 0o700); err != nil {
		return nil, fmt.Errorf("keystore: failed to create %s: %w", s.home, err)
	}
	return atomicfile.Lock(ctx, filepath.Join(s.home, lockName))
}

// InitOptions are the choices of Init.
type InitOptions struct {
	// Name is the display name; empty means DefaultName(UUID).
	Name string
	// Protection says how to protect the secret keys.
	Protection Protection
}

// Init makes a new identity and stores it. It fails with ErrExists if the
// store already has one.
func (s *Store) Init(ctx context.Context, o InitOptions) (*Identity, error) {
	if err := o.Protection.check(); err != nil {
		return nil, err
	}
	if o.Name != "" {
		if err := checkName(o.Name); err != nil {
			return nil, err
		}
	}
	id, err := generateIdentity(s.opts.Rand, o.Name, s.opts.Now())
	if err != nil {
		return nil, err
	}
	if err := s.store(ctx, id, o.Protection, false); err != nil {
		id.Wipe()
		return nil, err
	}
	return id, nil
}

// store writes a new identity under the lock: the secret file first (the
// source of truth), then the public one.
func (s *Store) store(ctx context.Context, id *Identity, p Protection, force bool) error {
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if !force {
		for _, f := range []string{s.secretPath(), s.publicPath()} {
			if _, err := os.Lstat(f); err == nil {
				return fmt.Errorf("%w in %s", ErrExists, s.home)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("keystore: %w", err)
			}
		}
	}
	if err := s.writeSecret(id, p); err != nil {
		return err
	}
	if err := atomicfile.WriteWith(s.publicPath(), marshalPublic(&id.PublicIdentity), 0o600, atomicfile.Options{FS: s.opts.FS}); err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	return nil
}

// Public reads the public identity; no passphrase needed.
func (s *Store) Public() (*PublicIdentity, error) {
	data, err := readFileCapped(s.publicPath(), maxKeyFileSize)
	if err != nil {
		return nil, err
	}
	p, err := parsePublic(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.publicPath(), err)
	}
	return p, nil
}

// Kind tells how the secret key file is protected, without decrypting it.
func (s *Store) Kind() (SecretKind, error) {
	data, err := s.readSecret()
	if err != nil {
		return 0, err
	}
	return kindOf(data)
}

// readSecret reads the secret file after checking its permissions and
// those of the directory (which others must not be able to write, or they
// could swap the files).
func (s *Store) readSecret() ([]byte, error) {
	if fi, err := os.Stat(s.home); err == nil && fi.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("%w: directory %s has mode %04o and others can change it: run chmod 700 %s",
			ErrPermissions, s.home, fi.Mode().Perm(), s.home)
	}
	if err := CheckPrivate(s.secretPath()); err != nil {
		return nil, err
	}
	return readFileCapped(s.secretPath(), maxSecretFileSize)
}

// maxSecretFileSize bounds the encrypted secret file (a few hundred octets
// in practice, more with many age recipients).
const maxSecretFileSize = 64 << 10

// Load decrypts the secret key file and returns the identity. A wrong
// passphrase gives ErrWrongPassphrase and changes nothing. If identity.pub
// is missing or disagrees with the secret file (after a crash during an
// import, say), Load rewrites it.
func (s *Store) Load(ctx context.Context, u Unlock) (*Identity, error) {
	id, err := s.load(ctx, u)
	if err != nil {
		return nil, err
	}
	p, perr := s.Public()
	if perr == nil && samePublic(p, &id.PublicIdentity) {
		return id, nil
	}
	// Repair the public file under the lock.
	unlock, err := s.lock(ctx)
	if err != nil {
		id.Wipe()
		return nil, err
	}
	defer unlock()
	reason := "it disagrees with the secret key file"
	if perr != nil {
		reason = perr.Error()
	}
	s.opts.Logger.Warn("keystore: rewriting the public identity file from the secret one", "file", s.publicPath(), "reason", reason)
	if err := atomicfile.WriteWith(s.publicPath(), marshalPublic(&id.PublicIdentity), 0o600, atomicfile.Options{FS: s.opts.FS}); err != nil {
		id.Wipe()
		return nil, fmt.Errorf("keystore: %w", err)
	}
	return id, nil
}

func samePublic(a, b *PublicIdentity) bool {
	return a.Name == b.Name && a.UUID == b.UUID && a.CurveKey.Equal(b.CurveKey) &&
		a.SigningKey.Equal(b.SigningKey) && a.Created.Equal(b.Created)
}

func (s *Store) load(ctx context.Context, u Unlock) (*Identity, error) {
	data, err := s.readSecret()
	if err != nil {
		return nil, err
	}
	defer clear(data)
	return s.open(ctx, u, data)
}

// open decrypts and parses data, the contents of the secret file.
func (s *Store) open(ctx context.Context, u Unlock, data []byte) (*Identity, error) {
	plain, err := u.open(ctx, data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.secretPath(), err)
	}
	defer clear(plain)
	id, err := parseSecret(plain)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.secretPath(), err)
	}
	return id, nil
}

// ChangePassphrase re-encrypts the secret key file under the store's lock:
// it opens it with old and seals it with p (a new passphrase, age
// recipients, or plaintext). With a wrong old passphrase nothing changes.
func (s *Store) ChangePassphrase(ctx context.Context, old Unlock, p Protection) error {
	if err := p.check(); err != nil {
		return err
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	id, err := s.load(ctx, old)
	if err != nil {
		return err
	}
	defer id.Wipe()
	return s.writeSecret(id, p)
}

// ImportOptions are the choices of ImportZcert.
type ImportOptions struct {
	// Name is the display name; empty means the certificate's "name"
	// metadata if it is a valid name, else DefaultName(UUID).
	Name string
	// Protection says how to protect the secret keys.
	Protection Protection
	// Force replaces an existing identity.
	Force bool
}

// ImportZcert makes the store's identity from a czmq secret certificate:
// its CURVE keypair, a new Ed25519 signing key (zcert has none), and the
// name. A public-only certificate gives ErrNoSecret.
func (s *Store) ImportZcert(ctx context.Context, r io.Reader, o ImportOptions) (*Identity, error) {
	if err := o.Protection.check(); err != nil {
		return nil, err
	}
	z, err := ParseZcert(r)
	if err != nil {
		return nil, err
	}
	if z.SecretKey == nil {
		return nil, fmt.Errorf("%w (import the NAME_secret file)", ErrNoSecret)
	}
	defer z.SecretKey.Wipe()
	name := o.Name
	if name == "" {
		if n, ok := z.Meta("name"); ok && checkName(n) == nil {
			name = n
		}
	} else if err := checkName(name); err != nil {
		return nil, err
	}
	seed := make([]byte, 32)
	defer clear(seed)
	if _, err := io.ReadFull(s.opts.Rand, seed); err != nil {
		return nil, fmt.Errorf("keystore: failed to generate signing key: %w", err)
	}
	sk, _ := newSecretCopy(z.SecretKey)
	id, err := newIdentity(name, s.opts.Now(), sk, seed)
	if err != nil {
		return nil, err
	}
	if err := s.store(ctx, id, o.Protection, o.Force); err != nil {
		id.Wipe()
		return nil, err
	}
	return id, nil
}

// CheckPrivate refuses a secret file that group or others can access, the
// way ssh does, and says how to fix it. It follows symbolic links.
func CheckPrivate(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %s does not exist (run \"zyre keys init\")", ErrNotFound, path)
		}
		return fmt.Errorf("keystore: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular file", ErrCorrupt, path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %04o and is accessible by others; it must be private: run chmod 600 %s",
			ErrPermissions, path, perm, path)
	}
	return nil
}

// readFileCapped reads at most max octets of path.
func readFileCapped(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s does not exist (run \"zyre keys init\")", ErrNotFound, path)
		}
		return nil, fmt.Errorf("keystore: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("keystore: read %s: %w", path, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%w: %s is larger than %d octets", ErrCorrupt, path, max)
	}
	return data, nil
}
