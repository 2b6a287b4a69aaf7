package privgroup

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/google/uuid"
	"golang.org/x/crypto/chacha20poly1305"
)

// The vector in spec/private-groups.md ("```vector" block) is recomputed
// here, so the document and the code cannot drift apart.

func readSpecVector(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("../spec/private-groups.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v := map[string]string{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "```vector":
			in = true
		case in && line == "```":
			in = false
		case in && line != "":
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
	return v
}

type vector struct {
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
	aead, _ := chacha20poly1305.New(v.msgKey0[:])
	nonce := nonceOf(v.keyID, 0)
	v.message = aead.Seal(out, nonce[:], v.plaintext, ad)
	s := &Sender{group: v.group, id: v.sender, epoch: v.epoch, keyID: v.keyID, signKey: priv, root: sha256.New()}
	s.pendCount = 1
	h := sha256.Sum256(v.message)
	s.root.Write(h[:])
	v.batch, _ = s.Batch(nil)
	return v
}

func TestSpecVector(t *testing.T) {
	in := readSpecVector(t)
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
	r := &Receiver{group: v.group, hasher: sha256.New(), opts: Options{Window: 64, MaxAhead: 64, MaxPending: 1}}
	r.opts, _ = r.opts.withDefaults()
	c := &chain{id: v.keyID, epoch: v.epoch, sender: uuid.UUID(v.sender), have: make([]uint64, 1), hashes: make([][32]byte, 64),
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
