package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zyre-go/zyre/keystore"
)

// keysEnv runs zyre in-process with a temporary home and passphrase file.
type keysEnv struct {
	t        *testing.T
	home     string
	passFile string
	env      map[string]string
}

func newKeysEnv(t *testing.T) *keysEnv {
	dir := t.TempDir()
	k := &keysEnv{t: t, home: filepath.Join(dir, "home"), passFile: filepath.Join(dir, "pass"), env: map[string]string{}}
	k.writePass(k.passFile, "first passphrase")
	return k
}

func (k *keysEnv) writePass(path, p string) {
	if err := os.WriteFile(path, []byte(p+"\n"), 0o600); err != nil {
		k.t.Fatal(err)
	}
}

// run runs "zyre keys SUB --home HOME ARGS..." and returns status, stdout, stderr.
func (k *keysEnv) run(sub string, args ...string) (int, string, string) {
	k.t.Helper()
	var out, errb bytes.Buffer
	env := &cliEnv{
		stdin:  strings.NewReader(""),
		stdout: &out,
		stderr: &errb,
		getenv: func(s string) string { return k.env[s] },
	}
	full := append([]string{"keys", sub, "--home", k.home}, args...)
	code := run(context.Background(), env, full)
	return code, out.String(), errb.String()
}

func (k *keysEnv) mustRun(sub string, args ...string) string {
	k.t.Helper()
	code, out, errs := k.run(sub, args...)
	if code != 0 {
		k.t.Fatalf("zyre keys %s %v: exit %d\n%s", sub, args, code, errs)
	}
	return out
}

func field(out, name string) string {
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func TestKeysInitShowExport(t *testing.T) {
	k := newKeysEnv(t)
	out := k.mustRun("init", "--name", "kitchen", "--passphrase-file", k.passFile, "--work-factor", "4")
	if field(out, "name") != "kitchen" || field(out, "protection") != keystore.KindPassphrase.String() {
		t.Fatalf("init printed:\n%s", out)
	}
	uuid, key, fp := field(out, "uuid"), field(out, "public key"), field(out, "fingerprint")
	if len(uuid) != 36 || len(key) != 40 || len(fp) != 19 {
		t.Fatalf("init printed:\n%s", out)
	}

	// show needs no passphrase.
	show := k.mustRun("show")
	if field(show, "uuid") != uuid || field(show, "public key") != key || field(show, "fingerprint") != fp {
		t.Fatalf("show printed:\n%s", show)
	}
	qr := k.mustRun("show", "--qr")
	if !strings.HasPrefix(qr, show) || len(strings.Split(qr, "\n")) < len(strings.Split(show, "\n"))+10 || !strings.Contains(qr, "█") {
		t.Errorf("show --qr printed no QR code:\n%s", qr)
	}

	// A second init refuses.
	if code, _, errs := k.run("init", "--passphrase-file", k.passFile); code != 1 || !strings.Contains(errs, "already exists") {
		t.Errorf("second init: exit %d, %s", code, errs)
	}

	// export --public: no passphrase, no secret key.
	pub := k.mustRun("export", "--public")
	z, err := keystore.ParseZcert(strings.NewReader(pub))
	if err != nil || z.SecretKey != nil || z.PublicKey.Z85() != key {
		t.Fatalf("export --public: %v\n%s", err, pub)
	}
	if n, _ := z.Meta("name"); n != "kitchen" {
		t.Errorf("exported name %q", n)
	}

	// export needs the passphrase (here from the environment).
	if code, _, errs := k.run("export"); code != 1 || !strings.Contains(errs, "stdin is not a terminal") {
		t.Errorf("export without passphrase: exit %d, %s", code, errs)
	}
	k.env["ZYRE_PASSPHRASE_FILE"] = k.passFile
	sec := k.mustRun("export")
	z, err = keystore.ParseZcert(strings.NewReader(sec))
	if err != nil || z.SecretKey == nil || z.PublicKey.Z85() != key {
		t.Fatalf("export: %v", err)
	}

	// export --out writes FILE and FILE_secret, like zcert_save.
	certPath := filepath.Join(t.TempDir(), "kitchen.cert")
	k.mustRun("export", "--out", certPath)
	for f, mode := range map[string]os.FileMode{certPath: 0o644, certPath + "_secret": 0o600} {
		fi, err := os.Stat(f)
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, mode %v, want %04o", f, err, fi, mode)
		}
	}
	b, _ := os.ReadFile(certPath + "_secret")
	if z2, err := keystore.ParseZcert(bytes.NewReader(b)); err != nil || z2.SecretKey == nil || !z2.SecretKey.Equal(z.SecretKey) {
		t.Errorf("exported secret file: %v", err)
	}

	// Import it into another home (picks FILE_secret, like zcert_load).
	k2 := newKeysEnv(t)
	out = k2.mustRun("import", "--passphrase-file", k2.passFile, "--work-factor", "4", certPath)
	if field(out, "public key") != key || field(out, "uuid") != uuid || field(out, "name") != "kitchen" {
		t.Fatalf("import printed:\n%s", out)
	}
	// Import refuses to replace without --force, and a public-only cert.
	if code, _, errs := k2.run("import", "--passphrase-file", k2.passFile, certPath); code != 1 || !strings.Contains(errs, "--force") {
		t.Errorf("import over existing: exit %d, %s", code, errs)
	}
	k3 := newKeysEnv(t)
	os.Remove(certPath + "_secret")
	if code, _, errs := k3.run("import", "--passphrase-file", k3.passFile, "--work-factor", "4", certPath); code != 1 || !strings.Contains(errs, "no secret key") {
		t.Errorf("import of public cert: exit %d, %s", code, errs)
	}
}

