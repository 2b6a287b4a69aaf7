package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zyre-go/zyre/keystore"
	"github.com/zyre-go/zyre/trust"
)

// TestTrustRevokeWrongPassphrase: a revoke that cannot be signed is not
// applied, and says so with a non-zero exit.
func TestTrustRevokeWrongPassphrase(t *testing.T) {
	c := newTrustCLI(t)
	ks, _ := keystore.Open(c.home, keystore.Options{})
	id, err := ks.Init(context.Background(), keystore.InitOptions{Name: "me", Protection: keystore.Protection{Passphrase: "sesame", WorkFactor: 4}})
	if err != nil {
		t.Fatal(err)
	}
	id.Wipe()
	pf := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(pf, []byte("wrong\n"), 0o600)
	p := newTrustPeer(7, "phone")
	c.admit(p, trustT0)
	code, out, errs := c.run("revoke", "phone", "--passphrase-file", pf)
	if code != 1 || !strings.Contains(errs, "not revoked: cannot load the identity") || out != "" {
		t.Fatalf("revoke with a wrong passphrase: %d\n%s\n%s", code, out, errs)
	}
	if r, _, _ := c.st.Lookup(p.key); r.State == trust.StateRevoked {
		t.Fatal("a revoke that was not signed was applied")
	}
	if logs, _ := c.st.Logs(); len(logs) != 0 {
		t.Fatal("a statement was stored")
	}
}

// TestTrustUnrevokeAndForget: a signed revocation withdrawn by a signed
// statement; forget of a passer-by, refused for a revoked key.
func TestTrustUnrevokeAndForget(t *testing.T) {
	c := newTrustCLI(t)
	ks, _ := keystore.Open(c.home, keystore.Options{})
	id, err := ks.Init(context.Background(), keystore.InitOptions{Name: "me", Protection: keystore.Protection{Plaintext: true}})
	if err != nil {
		t.Fatal(err)
	}
	id.Wipe()
	phone, stranger := newTrustPeer(7, "phone"), newTrustPeer(8, "stranger")
	if _, err := c.st.MarkVerified(context.Background(), phone.key, phone.id, phone.name, "qr", nil); err != nil {
		t.Fatal(err)
	}
	c.admit(stranger, trustT0)
	if code, _, errs := c.run("unrevoke", "phone"); code != 1 || !strings.Contains(errs, "not revoked") {
		t.Fatalf("unrevoke of a verified peer: %d %s", code, errs)
	}
	c.mustRun("revoke", "phone", "--reason", "thought it lost")
	if code, _, errs := c.run("forget", "phone"); code != 1 || !strings.Contains(errs, "revoked") {
		t.Fatalf("forget of a revoked peer: %d %s", code, errs)
	}
	out := c.mustRun("unrevoke", "phone", "--reason", "found it")
	if !strings.Contains(out, "signed statement #2") || !strings.Contains(out, "now verified") {
		t.Fatalf("unrevoke: %s", out)
	}
	if r, _, _ := c.st.Lookup(phone.key); r.State != trust.StateVerified {
		t.Fatalf("phone is %s", r.State)
	}
	if log := c.mustRun("log"); !strings.Contains(log, "2 statements") {
		t.Fatalf("log:\n%s", log)
	}
	out = c.mustRun("forget", "stranger")
	if !strings.Contains(out, "forgot stranger") {
		t.Fatalf("forget: %s", out)
	}
	if _, ok, _ := c.st.Lookup(stranger.key); ok {
		t.Fatal("stranger still known")
	}
	if code, _, _ := c.run("forget", "stranger"); code != 1 {
		t.Fatal("forget of an unknown peer succeeded")
	}
}
