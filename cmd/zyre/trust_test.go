package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/keystore"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

type trustCLI struct {
	t    *testing.T
	home string
	env  map[string]string
	st   *trust.Store
}

func newTrustCLI(t *testing.T) *trustCLI {
	home := filepath.Join(t.TempDir(), "zyre")
	// A home exists (a missing one is a mistyped --home: "no keystore").
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := trust.Open(home, trust.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Flush(context.Background()) })
	return &trustCLI{t: t, home: home, env: map[string]string{}, st: st}
}

// run runs a zyre trust command, as another process would: c.st's
// changes are written first, and the command's read after.
func (c *trustCLI) run(args ...string) (int, string, string) {
	c.flush()
	defer c.flush()
	var out, errb bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string { return c.env[k] }}
	code := run(context.Background(), env, append([]string{"trust", args[0], "--home", c.home}, args[1:]...))
	return code, out.String(), errb.String()
}

func (c *trustCLI) mustRun(args ...string) string {
	c.t.Helper()
	code, out, errs := c.run(args...)
	if code != 0 {
		c.t.Fatalf("zyre trust %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

type trustPeer struct {
	key  curve.PublicKey
	id   uuid.UUID
	name string
}

func newTrustPeer(n byte, name string) trustPeer {
	pub, _, err := curve.GenerateKeyPair(rand.NewChaCha8([32]byte{n, 't'}))
	if err != nil {
		panic(err)
	}
	return trustPeer{key: pub, id: zre.UUIDFromKey(pub), name: name}
}

func (p trustPeer) obs() trust.Observation {
	return trust.Observation{UUID: p.id, Name: p.name, Key: p.key, Addr: "tcp://127.0.0.1:5670"}
}

// flush writes c.st's changes (Admit writes on the store's goroutine) and
// reads those of other processes.
func (c *trustCLI) flush() {
	c.t.Helper()
	if err := c.st.Flush(context.Background()); err != nil {
		c.t.Fatal(err)
	}
}

func (c *trustCLI) admit(p trustPeer, now time.Time) trust.Verdict {
	c.t.Helper()
	v, err := c.st.Admit(context.Background(), p.obs(), now)
	if err != nil {
		c.t.Fatal(err)
	}
	return v
}

var trustT0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// populate makes alice (tofu), bob (verified) and carol (unbound, with a
// key change pending).
func (c *trustCLI) populate() (alice, bob, carol, carol2 trustPeer) {
	alice, bob, carol, carol2 = newTrustPeer(1, "alice"), newTrustPeer(2, "bob"), newTrustPeer(3, "carol"), newTrustPeer(4, "carol")
	carol.id, carol2.id = uuid.MustParse("11111111-2222-4333-8444-555555555555"), uuid.MustParse("99999999-2222-4333-8444-555555555555")
	c.admit(alice, trustT0)
	if _, err := c.st.MarkVerified(context.Background(), bob.key, bob.id, bob.name, "qr", nil); err != nil {
		c.t.Fatal(err)
	}
	c.admit(carol, trustT0)
	if v := c.admit(carol2, trustT0.Add(time.Minute)); v.Allow || v.KeyChange == nil {
		c.t.Fatalf("carol's new key: %+v", v)
	}
	return
}

func TestTrustListShow(t *testing.T) {
	c := newTrustCLI(t)
	alice, bob, carol, carol2 := c.populate()
	out := c.mustRun("list")
	for _, want := range []string{"NAME", "alice", alice.id.String()[:8], trust.Fingerprint(bob.key), "verified", "tofu KEY-CHANGED!",
		"WARNING: KEY CHANGED for carol", trust.Fingerprint(carol2.key), "zyre trust accept " + trust.Fingerprint(carol2.key)} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	var recs []map[string]any
	if err := json.Unmarshal([]byte(c.mustRun("list", "--json")), &recs); err != nil || len(recs) != 3 {
		t.Fatalf("list --json: %d records, %v", len(recs), err)
	}
	if kc, _ := recs[2]["key_change"].(map[string]any); kc["fingerprint"] != trust.Fingerprint(carol2.key) {
		t.Errorf("json key change %v", recs[2])
	}
	// PEER by name, UUID prefix and fingerprint prefix.
	for _, q := range []string{"alice", alice.id.String()[:6], trust.Fingerprint(alice.key)[:9]} {
		out := c.mustRun("show", q)
		if !strings.Contains(out, "name:          alice") || !strings.Contains(out, alice.key.Z85()) || !strings.Contains(out, "bound:         yes") {
			t.Errorf("show %s:\n%s", q, out)
		}
	}
	out = c.mustRun("show", "carol")
	if !strings.HasPrefix(out, "WARNING: KEY CHANGED") || !strings.Contains(out, "bound:         no") {
		t.Errorf("show carol does not start with the warning:\n%s", out)
	}
	if code, _, errs := c.run("show", "nobody"); code != 1 || !strings.Contains(errs, "no such peer") {
		t.Errorf("show nobody: %d %s", code, errs)
	}
	if code, _, _ := c.run("show"); code != 2 {
		t.Errorf("show without PEER: exit %d", code)
	}
	_ = carol
}

func TestTrustAmbiguousPeer(t *testing.T) {
	c := newTrustCLI(t)
	a, b := newTrustPeer(1, "twin"), newTrustPeer(2, "twin")
	c.admit(a, trustT0)
	c.admit(b, trustT0)
	code, _, errs := c.run("revoke", "twin")
	if code != 1 || !strings.Contains(errs, "ambiguous") || !strings.Contains(errs, trust.Fingerprint(a.key)) || !strings.Contains(errs, trust.Fingerprint(b.key)) {
		t.Fatalf("ambiguous revoke: exit %d, %s", code, errs)
	}
	if rs, _ := c.st.Revoked(); len(rs) != 0 {
		t.Fatal("an ambiguous revoke revoked something")
	}
}

func TestTrustAcceptAndRevoke(t *testing.T) {
	c := newTrustCLI(t)
	alice, _, _, carol2 := c.populate()
	if code, _, errs := c.run("accept", "alice"); code != 1 || !strings.Contains(errs, "no key change") {
		t.Fatalf("accept without change: %d %s", code, errs)
	}
	out := c.mustRun("accept", trust.Fingerprint(carol2.key)[:8])
	if !strings.Contains(out, "accepted the new key of carol") {
		t.Fatalf("accept: %s", out)
	}
	if v := c.admit(carol2, trustT0.Add(2*time.Minute)); !v.Allow {
		t.Fatalf("accepted key refused: %+v", v)
	}
	// Without an identity to sign with, a revoke changes nothing and fails.
	code, out, errs := c.run("revoke", "alice", "--reason", "lost laptop")
	if code != 1 || !strings.Contains(errs, "not revoked: no identity to sign with") {
		t.Fatalf("revoke without identity: %d\n%s\n%s", code, out, errs)
	}
	if v := c.admit(alice, trustT0.Add(3*time.Minute)); !v.Allow {
		t.Fatal("a failed revoke was applied")
	}
	code, out, errs = c.run("revoke", "alice", "--reason", "lost laptop", "--local")
	if code != 0 || !strings.Contains(out, "revoked alice") || !strings.Contains(out, "here only") {
		t.Fatalf("revoke --local: %d\n%s\n%s", code, out, errs)
	}
	if v := c.admit(alice, trustT0.Add(3*time.Minute)); v.Allow {
		t.Fatal("revoked alice admitted")
	}
	out = c.mustRun("show", "alice")
	if !strings.Contains(out, "REVOKED") || !strings.Contains(out, "locally: lost laptop") {
		t.Fatalf("show revoked:\n%s", out)
	}
}

func TestTrustRevokeSigns(t *testing.T) {
	for _, tc := range []struct {
		name     string
		prot     keystore.Protection
		passFile bool
		signed   bool
	}{
		{"plaintext", keystore.Protection{Plaintext: true}, false, true},
		{"passphrase file", keystore.Protection{Passphrase: "sesame", WorkFactor: 4}, true, true},
		{"passphrase missing", keystore.Protection{Passphrase: "sesame", WorkFactor: 4}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTrustCLI(t)
			ks, _ := keystore.Open(c.home, keystore.Options{})
			id, err := ks.Init(context.Background(), keystore.InitOptions{Name: "me", Protection: tc.prot})
			if err != nil {
				t.Fatal(err)
			}
			id.Wipe()
			if tc.passFile {
				pf := filepath.Join(t.TempDir(), "pass")
				os.WriteFile(pf, []byte("sesame\n"), 0o600)
				c.env["ZYRE_PASSPHRASE_FILE"] = pf
			}
			p := newTrustPeer(7, "mallory")
			c.admit(p, trustT0)
			code, out, errs := c.run("revoke", "mallory", "--reason", "stole a key")
			// All or nothing: signed, or not applied with an error.
			if tc.signed != (code == 0) {
				t.Fatalf("revoke: %d %s", code, errs)
			}
			if got := strings.Contains(out, "signed revocation #1"); got != tc.signed {
				t.Fatalf("signed = %v, want %v\nstdout: %s\nstderr: %s", got, tc.signed, out, errs)
			}
			if r, _, _ := c.st.Lookup(p.key); (r.State == trust.StateRevoked) != tc.signed {
				t.Fatalf("state %s after revoke with exit %d", r.State, code)
			}
			if !tc.signed && !strings.Contains(errs, "not revoked: the identity is protected by a passphrase") {
				t.Fatalf("unclear error: %s", errs)
			}
			log := c.mustRun("log")
			if tc.signed && (!strings.Contains(log, "this node, 1 statement\n") || !strings.Contains(log, "revoke  mallory") || !strings.Contains(log, "stole a key")) {
				t.Fatalf("log:\n%s", log)
			}
		})
	}
}

func TestTrustPolicy(t *testing.T) {
	c := newTrustCLI(t)
	if out := c.mustRun("policy"); !strings.Contains(out, "mode:            tofu") || !strings.Contains(out, "introductions:   true") {
		t.Fatalf("default policy:\n%s", out)
	}
	c.mustRun("policy", "strict", "--introductions=false")
	p, err := c.st.Policy()
	if err != nil || p.Mode != trust.ModeStrict || p.Introductions || !p.VerifiedRevoke {
		t.Fatalf("policy %+v, %v", p, err)
	}
	if code, _, _ := c.run("policy", "lax"); code != 2 {
		t.Fatalf("bad mode: exit %d", code)
	}
	if out := c.mustRun("policy", "--vouch=false"); !strings.Contains(out, "vouch:           false") {
		t.Fatalf("policy --vouch=false:\n%s", out)
	}
	if p, err := c.st.Policy(); err != nil || p.Vouch || p.Mode != trust.ModeStrict {
		t.Fatalf("policy after --vouch=false: %+v, %v", p, err)
	}
}

// TestTrustListIntroducer: "zyre trust list" says who introduced a peer.
func TestTrustListIntroducer(t *testing.T) {
	c := newTrustCLI(t)
	ctx := context.Background()
	room, phone := newTrustPeer(1, "room"), newTrustPeer(2, "phone2")
	_, roomSigner, err := ed25519.GenerateKey(rand.NewChaCha8([32]byte{'r'}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.st.MarkVerified(ctx, room.key, room.id, room.name, "qr", roomSigner.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	roomStore, err := trust.Open(t.TempDir(), trust.Options{})
	if err != nil {
		t.Fatal(err)
	}
	stmt, err := roomStore.Sign(ctx, keySigner(roomSigner), &trust.Vouch{Key: phone.key, UUID: phone.id, Name: phone.name})
	if err != nil {
		t.Fatal(err)
	}
	if a, err := c.st.Apply(ctx, stmt.Raw); err != nil || !a.Honoured {
		t.Fatalf("room's vouch: %+v, %v", a, err)
	}
	if v, err := c.st.Admit(ctx, phone.obs(), time.Now()); err != nil || v.Record.State != trust.StateIntroduced {
		t.Fatalf("phone2: %+v, %v", v, err)
	}
	if out := c.mustRun("list"); !regexp.MustCompile(`(?m)^phone2 .* introduced by room `).MatchString(out) {
		t.Fatalf("list:\n%s", out)
	}
	roomStore.Flush(ctx)
}

// keySigner is a trust.Signer of an Ed25519 key.
type keySigner ed25519.PrivateKey

func (k keySigner) Signer() ed25519.PrivateKey { return ed25519.PrivateKey(k) }

func TestTrustUsage(t *testing.T) {
	var out, errb bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	for args, want := range map[string]int{"trust": 2, "trust frob": 2, "trust help": 0, "trust list extra": 2} {
		if code := run(context.Background(), env, strings.Fields(args)); code != want {
			t.Errorf("zyre %s: exit %d, want %d", args, code, want)
		}
	}
	if !strings.Contains(errb.String(), "usage: zyre trust") {
		t.Error("no usage text")
	}
}

func TestTrustCorruptStore(t *testing.T) {
	c := newTrustCLI(t)
	os.MkdirAll(c.home, 0o700)
	bad := "{\n  \"version\": 1,\n  \"policy\": oops\n}\n"
	os.WriteFile(filepath.Join(c.home, trust.FileName), []byte(bad), 0o600)
	code, _, errs := c.run("list")
	if code != 1 || !strings.Contains(errs, "trust.json: trust: corrupt trust file: line 3") {
		t.Fatalf("list of corrupt store: %d %q", code, errs)
	}
	if code, _, _ := c.run("policy", "open"); code != 1 {
		t.Fatal("policy change on a corrupt store succeeded")
	}
	if got, _ := os.ReadFile(filepath.Join(c.home, trust.FileName)); string(got) != bad {
		t.Fatal("corrupt store overwritten")
	}
}

// TestTrustCLIWhileNodeRuns edits the store through the CLI (revoke,
// accept, policy) while a "node" goroutine admits new peers and refreshes
// known ones: nothing is lost.
func TestTrustCLIWhileNodeRuns(t *testing.T) {
	c := newTrustCLI(t)
	const victims, fresh = 8, 40
	var vs, imps []trustPeer
	for i := range victims {
		p := newTrustPeer(byte(100+i), fmt.Sprintf("victim-%d", i))
		p.id = uuid.NewSHA1(uuid.NameSpaceOID, []byte(p.name)) // unbound, like a C node
		c.admit(p, trustT0)
		vs = append(vs, p)
		// A new key for the same peer, waiting for "accept".
		imp := newTrustPeer(byte(150+i), p.name)
		imp.id = p.id
		if v := c.admit(imp, trustT0); v.KeyChange == nil {
			t.Fatalf("no key change for %s: %+v", p.name, v)
		}
		imps = append(imps, imp)
	}
	node, err := trust.Open(c.home, trust.Options{SeenResolution: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	nodeErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range fresh {
			now := trustT0.Add(time.Duration(i+1) * time.Minute)
			p := newTrustPeer(byte(i), fmt.Sprintf("fresh-%d", i))
			if v, err := node.Admit(context.Background(), p.obs(), now); err != nil || !v.Allow {
				nodeErr <- fmt.Errorf("admit %s: %v %v", p.name, v.Reason, err)
				return
			}
			// Refresh a victim: a last-seen (or key change) write racing the CLI.
			if _, err := node.Admit(context.Background(), vs[i%victims].obs(), now); err != nil {
				nodeErr <- err
				return
			}
		}
	}()
	for i, p := range vs {
		if i%2 == 0 {
			c.mustRun("revoke", p.name, "--reason", "test", "--local")
		} else {
			c.mustRun("accept", p.name)
		}
		c.mustRun("policy", "tofu", "--verified-revoke=true")
	}
	wg.Wait()
	close(nodeErr)
	if err := <-nodeErr; err != nil {
		t.Fatal(err)
	}
	if err := node.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.flush()
	recs, err := c.st.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != victims+fresh {
		t.Fatalf("%d records, want %d", len(recs), victims+fresh)
	}
	seen := 0
	for _, r := range recs {
		var i int
		if _, err := fmt.Sscanf(r.Name, "victim-%d", &i); err != nil {
			continue
		}
		seen++
		switch {
		case i%2 == 0 && r.State != trust.StateRevoked:
			t.Errorf("%s: state %s, want revoked", r.Name, r.State)
		case i%2 == 1 && r.Key != imps[i].key:
			t.Errorf("%s: the accepted key was lost", r.Name)
		}
	}
	if seen != victims {
		t.Fatalf("%d victims found", seen)
	}
}

// TestTrustAcceptByNewFingerprint: the new key connected first (pinned by
// the authorizer, without a name), so its fingerprint names two records;
// accept picks the one with the key change, as the warning tells.
func TestTrustAcceptByNewFingerprint(t *testing.T) {
	c := newTrustCLI(t)
	old, neu := newTrustPeer(1, "printer"), newTrustPeer(2, "printer")
	old.id, neu.id = uuid.MustParse("11111111-2222-4333-8444-555555555555"), uuid.MustParse("99999999-2222-4333-8444-555555555555")
	c.admit(old, trustT0)
	if v, _ := c.st.Admit(context.Background(), trust.Observation{UUID: neu.id, Key: neu.key}, trustT0); !v.Allow {
		t.Fatalf("connection refused: %+v", v)
	}
	if v := c.admit(neu, trustT0); v.KeyChange == nil {
		t.Fatalf("no key change: %+v", v)
	}
	list := c.mustRun("list")
	_, cmd, ok := strings.Cut(list, "run: ")
	if !ok {
		t.Fatalf("no accept hint:\n%s", list)
	}
	out := c.mustRun(strings.Fields(cmd)[2:]...)
	if !strings.Contains(out, "accepted the new key of printer") {
		t.Fatalf("accept: %s", out)
	}
	if recs, _ := c.st.List(); len(recs) != 1 || recs[0].Key != neu.key {
		t.Fatalf("records after accept: %+v", recs)
	}
}
