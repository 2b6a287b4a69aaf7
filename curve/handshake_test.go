package curve

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/nacl/secretbox"
)

// handshake runs a full handshake in memory with fresh random keys.
func handshake(t testing.TB) (cs, ss *Session) {
	t.Helper()
	spub, ssec, err := GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	cpub, csec, err := GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(ServerConfig{Public: spub, Secret: ssec})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := NewClient(ClientConfig{Public: cpub, Secret: csec, ServerKey: spub})
	if err != nil {
		t.Fatal(err)
	}
	return handshakeOf(t, srv, cli, cpub)
}

// handshakeOf runs the handshake of srv and cli, whose public key is
// cpub, in memory, each side sending metadata, and checks what each side
// learnt of the other.
func handshakeOf(t testing.TB, srv *Server, cli *Client, cpub PublicKey) (cs, ss *Session) {
	t.Helper()
	hello, err := cli.Hello()
	if err != nil {
		t.Fatal(err)
	}
	welcome, err := srv.Hello(hello)
	if err != nil {
		t.Fatal(err)
	}
	initiate, err := cli.Welcome(welcome, []byte("client-md"))
	if err != nil {
		t.Fatal(err)
	}
	who, md, err := srv.Initiate(initiate)
	if err != nil {
		t.Fatal(err)
	}
	if !who.Equal(cpub) || string(md) != "client-md" {
		t.Fatalf("server saw client %s metadata %q", who, md)
	}
	ready, ss, err := srv.Ready([]byte("server-md"))
	if err != nil {
		t.Fatal(err)
	}
	md, cs, err = cli.Ready(ready)
	if err != nil {
		t.Fatal(err)
	}
	if string(md) != "server-md" {
		t.Fatalf("client saw server metadata %q", md)
	}
	return cs, ss
}

func TestHandshakeRoundTrip(t *testing.T) {
	cs, ss := handshake(t)
	for _, tc := range []struct {
		from, to *Session
		flags    byte
		payload  string
	}{
		{cs, ss, 0, "hello"},
		{cs, ss, FlagMore, ""},
		{ss, cs, FlagCommand, "\x04PING\x00\x0a"},
		{ss, cs, FlagMore | FlagCommand, strings.Repeat("x", 70000)},
		{cs, ss, 0, "last"},
	} {
		body, err := tc.from.Seal(nil, tc.flags, []byte(tc.payload))
		if err != nil {
			t.Fatal(err)
		}
		if len(body) != SealedSize(len(tc.payload)) {
			t.Errorf("sealed %d octets into %d, want %d", len(tc.payload), len(body), SealedSize(len(tc.payload)))
		}
		flags, p, err := tc.to.Open([]byte("pre:"), body)
		if err != nil {
			t.Fatal(err)
		}
		if flags != tc.flags || string(p) != "pre:"+tc.payload {
			t.Errorf("opened flags %#x %.20q, want %#x %.20q", flags, p, tc.flags, tc.payload)
		}
	}
	// A box from the client does not open on the client (prefixes differ).
	body, _ := cs.Seal(nil, 0, []byte("x"))
	if _, _, err := cs.Open(nil, body); !errors.Is(err, ErrBadMessage) {
		t.Errorf("client opened its own message: %v", err)
	}
}

