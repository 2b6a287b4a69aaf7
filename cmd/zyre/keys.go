package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"filippo.io/age"
	"github.com/mdp/qrterminal/v3"
	"golang.org/x/term"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/atomicfile"
	"github.com/zyre-go/zyre/keystore"
)

const keysUsage = `usage: zyre keys COMMAND [flags]

commands:
  init [--name N] [--insecure-plaintext]   make this node's identity
  show [--qr]                              print the public identity
  export [--public] [--out FILE]           write a czmq zcert certificate
  import [--name N] [--force] FILE         take the identity from a czmq certificate
  passwd                                   change how the secret keys are protected
  rotate [--force]                         replace the keys (a new UUID); the device pairs again

common flags: --home DIR, --passphrase-file FILE, --age-identity FILE, --work-factor N.
The passphrase comes from --passphrase-file, else $ZYRE_PASSPHRASE_FILE, else a
prompt when stdin is a terminal.`

// keysDescriptions are the paragraphs of the keys commands' --help.
var keysDescriptions = map[string]string{
	"init": `Make this device's identity in --home: a CURVE keypair for its
connections, a signing key, and the UUID derived from them. The secret
keys are encrypted with a passphrase (asked twice on a terminal), or to
--age-identity; --insecure-plaintext leaves them unencrypted (headless
devices, tests).`,
	"show": `Print the public identity and how its secret keys are protected;
--qr adds the public key as a QR code, --json prints JSON.`,
	"export": `Write the identity as a czmq zcert certificate: to stdout, or with
--out to FILE and FILE_secret (the secret one unencrypted: keep it
private); --public writes the public part only.`,
	"import": `Take the identity from a czmq zcert certificate FILE (FILE_secret
when there is one); --force replaces an identity already there.`,
	"passwd": `Change how the secret keys are protected: a new passphrase
(--new-passphrase-file, else asked twice), --new-age-identity, or
--insecure-plaintext. The old protection is checked first.`,
	"rotate": `Replace the keys with new ones, and so the UUID, under the same name
and protection: peers that trusted the old key see a new device, which
pairs again. The old identity is kept as identity.key.old.`,
}

// runKeys implements "zyre keys".
func runKeys(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(env.stderr, keysUsage)
		return withHint(fmt.Errorf("%w: missing keys command", errUsage), "")
	}
	args, err := subcommandFirst("keys", args, "init", "show", "export", "import", "passwd", "rotate")
	if err != nil {
		return err
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprintln(env.stderr, keysUsage)
		return flag.ErrHelp
	case "init":
		return keysInit(ctx, env, args[1:])
	case "show":
		return keysShow(ctx, env, args[1:])
	case "export":
		return keysExport(ctx, env, args[1:])
	case "import":
		return keysImport(ctx, env, args[1:])
	case "passwd":
		return keysPasswd(ctx, env, args[1:])
	case "rotate":
		return keysRotate(ctx, env, args[1:])
	}
	return withHint(fmt.Errorf("%w: unknown command \"keys %s\"", errUsage, args[0]), `run "zyre keys --help" for the keys commands`)
}

// keysFlags are the flags every keys subcommand takes.
type keysFlags struct {
	fs             *flag.FlagSet
	home           string
	passphraseFile string
	ageIdentity    string
	workFactor     int
	env            *cliEnv
	args           []string // the positional arguments
	json           bool     // --json, for the commands that print an identity
}

func newKeysFlags(env *cliEnv, name string) *keysFlags {
	k := &keysFlags{fs: flag.NewFlagSet("zyre keys "+name, flag.ContinueOnError), env: env}
	k.fs.SetOutput(env.stderr)
	k.fs.StringVar(&k.home, "home", "", homeUsage)
	k.fs.StringVar(&k.passphraseFile, "passphrase-file", "", "read the passphrase from the first line of `FILE` (default $ZYRE_PASSPHRASE_FILE)")
	k.fs.StringVar(&k.ageIdentity, "age-identity", "", "encrypt to / decrypt with the age identity `FILE` instead of a passphrase")
	k.fs.IntVar(&k.workFactor, "work-factor", 0, "scrypt work factor (log2 N) for a new passphrase; 0 means age's default, lower is weaker")
	switch name {
	case "init", "show", "import", "rotate":
		k.fs.BoolVar(&k.json, "json", false, "print the public identity as JSON")
	}
	return k
}

