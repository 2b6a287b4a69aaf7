package privgroup

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/zeebo/blake3"
	"golang.org/x/crypto/chacha20poly1305"
)

// The vectors in spec/private-groups.md ("```vector" blocks, one per
// suite) are recomputed here, so the document and the code cannot drift
// apart.

func readSpecVectors(t *testing.T) []map[string]string {
	t.Helper()
	f, err := os.Open("../spec/private-groups.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vs []map[string]string
	var v map[string]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "```vector":
			v = map[string]string{}
		case v != nil && line == "```":
			vs = append(vs, v)
			v = nil
		case v != nil && line != "":
			k, val, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("bad vector line %q", line)
			}
			v[strings.TrimSpace(k)] += strings.TrimSpace(val)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

type vector struct {
	suite                     Suite
	group                     string
	sender                    [16]byte
	epoch                     uint32
	signSeed, chainKey0       []byte
	signPub                   []byte
	keyID                     KeyID
	msgKey0, chainKey1        [32]byte
	plaintext, message, batch []byte
}

func computeVector(t *testing.T, in map[string]string) vector {
	t.Helper()
	unhex := func(k string) []byte {
		b, err := hex.DecodeString(in[k])
		if err != nil || in[k] == "" {
			t.Fatalf("vector %s: %q %v", k, in[k], err)
		}
		return b
	}
	var v vector
	v.suite = Suite(unhex("suite")[0])
	v.group = in["group"]
	copy(v.sender[:], unhex("sender_id"))
	e := unhex("epoch")
	v.epoch = uint32(e[0])<<24 | uint32(e[1])<<16 | uint32(e[2])<<8 | uint32(e[3])
	v.signSeed = unhex("signing_seed")
	priv := ed25519.NewKeyFromSeed(v.signSeed)
	v.signPub = priv.Public().(ed25519.PublicKey)
	v.keyID = makeKeyID(v.group, v.sender, v.epoch, v.signPub)
	var ck [32]byte
	copy(ck[:], unhex("chain_key_0"))
	v.msgKey0 = ratchet(&ck)
	v.chainKey1 = ck
	v.plaintext = []byte(in["plaintext"])
	// Seal exactly as Sender.Seal does, from these inputs.
	out := make([]byte, DataHeaderSize)
	putHeader(out, v.keyID, 0)
	ad := newAD(v.group, v.sender, v.epoch)
	copy(ad, out)
	var aead cipher.AEAD
	var h [32]byte
	switch v.suite {
	case SuiteChaCha20SHA256:
		aead, _ = chacha20poly1305.New(v.msgKey0[:])
	case SuiteAESGCMBLAKE3:
		b, _ := aes.NewCipher(v.msgKey0[:])
		aead, _ = cipher.NewGCM(b)
	default:
		t.Fatalf("vector of %s", v.suite)
	}
	nonce := nonceOf(v.keyID, 0)
	v.message = aead.Seal(out, nonce[:], v.plaintext, ad)
	if v.suite == SuiteAESGCMBLAKE3 {
		h = blake3.Sum256(v.message)
	} else {
		h = sha256.Sum256(v.message)
	}
	s := &Sender{suite: v.suite, group: v.group, id: v.sender, epoch: v.epoch, keyID: v.keyID, signKey: priv, root: v.suite.newHash()}
	s.pendCount = 1
	s.root.Write(h[:])
	v.batch, _ = s.Batch(nil)
	return v
}

func TestSpecVectors(t *testing.T) {
	vs := readSpecVectors(t)
	if len(vs) != 2 {
		t.Fatalf("%d vectors in the spec, want one per suite", len(vs))
	}
	for _, in := range vs {
		t.Run("suite "+in["suite"], func(t *testing.T) { checkSpecVector(t, in) })
	}
}

func checkSpecVector(t *testing.T, in map[string]string) {
	v := computeVector(t, in)
	for _, c := range []struct {
		name string
		got  []byte
	}{
		{"signing_public_key", v.signPub},
		{"key_id", v.keyID[:]},
		{"message_key_0", v.msgKey0[:]},
		{"chain_key_1", v.chainKey1[:]},
		{"data_message", v.message},
		{"batch_record", v.batch},
	} {
		if want := in[c.name]; hex.EncodeToString(c.got) != want {
			t.Errorf("%s = %x\nspec says %s", c.name, c.got, want)
		}
	}
	// And the Receiver opens the spec's message given the same key.
	r := &Receiver{group: v.group, opts: Options{Window: 64, MaxAhead: 64, MaxPending: 1}}
	r.opts, _ = r.opts.withDefaults()
	c := &chain{id: v.keyID, suite: v.suite, epoch: v.epoch, sender: uuid.UUID(v.sender), have: make([]uint64, 1), hashes: make([][32]byte, 64),
		skipped: map[uint64][32]byte{}, ad: newAD(v.group, v.sender, v.epoch)}
	copy(c.ck[:], bytes.Clone(mustHex(t, in["chain_key_0"])))
	copy(c.signPub[:], v.signPub)
	r.chains = map[KeyID]*chain{v.keyID: c}
	r.peers = map[uuid.UUID]*peer{}
	msg := mustHex(t, in["data_message"])
	pt, _, err := r.Open(nil, msg)
	if err != nil || string(pt) != in["plaintext"] {
		t.Fatalf("open spec message: %q %v", pt, err)
	}
	_, info, err := r.Open(nil, mustHex(t, in["batch_record"]))
	if err != nil || info.Status != Authenticated {
		t.Fatalf("open spec batch: %+v %v", info, err)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBLAKE3KnownAnswers pins the BLAKE3 library against the official test
// vectors (BLAKE3 repository, test_vectors.json: input octet i is i % 251),
// so a broken or swapped implementation cannot pass the vectors above by
// agreeing with itself.
func TestBLAKE3KnownAnswers(t *testing.T) {
	for _, c := range []struct {
		n    int
		want string
	}{
		{0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},
		{1, "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"},
		{1024, "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7"},
		{1025, "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444"},
		{31744, "62b6960e1a44bcc1eb1a611a8d6235b6b4b78f32e7abc4fb4c6cdcce94895c47"},
	} {
		in := make([]byte, c.n)
		for i := range in {
			in[i] = byte(i % 251)
		}
		if got := blake3.Sum256(in); hex.EncodeToString(got[:]) != c.want {
			t.Errorf("BLAKE3 of %d octets = %x, want %s", c.n, got, c.want)
		}
	}
}
