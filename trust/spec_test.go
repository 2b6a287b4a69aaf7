package trust

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/zyre-go/zyre/curve"
)

// specBlock returns the ```TAG block of spec/trust.md.
func specBlock(t testing.TB, tag string) []byte {
	t.Helper()
	b, err := os.ReadFile("../spec/trust.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "```"+tag+"\n")
	if !ok {
		t.Fatalf("spec/trust.md has no %s block", tag)
	}
	block, _, _ := strings.Cut(rest, "```")
	return []byte(block)
}

// TestSpecExample parses the trust.json of the spec and re-encodes it
// byte for byte.
func TestSpecExample(t *testing.T) {
	ex := specBlock(t, "example trust.json")
	st, err := parseFile(ex)
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, ex) {
		t.Fatalf("re-encoding differs:\n%s", got)
	}
	want := map[string]State{"alice": StateTOFU, "bob": StateVerified, "c-node": StateTOFU, "": StateRevoked}
	for _, r := range st.sorted() {
		if want[r.Name] != r.State {
			t.Errorf("%q is %s", r.Name, r.State)
		}
	}
}

// specVectorKeys are the keys the spec's vectors use.
func specVectorKeys() (ed25519.PrivateKey, curve.PublicKey, curve.PublicKey) {
	seed, a, b := make([]byte, 32), make([]byte, 32), make([]byte, 32)
	for i := range 32 {
		seed[i], a[i], b[i] = byte(i), byte(0x20+i), byte(0x40+i)
	}
	sa, _ := curve.NewSecretKey(a)
	sb, _ := curve.NewSecretKey(b)
	return ed25519.NewKeyFromSeed(seed), sa.Public(), sb.Public()
}

// TestSpecVectors checks the statement vectors of the spec: they parse,
// hash as stated, and signing the described statements reproduces them.
func TestSpecVectors(t *testing.T) {
	priv, ka, kb := specVectorKeys()
	vt := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	bind, _ := signStatement(priv, 0, [32]byte{}, vt, &Binding{Key: ka})
	vouch, _ := signStatement(priv, 1, [32]byte{}, vt, &Vouch{Key: kb, UUID: keyUUID(kb), Name: "carol"})
	revoke, _ := signStatement(priv, 2, vouch.Hash(), vt.Add(time.Minute), &Revoke{Key: kb, Reason: "lost phone"})
	want := map[string]*Statement{"binding": bind, "vouch": vouch, "revoke": revoke}
	sc := bufio.NewScanner(bytes.NewReader(specBlock(t, "vectors statements")))
	sc.Buffer(nil, 1<<16)
	n := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			t.Fatalf("bad vector line %q", sc.Text())
		}
		raw, err := hex.DecodeString(f[2])
		if err != nil {
			t.Fatal(err)
		}
		s, err := ParseStatement(raw)
		if err != nil {
			t.Fatalf("%s: %v", f[0], err)
		}
		h := s.Hash()
		if s.Kind().String() != f[0] || hex.EncodeToString(h[:]) != f[1] {
			t.Errorf("%s: kind %s, hash %x", f[0], s.Kind(), h)
		}
		if w := want[f[0]]; w == nil || !bytes.Equal(w.Raw, raw) {
			t.Errorf("%s: signing the described statement gives other octets", f[0])
		}
		n++
	}
	if n != 3 {
		t.Fatalf("%d vectors", n)
	}
	if _, _, err := VerifyBinding(bind.Raw, ka); err != nil {
		t.Fatal(err)
	}
}
