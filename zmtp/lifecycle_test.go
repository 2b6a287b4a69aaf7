package zmtp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/testenv"
)

// Tests of a connection's life: Router.Disconnect, OnDisconnect, Flush,
// the session's Close, the Authorizer of a server-role mechanism on a
// Dealer, and the frame reader's allocations.

// TestRouterDisconnect: Disconnect closes one peer's connection at once and
// forgets it; OnDisconnect reports it on both sides.
func TestRouterDisconnect(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	gone := make(chan *Peer, 8)
	r := listen(t, Options{OnDisconnect: func(p *Peer) { gone <- p }})
	dgone := make(chan *Peer, 8)
	d := dial(t, r.Addr().String(), Options{Identity: []byte("kick-me"), ReconnectInterval: time.Hour, OnDisconnect: func(p *Peer) { dgone <- p }})
	keep := dial(t, r.Addr().String(), Options{Identity: []byte("keep-me")})
	d.Send([]byte("hi"))
	keep.Send([]byte("hi"))
	recvR(t, r)
	recvR(t, r)

	if err := r.Disconnect([]byte("nobody")); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("Disconnect of an unknown identity: %v", err)
	}
	if err := r.Disconnect([]byte("kick-me")); err != nil {
		t.Fatal(err)
	}
	// Forgotten at once.
	if err := r.Send([]byte("kick-me"), []byte("x")); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("Send after Disconnect: %v", err)
	}
	if err := r.Disconnect([]byte("kick-me")); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("second Disconnect: %v", err)
	}
	select {
	case p := <-gone:
		if string(p.Identity) != "kick-me" || p.SocketType != "DEALER" {
			t.Fatalf("OnDisconnect for %q (%s)", p.Identity, p.SocketType)
		}
	case <-testCtx(t).Done():
		t.Fatal("no OnDisconnect on the Router")
	}
	select {
	case p := <-dgone:
		if p.SocketType != "ROUTER" {
			t.Fatalf("Dealer's OnDisconnect for a %s", p.SocketType)
		}
	case <-testCtx(t).Done():
		t.Fatal("no OnDisconnect on the Dealer: its connection was not closed")
	}
	if d.Connected() {
		t.Fatal("the disconnected Dealer still reports a connection")
	}
	// The other peer is untouched.
	if err := r.Send([]byte("keep-me"), []byte("still")); err != nil {
		t.Fatal(err)
	}
	if m, err := keep.Recv(testCtx(t)); err != nil || string(m.Frames[0]) != "still" {
		t.Fatalf("other peer: %q %v", m.Frames, err)
	}
	select {
	case p := <-gone:
		t.Fatalf("unexpected OnDisconnect for %q", p.Identity)
	default:
	}
	// Close reports the remaining connection, before Close returns.
	r.Close()
	select {
	case p := <-gone:
		if string(p.Identity) != "keep-me" {
			t.Fatalf("OnDisconnect at Close for %q", p.Identity)
		}
	default:
		t.Fatal("Close returned before OnDisconnect of the remaining connection")
	}
	if err := r.Disconnect([]byte("keep-me")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Disconnect after Close: %v", err)
	}
}

