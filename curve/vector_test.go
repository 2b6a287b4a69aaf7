package curve

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"testing"

	"golang.org/x/crypto/chacha20"

	"github.com/zyre-go/zyre/internal/golden"
)

// The deterministic libzmq 4.3.4 CURVE session of testdata/zre/README.md,
// section "CurveZMQ session".

const (
	serverSeed = 17
	clientSeed = 42
	keyApub    = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
	keyAsec    = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
	keyBpub    = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
	keyBsec    = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"
)

// drawReader replays libsodium's replaced RNG: its k-th Read (k from 1)
// returns the first len(p) octets of DJB ChaCha20 with the 8-octet nonce k
// (little-endian) and a key of 32 octets all equal to seed. DJB ChaCha20
// with counter 0 equals IETF ChaCha20 with nonce 0^4 || nonce8 for outputs
// shorter than 2^32 blocks.
type drawReader struct {
	seed  byte
	k     uint64
	sizes []int // sizes of the draws made, for the test to check
}

func (r *drawReader) Read(p []byte) (int, error) {
	r.k++
	key := bytes.Repeat([]byte{r.seed}, 32)
	var nonce [12]byte
	binary.LittleEndian.PutUint64(nonce[4:], r.k)
	c, err := chacha20.NewUnauthenticatedCipher(key, nonce[:])
	if err != nil {
		return 0, err
	}
	clear(p)
	c.XORKeyStream(p, p)
	r.sizes = append(r.sizes, len(p))
	return len(p), nil
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// zmtpFrame is one ZMTP 3 frame: flags, then a 1-octet size or (flag 0x02)
// an 8-octet size, then the body.
type zmtpFrame struct {
	flags byte
	body  []byte
}

func parseFrame(t testing.TB, b []byte) zmtpFrame {
	t.Helper()
	if len(b) < 2 {
		t.Fatalf("frame of %d octets", len(b))
	}
	f := zmtpFrame{flags: b[0]}
	var n uint64
	rest := b[2:]
	if f.flags&0x02 != 0 {
		if len(b) < 9 {
			t.Fatalf("long frame of %d octets", len(b))
		}
		n, rest = binary.BigEndian.Uint64(b[1:9]), b[9:]
	} else {
		n = uint64(b[1])
	}
	if uint64(len(rest)) != n {
		t.Fatalf("frame says %d octets, has %d", n, len(rest))
	}
	f.body = rest
	return f
}

// frame encodes a ZMTP 3 frame the way libzmq does (long form above 255).
func frame(flags byte, body []byte) []byte {
	if len(body) > 255 {
		b := []byte{flags | 0x02}
		b = binary.BigEndian.AppendUint64(b, uint64(len(body)))
		return append(b, body...)
	}
	return append([]byte{flags, byte(len(body))}, body...)
}

// property encodes one RFC 37 metadata property.
func property(name string, value []byte) []byte {
	b := append([]byte{byte(len(name))}, name...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(value)))
	return append(b, value...)
}

type vector struct {
	c2s, s2c       [][]byte // raw lines
	hello          []byte   // command bodies
	welcome        []byte
	initiate       []byte
	ready          []byte
	messages       [][]byte // MESSAGE bodies, client to server
	clientMetadata []byte
	serverMetadata []byte
	frames         [][]byte // the ZRE frames inside the MESSAGEs
	innerFlags     []byte
	keyA, keyB     PublicKey
	secA, secB     SecretKey
}

func loadVector(t testing.TB) *vector {
	t.Helper()
	v := &vector{
		c2s: golden.HexLines(t, "curvezmq_client_to_server.hex"),
		s2c: golden.HexLines(t, "curvezmq_server_to_client.hex"),
	}
	if len(v.c2s) != 7 || len(v.s2c) != 3 {
		t.Fatalf("vector has %d and %d lines, want 7 and 3", len(v.c2s), len(v.s2c))
	}
	v.hello = parseFrame(t, v.c2s[1]).body
	v.initiate = parseFrame(t, v.c2s[2]).body
	for _, l := range v.c2s[3:] {
		v.messages = append(v.messages, parseFrame(t, l).body)
	}
	v.welcome = parseFrame(t, v.s2c[1]).body
	v.ready = parseFrame(t, v.s2c[2]).body
	identity := golden.HexLines(t, "identity.hex")[0]
	v.clientMetadata = append(property("Socket-Type", []byte("DEALER")), property("Identity", identity)...)
	v.serverMetadata = append(property("Socket-Type", []byte("ROUTER")), property("Identity", nil)...)
	v.frames = append(v.frames, golden.HexLines(t, "hello.hex")...)
	v.frames = append(v.frames, golden.HexLines(t, "whisper.hex")...)
	v.innerFlags = []byte{0, FlagMore, FlagMore, 0}
	var err error
	if v.keyA, err = ParsePublicKey(keyApub); err != nil {
		t.Fatal(err)
	}
	if v.keyB, err = ParsePublicKey(keyBpub); err != nil {
		t.Fatal(err)
	}
	if v.secA, err = ParseSecretKey(keyAsec); err != nil {
		t.Fatal(err)
	}
	if v.secB, err = ParseSecretKey(keyBsec); err != nil {
		t.Fatal(err)
	}
	return v
}

