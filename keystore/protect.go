package keystore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"
)

// Protection says how Init, ImportZcert and ChangePassphrase protect the
// secret key file. Set exactly one of Passphrase, Recipients or Plaintext.
type Protection struct {
	// Passphrase encrypts with age's scrypt recipient.
	Passphrase string
	// WorkFactor is log2 of scrypt's N for Passphrase; 0 means age's
	// default (18). Lower values are faster and weaker: use them in tests
	// and on very slow devices only.
	WorkFactor int
	// Recipients encrypts to age recipients (for example the recipient of
	// an age identity file; see RecipientsFromIdentities).
	Recipients []age.Recipient
	// Plaintext stores the secret keys unencrypted, protected only by the
	// file's mode 0600. For headless devices that have nowhere to keep a
	// passphrase; callers should warn the user.
	Plaintext bool
}

// Unlock says how Load opens an encrypted secret key file.
type Unlock struct {
	// Passphrase is called (once) only when the file is passphrase
	// encrypted; nil means no passphrase is available.
	Passphrase func(ctx context.Context) (string, error)
	// Identities decrypt a file encrypted to age recipients.
	Identities []age.Identity
}

// SecretKind is how a secret key file is protected.
type SecretKind int

const (
	// KindPlaintext is an unencrypted secret file (--insecure-plaintext).
	KindPlaintext SecretKind = iota + 1
	// KindPassphrase is an age file encrypted with a passphrase (scrypt).
	KindPassphrase
	// KindAgeRecipients is an age file encrypted to age recipients.
	KindAgeRecipients
)

func (k SecretKind) String() string {
	switch k {
	case KindPlaintext:
		return "none (plaintext)"
	case KindPassphrase:
		return "passphrase (age scrypt)"
	case KindAgeRecipients:
		return "age identity"
	}
	return fmt.Sprintf("SecretKind(%d)", int(k))
}

const (
	ageMagic   = "age-encryption.org/"
	armorMagic = "-----BEGIN AGE ENCRYPTED FILE-----"
)

// RecipientsFromIdentities returns the recipients of age identities (X25519
// and hybrid post-quantum ones), so a file encrypted to them can be opened
// with the identities: how --age-identity FILE is used for writing.
func RecipientsFromIdentities(ids []age.Identity) ([]age.Recipient, error) {
	var rs []age.Recipient
	for _, id := range ids {
		switch id := id.(type) {
		case *age.X25519Identity:
			rs = append(rs, id.Recipient())
		case *age.HybridIdentity:
			rs = append(rs, id.Recipient())
		default:
			return nil, fmt.Errorf("keystore: age identity of type %T cannot be used to encrypt", id)
		}
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("keystore: no age identities")
	}
	return rs, nil
}

// Kind is the SecretKind a file sealed with p has (0 if p is invalid).
func (p Protection) Kind() SecretKind {
	switch {
	case p.check() != nil:
		return 0
	case p.Plaintext:
		return KindPlaintext
	case p.Passphrase != "":
		return KindPassphrase
	}
	return KindAgeRecipients
}

func (p Protection) check() error {
	n := 0
	if p.Passphrase != "" {
		n++
	}
	if len(p.Recipients) > 0 {
		n++
	}
	if p.Plaintext {
		n++
	}
	if n != 1 {
		return fmt.Errorf("%w: set exactly one of a passphrase, age recipients, or plaintext", ErrNoProtection)
	}
	if p.WorkFactor != 0 && (p.WorkFactor < 1 || p.WorkFactor > 30) {
		return fmt.Errorf("keystore: scrypt work factor %d out of range 1..30", p.WorkFactor)
	}
	return nil
}