func TestKeysImportRealCZMQFile(t *testing.T) {
	k := newKeysEnv(t)
	out := k.mustRun("import", "--passphrase-file", k.passFile, "--work-factor", "4", "../../keystore/testdata/czmq_cert")
	if field(out, "name") != "Test Node" || field(out, "public key") != "7OIuZ?m9V:hxfetWtkT9)PjPySjX3gd<XXqggn]S" {
		t.Fatalf("import printed:\n%s", out)
	}
	// A corrupt certificate: clear error with the line number, nothing stored.
	bad := filepath.Join(t.TempDir(), "bad.cert")
	os.WriteFile(bad, []byte("curve\n    public-key = \"short\"\n"), 0o600)
	k2 := newKeysEnv(t)
	code, _, errs := k2.run("import", "--passphrase-file", k2.passFile, bad)
	if code != 1 || !strings.Contains(errs, "zcert line 2") {
		t.Errorf("corrupt import: exit %d, %s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(k2.home, keystore.SecretFile)); err == nil {
		t.Error("corrupt import stored something")
	}
}

func TestKeysPasswdAndWrongPassphrase(t *testing.T) {
	k := newKeysEnv(t)
	k.mustRun("init", "--passphrase-file", k.passFile, "--work-factor", "4")
	sec := filepath.Join(k.home, keystore.SecretFile)
	before, _ := os.ReadFile(sec)

	wrong := filepath.Join(t.TempDir(), "wrong")
	k.writePass(wrong, "not it")
	newPass := filepath.Join(t.TempDir(), "new")
	k.writePass(newPass, "second passphrase")
	code, _, errs := k.run("passwd", "--passphrase-file", wrong, "--new-passphrase-file", newPass)
	if code != 1 || !strings.Contains(errs, "wrong passphrase") {
		t.Fatalf("passwd with wrong passphrase: exit %d, %s", code, errs)
	}
	if strings.Contains(errs, "not it") || strings.Contains(errs, "second passphrase") {
		t.Errorf("stderr leaks a passphrase: %s", errs)
	}
	if after, _ := os.ReadFile(sec); !bytes.Equal(before, after) {
		t.Fatal("secret file changed after a wrong passphrase")
	}
	if code, _, _ := k.run("passwd", "--passphrase-file", k.passFile); code != 2 {
		t.Errorf("passwd without a new passphrase on a non-terminal: exit %d, want 2", code)
	}
	// $ZYRE_PASSPHRASE_FILE unlocks, but is never taken as the new passphrase.
	k.env["ZYRE_PASSPHRASE_FILE"] = k.passFile
	if code, _, _ := k.run("passwd"); code != 2 {
		t.Errorf("passwd with only ZYRE_PASSPHRASE_FILE: exit %d, want 2", code)
	}
	delete(k.env, "ZYRE_PASSPHRASE_FILE")

	k.mustRun("passwd", "--passphrase-file", k.passFile, "--new-passphrase-file", newPass, "--work-factor", "4")
	if code, _, errs := k.run("export", "--passphrase-file", k.passFile); code != 1 || !strings.Contains(errs, "wrong passphrase") {
		t.Errorf("old passphrase after passwd: exit %d, %s", code, errs)
	}
	k.mustRun("export", "--passphrase-file", newPass)

	// To plaintext, with a warning.
	code, _, errs = k.run("passwd", "--passphrase-file", newPass, "--insecure-plaintext")
	if code != 0 || !strings.Contains(errs, "UNENCRYPTED") {
		t.Fatalf("passwd --insecure-plaintext: exit %d, %s", code, errs)
	}
	if show := k.mustRun("show"); field(show, "protection") != keystore.KindPlaintext.String() {
		t.Errorf("show after plaintext:\n%s", show)
	}
	k.mustRun("export") // no passphrase needed now
}

func TestKeysPermissionsAndPlaintext(t *testing.T) {
	k := newKeysEnv(t)
	code, _, errs := k.run("init", "--insecure-plaintext")
	if code != 0 || !strings.Contains(errs, "warning") {
		t.Fatalf("init --insecure-plaintext: exit %d, %s", code, errs)
	}
	sec := filepath.Join(k.home, keystore.SecretFile)
	os.Chmod(sec, 0o644)
	code, _, errs = k.run("export")
	if code != 1 || !strings.Contains(errs, "chmod 600 "+sec) {
		t.Errorf("export with mode 0644: exit %d, %s", code, errs)
	}
}

func TestKeysAgeIdentity(t *testing.T) {
	k := newKeysEnv(t)
	idFile := filepath.Join(t.TempDir(), "key.txt")
	// A fixed age X25519 identity (test only).
	os.WriteFile(idFile, []byte("# test key\nAGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX\n"), 0o600)
	k.mustRun("init", "--age-identity", idFile)
	if show := k.mustRun("show"); field(show, "protection") != keystore.KindAgeRecipients.String() {
		t.Fatalf("show:\n%s", show)
	}
	k.mustRun("export", "--age-identity", idFile)
	if code, _, errs := k.run("export", "--passphrase-file", k.passFile); code != 1 || !strings.Contains(errs, "age identity needed") {
		t.Errorf("export with a passphrase: exit %d, %s", code, errs)
	}
}

func TestKeysUsage(t *testing.T) {
	k := newKeysEnv(t)
	for _, args := range [][]string{{"frobnicate"}, {"show", "--bogus"}, {"show", "extra"}, {"import"}, {"import", "a", "b"}, {"init", "extra"}, {"passwd", "extra"}, {"export", "extra"}} {
		var out, errb bytes.Buffer
		env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		if code := run(context.Background(), env, append([]string{"keys"}, args...)); code != 2 {
			t.Errorf("zyre keys %v: exit %d, want 2 (%s)", args, code, errb.String())
		}
	}
	if code, _, errs := k.run("show"); code != 1 || !strings.Contains(errs, "zyre keys init") {
		t.Errorf("show without identity: exit %d, %s", code, errs)
	}
}