// open parses the flags of a subcommand that takes no argument and opens
// the key store they name.
func (k *keysFlags) open(env *cliEnv, args []string) (*keystore.Store, error) {
	if err := k.parseArgs(args, 0, ""); err != nil {
		return nil, err
	}
	return k.store(env)
}

// parseArgs parses the flags and wants n arguments after them (what names
// them in the error).
func (k *keysFlags) parseArgs(args []string, n int, what string) error {
	synopsis := "usage: " + k.fs.Name() + " [flags]"
	if n > 0 {
		synopsis += " FILE"
	}
	if d := keysDescriptions[strings.TrimPrefix(k.fs.Name(), "zyre keys ")]; d != "" {
		synopsis += "\n\n" + d
	}
	pos, err := parseFlags(k.env, k.fs, synopsis, args)
	if err != nil {
		return err
	}
	k.args = pos
	switch {
	case len(pos) == n:
		return nil
	case n == 0:
		return fmt.Errorf("%w: unexpected argument %q", errUsage, pos[0])
	default:
		return fmt.Errorf("%w: want %s", errUsage, what)
	}
}

func (k *keysFlags) store(env *cliEnv) (*keystore.Store, error) {
	home := k.home
	if home == "" {
		var err error
		if home, err = keystore.DefaultHome(env.getenv); err != nil {
			return nil, err
		}
	}
	// A mistyped --home is said as such; only init and import make a
	// home.
	switch strings.TrimPrefix(k.fs.Name(), "zyre keys ") {
	case "init", "import":
	default:
		if err := missingHome(home, k.home != "", ""); err != nil {
			return nil, err
		}
	}
	// Warnings from the store go to stderr as plain lines.
	log := plainLog(env)
	return keystore.Open(home, keystore.Options{Logger: log})
}

// ageIdentities reads an age identity file.
func ageIdentities(path string) ([]age.Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("age identity: %w", err)
	}
	defer f.Close()
	if err := privateFile(f, path, "age identity"); err != nil {
		return nil, err
	}
	ids, err := age.ParseIdentities(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("age identity %s: %w", path, err)
	}
	return ids, nil
}

// privateFile refuses a secret file (what: "passphrase file") that group
// or others can read or write, as ssh refuses a private key file with open
// permissions: the secret may have leaked already, and the user should
// know. Only regular files are checked (a pipe, as from <(pass show x),
// has no such mode).
func privateFile(f *os.File, path, what string) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return secretFileRefused(&secretFileError{what: what, path: path, perm: perm})
	}
	return nil
}

// secretFileError is privateFile's refusal.
type secretFileError struct {
	what, path string
	perm       os.FileMode
}

func (e *secretFileError) Error() string {
	return fmt.Sprintf("%s %s has mode %04o: group or others can read it, so it is refused", e.what, e.path, e.perm)
}

// secretFileRefused returns err, or the secretFileError in its chain with
// its hint alone: the keystore's layers ("identity.key: keystore: failed
// to get the passphrase: ...") say nothing more about it.
func secretFileRefused(err error) error {
	var se *secretFileError
	if !errors.As(err, &se) {
		return err
	}
	return withHint(se, "chmod 600 "+se.path)
}

// readPassphraseFile returns the first line of a file, without its line end.
func readPassphraseFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("passphrase file: %w", err)
	}
	defer f.Close()
	if err := privateFile(f, path, "passphrase file"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return "", fmt.Errorf("passphrase file %s: %w", path, err)
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	clear(b[len(line):])
	p := strings.TrimSuffix(string(line), "\r")
	clear(line)
	if p == "" {
		return "", fmt.Errorf("passphrase file %s: the first line is empty", path)
	}
	return p, nil
}