func (v *vector) server(t testing.TB) (*Server, *drawReader) {
	t.Helper()
	r := &drawReader{seed: serverSeed}
	s, err := NewServer(ServerConfig{Public: v.keyA, Secret: v.secA, Rand: r})
	if err != nil {
		t.Fatal(err)
	}
	return s, r
}

func (v *vector) client(t testing.TB) (*Client, *drawReader) {
	t.Helper()
	r := &drawReader{seed: clientSeed}
	c, err := NewClient(ClientConfig{Public: v.keyB, Secret: v.secB, ServerKey: v.keyA, Rand: r})
	if err != nil {
		t.Fatal(err)
	}
	return c, r
}

// welcomedServer is a vector server that has answered the vector HELLO.
func (v *vector) welcomedServer(t testing.TB) *Server {
	t.Helper()
	s, _ := v.server(t)
	if _, err := s.Hello(v.hello); err != nil {
		t.Fatal(err)
	}
	return s
}

// helloClient is a vector client that has sent its HELLO.
func (v *vector) helloClient(t testing.TB) *Client {
	t.Helper()
	c, _ := v.client(t)
	if _, err := c.Hello(); err != nil {
		t.Fatal(err)
	}
	return c
}

// initiatedClient is a vector client that has answered the vector WELCOME.
func (v *vector) initiatedClient(t testing.TB) *Client {
	t.Helper()
	c := v.helloClient(t)
	if _, err := c.Welcome(v.welcome, v.clientMetadata); err != nil {
		t.Fatal(err)
	}
	return c
}

// serverSession is the server's Session after the vector handshake.
func (v *vector) serverSession(t testing.TB) *Session {
	t.Helper()
	s := v.welcomedServer(t)
	if _, _, err := s.Initiate(v.initiate); err != nil {
		t.Fatal(err)
	}
	_, sess, err := s.Ready(v.serverMetadata)
	if err != nil {
		t.Fatal(err)
	}
	return sess
}

func TestVectorDraws(t *testing.T) {
	// The reader reproduces the draw table of the README.
	for _, tc := range []struct {
		seed byte
		want []string
	}{
		{serverSeed, []string{
			"fa6f154c000a99e0a5842160d4201dc7420215a52f24d53173c7aa333f5c473a",
			"b919475e4c551683667280f1b9cc0ae9",
			"85ecdd661815bcf33c2aae58456cc8521b86cafe6ba01523b2ea7912e88336dc",
			"d75682e2fe539ccfba1bdcd77067446f",
		}},
		{clientSeed, []string{
			"158e53c45ce071f3e4dcb8095cef6524c4d4033cc995078f4c0b608c03025cc2",
			"dd91e5e21d0ed87acd336d1b135b56ff",
		}},
	} {
		r := &drawReader{seed: tc.seed}
		for i, w := range tc.want {
			b := make([]byte, len(w)/2)
			r.Read(b)
			if hex.EncodeToString(b) != w {
				t.Errorf("seed %d draw %d = %x, want %s", tc.seed, i+1, b, w)
			}
		}
	}
	for _, tc := range []struct {
		seed byte
		pub  string
	}{
		{serverSeed, "5734f2aaf3f03b8d1f3b513fa048c5c84d5e33818b20c6deee04305387725d7c"},
		{clientSeed, "c50598fd6701e8f67dc016a7e271857a3dca2091d1e5eca787fe9dd5b5824035"},
	} {
		var sk SecretKey
		(&drawReader{seed: tc.seed}).Read(sk.b[:])
		if p := sk.Public(); hex.EncodeToString(p.Bytes()) != tc.pub {
			t.Errorf("seed %d transient public key %x, want %s", tc.seed, p.Bytes(), tc.pub)
		}
	}
}

func TestVectorGreetings(t *testing.T) {
	v := loadVector(t)
	for _, g := range [][]byte{v.c2s[0], v.s2c[0]} {
		if len(g) != 64 || g[0] != 0xff || g[9] != 0x7f || g[10] != 3 || g[11] != 1 {
			t.Fatalf("greeting %x is not ZMTP 3.1", g)
		}
		if mech := string(bytes.TrimRight(g[12:32], "\x00")); mech != "CURVE" {
			t.Fatalf("greeting mechanism %q, want CURVE", mech)
		}
	}
	if v.c2s[0][32] != 0 || v.s2c[0][32] != 0 {
		t.Errorf("as-server octets %d %d, want 0 0", v.c2s[0][32], v.s2c[0][32])
	}
}