func TestOpenInPlace(t *testing.T) {
	cs, ss := handshake(t)
	body, _ := cs.Seal(nil, FlagMore, []byte("in place"))
	flags, p, err := ss.Open(body[:0], body)
	if err != nil || flags != FlagMore || string(p) != "in place" {
		t.Fatalf("Open in place = %#x %q %v", flags, p, err)
	}
	// Seal with dst overlapping payload.
	buf := make([]byte, 0, 64)
	buf = append(buf, "payload"...)
	body, err = ss.Seal(buf[:0], 0, buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, p, err := cs.Open(nil, body); err != nil || string(p) != "payload" {
		t.Fatalf("Open of in-place Seal = %q %v", p, err)
	}
}

func TestSealRejectsReservedFlags(t *testing.T) {
	cs, _ := handshake(t)
	for _, f := range []byte{0x04, 0x80, 0xff} {
		if _, err := cs.Seal(nil, f, nil); err == nil {
			t.Errorf("Seal with flags %#x succeeded", f)
		}
	}
}

func TestOpenRejectsReservedFlags(t *testing.T) {
	v := loadVector(t)
	sess := v.serverSession(t)
	// Forge, with the session key, a client MESSAGE whose flags are 0x04.
	nonce := shortNonceOf(prefixMessageC, 3)
	body := append([]byte(nameMessage), 0, 0, 0, 0, 0, 0, 0, 3)
	body = secretbox.Seal(body, []byte{0x04, 'x'}, &nonce, &sess.key)
	if _, _, err := sess.Open(nil, body); !errors.Is(err, ErrBadMessage) {
		t.Fatalf("Open of reserved flags: %v", err)
	}
}

func TestSessionConcurrentSealOpen(t *testing.T) {
	cs, ss := handshake(t)
	const n = 200
	ch := make(chan []byte, n)
	var wg sync.WaitGroup
	wg.Add(2)
	errs := make(chan error, 4)
	go func() { // client sends
		defer wg.Done()
		for i := 0; i < n; i++ {
			b, err := cs.Seal(nil, 0, []byte{byte(i)})
			if err != nil {
				errs <- err
				return
			}
			ch <- b
		}
		close(ch)
	}()
	go func() { // client receives from the server meanwhile
		defer wg.Done()
		for i := 0; i < n; i++ {
			b, err := ss.Seal(nil, 0, []byte{byte(i)})
			if err != nil {
				errs <- err
				return
			}
			if _, p, err := cs.Open(nil, b); err != nil || p[0] != byte(i) {
				errs <- err
				return
			}
		}
	}()
	i := 0
	for b := range ch {
		if _, p, err := ss.Open(nil, b); err != nil || p[0] != byte(i) {
			t.Fatalf("message %d: %v", i, err)
		}
		i++
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if i != n {
		t.Fatalf("got %d messages, want %d", i, n)
	}
}

func TestMessageReplayReorder(t *testing.T) {
	v := loadVector(t)

	sess := v.serverSession(t)
	if _, _, err := sess.Open(nil, v.messages[0]); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sess.Open(nil, v.messages[0]); !errors.Is(err, ErrBadMessage) {
		t.Fatalf("replayed MESSAGE: err = %v", err)
	}
	// The receive side is dead: even the next good message fails.
	if _, _, err := sess.Open(nil, v.messages[1]); !errors.Is(err, ErrBadMessage) {
		t.Fatalf("MESSAGE after a failure: err = %v", err)
	}

	sess = v.serverSession(t)
	if _, _, err := sess.Open(nil, v.messages[1]); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sess.Open(nil, v.messages[0]); !errors.Is(err, ErrBadMessage) {
		t.Fatalf("reordered MESSAGE: err = %v", err)
	}

	// Skipping nonces is allowed (only reuse and decrease are errors).
	sess = v.serverSession(t)
	if _, _, err := sess.Open(nil, v.messages[3]); err != nil {
		t.Fatalf("MESSAGE with a higher nonce: %v", err)
	}
}

func TestMessageTamperTruncate(t *testing.T) {
	v := loadVector(t)
	for _, m := range v.messages {
		for i := range m {
			b := bytes.Clone(m)
			b[i] ^= 0x01
			sess := v.serverSession(t)
			if _, _, err := sess.Open(nil, b); !errors.Is(err, ErrBadMessage) {
				t.Fatalf("MESSAGE with octet %d flipped: err = %v", i, err)
			}
		}
		for n := 0; n < len(m); n++ {
			sess := v.serverSession(t)
			if _, _, err := sess.Open(nil, m[:n]); !errors.Is(err, ErrBadMessage) {
				t.Fatalf("MESSAGE truncated to %d: err = %v", n, err)
			}
		}
		sess := v.serverSession(t)
		if _, _, err := sess.Open(nil, append(bytes.Clone(m), 0)); !errors.Is(err, ErrBadMessage) {
			t.Fatalf("MESSAGE with an extra octet: err = %v", err)
		}
	}
}

// Each step of the vector handshake, as a function that feeds a command
// to a fresh party in the right state.
func vectorSteps(t *testing.T, v *vector) []struct {
	name string
	body []byte
	feed func([]byte) error
} {
	return []struct {
		name string
		body []byte
		feed func([]byte) error
	}{
		{"HELLO", v.hello, func(b []byte) error {
			s, _ := v.server(t)
			_, err := s.Hello(b)
			return err
		}},
		{"WELCOME", v.welcome, func(b []byte) error {
			_, err := v.helloClient(t).Welcome(b, v.clientMetadata)
			return err
		}},
		{"INITIATE", v.initiate, func(b []byte) error {
			_, _, err := v.welcomedServer(t).Initiate(b)
			return err
		}},
		{"READY", v.ready, func(b []byte) error {
			_, _, err := v.initiatedClient(t).Ready(b)
			return err
		}},
	}
}

func TestHandshakeTamper(t *testing.T) {
	v := loadVector(t)
	for _, st := range vectorSteps(t, v) {
		if err := st.feed(bytes.Clone(st.body)); err != nil {
			t.Fatalf("%s untouched: %v", st.name, err)
		}
		for i := range st.body {
			for _, x := range []byte{0x01, 0x80} {
				b := bytes.Clone(st.body)
				b[i] ^= x
				if err := st.feed(b); !errors.Is(err, ErrHandshake) {
					t.Fatalf("%s with octet %d ^ %#x: err = %v", st.name, i, x, err)
				}
			}
		}
		for n := 0; n < len(st.body); n++ {
			if err := st.feed(bytes.Clone(st.body[:n])); !errors.Is(err, ErrHandshake) {
				t.Fatalf("%s truncated to %d: err = %v", st.name, n, err)
			}
		}
		if st.name == "HELLO" || st.name == "WELCOME" { // fixed sizes
			if err := st.feed(append(bytes.Clone(st.body), 0)); !errors.Is(err, ErrHandshake) {
				t.Fatalf("%s with an extra octet: err = %v", st.name, err)
			}
		}
	}
}

func TestHandshakeOutOfOrder(t *testing.T) {
	v := loadVector(t)
	s, _ := v.server(t)
	if _, _, err := s.Initiate(v.initiate); !errors.Is(err, ErrHandshake) {
		t.Errorf("INITIATE before HELLO: %v", err)
	}
	s, _ = v.server(t)
	if _, _, err := s.Ready(nil); !errors.Is(err, ErrHandshake) {
		t.Errorf("Ready before INITIATE: %v", err)
	}
	s = v.welcomedServer(t)
	if _, err := s.Hello(v.hello); !errors.Is(err, ErrHandshake) {
		t.Errorf("second HELLO: %v", err)
	}
	// After any failure the server is dead.
	if _, _, err := s.Initiate(v.initiate); !errors.Is(err, ErrHandshake) {
		t.Errorf("INITIATE after a failure: %v", err)
	}
	// A server keeps the cookie key for one INITIATE only.
	s = v.welcomedServer(t)
	bad := bytes.Clone(v.initiate)
	bad[len(bad)-1] ^= 1
	if _, _, err := s.Initiate(bad); !errors.Is(err, ErrHandshake) {
		t.Fatal("bad INITIATE accepted")
	}
	if _, _, err := s.Initiate(v.initiate); !errors.Is(err, ErrHandshake) {
		t.Errorf("good INITIATE after a bad one: %v", err)
	}
	// Another connection's server (same keys, other cookie key) refuses
	// the vector cookie.
	s2, err := NewServer(ServerConfig{Public: v.keyA, Secret: v.secA})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Hello(v.hello); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s2.Initiate(v.initiate); !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), "cookie") {
		t.Errorf("INITIATE with another connection's cookie: %v", err)
	}

	c, _ := v.client(t)
	if _, err := c.Welcome(v.welcome, nil); !errors.Is(err, ErrHandshake) {
		t.Errorf("WELCOME before HELLO: %v", err)
	}
	c, _ = v.client(t)
	if _, _, err := c.Ready(v.ready); !errors.Is(err, ErrHandshake) {
		t.Errorf("READY before WELCOME: %v", err)
	}
	c = v.initiatedClient(t)
	if _, err := c.Hello(); !errors.Is(err, ErrHandshake) {
		t.Errorf("second Hello: %v", err)
	}
	c = v.helloClient(t)
	if _, _, err := c.Ready(v.ready); !errors.Is(err, ErrHandshake) {
		t.Errorf("READY instead of WELCOME: %v", err)
	}
	c = v.initiatedClient(t)
	if _, _, err := c.Ready(v.welcome); !errors.Is(err, ErrHandshake) {
		t.Errorf("WELCOME instead of READY: %v", err)
	}
}

