package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

// TestRevokeByPrefixAsks: "zyre trust revoke" of a paired device named by
// a prefix (usertry3 #1: a fingerprint prefix named another record than
// the user meant) asks on a terminal, naming the record exactly: "n"
// revokes nothing; by its exact name it does not ask.
func TestRevokeByPrefixAsks(t *testing.T) {
	zyre, err := exec.LookPath("zyre") // testscript.Main's copy of this binary
	if err != nil {
		t.Skip("no zyre command on PATH:", err)
	}
	dir := t.TempDir()
	env := append(os.Environ(), "XDG_RUNTIME_DIR="+dir, "ZYRE_AGENT_SOCKET=", "ZYRE_PASSPHRASE_FILE=", "ZYRE_HOME=")
	home := filepath.Join(dir, "room")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	pub, _, err := curve.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := trust.Open(home, trust.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := st.MarkVerified(context.Background(), pub, zre.UUIDFromKey(pub), "phone", "qr", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	revoke := func(answer string, peer string) (int, string) {
		return answerAtTerminal(t, zyre, env, answer, "trust", "revoke", peer, "--local", "--home", home)
	}
	revoked := func() bool {
		st, err := trust.Open(home, trust.Options{})
		if err != nil {
			t.Fatal(err)
		}
		r, _, err := st.Lookup(pub)
		if err != nil {
			t.Fatal(err)
		}
		return r.State == trust.StateRevoked
	}
	code, out := revoke("n", rec.Fingerprint[:4])
	if code != 1 || revoked() || !strings.Contains(out, "phone (fingerprint "+rec.Fingerprint+", uuid "+rec.UUID.String()+") is verified: revoke it here?") {
		t.Fatalf("answer n: exit %d, revoked %v\n%s", code, revoked(), out)
	}
	if code, out := revoke("", "phone"); code != 0 || !revoked() {
		t.Fatalf("by name: exit %d, revoked %v\n%s", code, revoked(), out)
	}

	// A record nobody paired (tofu) named by a prefix asks too: a signed
	// revocation of it is honoured by the devices that trust this one
	// (usertry4 #4: "zyre trust revoke 6567" signed and shared at once).
	gpub, _, err := curve.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err = trust.Open(home, trust.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := st.Admit(context.Background(), trust.Observation{UUID: zre.UUIDFromKey(gpub), Name: "guest", Key: gpub}, time.Now())
	if err != nil || !v.Allow || v.Record.State != trust.StateTOFU {
		t.Fatalf("pinning guest: %+v, %v", v, err)
	}
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	pub = gpub
	code, out = revoke("n", v.Record.UUID.String()[:4])
	if code != 1 || revoked() || !strings.Contains(out, "guest (fingerprint "+v.Record.Fingerprint+", uuid "+v.Record.UUID.String()+") is tofu: revoke it here?") {
		t.Fatalf("tofu guest by a prefix, answer n: exit %d, revoked %v\n%s", code, revoked(), out)
	}
	if code, out := revoke("y", v.Record.UUID.String()[:4]); code != 0 || !revoked() {
		t.Fatalf("tofu guest by a prefix, answer y: exit %d, revoked %v\n%s", code, revoked(), out)
	}
}
