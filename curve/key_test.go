package curve

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestZ85RFCVector(t *testing.T) {
	// RFC 32's test vector.
	raw := []byte{0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B}
	s, err := EncodeZ85(raw)
	if err != nil || s != "HelloWorld" {
		t.Fatalf("EncodeZ85 = %q, %v; want HelloWorld", s, err)
	}
	b, err := DecodeZ85("HelloWorld")
	if err != nil || !bytes.Equal(b, raw) {
		t.Fatalf("DecodeZ85 = %x, %v", b, err)
	}
}

func TestZ85Rejects(t *testing.T) {
	for _, s := range []string{"Hell", "Hello World", "Hel\"o", "#####"} {
		if _, err := DecodeZ85(s); !errors.Is(err, ErrZ85) {
			t.Errorf("DecodeZ85(%q) err = %v, want ErrZ85", s, err)
		}
	}
	if _, err := EncodeZ85([]byte{1, 2, 3}); !errors.Is(err, ErrZ85) {
		t.Errorf("EncodeZ85 of 3 octets: err = %v", err)
	}
}

func TestKeyVectorsFromShared(t *testing.T) {
	// Keypairs A and B of testdata README (the zmq_curve(7) test keys).
	for _, kp := range []struct{ pubZ, secZ, pubHex, secHex string }{
		{"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6",
			"54fcba24e93249969316fb617c872bb0c1d1ff14800427c594cbfacf1bc2d652",
			"8e0bdd697628b91d8f245587ee95c5b04d48963f79259877b49cd9063aead3b7"},
		{"Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID", "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs",
			"bb88471d65e2659b30c55a5321cebb5aab2b70a398645c26dca2b2fcb43fc518",
			"7bb864b489afa3671fbe69101f94b38972f24816dfb01b51656b3fec8dfd0888"},
	} {
		pk, err := ParsePublicKey(kp.pubZ)
		if err != nil {
			t.Fatal(err)
		}
		if hex.EncodeToString(pk.Bytes()) != kp.pubHex || pk.Z85() != kp.pubZ {
			t.Errorf("public key %s decoded to %x", kp.pubZ, pk.Bytes())
		}
		sk, err := ParseSecretKey(kp.secZ)
		if err != nil {
			t.Fatal(err)
		}
		if hex.EncodeToString(sk.Bytes()) != kp.secHex {
			t.Errorf("secret key decoded wrong")
		}
		if !sk.Public().Equal(pk) {
			t.Errorf("Public() of secret %s = %s, want %s", kp.secZ, sk.Public(), pk)
		}
		for _, s := range []string{fmt.Sprint(sk), fmt.Sprintf("%v %+v %#v %s %x", sk, sk, sk, &sk, sk)} {
			if strings.Contains(s, kp.secZ) || strings.Contains(s, kp.secHex[:8]) {
				t.Errorf("secret key printed: %s", s)
			}
		}
	}
}

func TestParseKeyRejects(t *testing.T) {
	for _, s := range []string{"", "short", strings.Repeat("z", 41), strings.Repeat("g", 64), strings.Repeat("\"", 40)} {
		if _, err := ParsePublicKey(s); !errors.Is(err, ErrInvalidKey) && !errors.Is(err, ErrZ85) {
			t.Errorf("ParsePublicKey(%q) err = %v", s, err)
		}
		_, err := ParseSecretKey(s)
		if !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ParseSecretKey(%q) err = %v", s, err)
		}
		if s != "" && err != nil && strings.Contains(err.Error(), s) {
			t.Errorf("ParseSecretKey error echoes its input: %v", err)
		}
	}
}

// zeroThenRandom yields zeros for the first key (whose public key starts
// with a nonzero byte, so we need a reader that forces a retry instead).
type scriptedReader struct{ chunks [][]byte }

func (r *scriptedReader) Read(p []byte) (int, error) {
	c := r.chunks[0]
	r.chunks = r.chunks[1:]
	return copy(p, c), nil
}

