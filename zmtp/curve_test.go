package zmtp_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/golden"
	"github.com/zyre-go/zyre/internal/testenv"
	"github.com/zyre-go/zyre/zmtp"
	"golang.org/x/crypto/chacha20"
)

// Keypairs A (server) and B (client) of testdata/zre/README.md.
const (
	curveKeyApub = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
	curveKeyAsec = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
	curveKeyBpub = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
	curveKeyBsec = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"
)

const curveDeadline = 20 * time.Second

func curveCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), curveDeadline)
	t.Cleanup(cancel)
	return ctx
}

type curveKeyPair struct {
	pub curve.PublicKey
	sec curve.SecretKey
}

func curveVectorKeys(t testing.TB) (a, b curveKeyPair) {
	t.Helper()
	var err error
	if a.pub, err = curve.ParsePublicKey(curveKeyApub); err != nil {
		t.Fatal(err)
	}
	if a.sec, err = curve.ParseSecretKey(curveKeyAsec); err != nil {
		t.Fatal(err)
	}
	if b.pub, err = curve.ParsePublicKey(curveKeyBpub); err != nil {
		t.Fatal(err)
	}
	if b.sec, err = curve.ParseSecretKey(curveKeyBsec); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func curveNewKeys(t testing.TB) curveKeyPair {
	t.Helper()
	pub, sec, err := curve.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	return curveKeyPair{pub, sec}
}

// curveDrawReader replays the deterministic RNG of the recorded libzmq
// session (testdata/zre/README.md, "CurveZMQ session"): its k-th Read (k from
// 1) returns the first len(p) octets of DJB ChaCha20 with the 8-octet nonce k
// (little-endian) and a key of 32 octets equal to seed. See
// curve/vector_test.go.
type curveDrawReader struct {
	mu   sync.Mutex
	seed byte
	k    uint64
}

func (r *curveDrawReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.k++
	var nonce [12]byte
	binary.LittleEndian.PutUint64(nonce[4:], r.k)
	c, err := chacha20.NewUnauthenticatedCipher(bytes.Repeat([]byte{r.seed}, 32), nonce[:])
	if err != nil {
		return 0, err
	}
	clear(p)
	c.XORKeyStream(p, p)
	return len(p), nil
}

// curveReadUnit reads one raw ZMTP frame (flags, 1- or 8-octet size, body)
// and returns it whole, as the vector files hold it.
func curveReadUnit(r io.Reader) ([]byte, error) {
	hdr := make([]byte, 2, 9)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, err
	}
	size := uint64(hdr[1])
	if hdr[0]&zmtp.FlagLong != 0 {
		hdr = hdr[:9]
		if _, err := io.ReadFull(r, hdr[2:]); err != nil {
			return nil, err
		}
		size = binary.BigEndian.Uint64(hdr[1:9])
	}
	if size > 1<<24 {
		return nil, fmt.Errorf("frame of %d octets", size)
	}
	b := make([]byte, len(hdr)+int(size))
	copy(b, hdr)
	_, err := io.ReadFull(r, b[len(hdr):])
	return b, err
}

// curveFrame encodes one raw ZMTP frame, long form above 255 octets.
func curveFrame(flags byte, body []byte) []byte {
	if len(body) > 255 {
		b := binary.BigEndian.AppendUint64([]byte{flags | zmtp.FlagLong}, uint64(len(body)))
		return append(b, body...)
	}
	return append([]byte{flags, byte(len(body))}, body...)
}

// curveLog collects log output and lets a test wait for a line.
type curveLog struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	notify chan struct{}
}

func newCurveLog() *curveLog { return &curveLog{notify: make(chan struct{}, 1)} }