func TestInitiateNonceMustFollowHello(t *testing.T) {
	v := loadVector(t)
	// Re-create the client's INITIATE with short nonce 1 (= HELLO's): the
	// vector's transient secrets are known, so the box can be forged.
	c := v.helloClient(t)
	c.nonce = 1
	initiate, err := c.Welcome(v.welcome, v.clientMetadata)
	if err != nil {
		t.Fatal(err)
	}
	s := v.welcomedServer(t)
	if _, _, err := s.Initiate(initiate); !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), "nonce") {
		t.Fatalf("INITIATE reusing HELLO's nonce: %v", err)
	}
}

func TestWrongServerKey(t *testing.T) {
	v := loadVector(t)
	other, _, err := GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(ClientConfig{Secret: v.secB, ServerKey: other})
	if err != nil {
		t.Fatal(err)
	}
	hello, err := c.Hello()
	if err != nil {
		t.Fatal(err)
	}
	s, _ := v.server(t)
	if _, err := s.Hello(hello); !errors.Is(err, ErrHandshake) {
		t.Fatalf("HELLO for another server key: err = %v", err)
	}
}

func TestVouchMismatch(t *testing.T) {
	// A client that vouches for another server key is refused. The
	// vector's secrets let the test build such a vouch.
	v := loadVector(t)
	c := v.helloClient(t)
	other, _, err := GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	c.server = other // used only for the vouch after HELLO
	initiate, err := c.Welcome(v.welcome, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.welcomedServer(t).Initiate(initiate); !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), "vouch") {
		t.Fatalf("vouch for another server key: %v", err)
	}
}

