package zmtp

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zyre-go/zyre/internal/testenv"
)

// xorMechanism is a toy mechanism whose codec works like CURVE's MESSAGE:
// every logical frame (flags inside) travels in a plain data frame with
// neither MORE nor COMMAND on the wire.
type xorMechanism struct{ stats *codecStats }

type codecStats struct{ sealedCmds, openedCmds, opened atomic.Int64 }

func (xorMechanism) Name() string   { return "X-XOR" }
func (xorMechanism) AsServer() bool { return false }
func (m xorMechanism) NewSession() (Session, error) {
	return xorSession{m.stats}, nil
}

type xorSession struct{ stats *codecStats }

func (s xorSession) Handshake(ctx context.Context, c CommandConn, server bool, local Metadata, auth Authorizer) (HandshakeResult, error) {
	return nullSession{}.Handshake(ctx, c, server, local, auth)
}
func (s xorSession) Codec() FrameCodec { return xorCodec(s) }

type xorCodec struct{ stats *codecStats }

func (c xorCodec) Seal(dst []byte, flags byte, body []byte) (byte, []byte, error) {
	if flags&FlagCommand != 0 {
		c.stats.sealedCmds.Add(1)
	}
	dst = append(dst, 'X', flags)
	for _, b := range body {
		dst = append(dst, b^0x5a)
	}
	return 0, dst, nil
}

func (c xorCodec) Open(dst []byte, wireFlags byte, wire []byte) (byte, []byte, error) {
	if wireFlags != 0 || len(wire) < 2 || wire[0] != 'X' {
		return 0, nil, fmt.Errorf("xor: bad wire frame (flags %#x): %w", wireFlags, ErrProtocol)
	}
	flags := wire[1]
	if flags&FlagCommand != 0 {
		c.stats.openedCmds.Add(1)
	}
	c.stats.opened.Add(1)
	for _, b := range wire[2:] {
		dst = append(dst, b^0x5a)
	}
	return flags, dst, nil
}

// TestFrameCodec: with a codec, data frames and PING/PONG all go through it.
func TestFrameCodec(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	rs, ds := &codecStats{}, &codecStats{}
	hb := 10 * time.Millisecond
	r := listen(t, Options{Mechanism: xorMechanism{rs}, HeartbeatInterval: hb})
	d := dial(t, r.Addr().String(), Options{Mechanism: xorMechanism{ds}, Identity: []byte("x"), HeartbeatInterval: hb})
	d.Send([]byte("one"), []byte("two"), make([]byte, 300))
	m := recvR(t, r)
	if len(m.Frames) != 3 || string(m.Frames[0]) != "one" || string(m.Frames[1]) != "two" || len(m.Frames[2]) != 300 || m.Peer.Mechanism != "X-XOR" {
		t.Fatalf("got %q via %s", m.Frames[:2], m.Peer.Mechanism)
	}
	r.Send([]byte("x"), []byte("back"))
	if dm, err := d.Recv(testCtx(t)); err != nil || string(dm.Frames[0]) != "back" {
		t.Fatalf("dealer got %q %v", dm.Frames, err)
	}
	// PINGs and PONGs both ways went through the codecs.
	testenv.WaitFor(t, testDeadline, "condition", func() bool {
		return rs.sealedCmds.Load() >= 2 && rs.openedCmds.Load() >= 2 && ds.sealedCmds.Load() >= 2 && ds.openedCmds.Load() >= 2
	})
	// A NULL dealer cannot talk to it: mechanism mismatch, seen on both sides.
	var logs lockedBuffer
	nd := dial(t, r.Addr().String(), Options{ReconnectInterval: time.Hour, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	testenv.WaitFor(t, testDeadline, "condition", func() bool { return strings.Contains(logs.String(), `mechanism mismatch: peer \"X-XOR\", we \"NULL\"`) })
	if nd.Connected() {
		t.Fatal("a NULL dealer connected to an X-XOR router")
	}
}