func (l *curveLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	select {
	case l.notify <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (l *curveLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// waitFor waits until the log holds n occurrences of sub.
func (l *curveLog) waitFor(t testing.TB, sub string, n int) {
	t.Helper()
	deadline := time.NewTimer(curveDeadline)
	defer deadline.Stop()
	for {
		if strings.Count(l.String(), sub) >= n {
			return
		}
		select {
		case <-l.notify:
		case <-deadline.C:
			t.Fatalf("log has %d of %d %q before the deadline; log:\n%s", strings.Count(l.String(), sub), n, sub, l.String())
		}
	}
}

func curveLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func curveListen(t testing.TB, opts zmtp.Options) *zmtp.Router {
	t.Helper()
	r, err := zmtp.ListenRouter("tcp", "127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func curveDial(t testing.TB, addr string, opts zmtp.Options) *zmtp.Dealer {
	t.Helper()
	d, err := zmtp.DialDealer("tcp", addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func curveFramesEqual(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// TestCurveGoldenClient: our Dealer with CurveClient (key B, server key A,
// the recorded identity, the seed-42 RNG) against a raw TCP server playing
// back libzmq's recorded side sends exactly the bytes libzmq's client sent.
func TestCurveGoldenClient(t *testing.T) {
	c2s := golden.HexLines(t, "curvezmq_client_to_server.hex")
	s2c := golden.HexLines(t, "curvezmq_server_to_client.hex")
	if len(c2s) != 7 || len(s2c) != 3 {
		t.Fatalf("vector has %d and %d lines, want 7 and 3", len(c2s), len(s2c))
	}
	identity := golden.HexLines(t, "identity.hex")[0]
	hello := golden.HexLines(t, "hello.hex")
	whisper := golden.HexLines(t, "whisper.hex")
	a, b := curveVectorKeys(t)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		lines [][]byte
		err   error
	}
	got := make(chan result, 1)
	go func() {
		var lines [][]byte
		err := func() error {
			nc, err := ln.Accept()
			if err != nil {
				return err
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(curveDeadline))
			if _, err := nc.Write(s2c[0]); err != nil {
				return err
			}
			g := make([]byte, zmtp.GreetingSize)
			if _, err := io.ReadFull(nc, g); err != nil {
				return fmt.Errorf("greeting: %w", err)
			}
			lines = append(lines, g)
			read := func(what string) error {
				u, err := curveReadUnit(nc)
				if err != nil {
					return fmt.Errorf("%s: %w", what, err)
				}
				lines = append(lines, u)
				return nil
			}
			if err := read("HELLO"); err != nil {
				return err
			}
			if _, err := nc.Write(s2c[1]); err != nil {
				return err
			}
			if err := read("INITIATE"); err != nil {
				return err
			}
			if _, err := nc.Write(s2c[2]); err != nil {
				return err
			}
			for i := range 4 {
				if err := read(fmt.Sprintf("MESSAGE %d", i)); err != nil {
					return err
				}
			}
			return nil
		}()
		got <- result{lines, err}
	}()

	d := curveDial(t, ln.Addr().String(), zmtp.Options{
		Identity: identity,
		Mechanism: zmtp.CurveClient(zmtp.CurveClientConfig{
			Public: b.pub, Secret: b.sec, ServerKey: a.pub, Rand: &curveDrawReader{seed: 42},
		}),
	})
	ctx := curveCtx(t)
	if err := d.SendContext(ctx, hello...); err != nil {
		t.Fatal(err)
	}
	if err := d.SendContext(ctx, whisper...); err != nil {
		t.Fatal(err)
	}
	var res result
	select {
	case res = <-got:
	case <-ctx.Done():
		t.Fatal("the playback server saw nothing before the deadline")
	}
	if res.err != nil {
		t.Fatalf("playback server: %v (after %d lines)", res.err, len(res.lines))
	}
	names := []string{"greeting", "HELLO", "INITIATE", "MESSAGE hello", "MESSAGE whisper 1", "MESSAGE whisper 2", "MESSAGE whisper 3"}
	for i, want := range c2s {
		if !bytes.Equal(res.lines[i], want) {
			t.Errorf("line %d (%s) differs:\n got %x\nwant %x", i+1, names[i], res.lines[i], want)
		}
	}
}

// TestCurveGoldenServer: our Router with CurveServer (key A, the seed-17 RNG)
// answers a raw TCP client playing back libzmq's recorded client with
// exactly the bytes libzmq's server sent, greeting included, and delivers
// the recorded messages.
func TestCurveGoldenServer(t *testing.T) {
	testenv.NoLeak(t, curveDeadline)
	c2s := golden.HexLines(t, "curvezmq_client_to_server.hex")
	s2c := golden.HexLines(t, "curvezmq_server_to_client.hex")
	if len(c2s) != 7 || len(s2c) != 3 {
		t.Fatalf("vector has %d and %d lines, want 7 and 3", len(c2s), len(s2c))
	}
	identity := golden.HexLines(t, "identity.hex")[0]
	hello := golden.HexLines(t, "hello.hex")
	whisper := golden.HexLines(t, "whisper.hex")
	a, b := curveVectorKeys(t)

	var authMu sync.Mutex
	var authReqs []zmtp.AuthRequest
	r := curveListen(t, zmtp.Options{
		Mechanism: zmtp.CurveServer(zmtp.CurveServerConfig{Public: a.pub, Secret: a.sec, Rand: &curveDrawReader{seed: 17}}),
		Authorize: func(_ context.Context, req zmtp.AuthRequest) error {
			authMu.Lock()
			defer authMu.Unlock()
			authReqs = append(authReqs, req)
			return nil
		},
	})
	nc, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(curveDeadline))
	var lines [][]byte
	if _, err := nc.Write(c2s[0]); err != nil {
		t.Fatal(err)
	}
	g := make([]byte, zmtp.GreetingSize)
	if _, err := io.ReadFull(nc, g); err != nil {
		t.Fatalf("greeting: %v", err)
	}
	lines = append(lines, g)
	for i, what := range []string{"WELCOME", "READY"} {
		if _, err := nc.Write(c2s[1+i]); err != nil {
			t.Fatal(err)
		}
		u, err := curveReadUnit(nc)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		lines = append(lines, u)
	}
	for _, l := range c2s[3:] {
		if _, err := nc.Write(l); err != nil {
			t.Fatal(err)
		}
	}

	// The greeting: libzmq 4.3.4 writes 0 in the as-server octet (32) even
	// on a CURVE server, and so do we (see curveMechanism.AsServer).
	if !bytes.Equal(lines[0], s2c[0]) {
		t.Errorf("greeting differs:\n got %x\nwant %x", lines[0], s2c[0])
	}
	for i, what := range []string{"WELCOME", "READY"} {
		if !bytes.Equal(lines[1+i], s2c[1+i]) {
			t.Errorf("%s differs:\n got %x\nwant %x", what, lines[1+i], s2c[1+i])
		}
	}

	ctx := curveCtx(t)
	for _, want := range [][][]byte{hello, whisper} {
		m, err := r.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !curveFramesEqual(m.Frames, want) {
			t.Errorf("frames %x, want %x", m.Frames, want)
		}
		if !bytes.Equal(m.Peer.Identity, identity) || !bytes.Equal(m.Peer.PublicKey, b.pub.Bytes()) ||
			m.Peer.Mechanism != "CURVE" || m.Peer.SocketType != "DEALER" {
			t.Errorf("peer identity %x key %x mechanism %q type %q; want %x %x CURVE DEALER",
				m.Peer.Identity, m.Peer.PublicKey, m.Peer.Mechanism, m.Peer.SocketType, identity, b.pub.Bytes())
		}
	}
	authMu.Lock()
	defer authMu.Unlock()
	if len(authReqs) != 1 {
		t.Fatalf("authorizer called %d times, want 1", len(authReqs))
	}
	req := authReqs[0]
	id, _ := req.Metadata.Get("Identity")
	if req.Mechanism != "CURVE" || !bytes.Equal(req.PublicKey, b.pub.Bytes()) || !bytes.Equal(id, identity) || req.RemoteAddr == nil {
		t.Errorf("authorizer got %+v", req)
	}
}

// curvePipe is an in-memory CommandConn pair for driving two Sessions.
type curvePipe struct {
	in, out chan [2][]byte
}

func newCurvePipes() (*curvePipe, *curvePipe) {
	a, b := make(chan [2][]byte, 4), make(chan [2][]byte, 4)
	return &curvePipe{in: a, out: b}, &curvePipe{in: b, out: a}
}

func (p *curvePipe) WriteCommand(name string, body []byte) error {
	p.out <- [2][]byte{[]byte(name), bytes.Clone(body)}
	return nil
}

func (p *curvePipe) ReadCommand() (string, []byte, error) {
	select {
	case c, ok := <-p.in:
		if !ok {
			return "", nil, io.EOF
		}
		return string(c[0]), c[1], nil
	case <-time.After(curveDeadline):
		return "", nil, errors.New("curvePipe: nothing to read before the deadline")
	}
}

type curveHS struct {
	res zmtp.HandshakeResult
	err error
	s   zmtp.Session
}

// curveHandshake runs a client and a server Session against each other.
// When the client (or server) fails, its pipe is closed so that the other
// side sees EOF rather than waiting.
func curveHandshake(t *testing.T, cm, sm zmtp.Mechanism, auth zmtp.Authorizer) (client, server curveHS) {
	t.Helper()
	cs, err := cm.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	ss, err := sm.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	cp, sp := newCurvePipes()
	ctx := curveCtx(t)
	done := make(chan curveHS)
	go func() {
		// What the core's ROUTER sends, as libzmq's: an empty Identity.
		res, err := ss.Handshake(ctx, sp, true, zmtp.Metadata{{Name: "Socket-Type", Value: []byte("ROUTER")}, {Name: "Identity"}}, auth)
		if err != nil {
			close(sp.out)
		}
		done <- curveHS{res, err, ss}
	}()
	res, err := cs.Handshake(ctx, cp, false, zmtp.Metadata{{Name: "Socket-Type", Value: []byte("DEALER")}, {Name: "Identity", Value: []byte("me")}}, nil)
	if err != nil {
		close(cp.out)
	}
	client = curveHS{res, err, cs}
	server = <-done
	return client, server
}

func TestCurveSessionHandshake(t *testing.T) {
	srv, cli := curveNewKeys(t), curveNewKeys(t)
	sm := zmtp.CurveServer(zmtp.CurveServerConfig{Secret: srv.sec}) // Public derived
	cm := zmtp.CurveClient(zmtp.CurveClientConfig{Public: cli.pub, Secret: cli.sec, ServerKey: srv.pub})
	if sm.Name() != "CURVE" || cm.Name() != "CURVE" || sm.AsServer() || cm.AsServer() {
		t.Fatalf("names %q %q, as-server %v %v", sm.Name(), cm.Name(), sm.AsServer(), cm.AsServer())
	}
	var authKey []byte
	c, s := curveHandshake(t, cm, sm, func(_ context.Context, req zmtp.AuthRequest) error {
		authKey = req.PublicKey
		return nil
	})
	if c.err != nil || s.err != nil {
		t.Fatalf("client: %v; server: %v", c.err, s.err)
	}
	if !bytes.Equal(authKey, cli.pub.Bytes()) {
		t.Errorf("authorizer saw key %x, want %x", authKey, cli.pub.Bytes())
	}
	if !bytes.Equal(c.res.PublicKey, srv.pub.Bytes()) || !bytes.Equal(s.res.PublicKey, cli.pub.Bytes()) {
		t.Errorf("public keys: client learned %x, server learned %x", c.res.PublicKey, s.res.PublicKey)
	}
	if v, _ := s.res.Metadata.Get("identity"); string(v) != "me" {
		t.Errorf("server got metadata %v", s.res.Metadata)
	}
	if v, ok := c.res.Metadata.Get("Identity"); !ok || len(v) != 0 {
		t.Errorf("client got metadata %v: want the server's empty Identity", c.res.Metadata)
	}
	if st, _ := c.res.Metadata.Get("Socket-Type"); string(st) != "ROUTER" {
		t.Errorf("client got metadata %v", c.res.Metadata)
	}

	cc, sc := c.s.Codec(), s.s.Codec()
	if cc == nil || sc == nil {
		t.Fatal("no codec after the handshake")
	}
	// Every flag combination crosses both ways and comes out as it went in.
	for _, tc := range []struct {
		from, to zmtp.FrameCodec
		name     string
	}{{cc, sc, "client to server"}, {sc, cc, "server to client"}} {
		for _, flags := range []byte{0, zmtp.FlagMore, zmtp.FlagCommand, zmtp.FlagMore | zmtp.FlagCommand} {
			body := []byte(fmt.Sprintf("%s flags %#x", tc.name, flags))
			wf, wire, err := tc.from.Seal(nil, flags, body)
			if err != nil {
				t.Fatal(err)
			}
			if wf != 0 {
				t.Errorf("%s: wire flags %#x, want 0 (libzmq puts the flags inside the box)", tc.name, wf)
			}
			if len(wire) != len(body)+curve.MessageOverhead || !bytes.HasPrefix(wire, []byte("\x07MESSAGE")) {
				t.Errorf("%s: wire body %x", tc.name, wire)
			}
			gf, got, err := tc.to.Open(nil, wf, wire)
			if err != nil {
				t.Fatalf("%s flags %#x: %v", tc.name, flags, err)
			}
			if gf != flags || !bytes.Equal(got, body) {
				t.Errorf("%s: got flags %#x %q, want %#x %q", tc.name, gf, got, flags, body)
			}
		}
	}
	// Open appends to a non-nil dst and leaves the wire body alone.
	_, wire, _ := cc.Seal(nil, 0, []byte("append"))
	saved := bytes.Clone(wire)
	_, got, err := sc.Open([]byte("x:"), 0, wire)
	if err != nil || string(got) != "x:append" || !bytes.Equal(wire, saved) {
		t.Errorf("Open with dst: %q %v (wire kept: %v)", got, err, bytes.Equal(wire, saved))
	}
	// Flags the codec cannot carry are refused.
	if _, _, err := cc.Seal(nil, zmtp.FlagLong, []byte("x")); !errors.Is(err, zmtp.ErrProtocol) {
		t.Errorf("Seal with FlagLong: %v", err)
	}
}

func TestCurveCodecRejects(t *testing.T) {
	srv, cli := curveNewKeys(t), curveNewKeys(t)
	sm := zmtp.CurveServer(zmtp.CurveServerConfig{Public: srv.pub, Secret: srv.sec})
	cm := zmtp.CurveClient(zmtp.CurveClientConfig{Public: cli.pub, Secret: cli.sec, ServerKey: srv.pub})
	for _, tc := range []struct {
		name      string
		wireFlags byte
		mangle    func(cc zmtp.FrameCodec, wire []byte) [][]byte // frames to open; the last must fail
	}{
		{"tampered box", 0, func(_ zmtp.FrameCodec, w []byte) [][]byte { w[len(w)-1] ^= 1; return [][]byte{w} }},
		{"tampered nonce", 0, func(_ zmtp.FrameCodec, w []byte) [][]byte { w[15] ^= 1; return [][]byte{w} }},
		{"truncated box", 0, func(_ zmtp.FrameCodec, w []byte) [][]byte { return [][]byte{w[:len(w)-1]} }},
		{"shorter than a MESSAGE", 0, func(_ zmtp.FrameCodec, w []byte) [][]byte { return [][]byte{w[:20]} }},
		{"empty", 0, func(_ zmtp.FrameCodec, w []byte) [][]byte { return [][]byte{nil} }},
		{"not a MESSAGE", 0, func(_ zmtp.FrameCodec, w []byte) [][]byte { copy(w[1:], "MASSAGE"); return [][]byte{w} }},
		{"outer MORE", zmtp.FlagMore, func(_ zmtp.FrameCodec, w []byte) [][]byte { return [][]byte{w} }},
		{"replayed", 0, func(_ zmtp.FrameCodec, w []byte) [][]byte { return [][]byte{bytes.Clone(w), w} }},
		{"reordered", 0, func(cc zmtp.FrameCodec, w []byte) [][]byte {
			_, w2, _ := cc.Seal(nil, 0, []byte("second"))
			return [][]byte{w2, w}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := curveHandshake(t, cm, sm, nil)
			if c.err != nil || s.err != nil {
				t.Fatalf("client: %v; server: %v", c.err, s.err)
			}
			cc, sc := c.s.Codec(), s.s.Codec()
			_, wire, err := cc.Seal(nil, 0, []byte("first"))
			if err != nil {
				t.Fatal(err)
			}
			frames := tc.mangle(cc, wire)
			for i, f := range frames {
				wf := byte(0)
				if i == len(frames)-1 {
					wf = tc.wireFlags
				}
				_, _, err := sc.Open(nil, wf, f)
				if i < len(frames)-1 {
					if err != nil {
						t.Fatalf("frame %d: %v", i, err)
					}
					continue
				}
				if !errors.Is(err, zmtp.ErrProtocol) {
					t.Fatalf("last frame opened: %v", err)
				}
			}
			// The receive side is dead afterwards, even for a good frame.
			_, good, _ := cc.Seal(nil, 0, []byte("good"))
			if _, _, err := sc.Open(nil, 0, good); err == nil {
				t.Error("a good frame opened after a bad one")
			}
		})
	}
}

func TestCurveSessionDenied(t *testing.T) {
	srv, cli := curveNewKeys(t), curveNewKeys(t)
	sm := zmtp.CurveServer(zmtp.CurveServerConfig{Public: srv.pub, Secret: srv.sec})
	cm := zmtp.CurveClient(zmtp.CurveClientConfig{Public: cli.pub, Secret: cli.sec, ServerKey: srv.pub})
	c, s := curveHandshake(t, cm, sm, func(_ context.Context, req zmtp.AuthRequest) error {
		return fmt.Errorf("key %x not trusted", req.PublicKey[:4])
	})
	if !errors.Is(s.err, zmtp.ErrDenied) || !strings.Contains(s.err.Error(), "not trusted") {
		t.Errorf("server: %v, want ErrDenied", s.err)
	}
	if !errors.Is(c.err, zmtp.ErrDenied) || !errors.Is(c.err, curve.ErrRejected) {
		t.Errorf("client: %v, want ErrDenied and curve.ErrRejected", c.err)
	}
	if want := fmt.Sprintf("key %x not trusted", cli.pub.Bytes()[:4]); c.err == nil || !strings.Contains(c.err.Error(), want) {
		t.Errorf("client: %v, want the reason %q", c.err, want)
	}
	if c.s.Codec() != nil || s.s.Codec() != nil {
		t.Error("a codec after a refused handshake")
	}
}

func TestCurveSessionFailures(t *testing.T) {
	srv, cli, other := curveNewKeys(t), curveNewKeys(t), curveNewKeys(t)
	sm := zmtp.CurveServer(zmtp.CurveServerConfig{Public: srv.pub, Secret: srv.sec})

	t.Run("wrong server key", func(t *testing.T) {
		cm := zmtp.CurveClient(zmtp.CurveClientConfig{Public: cli.pub, Secret: cli.sec, ServerKey: other.pub})
		c, s := curveHandshake(t, cm, sm, nil)
		if !errors.Is(s.err, curve.ErrHandshake) || !errors.Is(s.err, zmtp.ErrProtocol) {
			t.Errorf("server: %v", s.err)
		}
		if c.err == nil || !strings.Contains(c.err.Error(), "wrong server key") {
			t.Errorf("client: %v, want a hint about the server key", c.err)
		}
	})
	t.Run("two clients", func(t *testing.T) {
		cm := zmtp.CurveClient(zmtp.CurveClientConfig{Public: cli.pub, Secret: cli.sec, ServerKey: srv.pub})
		c, s := curveHandshake(t, cm, cm, nil)
		for _, err := range []error{c.err, s.err} {
			if !errors.Is(err, zmtp.ErrProtocol) || !strings.Contains(err.Error(), `"HELLO", want WELCOME`) {
				t.Errorf("%v, want a protocol error", err)
			}
		}
	})
	for _, tc := range []struct {
		name string
		m    zmtp.Mechanism
	}{
		{"client without server key", zmtp.CurveClient(zmtp.CurveClientConfig{Secret: cli.sec})},
		{"client key mismatch", zmtp.CurveClient(zmtp.CurveClientConfig{Public: other.pub, Secret: cli.sec, ServerKey: srv.pub})},
		{"server key mismatch", zmtp.CurveServer(zmtp.CurveServerConfig{Public: other.pub, Secret: srv.sec})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.m.NewSession(); !errors.Is(err, curve.ErrInvalidKey) {
				t.Errorf("NewSession: %v, want ErrInvalidKey", err)
			}
		})
	}
	t.Run("sessions are independent", func(t *testing.T) {
		cm := zmtp.CurveClient(zmtp.CurveClientConfig{Public: cli.pub, Secret: cli.sec, ServerKey: srv.pub})
		hellos := make([][]byte, 2)
		for i := range hellos {
			s, err := cm.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			cp, sp := newCurvePipes()
			close(sp.out)
			s.Handshake(curveCtx(t), cp, false, nil, nil)
			hellos[i] = (<-sp.in)[1]
		}
		if len(hellos[0]) != curve.HelloSize-6 || bytes.Equal(hellos[0], hellos[1]) {
			t.Errorf("HELLOs of two connections: %x and %x", hellos[0], hellos[1])
		}
	})
}

// TestCurveRouterDealer: our CURVE Dealer and Router end to end, with
// heartbeats, multi-frame messages both ways and large frames.
func TestCurveRouterDealer(t *testing.T) {
	testenv.NoLeak(t, curveDeadline)
	srv, cli := curveNewKeys(t), curveNewKeys(t)
	logs := newCurveLog()
	r := curveListen(t, zmtp.Options{
		Mechanism:         zmtp.CurveServer(zmtp.CurveServerConfig{Public: srv.pub, Secret: srv.sec}),
		HeartbeatInterval: 20 * time.Millisecond,
		HeartbeatTimeout:  10 * time.Second,
		Logger:            curveLogger(logs),
	})
	d := curveDial(t, r.Addr().String(), zmtp.Options{
		Identity:          []byte("alice"),
		Mechanism:         zmtp.CurveClient(zmtp.CurveClientConfig{Public: cli.pub, Secret: cli.sec, ServerKey: srv.pub}),
		HeartbeatInterval: 20 * time.Millisecond,
		HeartbeatTimeout:  10 * time.Second,
	})
	ctx := curveCtx(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	if err := d.SendContext(ctx, []byte("one"), nil, big); err != nil {
		t.Fatal(err)
	}
	m, err := r.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !curveFramesEqual(m.Frames, [][]byte{[]byte("one"), {}, big}) {
		t.Fatalf("got %d frames", len(m.Frames))
	}
	if string(m.Peer.Identity) != "alice" || !bytes.Equal(m.Peer.PublicKey, cli.pub.Bytes()) || m.Peer.Mechanism != "CURVE" {
		t.Fatalf("peer %+v", m.Peer)
	}
	if err := r.Send(m.Peer.Identity, []byte("two"), big[:300]); err != nil {
		t.Fatal(err)
	}
	reply, err := d.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !curveFramesEqual(reply.Frames, [][]byte{[]byte("two"), big[:300]}) || !bytes.Equal(reply.Peer.PublicKey, srv.pub.Bytes()) {
		t.Fatalf("reply %d frames from %+v", len(reply.Frames), reply.Peer)
	}
	// Heartbeats cross the sealed channel both ways: the Router answers the
	// Dealer's PINGs and gets PONGs for its own.
	logs.waitFor(t, "zmtp: PING", 3)
	logs.waitFor(t, "zmtp: PONG", 3)
	if strings.Contains(logs.String(), "heartbeat: nothing") {
		t.Fatalf("a heartbeat timed out:\n%s", logs.String())
	}
}

// A Router that is a CURVE server accepts one trusted client key; the
// Dealer knows the server's key in advance.
func ExampleCurveServer() {
	serverPub, serverSec, err := curve.GenerateKeyPair(nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	clientPub, clientSec, err := curve.GenerateKeyPair(nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	r, err := zmtp.ListenRouter("tcp", "127.0.0.1:0", zmtp.Options{
		Mechanism: zmtp.CurveServer(zmtp.CurveServerConfig{Public: serverPub, Secret: serverSec}),
		Authorize: func(_ context.Context, req zmtp.AuthRequest) error {
			if !bytes.Equal(req.PublicKey, clientPub.Bytes()) {
				return errors.New("400") // libzmq reads a ZAP status here
			}
			return nil
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	d, err := zmtp.DialDealer("tcp", r.Addr().String(), zmtp.Options{
		Identity:  []byte("alice"),
		Mechanism: zmtp.CurveClient(zmtp.CurveClientConfig{Public: clientPub, Secret: clientSec, ServerKey: serverPub}),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d.Send([]byte("hello"))
	m, err := r.Recv(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s from %s over %s, key trusted: %v\n", m.Frames[0], m.Peer.Identity, m.Peer.Mechanism,
		bytes.Equal(m.Peer.PublicKey, clientPub.Bytes()))
	r.Send(m.Peer.Identity, []byte("hi alice"))
	reply, err := d.Recv(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s, from the server key: %v\n", reply.Frames[0], bytes.Equal(reply.Peer.PublicKey, serverPub.Bytes()))
	// Output:
	// hello from alice over CURVE, key trusted: true
	// hi alice, from the server key: true
}

// curveRawClient is a hand-driven CURVE client on a raw TCP connection: the
// greeting and the handshake with a curve.Client, then the Session to seal
// MESSAGEs with (good or bad ones).
func curveRawClient(t *testing.T, addr string, server curve.PublicKey, cli curveKeyPair, identity string) (net.Conn, *curve.Session) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(curveDeadline))
	if _, err := nc.Write(zmtp.AppendGreeting(nil, zmtp.Greeting{Major: 3, Minor: 1, Mechanism: "CURVE"})); err != nil {
		t.Fatal(err)
	}
	g := make([]byte, zmtp.GreetingSize)
	if _, err := io.ReadFull(nc, g); err != nil {
		t.Fatal(err)
	}
	cl, err := curve.NewClient(curve.ClientConfig{Public: cli.pub, Secret: cli.sec, ServerKey: server})
	if err != nil {
		t.Fatal(err)
	}
	readBody := func() []byte {
		t.Helper()
		u, err := curveReadUnit(nc)
		if err != nil {
			t.Fatal(err)
		}
		if u[0]&zmtp.FlagLong != 0 {
			return u[9:]
		}
		return u[2:]
	}
	hello, err := cl.Hello()
	if err != nil {
		t.Fatal(err)
	}
	nc.Write(curveFrame(zmtp.FlagCommand, hello))
	md := zmtp.AppendMetadata(nil, zmtp.Metadata{{Name: "Socket-Type", Value: []byte("DEALER")}, {Name: "Identity", Value: []byte(identity)}})
	initiate, err := cl.Welcome(readBody(), md)
	if err != nil {
		t.Fatal(err)
	}
	nc.Write(curveFrame(zmtp.FlagCommand, initiate))
	_, sess, err := cl.Ready(readBody())
	if err != nil {
		t.Fatal(err)
	}
	return nc, sess
}

// TestCurveHostileMessages: after a real handshake, a raw client sends
// tampered, replayed, reordered and truncated MESSAGEs. The Router closes
// that connection, delivers nothing from the bad frame (nor the partial
// message before it) and keeps serving a good Dealer.
func TestCurveHostileMessages(t *testing.T) {
	testenv.NoLeak(t, curveDeadline)
	srv, good, raw := curveNewKeys(t), curveNewKeys(t), curveNewKeys(t)
	logs := newCurveLog()
	r := curveListen(t, zmtp.Options{
		Mechanism: zmtp.CurveServer(zmtp.CurveServerConfig{Public: srv.pub, Secret: srv.sec}),
		Logger:    curveLogger(logs),
	})
	d := curveDial(t, r.Addr().String(), zmtp.Options{
		Identity:  []byte("good"),
		Mechanism: zmtp.CurveClient(zmtp.CurveClientConfig{Public: good.pub, Secret: good.sec, ServerKey: srv.pub}),
	})
	ctx := curveCtx(t)
	seq := 0
	roundTrip := func(after string) {
		t.Helper()
		seq++
		want := fmt.Sprintf("%s-%d", after, seq)
		if err := d.SendContext(ctx, []byte(want)); err != nil {
			t.Fatal(err)
		}
		m, err := r.Recv(ctx)
		if err != nil {
			t.Fatalf("after %s: %v", after, err)
		}
		if string(m.Frames[0]) != want || string(m.Peer.Identity) != "good" {
			t.Fatalf("after %s: got %q from %q, want %q from the good dealer", after, m.Frames, m.Peer.Identity, want)
		}
		if err := r.Send(m.Peer.Identity, []byte("ack-"+want)); err != nil {
			t.Fatal(err)
		}
		a, err := d.Recv(ctx)
		if err != nil || string(a.Frames[0]) != "ack-"+want {
			t.Fatalf("after %s: ack %q %v", after, a.Frames, err)
		}
	}
	roundTrip("start")

	seal := func(t *testing.T, s *curve.Session, flags byte, payload string) []byte {
		t.Helper()
		b, err := s.Seal(nil, flags, []byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	data := func(body []byte) []byte { return curveFrame(0, body) }
	for _, tc := range []struct {
		name string
		// frames returns what the raw client sends: good frames first
		// (the Router delivers the messages in delivered), then bad ones.
		frames    func(t *testing.T, s *curve.Session) [][]byte
		delivered []string
		logWant   string // what the Router logs when it closes the connection
	}{
		{"tampered box", func(t *testing.T, s *curve.Session) [][]byte {
			ok, bad := seal(t, s, 0, "ok"), seal(t, s, 0, "tampered")
			bad[len(bad)-3] ^= 0x40
			return [][]byte{data(ok), data(bad)}
		}, []string{"ok"}, "does not open"},
		{"tampered nonce", func(t *testing.T, s *curve.Session) [][]byte {
			bad := seal(t, s, 0, "tampered")
			bad[12] ^= 1
			return [][]byte{data(bad)}
		}, nil, "does not open"},
		{"replayed", func(t *testing.T, s *curve.Session) [][]byte {
			ok := seal(t, s, 0, "once")
			return [][]byte{data(ok), data(ok)}
		}, []string{"once"}, "replayed or reordered"},
		{"reordered", func(t *testing.T, s *curve.Session) [][]byte {
			first, second := seal(t, s, 0, "first"), seal(t, s, 0, "second")
			return [][]byte{data(second), data(first)}
		}, []string{"second"}, "replayed or reordered"},
		{"truncated box", func(t *testing.T, s *curve.Session) [][]byte {
			bad := seal(t, s, 0, "truncated")
			return [][]byte{data(bad[:len(bad)-1])}
		}, nil, "does not open"},
		{"shorter than a MESSAGE", func(t *testing.T, s *curve.Session) [][]byte {
			return [][]byte{data(seal(t, s, 0, "x")[:20])}
		}, nil, "want at least 33"},
		{"outer MORE bit", func(t *testing.T, s *curve.Session) [][]byte {
			return [][]byte{curveFrame(zmtp.FlagMore, seal(t, s, 0, "more"))}
		}, nil, "MORE bit outside the box"},
		{"unknown sealed command, then tampered", func(t *testing.T, s *curve.Session) [][]byte {
			// An unknown command is ignored; the tampered frame after it is not.
			cmd := seal(t, s, curve.FlagCommand, "\x07UNKNOWN")
			bad := seal(t, s, 0, "after")
			bad[20] ^= 0xff
			return [][]byte{data(cmd), data(bad)}
		}, nil, "does not open"},
		{"partial message then tampered", func(t *testing.T, s *curve.Session) [][]byte {
			part := seal(t, s, curve.FlagMore, "part")
			bad := seal(t, s, 0, "rest")
			bad[len(bad)-1] ^= 1
			return [][]byte{data(part), data(bad)}
		}, nil, "does not open"},
		{"truncated frame at EOF", func(t *testing.T, s *curve.Session) [][]byte {
			f := data(seal(t, s, 0, "cut short by the end of the stream"))
			return [][]byte{f[:len(f)/2]}
		}, nil, "unexpected EOF"},
		{"command frame outside the box", func(t *testing.T, s *curve.Session) [][]byte {
			return [][]byte{curveFrame(zmtp.FlagCommand, []byte("\x04PING\x00\x00"))}
		}, nil, "want MESSAGE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "raw-" + strings.ReplaceAll(tc.name, " ", "-")
			closedBefore := strings.Count(logs.String(), "router connection closed")
			nc, s := curveRawClient(t, r.Addr().String(), srv.pub, raw, id)
			var out []byte
			for _, f := range tc.frames(t, s) {
				out = append(out, f...)
			}
			if _, err := nc.Write(out); err != nil {
				t.Fatal(err)
			}
			if tc.name == "truncated frame at EOF" {
				nc.(*net.TCPConn).CloseWrite()
			}
			for _, want := range tc.delivered {
				m, err := r.Recv(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(m.Frames) != 1 || string(m.Frames[0]) != want || string(m.Peer.Identity) != id {
					t.Fatalf("got %q from %q, want %q from %q", m.Frames, m.Peer.Identity, want, id)
				}
			}
			// The Router closes the connection: we read EOF (or a reset),
			// not a timeout.
			buf := make([]byte, 256)
			for {
				_, err := nc.Read(buf)
				if err == nil {
					continue // a PONG or the like would be sealed data; keep reading
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatalf("the Router did not close the connection before the deadline; log:\n%s", logs.String())
				}
				break
			}
			logs.waitFor(t, "router connection closed", closedBefore+1)
			if last := curveLastLine(logs.String(), "router connection closed"); !strings.Contains(last, tc.logWant) || !strings.Contains(last, fmt.Sprintf("%x", id)) {
				t.Errorf("the Router logged %q, want %q", last, tc.logWant)
			}
			// Nothing else came from that connection, and the good Dealer
			// is still served.
			roundTrip(tc.name)
		})
	}
	if strings.Contains(logs.String(), "panic") {
		t.Fatalf("panic in the log:\n%s", logs.String())
	}
}

// curveLastLine returns the last line of log that contains sub.
func curveLastLine(log, sub string) string {
	lines := strings.Split(log, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], sub) {
			return lines[i]
		}
	}
	return ""
}

// TestCurveDealerOnHandshake: a Dealer reports every handshake to
// OnHandshake: a refusal as an error carrying the server's ERROR
// (DeniedError, after WELCOME: in place of READY), a success as nil.
func TestCurveDealerOnHandshake(t *testing.T) {
	testenv.NoLeak(t, curveDeadline)
	srv, cli := curveNewKeys(t), curveNewKeys(t)
	var mu sync.Mutex
	deny := true
	r := curveListen(t, zmtp.Options{
		Mechanism: zmtp.CurveServer(zmtp.CurveServerConfig{Public: srv.pub, Secret: srv.sec}),
		Authorize: func(context.Context, zmtp.AuthRequest) error {
			mu.Lock()
			defer mu.Unlock()
			if deny {
				return errors.New("key not authorized")
			}
			return nil
		},
	})
	results := make(chan error, 64)
	d := curveDial(t, r.Addr().String(), zmtp.Options{
		Identity:          []byte("alice"),
		Mechanism:         zmtp.CurveClient(zmtp.CurveClientConfig{Public: cli.pub, Secret: cli.sec, ServerKey: srv.pub}),
		ReconnectInterval: 10 * time.Millisecond,
		OnHandshake: func(err error) {
			select {
			case results <- err:
			default:
			}
		},
	})
	ctx := curveCtx(t)
	var err error
	select {
	case err = <-results:
	case <-ctx.Done():
		t.Fatal("no handshake reported")
	}
	var de *zmtp.DeniedError
	if !errors.As(err, &de) || de.Reason != "key not authorized" || de.Instead != "READY" {
		t.Fatalf("OnHandshake(%v): want a DeniedError with the reason, in place of READY", err)
	}
	if !errors.Is(err, zmtp.ErrDenied) || !errors.Is(err, curve.ErrRejected) {
		t.Fatalf("OnHandshake(%v): want ErrDenied and curve.ErrRejected", err)
	}
	mu.Lock()
	deny = false
	mu.Unlock()
	for {
		select {
		case err = <-results:
		case <-ctx.Done():
			t.Fatal("no successful handshake reported")
		}
		if err == nil {
			break
		}
	}
	if !d.Connected() {
		// Connected is set right after OnHandshake returns.
		testenv.WaitFor(t, curveDeadline, "connected", d.Connected)
	}
}