// terminalFd returns stdin's descriptor when it is a terminal.
func terminalFd(env *cliEnv) (int, bool) {
	f, ok := env.stdin.(*os.File)
	if !ok {
		return 0, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}

// weakPassphrase is the length below which a new passphrase typed at a
// terminal is accepted with a warning.
const weakPassphrase = 12

// passphrase returns the passphrase from file, else $ZYRE_PASSPHRASE_FILE
// (when useEnv is set), else a terminal prompt (asked twice when confirm is
// set).
func passphrase(env *cliEnv, file string, useEnv bool, prompt string, confirm bool) (string, error) {
	if file == "" && useEnv {
		file = env.getenv("ZYRE_PASSPHRASE_FILE")
	}
	if file != "" {
		return readPassphraseFile(file)
	}
	fd, ok := terminalFd(env)
	if !ok {
		return "", errors.New("no passphrase: stdin is not a terminal; use --passphrase-file, ZYRE_PASSPHRASE_FILE, --age-identity or --insecure-plaintext")
	}
	// A new passphrase whose repeat does not match is asked again, up to
	// passphraseTries times, as a wrong one is when unlocking.
	for try := 1; ; try++ {
		p, err := readSecret(fd, env.stderr, prompt)
		if err != nil {
			return "", err
		}
		if len(p) == 0 {
			return "", errors.New("empty passphrase")
		}
		if !confirm {
			return string(p), nil
		}
		q, err := readSecret(fd, env.stderr, "repeat the passphrase")
		if err != nil {
			return "", err
		}
		if bytes.Equal(p, q) {
			if n := utf8.RuneCount(p); n < weakPassphrase {
				fmt.Fprintf(env.stderr, "zyre: warning: a passphrase of %d character(s) is weak: whoever copies this device's files can find it quickly (%d or more characters, or a few words, are better; zyre keys passwd changes it)\n", n, weakPassphrase)
			}
			return string(p), nil
		}
		if try >= passphraseTries {
			return "", errors.New("the passphrases do not match")
		}
		fmt.Fprintln(env.stderr, "zyre: the passphrases do not match, try again")
	}
}

// unlock says how to open the secret file: with the age identity if given,
// else with a passphrase asked only when needed.
func (k *keysFlags) unlock(env *cliEnv) (keystore.Unlock, error) {
	if k.ageIdentity != "" {
		ids, err := ageIdentities(k.ageIdentity)
		if err != nil {
			return keystore.Unlock{}, err
		}
		return keystore.Unlock{Identities: ids}, nil
	}
	// Ask once, even when the store needs it twice (passwd).
	var cached string
	return keystore.Unlock{Passphrase: func(context.Context) (string, error) {
		if cached != "" {
			return cached, nil
		}
		p, err := passphrase(env, k.passphraseFile, true, "passphrase for this node's keys", false)
		cached = p
		return p, err
	}}, nil
}

// load loads the identity, asking for a wrong passphrase up to three times
// on a terminal, and returns the Unlock that opened it.
func (k *keysFlags) load(ctx context.Context, env *cliEnv, st *keystore.Store) (*keystore.Identity, keystore.Unlock, error) {
	tries := 1
	if _, tty := terminalFd(env); tty && k.ageIdentity == "" && k.passphraseFile == "" && env.getenv("ZYRE_PASSPHRASE_FILE") == "" {
		tries = passphraseTries
	}
	for i := 0; ; i++ {
		u, err := k.unlock(env)
		if err != nil {
			return nil, u, err
		}
		id, err := st.Load(ctx, u)
		if err == nil {
			return id, u, nil
		}
		if !errors.Is(err, keystore.ErrWrongPassphrase) || i+1 >= tries {
			return nil, u, secretFileRefused(err)
		}
		fmt.Fprintln(env.stderr, "zyre: wrong passphrase, try again")
	}
}

// protection says how to protect new secret keys. useEnv lets the
// passphrase come from $ZYRE_PASSPHRASE_FILE (not for passwd, where that
// holds the old one).
func protection(env *cliEnv, plaintext bool, ageIdentity, passFile string, useEnv bool, workFactor int) (keystore.Protection, error) {
	switch {
	case plaintext && ageIdentity != "":
		return keystore.Protection{}, fmt.Errorf("%w: --insecure-plaintext and an age identity exclude each other", errUsage)
	case plaintext:
		fmt.Fprintln(env.stderr, "zyre: warning: storing the secret keys UNENCRYPTED (--insecure-plaintext); anyone who can read the file can impersonate this node")
		return keystore.Protection{Plaintext: true}, nil
	case ageIdentity != "":
		ids, err := ageIdentities(ageIdentity)
		if err != nil {
			return keystore.Protection{}, err
		}
		rs, err := keystore.RecipientsFromIdentities(ids)
		if err != nil {
			return keystore.Protection{}, err
		}
		return keystore.Protection{Recipients: rs}, nil
	}
	if workFactor < 0 || workFactor > 30 {
		return keystore.Protection{}, fmt.Errorf("%w: --work-factor %d out of range 1..30", errUsage, workFactor)
	}
	p, err := passphrase(env, passFile, useEnv, "new passphrase for this node's keys", true)
	if err != nil {
		return keystore.Protection{}, err
	}
	return keystore.Protection{Passphrase: p, WorkFactor: workFactor}, nil
}

func keysInit(ctx context.Context, env *cliEnv, args []string) error {
	k := newKeysFlags(env, "init")
	name := k.fs.String("name", "", "the node's display name (default: the first 6 hex digits of its UUID)")
	plain := k.fs.Bool("insecure-plaintext", false, "store the secret keys unencrypted (headless devices)")
	st, err := k.open(env, args)
	if err != nil {
		return err
	}
	if _, err := st.Public(); err == nil {
		return fmt.Errorf("%w in %s (see \"zyre keys show\")", keystore.ErrExists, st.Home())
	}
	p, err := protection(env, *plain, k.ageIdentity, k.passphraseFile, true, k.workFactor)
	if err != nil {
		return err
	}
	id, err := st.Init(ctx, keystore.InitOptions{Name: *name, Protection: p})
	if err != nil {
		return err
	}
	defer id.Wipe()
	fmt.Fprintf(env.stderr, "zyre: new identity in %s\n", st.Home())
	return k.printPublic(env.stdout, &id.PublicIdentity, p.Kind().String())
}

// printPublic prints the public identity as text, or as JSON.
func (k *keysFlags) printPublic(w io.Writer, p *keystore.PublicIdentity, protection string) error {
	if !k.json {
		printPublic(w, p, protection)
		return nil
	}
	sk, _ := curve.EncodeZ85(p.SigningKey)
	return writeJSON(w, struct {
		Name        string    `json:"name"`
		UUID        string    `json:"uuid"`
		PublicKey   string    `json:"public_key"`
		Fingerprint string    `json:"fingerprint"`
		SigningKey  string    `json:"signing_key"`
		Created     time.Time `json:"created"`
		Protection  string    `json:"protection,omitempty"`
	}{p.Name, p.UUID.String(), p.CurveKey.Z85(), p.Fingerprint(), sk, p.Created, protection})
}

func printPublic(w io.Writer, p *keystore.PublicIdentity, protection string) {
	sk, _ := curve.EncodeZ85(p.SigningKey)
	fmt.Fprintf(w, "name:        %s\n", p.Name)
	fmt.Fprintf(w, "uuid:        %s\n", p.UUID)
	fmt.Fprintf(w, "public key:  %s\n", p.CurveKey.Z85())
	fmt.Fprintf(w, "fingerprint: %s\n", p.Fingerprint())
	fmt.Fprintf(w, "signing key: %s\n", sk)
	fmt.Fprintf(w, "created:     %s\n", p.Created.Format(time.RFC3339))
	if protection != "" {
		fmt.Fprintf(w, "protection:  %s\n", protection)
	}
}

func keysShow(_ context.Context, env *cliEnv, args []string) error {
	k := newKeysFlags(env, "show")
	qr := k.fs.Bool("qr", false, "also print the public key as a QR code")
	st, err := k.open(env, args)
	if err != nil {
		return err
	}
	p, err := st.Public()
	if err != nil {
		return err
	}
	prot := ""
	if kind, err := st.Kind(); err == nil {
		prot = kind.String()
	} else {
		fmt.Fprintf(env.stderr, "zyre: warning: %v\n", err)
	}
	if err := k.printPublic(env.stdout, p, prot); err != nil || k.json {
		return err
	}
	if *qr {
		qrterminal.GenerateWithConfig(p.CurveKey.Z85(), qrterminal.Config{
			Level:      qrterminal.M,
			Writer:     env.stdout,
			HalfBlocks: true,
			QuietZone:  2,
		})
	}
	return nil
}

func keysExport(ctx context.Context, env *cliEnv, args []string) error {
	k := newKeysFlags(env, "export")
	public := k.fs.Bool("public", false, "export only the public certificate (no passphrase needed)")
	out := k.fs.String("out", "", "write to `FILE` (and FILE_secret, like czmq's zcert_save) instead of stdout")
	st, err := k.open(env, args)
	if err != nil {
		return err
	}
	if *public {
		p, err := st.Public()
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if err := p.ExportZcert(&b); err != nil {
			return err
		}
		if *out == "" {
			_, err := env.stdout.Write(b.Bytes())
			return err
		}
		return atomicfile.Write(*out, b.Bytes(), 0o644)
	}
	id, _, err := k.load(ctx, env, st)
	if err != nil {
		return err
	}
	defer id.Wipe()
	var sec bytes.Buffer
	defer func() { clear(sec.Bytes()) }()
	if err := id.ExportZcert(&sec, false); err != nil {
		return err
	}
	if *out == "" {
		_, err := env.stdout.Write(sec.Bytes())
		return err
	}
	var pub bytes.Buffer
	if err := id.ExportZcert(&pub, true); err != nil {
		return err
	}
	if err := atomicfile.Write(*out+"_secret", sec.Bytes(), 0o600); err != nil {
		return err
	}
	if err := atomicfile.Write(*out, pub.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(env.stderr, "zyre: wrote %s and %s (secret; keep it private)\n", *out, *out+"_secret")
	return nil
}

func keysImport(ctx context.Context, env *cliEnv, args []string) error {
	k := newKeysFlags(env, "import")
	name := k.fs.String("name", "", "the node's display name (default: the certificate's name metadata)")
	force := k.fs.Bool("force", false, "replace an existing identity")
	plain := k.fs.Bool("insecure-plaintext", false, "store the secret keys unencrypted (headless devices)")
	if err := k.parseArgs(args, 1, "one certificate FILE"); err != nil {
		return err
	}
	path := k.args[0]
	// Like czmq's zcert_load: prefer FILE_secret when it exists.
	if !strings.HasSuffix(path, "_secret") {
		if _, err := os.Stat(path + "_secret"); err == nil {
			path += "_secret"
		}
	}
	data, err := readCapped(path, keystore.MaxZcertSize)
	if err != nil {
		return err
	}
	defer clear(data)
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 && bytes.Contains(data, []byte("secret-key")) {
		fmt.Fprintf(env.stderr, "zyre: warning: %s is accessible by others (mode %04o); its secret key may have leaked\n", path, fi.Mode().Perm())
	}
	st, err := k.store(env)
	if err != nil {
		return err
	}
	if !*force {
		if _, err := st.Public(); err == nil {
			return fmt.Errorf("%w in %s (use --force to replace it)", keystore.ErrExists, st.Home())
		}
	}
	// Parse before asking for a passphrase, so a bad file fails fast.
	if _, err := keystore.ParseZcert(bytes.NewReader(data)); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	p, err := protection(env, *plain, k.ageIdentity, k.passphraseFile, true, k.workFactor)
	if err != nil {
		return err
	}
	id, err := st.ImportZcert(ctx, bytes.NewReader(data), keystore.ImportOptions{Name: *name, Protection: p, Force: *force})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer id.Wipe()
	fmt.Fprintf(env.stderr, "zyre: imported %s into %s\n", path, st.Home())
	return k.printPublic(env.stdout, &id.PublicIdentity, p.Kind().String())
}

func keysPasswd(ctx context.Context, env *cliEnv, args []string) error {
	k := newKeysFlags(env, "passwd")
	newFile := k.fs.String("new-passphrase-file", "", "read the new passphrase from the first line of `FILE`")
	newAge := k.fs.String("new-age-identity", "", "encrypt to the age identity `FILE` instead of a passphrase")
	plain := k.fs.Bool("insecure-plaintext", false, "store the secret keys unencrypted (headless devices)")
	st, err := k.open(env, args)
	if err != nil {
		return err
	}
	// Check the old passphrase before asking for a new one.
	id, u, err := k.load(ctx, env, st)
	if err != nil {
		return err
	}
	id.Wipe()
	if *newFile == "" && *newAge == "" && !*plain {
		if _, tty := terminalFd(env); !tty {
			return fmt.Errorf("%w: give --new-passphrase-file, --new-age-identity or --insecure-plaintext (stdin is not a terminal)", errUsage)
		}
	}
	p, err := protection(env, *plain, *newAge, *newFile, false, k.workFactor)
	if err != nil {
		return err
	}
	if err := st.ChangePassphrase(ctx, u, p); err != nil {
		return err
	}
	fmt.Fprintf(env.stderr, "zyre: secret keys now protected by %s\n", p.Kind().String())
	return nil
}

// keysRotate implements "zyre keys rotate": a new CURVE key and signing key
// (so a new UUID) under the same name and protection; the old identity is
// kept as identity.key.old / identity.pub.old, which nothing loads.
func keysRotate(ctx context.Context, env *cliEnv, args []string) error {
	k := newKeysFlags(env, "rotate")
	force := k.fs.Bool("force", false, "replace the backup an earlier rotation left (identity.key.old)")
	st, err := k.open(env, args)
	if err != nil {
		return err
	}
	prev, err := st.Public()
	if err != nil {
		return withHint(err, `run "zyre keys init" to make a first identity`)
	}
	// A node that runs this identity (the agent, a one-shot command) would
	// go on with the old key while the store holds the new one: refuse
	// before the passphrase, and hold the lock so that none starts meanwhile.
	unlock, err := lockNode(st.Home(), nodeHolder{Command: "zyre keys rotate"}, false)
	if err != nil {
		return rotateBusy(st.Home(), prev, err)
	}
	if unlock != nil {
		defer unlock()
	}
	// Check the passphrase (up to three tries on a terminal) before
	// changing anything; Rotate opens the file again with the same Unlock.
	old, u, err := k.load(ctx, env, st)
	if err != nil {
		return err
	}
	old.Wipe()
	wf := 0
	if flagSet(k.fs, "work-factor") {
		wf = k.workFactor
	}
	id, err := st.Rotate(ctx, u, keystore.RotateOptions{Force: *force, WorkFactor: wf})
	if errors.Is(err, keystore.ErrBackupExists) {
		return withHint(err, "that backup is the identity before the last rotation; keep a copy elsewhere if you may need it, then run again with --force")
	}
	if err != nil {
		return err
	}
	defer id.Wipe()
	prot := ""
	if kind, err := st.Kind(); err == nil {
		prot = kind.String()
	}
	fmt.Fprintf(env.stderr, "zyre: new identity in %s (was %s, kept in %s%s)\n", st.Home(), prev.UUID, keystore.SecretFile, keystore.BackupSuffix)
	if k.json {
		sk, _ := curve.EncodeZ85(id.SigningKey)
		err = writeJSON(env.stdout, struct {
			Name         string    `json:"name"`
			UUID         string    `json:"uuid"`
			PublicKey    string    `json:"public_key"`
			Fingerprint  string    `json:"fingerprint"`
			SigningKey   string    `json:"signing_key"`
			Created      time.Time `json:"created"`
			Protection   string    `json:"protection,omitempty"`
			PreviousUUID string    `json:"previous_uuid"`
		}{id.Name, id.UUID.String(), id.CurveKey.Z85(), id.Fingerprint(), sk, id.Created, prot, prev.UUID.String()})
	} else {
		printPublic(env.stdout, &id.PublicIdentity, prot)
	}
	fmt.Fprintln(env.stderr, `zyre: this device is a new peer now: pair it again ("zyre pair" on a trusted device, "zyre pair TOKEN" here); peers know it only after that`)
	old8 := shortID(prev.UUID)
	fmt.Fprintf(env.stderr, "zyre: the old key (uuid %s) is still trusted by the devices paired with it: on one of them run \"zyre trust revoke %s --reason rotated\" (the others honour its signed revocation)\n", old8, old8)
	return err
}

// rotateBusy is the refusal of a rotation while a node runs the identity
// prev of home; err is lockNode's (which names the holder in its own
// words for the other commands).
func rotateBusy(home string, prev *keystore.PublicIdentity, err error) error {
	b, rerr := readCapped(filepath.Join(home, nodeLockName), 4096)
	var h nodeHolder
	if rerr != nil || json.Unmarshal(b, &h) != nil || h.PID <= 0 {
		return err
	}
	ident := fmt.Sprintf("%s %s", safe(prev.Name), shortID(prev.UUID))
	who := fmt.Sprintf("%q (pid %d)", safe(h.Command), h.PID)
	if h.Command == "zyre agent" {
		who = fmt.Sprintf("the agent (pid %d)", h.PID)
		if h.Socket != "" {
			who = fmt.Sprintf("the agent at %s (pid %d)", safe(h.Socket), h.PID)
		}
	}
	what := "stop it first"
	if h.Command == "zyre agent" {
		what = "stop the agent first"
	}
	return withHint(fmt.Errorf("%s runs this identity (%s): a rotation now would leave it running the old key", who, ident),
		fmt.Sprintf(`%s (Ctrl-C or kill %d), then run "zyre keys rotate" again`, what, h.PID))
}

// readCapped reads a file of at most max octets.
func readCapped(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is larger than %d octets: not a certificate", path, max)
	}
	return b, nil
}