// TestDealerFlush: everything sent before Flush reaches the Router even when
// Close follows at once; Flush waits for the socket, for a reconnection,
// and honours ctx and Close.
func TestDealerFlush(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	// A small RecvHWM and a backlog larger than the kernel's socket
	// buffers: Flush has to wait for the reader.
	r := listen(t, Options{RecvHWM: 2})
	d := dial(t, r.Addr().String(), Options{Identity: []byte("flusher")})
	const n, size = 128, 128 << 10
	for i := range n {
		b := bytes.Repeat([]byte{byte(i)}, size)
		if err := d.Send(b, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	errc := make(chan error, 1)
	fctx := testCtx(t)
	go func() {
		err := d.Flush(fctx)
		d.Close() // at once: nothing queued before Flush may be lost
		errc <- err
	}()
	for i := range n {
		m := recvR(t, r)
		if len(m.Frames) != 2 || string(m.Frames[1]) != fmt.Sprint(i) || len(m.Frames[0]) != size || m.Frames[0][size-1] != byte(i) {
			t.Fatalf("message %d: %d frames, %q", i, len(m.Frames), m.Frames[len(m.Frames)-1])
		}
	}
	if err := <-errc; err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if err := d.Flush(testCtx(t)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Flush after Close: %v", err)
	}

	// Nobody listening: Flush waits (here until ctx ends).
	d2 := dial(t, "127.0.0.1:1", Options{ReconnectInterval: time.Hour})
	d2.Send([]byte("queued"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d2.Flush(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Flush while disconnected, ctx cancelled: %v", err)
	}
}

// TestDealerFlushAfterReconnect: a Flush made while disconnected returns
// once the queue went out over the new connection.
func TestDealerFlushAfterReconnect(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	r := listen(t, Options{})
	addr := r.Addr().String()
	r.Close()
	d := dial(t, addr, Options{ReconnectInterval: 5 * time.Millisecond, ReconnectIntervalMax: 20 * time.Millisecond})
	d.Send([]byte("a"))
	d.Send([]byte("b"))
	errc := make(chan error, 1)
	fctx := testCtx(t)
	go func() { errc <- d.Flush(fctx) }()
	var r2 *Router
	testenv.WaitFor(t, testDeadline, "condition", func() bool {
		var err error
		r2, err = ListenRouter("tcp", addr, Options{})
		return err == nil
	})
	defer r2.Close()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	d.Close()
	for _, want := range []string{"a", "b"} {
		if m := recvR(t, r2); string(m.Frames[0]) != want {
			t.Fatalf("got %q, want %q", m.Frames[0], want)
		}
	}
}

// TestRouterFlush: what the Router queued for a peer before Flush is
// written before Disconnect closes the connection.
func TestRouterFlush(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	r := listen(t, Options{})
	d := dial(t, r.Addr().String(), Options{Identity: []byte("reader"), ReconnectInterval: time.Hour, RecvHWM: 2})
	d.Send([]byte("hi"))
	recvR(t, r)
	if err := r.Flush(testCtx(t), []byte("nobody")); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("Flush to an unknown peer: %v", err)
	}
	const n, size = 128, 128 << 10
	for i := range n {
		if err := r.Send([]byte("reader"), bytes.Repeat([]byte{byte(i)}, size)); err != nil {
			t.Fatal(err)
		}
	}
	errc := make(chan error, 1)
	fctx := testCtx(t)
	go func() {
		err := r.Flush(fctx, []byte("reader"))
		if err == nil {
			err = r.Disconnect([]byte("reader"))
		}
		errc <- err
	}()
	for i := range n {
		m, err := d.Recv(testCtx(t))
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if len(m.Frames[0]) != size || m.Frames[0][0] != byte(i) {
			t.Fatalf("message %d: %d octets", i, len(m.Frames[0]))
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// closeMechanism wraps the xor codec mechanism; its sessions count Close
// calls and catch any use of the codec after Close.
type closeMechanism struct{ st *closeStats }

type closeStats struct {
	created, closed, late atomic.Int64
}

func (closeMechanism) Name() string   { return "X-CLOSE" }
func (closeMechanism) AsServer() bool { return false }
func (m closeMechanism) NewSession() (Session, error) {
	m.st.created.Add(1)
	return &countingSession{st: m.st}, nil
}

type countingSession struct {
	st     *closeStats
	closes atomic.Int64
}

func (s *countingSession) Handshake(ctx context.Context, c CommandConn, server bool, local Metadata, auth Authorizer) (HandshakeResult, error) {
	return nullSession{}.Handshake(ctx, c, server, local, auth)
}
func (s *countingSession) Codec() FrameCodec { return closeCodec{s} }
func (s *countingSession) Close() error {
	if s.closes.Add(1) > 1 {
		s.st.late.Add(1000) // closed twice
	}
	s.st.closed.Add(1)
	return nil
}

type closeCodec struct{ s *countingSession }

func (c closeCodec) Seal(dst []byte, flags byte, body []byte) (byte, []byte, error) {
	if c.s.closes.Load() > 0 {
		c.s.st.late.Add(1)
	}
	return xorCodec{&codecStats{}}.Seal(dst, flags, body)
}

func (c closeCodec) Open(dst []byte, wireFlags byte, wire []byte) (byte, []byte, error) {
	if c.s.closes.Load() > 0 {
		c.s.st.late.Add(1)
	}
	return xorCodec{&codecStats{}}.Open(dst, wireFlags, wire)
}

// TestSessionClose: the core closes every session exactly once, after the
// connection's last Seal and Open, whether the handshake succeeded or not.
func TestSessionClose(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	rs, ds := &closeStats{}, &closeStats{}
	hb := 2 * time.Millisecond // PING/PONG keep both codecs busy until the end
	r, err := ListenRouter("tcp", "127.0.0.1:0", Options{
		Mechanism: closeMechanism{rs}, HeartbeatInterval: hb, HeartbeatTimeout: testDeadline,
		Authorize: func(_ context.Context, req AuthRequest) error {
			if id, _ := req.Metadata.Get("Identity"); string(id) == "denied" {
				return errors.New("no")
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	d, err := DialDealer("tcp", r.Addr().String(), Options{Mechanism: closeMechanism{ds}, Identity: []byte("ok"), HeartbeatInterval: hb, HeartbeatTimeout: testDeadline})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	dd, err := DialDealer("tcp", r.Addr().String(), Options{Mechanism: closeMechanism{ds}, Identity: []byte("denied"), ReconnectInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer dd.Close()
	d.Send([]byte("x"))
	recvR(t, r)
	// The denied handshake's sessions are closed too.
	testenv.WaitFor(t, testDeadline, "condition", func() bool { return rs.closed.Load() >= 1 && ds.closed.Load() >= 1 })
	// A connection closed by the peer, then the rest by Close.
	if err := r.Disconnect([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, testDeadline, "condition", func() bool { return rs.closed.Load() >= 2 })
	dd.Close()
	d.Close()
	r.Close()
	for name, st := range map[string]*closeStats{"router": rs, "dealers": ds} {
		if c, cl := st.created.Load(), st.closed.Load(); c == 0 || c != cl {
			t.Errorf("%s: %d sessions created, %d closed", name, c, cl)
		}
		if l := st.late.Load(); l != 0 {
			t.Errorf("%s: the codec was used after Close, or Close was called twice (%d)", name, l)
		}
	}
}

// captureMechanism records the sessions of a mechanism.
type captureMechanism struct {
	Mechanism
	mu       *sync.Mutex
	sessions *[]Session
}

func (m captureMechanism) IsServer() bool { return m.Mechanism.(ServerRole).IsServer() }
func (m captureMechanism) NewSession() (Session, error) {
	s, err := m.Mechanism.NewSession()
	if err == nil {
		m.mu.Lock()
		*m.sessions = append(*m.sessions, s)
		m.mu.Unlock()
	}
	return s, err
}

func curveKeys(t *testing.T) (curve.PublicKey, curve.SecretKey) {
	t.Helper()
	pub, sec, err := curve.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	return pub, sec
}

// TestCurveSessionWipedOnClose: once a CURVE connection is over, its session
// keys are wiped: the codec can neither seal nor open.
func TestCurveSessionWipedOnClose(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	spub, ssec := curveKeys(t)
	cpub, csec := curveKeys(t)
	var mu sync.Mutex
	var rsess, dsess []Session
	r := listen(t, Options{Mechanism: captureMechanism{CurveServer(CurveServerConfig{Public: spub, Secret: ssec}), &mu, &rsess}})
	d := dial(t, r.Addr().String(), Options{
		Mechanism: captureMechanism{CurveClient(CurveClientConfig{Public: cpub, Secret: csec, ServerKey: spub}), &mu, &dsess},
		Identity:  []byte("c"), ReconnectInterval: time.Hour,
	})
	d.Send([]byte("x"))
	if m := recvR(t, r); string(m.Frames[0]) != "x" {
		t.Fatalf("got %q", m.Frames)
	}
	d.Close()
	r.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(rsess) != 1 || len(dsess) != 1 {
		t.Fatalf("%d router and %d dealer sessions", len(rsess), len(dsess))
	}
	for name, s := range map[string]Session{"router": rsess[0], "dealer": dsess[0]} {
		codec := s.Codec()
		if codec == nil {
			t.Fatalf("%s: no codec", name)
		}
		if _, _, err := codec.Seal(nil, 0, []byte("after close")); err == nil {
			t.Errorf("%s: Seal works after the connection closed: the session keys were not wiped", name)
		}
	}
}

// TestDealerCurveServerAuthorizer: a Dealer whose mechanism is the CURVE
// server (it connects out to a Router that is the CURVE client) asks its
// Authorizer; the Router, the CURVE client, never asks its own.
func TestDealerCurveServerAuthorizer(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	spub, ssec := curveKeys(t)
	cpub, csec := curveKeys(t)
	r := listen(t, Options{
		Mechanism: CurveClient(CurveClientConfig{Public: cpub, Secret: csec, ServerKey: spub}),
		Authorize: func(context.Context, AuthRequest) error {
			t.Error("the Router's Authorizer was called, but its mechanism is the CURVE client")
			return nil
		},
	})
	var allow atomic.Bool
	calls := make(chan AuthRequest, 64)
	d := dial(t, r.Addr().String(), Options{
		Mechanism: CurveServer(CurveServerConfig{Public: spub, Secret: ssec}),
		Identity:  []byte("curve-server-dealer"),
		Authorize: func(_ context.Context, req AuthRequest) error {
			select {
			case calls <- req:
			default:
			}
			if !allow.Load() {
				return errors.New("not yet")
			}
			return nil
		},
		ReconnectInterval: 5 * time.Millisecond, ReconnectIntervalMax: 20 * time.Millisecond,
	})
	select {
	case req := <-calls:
		if !bytes.Equal(req.PublicKey, cpub.Bytes()) || req.Mechanism != "CURVE" || req.RemoteAddr == nil {
			t.Fatalf("AuthRequest %+v", req)
		}
	case <-testCtx(t).Done():
		t.Fatal("the Dealer's Authorizer was never called")
	}
	if d.Connected() || len(r.Peers()) != 0 {
		t.Fatal("a refused handshake completed")
	}
	allow.Store(true)
	if err := d.Send([]byte("authorized")); err != nil {
		t.Fatal(err)
	}
	m := recvR(t, r)
	if string(m.Frames[0]) != "authorized" || !bytes.Equal(m.Peer.PublicKey, spub.Bytes()) {
		t.Fatalf("got %q from key %x", m.Frames, m.Peer.PublicKey)
	}
}

// TestLargeFrameOneAllocation: a frame a little over 1 MiB (a 1 MiB message
// under CURVE) and one of a few MiB are each read into one allocation;
// a header claiming more than chunk still allocates at most chunk first.
func TestLargeFrameOneAllocation(t *testing.T) {
	for _, size := range []int{1<<20 + 33, 3 << 20} {
		var w bytes.Buffer
		w.Write(appendFrameHeader(nil, 0, size))
		w.Write(make([]byte, size))
		raw := w.Bytes()
		src := bytes.NewReader(raw)
		fr := newTestReader(nil)
		allocs := testing.AllocsPerRun(3, func() {
			src.Reset(raw)
			fr.r.Reset(src)
			if _, b, err := fr.readFrame(-1); err != nil || len(b) != size {
				t.Fatalf("readFrame: %d octets, %v", len(b), err)
			}
		})
		if allocs != 1 {
			t.Errorf("a frame of %d octets: %v allocations, want 1", size, allocs)
		}
	}
	// A claim of 1 TiB with 3 octets behind it costs one allocation of
	// chunk, not what the header claims.
	tib := []byte{FlagLong, 0, 0, 1, 0, 0, 0, 0, 0, 1, 2, 3}
	fr := newTestReader(tib)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, _, err := fr.readFrame(-1); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a truncated 1 TiB frame: %v", err)
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > chunk+1<<20 {
		t.Errorf("a 1 TiB claim with 3 octets behind it allocated %d octets", n)
	}
}

// inPlaceMechanism's codec opens by writing over wire and returning a
// subslice of it, as FrameCodec.Open allows; it checks that the core
// passes a nil dst.
type inPlaceMechanism struct{ badDst *atomic.Int64 }

func (inPlaceMechanism) Name() string   { return "X-INPLACE" }
func (inPlaceMechanism) AsServer() bool { return false }
func (m inPlaceMechanism) NewSession() (Session, error) {
	return inPlaceSession(m), nil
}

type inPlaceSession inPlaceMechanism

func (s inPlaceSession) Handshake(ctx context.Context, c CommandConn, server bool, local Metadata, auth Authorizer) (HandshakeResult, error) {
	return nullSession{}.Handshake(ctx, c, server, local, auth)
}
func (s inPlaceSession) Codec() FrameCodec { return inPlaceCodec(s) }

type inPlaceCodec inPlaceSession

func (c inPlaceCodec) Seal(dst []byte, flags byte, body []byte) (byte, []byte, error) {
	return xorCodec{&codecStats{}}.Seal(dst, flags, body)
}

func (c inPlaceCodec) Open(dst []byte, wireFlags byte, wire []byte) (byte, []byte, error) {
	if dst != nil {
		c.badDst.Add(1)
	}
	if wireFlags != 0 || len(wire) < 2 || wire[0] != 'X' {
		return 0, nil, fmt.Errorf("in-place: bad wire frame: %w", ErrProtocol)
	}
	flags := wire[1]
	out := wire[:0]
	for _, b := range wire[2:] {
		out = append(out, b^0x5a) // writes behind what it reads
	}
	return flags, out, nil
}

// TestFrameCodecOpenInPlace pins FrameCodec.Open's contract: the core passes
// dst == nil and never reuses wire, so a body opened in place over wire
// stays intact while later frames (slab-carved small ones, large ones)
// arrive.
func TestFrameCodecOpenInPlace(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	var bad atomic.Int64
	// Fast PINGs (through the codec too), but a generous timeout: a
	// loaded machine must not break the connection.
	hb := Options{Mechanism: inPlaceMechanism{&bad}, HeartbeatInterval: 5 * time.Millisecond, HeartbeatTimeout: testDeadline}
	r := listen(t, hb)
	hb.Identity = []byte("p")
	d := dial(t, r.Addr().String(), hb)
	sizes := []int{0, 1, 100, 1000, 1024, 1025, 5000, 70000, 300 << 10}
	var want [][][]byte
	for i := range 200 {
		a := bytes.Repeat([]byte{byte(i)}, sizes[i%len(sizes)])
		b := []byte(fmt.Sprintf("frame-%d", i))
		want = append(want, [][]byte{a, b})
		if err := d.SendContext(testCtx(t), a, b); err != nil {
			t.Fatal(err)
		}
	}
	var got [][][]byte
	for range want {
		got = append(got, recvR(t, r).Frames)
	}
	for i := range want {
		if len(got[i]) != 2 || !bytes.Equal(got[i][0], want[i][0]) || !bytes.Equal(got[i][1], want[i][1]) {
			t.Fatalf("message %d changed after later frames arrived", i)
		}
	}
	if n := bad.Load(); n != 0 {
		t.Fatalf("the core passed a non-nil dst to Open %d times", n)
	}
}

// lateMechanism wraps a mechanism: the first session whose handshake
// succeeds returns only once release is closed and the handshake's
// deadline has passed, as a server goroutine descheduled between writing
// READY and returning would.
type lateMechanism struct {
	Mechanism
	first   *atomic.Bool
	release chan struct{}
}

func (m lateMechanism) IsServer() bool { return m.Mechanism.(ServerRole).IsServer() }
func (m lateMechanism) NewSession() (Session, error) {
	s, err := m.Mechanism.NewSession()
	if err != nil {
		return nil, err
	}
	return &lateSession{Session: s, m: m}, nil
}

type lateSession struct {
	Session
	m lateMechanism
}

func (s *lateSession) Handshake(ctx context.Context, c CommandConn, server bool, local Metadata, auth Authorizer) (HandshakeResult, error) {
	res, err := s.Session.Handshake(ctx, c, server, local, auth)
	if err == nil && s.m.first.CompareAndSwap(true, false) {
		<-s.m.release
		<-ctx.Done()
	}
	return res, err
}

func (s *lateSession) Close() error { return s.Session.(io.Closer).Close() }

// TestHandshakeCompleteAtTheDeadline: a CURVE server whose handshake
// completed (READY sent) just before its HandshakeTimeout keeps the
// connection. The client counts it as established as soon as READY
// arrives and writes what it had queued into it; a server that then gave
// up on the connection because the deadline had passed in the meantime
// lost that message for good (the Dealer reconnects, but what the broken
// connection took is gone): a ZRE HELLO lost this way left a secure pair
// of nodes half meshed forever.
func TestHandshakeCompleteAtTheDeadline(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	spub, ssec := curveKeys(t)
	cpub, csec := curveKeys(t)
	var first atomic.Bool
	first.Store(true)
	release := make(chan struct{})
	r := listen(t, Options{
		Mechanism:        lateMechanism{CurveServer(CurveServerConfig{Public: spub, Secret: ssec}), &first, release},
		HandshakeTimeout: 200 * time.Millisecond,
	})
	d := dial(t, r.Addr().String(), Options{
		Mechanism: CurveClient(CurveClientConfig{Public: cpub, Secret: csec, ServerKey: spub}),
		Identity:  []byte("late"), ReconnectInterval: 5 * time.Millisecond, ReconnectIntervalMax: 20 * time.Millisecond,
	})
	if err := d.Send([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	// Written into the first connection, which the client counts as
	// established (READY arrived) while the server has not returned yet.
	if err := d.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	close(release)
	m := recvR(t, r)
	if string(m.Frames[0]) != "hello" {
		t.Fatalf("got %q, want the message written right after READY", m.Frames)
	}
}
