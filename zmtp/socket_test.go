package zmtp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zyre-go/zyre/internal/testenv"
)

const testDeadline = 20 * time.Second

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	t.Cleanup(cancel)
	return ctx
}

func listen(t *testing.T, opts Options) *Router {
	t.Helper()
	r, err := ListenRouter("tcp", "127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func dial(t *testing.T, addr string, opts Options) *Dealer {
	t.Helper()
	d, err := DialDealer("tcp", addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func recvR(t *testing.T, r *Router) Message {
	t.Helper()
	m, err := r.Recv(testCtx(t))
	if err != nil {
		t.Fatalf("router recv: %v", err)
	}
	return m
}

func TestRouterDealer(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	r := listen(t, Options{})
	d := dial(t, r.Addr().String(), Options{Identity: []byte("alice")})
	if err := d.Send([]byte("hello"), nil, []byte("world")); err != nil {
		t.Fatal(err)
	}
	m := recvR(t, r)
	if string(m.Peer.Identity) != "alice" || m.Peer.SocketType != "DEALER" || m.Peer.Mechanism != "NULL" {
		t.Fatalf("peer %+v", m.Peer)
	}
	if len(m.Frames) != 3 || string(m.Frames[0]) != "hello" || len(m.Frames[1]) != 0 || string(m.Frames[2]) != "world" {
		t.Fatalf("frames %q", m.Frames)
	}
	if err := r.Send([]byte("alice"), []byte("back"), bytes.Repeat([]byte("x"), 100000)); err != nil {
		t.Fatal(err)
	}
	dm, err := d.Recv(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(dm.Frames) != 2 || string(dm.Frames[0]) != "back" || len(dm.Frames[1]) != 100000 || dm.Peer.SocketType != "ROUTER" {
		t.Fatalf("dealer got %d frames, peer %+v", len(dm.Frames), dm.Peer)
	}
	if !d.Connected() {
		t.Fatal("Connected() = false after a round trip")
	}
	if err := r.Send([]byte("bob"), []byte("x")); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("send to unknown: %v", err)
	}
	if err := d.Send(); !errors.Is(err, ErrProtocol) {
		t.Fatalf("empty send: %v", err)
	}
	d.Close()
	d.Close()
	r.Close()
	r.Close()
	if err := d.Send([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
	if _, err := r.Recv(testCtx(t)); !errors.Is(err, ErrClosed) {
		t.Fatalf("recv after close: %v", err)
	}
}

func TestGeneratedIdentity(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	r := listen(t, Options{})
	d1 := dial(t, r.Addr().String(), Options{})
	d2 := dial(t, r.Addr().String(), Options{})
	d1.Send([]byte("1"))
	d2.Send([]byte("2"))
	ids := map[string]string{}
	for range 2 {
		m := recvR(t, r)
		if len(m.Peer.Identity) != 5 || m.Peer.Identity[0] != 0 {
			t.Fatalf("generated identity % x, want 0x00 + 4 octets", m.Peer.Identity)
		}
		ids[string(m.Frames[0])] = string(m.Peer.Identity)
	}
	if ids["1"] == ids["2"] {
		t.Fatal("two peers got the same generated identity")
	}
	// Replies reach the right dealer.
	r.Send([]byte(ids["2"]), []byte("to2"))
	m, err := d2.Recv(testCtx(t))
	if err != nil || string(m.Frames[0]) != "to2" {
		t.Fatalf("d2 recv %q %v", m.Frames, err)
	}
}

// TestIdentityTakeover: a second connection with the same identity and the
// same (nil) key takes over; the old one is closed.
func TestIdentityTakeover(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	r := listen(t, Options{})
	d1 := dial(t, r.Addr().String(), Options{Identity: []byte("same"), ReconnectInterval: time.Hour})
	d1.Send([]byte("from1"))
	recvR(t, r)
	d2 := dial(t, r.Addr().String(), Options{Identity: []byte("same"), ReconnectInterval: time.Hour})
	d2.Send([]byte("from2"))
	if m := recvR(t, r); string(m.Frames[0]) != "from2" {
		t.Fatalf("got %q", m.Frames)
	}
	if err := r.Send([]byte("same"), []byte("reply")); err != nil {
		t.Fatal(err)
	}
	m, err := d2.Recv(testCtx(t))
	if err != nil || string(m.Frames[0]) != "reply" {
		t.Fatalf("new connection did not get the reply: %q %v", m.Frames, err)
	}
}

// keyMechanism is NULL where the client claims a public key in an X-Key
// property and the server takes it as authenticated, to test the collision rule.
type keyMechanism struct{ key []byte }

func (keyMechanism) Name() string   { return "NULL" }
func (keyMechanism) AsServer() bool { return false }
func (k keyMechanism) NewSession() (Session, error) {
	return keySession(k), nil
}

type keySession struct{ key []byte }

func (keySession) Codec() FrameCodec { return nil }
func (k keySession) Handshake(ctx context.Context, c CommandConn, server bool, local Metadata, auth Authorizer) (HandshakeResult, error) {
	if !server {
		local = append(local, Property{Name: "X-Key", Value: k.key})
	}
	res, err := nullSession{}.Handshake(ctx, c, server, local, auth)
	if server {
		res.PublicKey, _ = res.Metadata.Get("X-Key")
	}
	return res, err
}

func TestIdentityCollision(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	var logs lockedBuffer
	r := listen(t, Options{Mechanism: keyMechanism{}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	d1 := dial(t, r.Addr().String(), Options{Identity: []byte("id"), Mechanism: keyMechanism{[]byte("k1")}, ReconnectInterval: time.Hour})
	d1.Send([]byte("first"))
	if m := recvR(t, r); string(m.Peer.PublicKey) != "k1" {
		t.Fatalf("key %q", m.Peer.PublicKey)
	}
	// Same identity, different key: refused; the first keeps its place.
	dial(t, r.Addr().String(), Options{Identity: []byte("id"), Mechanism: keyMechanism{[]byte("k2")}, ReconnectInterval: time.Hour})
	testenv.WaitFor(t, testDeadline, "condition", func() bool { return strings.Contains(logs.String(), "identity in use by another key") })
	if err := r.Send([]byte("id"), []byte("still1")); err != nil {
		t.Fatal(err)
	}
	if dm, err := d1.Recv(testCtx(t)); err != nil || string(dm.Frames[0]) != "still1" {
		t.Fatalf("first connection lost its place: %q %v", dm.Frames, err)
	}
	// Same identity, same key: takes over.
	d3 := dial(t, r.Addr().String(), Options{Identity: []byte("id"), Mechanism: keyMechanism{[]byte("k1")}, ReconnectInterval: time.Hour})
	d3.Send([]byte("third"))
	if m := recvR(t, r); string(m.Frames[0]) != "third" {
		t.Fatalf("got %q", m.Frames[0])
	}
	if err := r.Send([]byte("id"), []byte("to3")); err != nil {
		t.Fatal(err)
	}
	if dm, err := d3.Recv(testCtx(t)); err != nil || string(dm.Frames[0]) != "to3" {
		t.Fatalf("takeover: %q %v", dm.Frames, err)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestAuthorizerDenies(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	var got AuthRequest
	var mu sync.Mutex
	r := listen(t, Options{Authorize: func(ctx context.Context, req AuthRequest) error {
		mu.Lock()
		got = req
		mu.Unlock()
		if id, _ := req.Metadata.Get("Identity"); string(id) == "mallory" {
			return errors.New("go away")
		}
		return nil
	}})
	var logs lockedBuffer
	bad := dial(t, r.Addr().String(), Options{Identity: []byte("mallory"), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	testenv.WaitFor(t, testDeadline, "condition", func() bool { return strings.Contains(logs.String(), `peer sent ERROR \"go away\"`) })
	if bad.Connected() {
		t.Fatal("denied dealer is connected")
	}
	good := dial(t, r.Addr().String(), Options{Identity: []byte("carol")})
	good.Send([]byte("hi"))
	if m := recvR(t, r); string(m.Peer.Identity) != "carol" {
		t.Fatalf("got %q", m.Peer.Identity)
	}
	mu.Lock()
	defer mu.Unlock()
	if got.Mechanism != "NULL" || got.RemoteAddr == nil {
		t.Fatalf("auth request %+v", got)
	}
}

// TestDealerReconnect is go-zeromq/zmq4 issue 115: after the router
// restarts on the same port, every message sent afterwards arrives.
func TestDealerReconnect(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	r1 := listen(t, Options{})
	addr := r1.Addr().String()
	d := dial(t, addr, Options{Identity: []byte("d"), ReconnectInterval: 10 * time.Millisecond, ReconnectIntervalMax: 50 * time.Millisecond})
	d.Send([]byte("before"))
	recvR(t, r1)
	r1.Close()
	testenv.WaitFor(t, testDeadline, "condition", func() bool { return !d.Connected() })
	// Queued while disconnected.
	const n = 200
	for i := range n / 2 {
		if err := d.Send([]byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	var r2 *Router
	testenv.WaitFor(t, testDeadline, "condition", func() bool {
		var err error
		r2, err = ListenRouter("tcp", addr, Options{})
		return err == nil
	})
	t.Cleanup(func() { r2.Close() })
	for i := n / 2; i < n; i++ {
		if err := d.SendContext(testCtx(t), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		m, err := r2.Recv(testCtx(t))
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if string(m.Frames[0]) != fmt.Sprint(i) {
			t.Fatalf("message %d: got %q", i, m.Frames[0])
		}
	}
}

// TestHWM: a Dealer to a Router nobody reads from. Once the Router's queue,
// both kernels' socket buffers and the Dealer's queue are full, Send reports
// ErrPeerNotResponding, and every accepted message arrives once it is read.
func TestHWM(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	r := listen(t, Options{RecvHWM: 10})
	d := dial(t, r.Addr().String(), Options{SendHWM: 10})
	d.Send([]byte("first"))
	recvR(t, r) // connected; from now on nobody reads
	payload := bytes.Repeat([]byte("p"), 16<<10)
	accepted := 0
	for {
		// SendContext waits while the queue is full; when it stays full
		// for a whole second the backpressure has reached the Dealer.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := d.SendContext(ctx, []byte(fmt.Sprint(accepted)), payload)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if accepted++; accepted > 100000 {
			t.Fatal("the queue never filled")
		}
	}
	if err := d.Send([]byte("x")); !errors.Is(err, ErrPeerNotResponding) {
		t.Fatalf("Send with a full queue: %v", err)
	}
	// More than the two HWMs went out: the rest sat in socket buffers.
	if accepted <= 20 {
		t.Fatalf("only %d messages accepted", accepted)
	}
	for i := range accepted {
		m := recvR(t, r)
		if string(m.Frames[0]) != fmt.Sprint(i) || len(m.Frames[1]) != len(payload) {
			t.Fatalf("message %d: got %q", i, m.Frames[0])
		}
	}
	t.Logf("%d messages accepted before the HWM", accepted)
}

func TestMaxMsgSize(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	var logs lockedBuffer
	r := listen(t, Options{MaxMsgSize: 1000, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	big := dial(t, r.Addr().String(), Options{Identity: []byte("big"), ReconnectInterval: time.Hour})
	// Two frames of 600 octets: each under the limit, the message over it.
	big.Send(make([]byte, 600), make([]byte, 600))
	testenv.WaitFor(t, testDeadline, "condition", func() bool { return strings.Contains(logs.String(), "message too large") })
	small := dial(t, r.Addr().String(), Options{MaxMsgSize: 1000})
	small.Send(make([]byte, 1000))
	if m := recvR(t, r); len(m.Frames[0]) != 1000 {
		t.Fatalf("got %d octets", len(m.Frames[0]))
	}
	if err := small.Send(make([]byte, 1001)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("sending over MaxMsgSize: %v", err)
	}
}

// TestHeartbeat: a peer that stops answering is dropped after the timeout,
// while our own pair keeps its connection over idle periods.
func TestHeartbeat(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	hb := Options{HeartbeatInterval: 20 * time.Millisecond, HeartbeatTimeout: 100 * time.Millisecond}
	var logs lockedBuffer
	hbr := hb
	hbr.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	r := listen(t, hbr)
	d := dial(t, r.Addr().String(), hb)
	d.Send([]byte("x"))
	recvR(t, r)
	// A raw peer that completes the handshake and then never says anything.
	nc, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	rawHandshake(t, nc, "DEALER", "silent")
	testenv.WaitFor(t, testDeadline, "condition", func() bool { return strings.Contains(logs.String(), "heartbeat: nothing from") })
	// The live dealer was not dropped: PINGs were answered with PONGs.
	if strings.Contains(logs.String(), "identity=\"\"") || !d.Connected() {
		t.Fatal("the answering dealer was dropped")
	}
	d.Send([]byte("y"))
	if m := recvR(t, r); string(m.Frames[0]) != "y" {
		t.Fatalf("got %q", m.Frames)
	}
}

// rawHandshake does a NULL handshake by hand on nc.
func rawHandshake(t *testing.T, nc net.Conn, socketType, identity string) {
	t.Helper()
	nc.SetDeadline(time.Now().Add(testDeadline))
	defer nc.SetDeadline(time.Time{})
	out := AppendGreeting(nil, Greeting{Major: 3, Minor: 1, Mechanism: "NULL", IdentityLen: len(identity)})
	ready := appendCommand(nil, "READY", AppendMetadata(nil, Metadata{{"Socket-Type", []byte(socketType)}, {"Identity", []byte(identity)}}))
	out = appendFrameHeader(out, FlagCommand, len(ready))
	out = append(out, ready...)
	if _, err := nc.Write(out); err != nil {
		t.Fatal(err)
	}
	var in [GreetingSize]byte
	if _, err := ioReadFull(nc, in[:]); err != nil {
		t.Fatal(err)
	}
}

func TestUnixSocket(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	path := t.TempDir() + "/zmtp.sock"
	r, err := ListenRouter("unix", path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	d, err := DialDealer("unix", path, Options{Identity: []byte("u")})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.Send([]byte("over unix"))
	if m := recvR(t, r); string(m.Frames[0]) != "over unix" || string(m.Peer.Identity) != "u" {
		t.Fatalf("got %q from %q", m.Frames, m.Peer.Identity)
	}
}

// TestRouterHWM: the Router's per-connection queue fills when the Dealer
// does not read; nothing accepted is lost.
func TestRouterHWM(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	r := listen(t, Options{SendHWM: 5})
	d := dial(t, r.Addr().String(), Options{Identity: []byte("slow"), RecvHWM: 5})
	d.Send([]byte("hi"))
	recvR(t, r)
	payload := bytes.Repeat([]byte("p"), 16<<10)
	accepted := 0
	for {
		err := r.Send([]byte("slow"), []byte(fmt.Sprint(accepted)), payload)
		if errors.Is(err, ErrPeerNotResponding) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if accepted++; accepted > 100000 {
			t.Fatal("Router.Send never returned ErrPeerNotResponding")
		}
	}
	for i := range accepted {
		m, err := d.Recv(testCtx(t))
		if err != nil || string(m.Frames[0]) != fmt.Sprint(i) {
			t.Fatalf("message %d: %q %v", i, m.Frames, err)
		}
	}
}

// TestDealerQueueWhileDisconnected: with nobody listening, Send queues up to
// SendHWM and then refuses; the queue is delivered once a Router appears.
func TestDealerQueueWhileDisconnected(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there for now
	d := dial(t, addr, Options{SendHWM: 3, ReconnectInterval: 5 * time.Millisecond, ReconnectIntervalMax: 20 * time.Millisecond})
	for i := range 3 {
		if err := d.Send([]byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Send([]byte("3")); !errors.Is(err, ErrPeerNotResponding) {
		t.Fatalf("4th send while disconnected: %v", err)
	}
	if d.Connected() {
		t.Fatal("connected to nothing")
	}
	var r *Router
	testenv.WaitFor(t, testDeadline, "condition", func() bool {
		r, err = ListenRouter("tcp", addr, Options{})
		return err == nil
	})
	defer r.Close()
	for i := range 3 {
		if m := recvR(t, r); string(m.Frames[0]) != fmt.Sprint(i) {
			t.Fatalf("message %d: %q", i, m.Frames)
		}
	}
}