func TestVectorServer(t *testing.T) {
	v := loadVector(t)
	s, r := v.server(t)
	welcome, err := s.Hello(v.hello)
	if err != nil {
		t.Fatal(err)
	}
	if got := frame(0x04, welcome); !bytes.Equal(got, v.s2c[1]) {
		t.Fatalf("WELCOME frame\n got %x\nwant %x", got, v.s2c[1])
	}
	if want := []int{32, 16, 32, 16}; !equalInts(r.sizes, want) {
		t.Errorf("server draws %v, want %v", r.sizes, want)
	}
	client, md, err := s.Initiate(v.initiate)
	if err != nil {
		t.Fatal(err)
	}
	if !client.Equal(v.keyB) {
		t.Errorf("client key %s, want %s", client, v.keyB)
	}
	if !bytes.Equal(md, v.clientMetadata) {
		t.Errorf("client metadata %x, want %x", md, v.clientMetadata)
	}
	ready, sess, err := s.Ready(v.serverMetadata)
	if err != nil {
		t.Fatal(err)
	}
	if got := frame(0x04, ready); !bytes.Equal(got, v.s2c[2]) {
		t.Fatalf("READY frame\n got %x\nwant %x", got, v.s2c[2])
	}
	if len(r.sizes) != 4 {
		t.Errorf("server made %d draws, want 4", len(r.sizes))
	}
	for i, m := range v.messages {
		if f := parseFrame(t, v.c2s[3+i]); f.flags != 0 {
			t.Errorf("MESSAGE %d outer flags %#x, want 0", i, f.flags)
		}
		flags, payload, err := sess.Open(nil, m)
		if err != nil {
			t.Fatalf("MESSAGE %d: %v", i, err)
		}
		if flags != v.innerFlags[i] || !bytes.Equal(payload, v.frames[i]) {
			t.Errorf("MESSAGE %d = flags %#x %x, want %#x %x", i, flags, payload, v.innerFlags[i], v.frames[i])
		}
	}
}

func TestVectorClient(t *testing.T) {
	v := loadVector(t)
	c, r := v.client(t)
	hello, err := c.Hello()
	if err != nil {
		t.Fatal(err)
	}
	if got := frame(0x04, hello); !bytes.Equal(got, v.c2s[1]) {
		t.Fatalf("HELLO frame\n got %x\nwant %x", got, v.c2s[1])
	}
	initiate, err := c.Welcome(v.welcome, v.clientMetadata)
	if err != nil {
		t.Fatal(err)
	}
	if got := frame(0x04, initiate); !bytes.Equal(got, v.c2s[2]) {
		t.Fatalf("INITIATE frame\n got %x\nwant %x", got, v.c2s[2])
	}
	if want := []int{32, 16}; !equalInts(r.sizes, want) {
		t.Errorf("client draws %v, want %v", r.sizes, want)
	}
	md, sess, err := c.Ready(v.ready)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(md, v.serverMetadata) {
		t.Errorf("server metadata %x, want %x", md, v.serverMetadata)
	}
	buf := make([]byte, 0, 1024)
	for i, f := range v.frames {
		body, err := sess.Seal(buf[:0], v.innerFlags[i], f)
		if err != nil {
			t.Fatal(err)
		}
		if got := frame(0x00, body); !bytes.Equal(got, v.c2s[3+i]) {
			t.Errorf("MESSAGE %d frame\n got %x\nwant %x", i, got, v.c2s[3+i])
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestServerPrepare: a Server that drew S' with Prepare before the HELLO
// makes the same WELCOME, from the same draws, as libzmq's server in the
// vector; Prepare is allowed once, and only before Hello.
func TestServerPrepare(t *testing.T) {
	v := loadVector(t)
	s, _ := v.server(t)
	if err := s.Prepare(); err != nil {
		t.Fatal(err)
	}
	welcome, err := s.Hello(v.hello)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(welcome, v.welcome) {
		t.Fatal("WELCOME after Prepare differs from the vector's")
	}
	if !s.sn.IsZero() {
		t.Error("Hello left s' in the Server")
	}
	if _, _, err := s.Initiate(v.initiate); err != nil {
		t.Fatalf("INITIATE after Prepare: %v", err)
	}
	s, _ = v.server(t)
	if err := s.Prepare(); err != nil {
		t.Fatal(err)
	}
	if err := s.Prepare(); !errors.Is(err, ErrHandshake) {
		t.Errorf("second Prepare: %v", err)
	}
	s = v.welcomedServer(t)
	if err := s.Prepare(); !errors.Is(err, ErrHandshake) {
		t.Errorf("Prepare after Hello: %v", err)
	}
	// Wipe clears a prepared s'.
	s, _ = v.server(t)
	if err := s.Prepare(); err != nil {
		t.Fatal(err)
	}
	if s.sn.IsZero() {
		t.Fatal("Prepare drew no s'")
	}
	s.Wipe()
	if !s.sn.IsZero() {
		t.Error("Wipe left the prepared s'")
	}
}