func TestGenerateKeyPairSkipsZeroFirstOctet(t *testing.T) {
	// Find a secret whose public key starts with 0x00, then check that
	// GenerateKeyPair draws again.
	var bad [32]byte
	for i := 0; ; i++ {
		bad[0], bad[1], bad[2] = byte(i), byte(i>>8), byte(i>>16)
		sk, _ := NewSecretKey(bad[:])
		if sk.Public().Bytes()[0] == 0 {
			break
		}
	}
	good := bytes.Repeat([]byte{7}, 32)
	pk, sk, err := GenerateKeyPair(&scriptedReader{chunks: [][]byte{bad[:], good}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sk.Bytes(), good) || pk.Bytes()[0] == 0 {
		t.Fatalf("GenerateKeyPair kept a key with a zero first octet")
	}
}

func TestSharedSecretRejectsLowOrder(t *testing.T) {
	_, sk, err := GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sk.SharedSecret(PublicKey{}); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("SharedSecret with zero key: err = %v", err)
	}
}

func FuzzDecodeZ85(f *testing.F) {
	f.Add("HelloWorld")
	f.Add("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7")
	f.Add("#####")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := DecodeZ85(s)
		if err != nil {
			return
		}
		back, err := EncodeZ85(b)
		if err != nil || back != s {
			t.Fatalf("round trip %q -> %x -> %q, %v", s, b, back, err)
		}
	})
}

// TestKeyPair: a prepared key pair derives the public key, refuses one
// that does not match, and gives Clients and Servers the same handshake
// as the raw keys; a Client with a prepared key checks the server key at
// Hello instead of NewClient.
func TestKeyPair(t *testing.T) {
	spub, ssec, err := GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	cpub, csec, err := GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	skp, err := NewKeyPair(PublicKey{}, ssec)
	if err != nil || !skp.Public().Equal(spub) {
		t.Fatalf("NewKeyPair without a public key: %v, %v", skp, err)
	}
	if _, err := NewKeyPair(cpub, ssec); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("NewKeyPair with another public key: %v", err)
	}
	ckp, err := NewKeyPair(cpub, csec)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(ServerConfig{Key: skp})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := NewClient(ClientConfig{Key: ckp, ServerKey: spub})
	if err != nil {
		t.Fatal(err)
	}
	cs, ss := handshakeOf(t, srv, cli, cpub)
	body, err := cs.Seal(nil, 0, []byte("over prepared keys"))
	if err != nil {
		t.Fatal(err)
	}
	if _, p, err := ss.Open(nil, body); err != nil || string(p) != "over prepared keys" {
		t.Fatalf("Open: %q, %v", p, err)
	}
	for _, h := range lowOrder {
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		bad, err := NewPublicKey(b)
		if err != nil {
			t.Fatal(err)
		}
		if bad.IsZero() {
			continue // "no server key", refused by NewClient in any case
		}
		c, err := NewClient(ClientConfig{Key: ckp, ServerKey: bad})
		if err != nil {
			t.Fatalf("NewClient with a prepared key: %v", err)
		}
		if _, err := c.Hello(); !errors.Is(err, ErrInvalidKey) || !errors.Is(err, ErrHandshake) {
			t.Errorf("Hello to server key %s: err = %v", h[:8], err)
		}
	}
}

// TestZeroKeyPair: a KeyPair not made by NewKeyPair is refused by
// NewServer and NewClient, not a nil dereference at the peer's HELLO.
func TestZeroKeyPair(t *testing.T) {
	spub, _, err := GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := NewServer(ServerConfig{Key: &KeyPair{}}); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("NewServer with a zero KeyPair: %v (server %v)", err, s != nil)
	}
	if c, err := NewClient(ClientConfig{Key: &KeyPair{}, ServerKey: spub}); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("NewClient with a zero KeyPair: %v (client %v)", err, c != nil)
	}
}
