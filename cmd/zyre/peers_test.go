package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPeers(t *testing.T) {
	port := randomBeaconPort()
	a := testPeer(t, port, "visible", "lab", "ops")
	b := testPeer(t, port, "other")
	r := startCmd(t, strings.NewReader(""), "peers", "--loopback", "--port", fmt.Sprint(port), "--wait", "3s")
	if code := r.wait(t); code != 0 {
		t.Fatalf("exit %d: %s", code, r.stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(r.stdout.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") {
		t.Fatalf("output:\n%s", r.stdout.String())
	}
	// Sorted by name: other, visible.
	for i, want := range [][]string{
		{"other", uuidText(b.UUID()), b.Endpoint(), "-"},
		{"visible", uuidText(a.UUID()), a.Endpoint(), "lab,ops"},
	} {
		if f := strings.Fields(lines[i+1]); strings.Join(f, " ") != strings.Join(want, " ") {
			t.Errorf("line %d = %q, want %q", i+1, f, want)
		}
	}
}

// TestPeersSecure: peers --ephemeral uses a key of its own for the run
// and lists only the secure nodes; --secure without a keystore is an error.
func TestPeersSecure(t *testing.T) {
	port := randomBeaconPort()
	a := testSecurePeer(t, port, "secure-one", "lab")
	testPeer(t, port, "plain-one")
	r := startCmd(t, strings.NewReader(""), "peers", "--secure", "--home", t.TempDir(), "--loopback", "--port", fmt.Sprint(port), "--wait", "2s")
	if code := r.wait(t); code != 1 || !strings.Contains(r.stderr.String(), "zyre: keystore: no identity") || !strings.Contains(r.stderr.String(), "--ephemeral") {
		t.Fatalf("no keystore: exit %d: %s", code, r.stderr.String())
	}
	r = startCmd(t, strings.NewReader(""), "peers", "--ephemeral", "--loopback", "--port", fmt.Sprint(port), "--wait", "2s")
	if code := r.wait(t); code != 0 {
		t.Fatalf("exit %d: %s", code, r.stderr.String())
	}
	if !strings.Contains(r.stderr.String(), "--ephemeral: using the new key") {
		t.Fatalf("stderr %q", r.stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(r.stdout.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("output:\n%s", r.stdout.String())
	}
	if f := strings.Fields(lines[1]); strings.Join(f, " ") != strings.Join([]string{"secure-one", uuidText(a.UUID()), a.Endpoint(), "lab"}, " ") {
		t.Fatalf("line %q", f)
	}
}

// TestPeersSecureEncryptedStore: --secure with a passphrase-protected
// keystore reads the passphrase from --passphrase-file (or
// ZYRE_PASSPHRASE_FILE); a wrong one fails without starting a node.
func TestPeersSecureEncryptedStore(t *testing.T) {
	home := t.TempDir()
	pass := filepath.Join(t.TempDir(), "pass")
	wrong := filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(pass, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(wrong, []byte("battery staple\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	if code := run(context.Background(), env, []string{"keys", "init", "--home", home, "--name", "enc", "--passphrase-file", pass, "--work-factor", "4"}); code != 0 {
		t.Fatalf("keys init: exit %d: %s", code, errb.String())
	}
	port := fmt.Sprint(randomBeaconPort())
	r := startCmd(t, strings.NewReader(""), "peers", "--secure", "--home", home, "--passphrase-file", pass, "--loopback", "--port", port, "--wait", "200ms")
	if code := r.wait(t); code != 0 || !strings.Contains(r.stderr.String(), "secure mode with the identity in "+home) {
		t.Fatalf("exit %d: %s", code, r.stderr.String())
	}
	r = startCmd(t, strings.NewReader(""), "peers", "--secure", "--home", home, "--passphrase-file", wrong, "--loopback", "--port", port, "--wait", "200ms")
	if code := r.wait(t); code != 1 || !strings.Contains(r.stderr.String(), "passphrase") {
		t.Fatalf("wrong passphrase: exit %d: %s", code, r.stderr.String())
	}
}