// seal returns the on-disk secret file for plaintext.
func (p Protection) seal(plain []byte) ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	if p.Plaintext {
		return append([]byte(nil), plain...), nil
	}
	rs := p.Recipients
	if p.Passphrase != "" {
		r, err := age.NewScryptRecipient(p.Passphrase)
		if err != nil {
			return nil, fmt.Errorf("keystore: %w", err)
		}
		if p.WorkFactor != 0 {
			r.SetWorkFactor(p.WorkFactor)
		}
		rs = []age.Recipient{r}
	}
	var b bytes.Buffer
	w, err := age.Encrypt(&b, rs...)
	if err != nil {
		return nil, fmt.Errorf("keystore: failed to encrypt: %w", err)
	}
	if _, err := w.Write(plain); err != nil {
		return nil, fmt.Errorf("keystore: failed to encrypt: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("keystore: failed to encrypt: %w", err)
	}
	return b.Bytes(), nil
}

// kindOf tells how a secret file is protected, from its first octets.
func kindOf(data []byte) (SecretKind, error) {
	switch {
	case bytes.HasPrefix(data, []byte(formatMagic+" ")):
		return KindPlaintext, nil
	case bytes.HasPrefix(data, []byte(armorMagic)):
		hdr, err := age.ExtractHeader(armor.NewReader(bytes.NewReader(data)))
		if err != nil {
			return 0, fmt.Errorf("%w: bad age file: %v", ErrCorrupt, err)
		}
		return kindOfHeader(hdr), nil
	case bytes.HasPrefix(data, []byte(ageMagic)):
		hdr, err := age.ExtractHeader(bytes.NewReader(data))
		if err != nil {
			return 0, fmt.Errorf("%w: bad age file: %v", ErrCorrupt, err)
		}
		return kindOfHeader(hdr), nil
	}
	return 0, fmt.Errorf("%w: secret key file is neither an age file nor a zyre key file", ErrCorrupt)
}

func kindOfHeader(hdr []byte) SecretKind {
	sc := bufio.NewScanner(bytes.NewReader(hdr))
	for sc.Scan() {
		if t, ok := strings.CutPrefix(sc.Text(), "-> "); ok {
			if typ, _, _ := strings.Cut(t, " "); typ == "scrypt" {
				return KindPassphrase
			}
		}
	}
	return KindAgeRecipients
}

// open decrypts a secret file and returns its plaintext.
func (u Unlock) open(ctx context.Context, data []byte) ([]byte, error) {
	kind, err := kindOf(data)
	if err != nil {
		return nil, err
	}
	var ids []age.Identity
	switch kind {
	case KindPlaintext:
		return append([]byte(nil), data...), nil
	case KindPassphrase:
		if u.Passphrase == nil {
			return nil, fmt.Errorf("%w: the secret key file is passphrase-encrypted", ErrNeedPassphrase)
		}
		pass, err := u.Passphrase(ctx)
		if err != nil {
			return nil, fmt.Errorf("keystore: failed to get the passphrase: %w", err)
		}
		if pass == "" {
			return nil, fmt.Errorf("%w: empty passphrase", ErrNeedPassphrase)
		}
		id, err := age.NewScryptIdentity(pass)
		if err != nil {
			return nil, fmt.Errorf("keystore: %w", err)
		}
		ids = []age.Identity{id}
	case KindAgeRecipients:
		if len(u.Identities) == 0 {
			return nil, fmt.Errorf("%w: the secret key file is encrypted to an age identity", ErrNeedIdentity)
		}
		ids = u.Identities
	}
	var src io.Reader = bytes.NewReader(data)
	if bytes.HasPrefix(data, []byte(armorMagic)) {
		src = armor.NewReader(src)
	}
	r, err := age.Decrypt(src, ids...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		switch {
		case kind == KindPassphrase && (errors.As(err, &nm) || errors.Is(err, age.ErrIncorrectIdentity)):
			return nil, ErrWrongPassphrase
		case errors.As(err, &nm) || errors.Is(err, age.ErrIncorrectIdentity):
			return nil, ErrWrongIdentity
		}
		return nil, fmt.Errorf("%w: failed to decrypt: %v", ErrCorrupt, err)
	}
	plain, err := io.ReadAll(io.LimitReader(r, maxKeyFileSize+1))
	if err != nil {
		clear(plain)
		return nil, fmt.Errorf("%w: failed to decrypt: %v", ErrCorrupt, err)
	}
	return plain, nil
}