// lowOrder are X25519 public keys of small order (and non-canonical
// encodings of them); X25519 with any of them gives all zeros.
var lowOrder = []string{
	"0000000000000000000000000000000000000000000000000000000000000000",
	"0100000000000000000000000000000000000000000000000000000000000000",
	"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
	"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
}

func TestLowOrderKeys(t *testing.T) {
	v := loadVector(t)
	for _, h := range lowOrder {
		bad, err := NewPublicKey(mustHex(t, h))
		if err != nil {
			t.Fatal(err)
		}
		// As the server key of a client.
		if _, err := NewClient(ClientConfig{Secret: v.secB, ServerKey: bad}); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("NewClient with server key %s: err = %v", h[:8], err)
		}
		// As C' in a HELLO.
		hello := bytes.Clone(v.hello)
		copy(hello[80:112], bad.b[:])
		s, _ := v.server(t)
		if _, err := s.Hello(hello); !errors.Is(err, ErrInvalidKey) || !errors.Is(err, ErrHandshake) {
			t.Errorf("HELLO with C' %s: err = %v", h[:8], err)
		}
		// As S' in an authentic WELCOME (made with the server's secret A).
		c := v.helloClient(t)
		k, err := boxKey(&v.secA, c.cnPub)
		if err != nil {
			t.Fatal(err)
		}
		wn := longNonceOf(prefixWelcome, make([]byte, 16))
		plain := append(bad.Bytes(), make([]byte, cookieSize)...)
		welcome := secretbox.Seal(append([]byte(nameWelcome), make([]byte, 16)...), plain, &wn, &k)
		if _, err := c.Welcome(welcome, nil); !errors.Is(err, ErrInvalidKey) || !errors.Is(err, ErrHandshake) {
			t.Errorf("WELCOME with S' %s: err = %v", h[:8], err)
		}
		// As C in an authentic INITIATE (made with the vector's s').
		s = v.welcomedServer(t)
		var sn SecretKey
		(&drawReader{seed: serverSeed}).Read(sn.b[:])
		var cn SecretKey
		(&drawReader{seed: clientSeed}).Read(cn.b[:])
		pk, err := boxKey(&cn, sn.Public())
		if err != nil {
			t.Fatal(err)
		}
		in := shortNonceOf(prefixInitiate, 2)
		plain = append(bad.Bytes(), make([]byte, vouchSize)...)
		initiate := secretbox.Seal(bytes.Clone(v.initiate[:113]), plain, &in, &pk)
		if _, _, err := s.Initiate(initiate); !errors.Is(err, ErrInvalidKey) || !errors.Is(err, ErrHandshake) {
			t.Errorf("INITIATE with C %s: err = %v", h[:8], err)
		}
	}
}

