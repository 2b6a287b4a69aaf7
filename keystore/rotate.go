package keystore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/zyre-go/zyre/internal/atomicfile"
)

// RotateOptions are the choices of Rotate.
type RotateOptions struct {
	// Force replaces the backup of an earlier rotation. Without it Rotate
	// fails with ErrBackupExists rather than lose that identity for good.
	Force bool
	// WorkFactor is the scrypt work factor for a passphrase-protected
	// store; 0 keeps the old file's.
	WorkFactor int
}

// Rotate replaces the store's identity with a new one: a new CURVE keypair
// (so a new UUID) and a new Ed25519 signing key, the same name (a default
// name, derived from the old UUID, becomes the new UUID's), protected the
// same way as the old: with the passphrase old gave, to the recipients of
// old's age identities, or in plaintext.
//
// Under the store's lock it opens the old secret file with old (a wrong
// passphrase gives ErrWrongPassphrase and changes nothing), copies the old
// files to identity.key.old and identity.pub.old (see BackupSuffix), then
// writes the new secret file and the new public file, each atomically. A
// crash leaves the old identity, or the new one (with, at worst, a stale
// identity.pub that the next Load repairs); never a mixture in
// identity.key. A backup that holds a different identity than the current
// one (an earlier rotation's) is replaced only with o.Force; one equal to
// the current secret file (left by a rotation that crashed) is reused.
func (s *Store) Rotate(ctx context.Context, old Unlock, o RotateOptions) (*Identity, error) {
	if o.WorkFactor != 0 && (o.WorkFactor < 1 || o.WorkFactor > 30) {
		return nil, fmt.Errorf("keystore: scrypt work factor %d out of range 1..30", o.WorkFactor)
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()

	data, err := s.readSecret()
	if err != nil {
		return nil, err
	}
	defer clear(data)
	// Keep the passphrase that opens the old file, to seal the new one.
	var passphrase string
	u := old
	if old.Passphrase != nil {
		u.Passphrase = func(ctx context.Context) (string, error) {
			p, err := old.Passphrase(ctx)
			passphrase = p
			return p, err
		}
	}
	oldID, err := s.open(ctx, u, data)
	if err != nil {
		return nil, err
	}
	defer oldID.Wipe()

	kind, err := kindOf(data)
	if err != nil {
		return nil, err
	}
	var p Protection
	switch kind {
	case KindPlaintext:
		p.Plaintext = true
	case KindPassphrase:
		p.Passphrase = passphrase
		p.WorkFactor = o.WorkFactor
		if p.WorkFactor == 0 {
			p.WorkFactor = scryptWorkFactor(data)
		}
	case KindAgeRecipients:
		if p.Recipients, err = RecipientsFromIdentities(old.Identities); err != nil {
			return nil, err
		}
	}
	if err := p.check(); err != nil {
		return nil, err
	}

	keyBackup, pubBackup := s.secretPath()+BackupSuffix, s.publicPath()+BackupSuffix
	if !o.Force {
		prev, err := readFileCapped(keyBackup, maxSecretFileSize)
		switch {
		case errors.Is(err, ErrNotFound): // no backup yet
		case err != nil:
			return nil, err
		case !bytes.Equal(prev, data):
			clear(prev)
			return nil, fmt.Errorf("%w: %s (an earlier rotation's; move it away, or force)", ErrBackupExists, keyBackup)
		default:
			clear(prev)
		}
	}

	name := oldID.Name
	if name == DefaultName(oldID.UUID) {
		name = "" // the new UUID's default
	}
	id, err := generateIdentity(s.opts.Rand, name, s.opts.Now())
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Identity, error) {
		id.Wipe()
		return nil, fmt.Errorf("keystore: %w", err)
	}
	afo := atomicfile.Options{FS: s.opts.FS}
	// The backups first: once the new secret file is in place, the old
	// identity survives only there.
	if err := atomicfile.WriteWith(keyBackup, data, 0o600, afo); err != nil {
		return fail(err)
	}
	if err := atomicfile.WriteWith(pubBackup, marshalPublic(&oldID.PublicIdentity), 0o600, afo); err != nil {
		return fail(err)
	}
	if err := s.writeSecret(id, p); err != nil {
		id.Wipe()
		return nil, err
	}
	if err := atomicfile.WriteWith(s.publicPath(), marshalPublic(&id.PublicIdentity), 0o600, afo); err != nil {
		return fail(err)
	}
	return id, nil
}

// scryptWorkFactor returns the work factor of a passphrase-encrypted secret
// file's scrypt stanza ("-> scrypt SALT LOGN"), or 0 (age's default) if it
// has none.
func scryptWorkFactor(data []byte) int {
	var hdr []byte
	var err error
	if bytes.HasPrefix(data, []byte(armorMagic)) {
		hdr, err = age.ExtractHeader(armor.NewReader(bytes.NewReader(data)))
	} else {
		hdr, err = age.ExtractHeader(bytes.NewReader(data))
	}
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(hdr))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 4 && f[0] == "->" && f[1] == "scrypt" {
			if n, err := strconv.Atoi(f[3]); err == nil && n >= 1 && n <= 30 {
				return n
			}
		}
	}
	return 0
}