func TestKeyMismatch(t *testing.T) {
	v := loadVector(t)
	if _, err := NewClient(ClientConfig{Public: v.keyA, Secret: v.secB, ServerKey: v.keyA}); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("NewClient with mismatched keypair: %v", err)
	}
	if _, err := NewClient(ClientConfig{Secret: v.secB}); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("NewClient without server key: %v", err)
	}
	if _, err := NewServer(ServerConfig{Public: v.keyB, Secret: v.secA}); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("NewServer with mismatched keypair: %v", err)
	}
}

type failingReader struct{ after int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.after == 0 {
		return 0, errors.New("entropy exhausted")
	}
	r.after--
	return len(p), nil
}

func TestRandFailure(t *testing.T) {
	v := loadVector(t)
	for after := 0; after < 4; after++ {
		s, err := NewServer(ServerConfig{Secret: v.secA, Rand: &failingReader{after: after}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Hello(v.hello); err == nil || !strings.Contains(err.Error(), "entropy exhausted") {
			t.Errorf("server with rand failing after %d draws: %v", after, err)
		}
	}
	for after := 0; after < 2; after++ {
		c, err := NewClient(ClientConfig{Secret: v.secB, ServerKey: v.keyA, Rand: &failingReader{after: after}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Hello()
		if err == nil {
			_, err = c.Welcome(v.welcome, nil) // the box will not open anyway; draws come after
		}
		if err == nil {
			t.Errorf("client with rand failing after %d draws succeeded", after)
		}
	}
}

func TestErrorCommand(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"400", "400"},
		{"", ""},
		{"bad\x00\xffkey", "bad??key"},
		{strings.Repeat("a", 300), strings.Repeat("a", 255)},
	} {
		b := ErrorCommand(tc.in)
		if !bytes.HasPrefix(b, []byte("\x05ERROR")) || int(b[6]) != len(tc.want) {
			t.Errorf("ErrorCommand(%.10q) = %x", tc.in, b)
		}
		got, err := ParseError(b)
		if err != nil || got != tc.want {
			t.Errorf("ParseError(ErrorCommand(%.10q)) = %.10q, %v", tc.in, got, err)
		}
	}
	for _, bad := range []string{"", "\x05ERROR", "\x05ERROR\x03ab", "\x05ERROR\x02abc", "\x05ERRO", "\x05READY\x00", "\x05ERROR\x01\x00"} {
		if _, err := ParseError([]byte(bad)); !errors.Is(err, ErrHandshake) {
			t.Errorf("ParseError(%q) err = %v", bad, err)
		}
	}
}

func TestClientSeesError(t *testing.T) {
	v := loadVector(t)
	c := v.helloClient(t)
	if _, err := c.Welcome(ErrorCommand("400"), nil); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), `"400"`) {
		t.Errorf("ERROR instead of WELCOME: %v", err)
	}
	c = v.initiatedClient(t)
	if _, _, err := c.Ready(ErrorCommand("400")); !errors.Is(err, ErrRejected) {
		t.Errorf("ERROR instead of READY: %v", err)
	}
	c = v.initiatedClient(t)
	if _, _, err := c.Ready([]byte("\x05ERROR\x09short")); !errors.Is(err, ErrHandshake) {
		t.Errorf("malformed ERROR instead of READY: %v", err)
	}
}

func TestCommandSplitAppend(t *testing.T) {
	v := loadVector(t)
	for _, body := range [][]byte{v.hello, v.welcome, v.initiate, v.ready, v.messages[0], ErrorCommand("x")} {
		name, data, err := SplitCommand(body)
		if err != nil {
			t.Fatal(err)
		}
		if back := AppendCommand(nil, string(name), data); !bytes.Equal(back, body) {
			t.Errorf("round trip of %s changed it", name)
		}
	}
	for _, bad := range []string{"", "\x00", "\x05HELL"} {
		if _, _, err := SplitCommand([]byte(bad)); err == nil {
			t.Errorf("SplitCommand(%q) succeeded", bad)
		}
	}
}

func TestWipe(t *testing.T) {
	cs, ss := handshake(t)
	body, _ := cs.Seal(nil, 0, []byte("x"))
	ss.Wipe()
	if ss.key != [32]byte{} {
		t.Error("Session.Wipe left the key")
	}
	if _, _, err := ss.Open(nil, body); !errors.Is(err, ErrBadMessage) {
		t.Errorf("Open after Wipe: %v", err)
	}
	if _, err := ss.Seal(nil, 0, nil); err == nil {
		t.Error("Seal after Wipe succeeded")
	}

	v := loadVector(t)
	c := v.initiatedClient(t)
	c.Wipe()
	if !c.sec.IsZero() || !c.cnSec.IsZero() || c.precom != [32]byte{} {
		t.Error("Client.Wipe left secrets")
	}
	s := v.welcomedServer(t)
	s.Wipe()
	if !s.sec.IsZero() || s.cookieKey != [32]byte{} {
		t.Error("Server.Wipe left secrets")
	}
	// A finished handshake leaves no secrets behind in Client or Server.
	c = v.initiatedClient(t)
	if _, _, err := c.Ready(v.ready); err != nil {
		t.Fatal(err)
	}
	if !c.sec.IsZero() || !c.cnSec.IsZero() || c.precom != [32]byte{} {
		t.Error("Client kept secrets after Ready")
	}
	s = v.welcomedServer(t)
	if s.sec.IsZero() || s.cookieKey == [32]byte{} {
		t.Error("server lost its keys before INITIATE")
	}
	if _, _, err := s.Initiate(v.initiate); err != nil {
		t.Fatal(err)
	}
	if s.cookieKey != [32]byte{} || !s.sec.IsZero() {
		t.Error("Server kept the cookie key or long-term secret after INITIATE")
	}
	if _, _, err := s.Ready(nil); err != nil {
		t.Fatal(err)
	}
	if s.precom != [32]byte{} {
		t.Error("Server kept the session key after Ready")
	}
}

func TestServerStateBetweenHelloAndInitiate(t *testing.T) {
	// The server holds no transient key between WELCOME and INITIATE: the
	// only secrets in it are the long-term key and the cookie key.
	v := loadVector(t)
	s := v.welcomedServer(t)
	if s.precom != [32]byte{} {
		t.Error("server holds a session key before INITIATE")
	}
	want := "85ecdd661815bcf33c2aae58456cc8521b86cafe6ba01523b2ea7912e88336dc"
	if got := hex.EncodeToString(s.cookieKey[:]); got != want {
		t.Errorf("cookie key %s, want draw 3 %s", got, want)
	}
}
