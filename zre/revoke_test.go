package zre

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zmtp"
	"github.com/zyre-go/zyre/zre/zremsg"
)

// TestRevokedPeerInboundClosed: when alice's trust store revokes carol's
// key, alice drops carol and also closes carol's connection into alice's
// inbox; carol's DEALER reconnects and is refused at the handshake.
func TestRevokedPeerInboundClosed(t *testing.T) {
	port := testBeaconPort()
	openStore := func() *trust.Store {
		st, err := trust.Open(t.TempDir(), trust.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	aliceStore := openStore()
	acfg := secureConfig(t, "alice", port)
	acfg.Secure.Trust = &TrustConfig{Store: aliceStore}
	ccfg := secureConfig(t, "carol", port)
	ccfg.Secure.Trust = &TrustConfig{Store: openStore()}
	alice, carol := startNode(t, acfg), startNode(t, ccfg)
	waitEvent(t, alice, eventTimeout, "ENTER carol", isEnter(carol.UUID()))
	waitEvent(t, carol, eventTimeout, "ENTER alice", isEnter(alice.UUID()))
	carolID := Identity(carol.UUID())
	inbound := func() bool {
		for _, id := range alice.router.Peers() {
			if bytes.Equal(id, carolID) {
				return true
			}
		}
		return false
	}
	if !inbound() {
		t.Fatal("carol has no connection into alice's inbox")
	}

	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	if _, err := aliceStore.Revoke(ctx, carol.PublicKey(), "lost phone"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, alice, eventTimeout, "EXIT carol", func(e Event) bool { _, ok := e.(*Exit); return ok && e.PeerUUID() == carol.UUID() })
	// Carol's connection was closed, so her DEALER reconnects: the
	// handshake is refused now.
	waitEvent(t, alice, eventTimeout, "REFUSED carol at the connection stage", isRefused(carol.UUID(), carol.PublicKey(), StageConnection, ErrRevoked))
	if inbound() {
		t.Fatal("carol's connection into alice's inbox is still open after the revocation")
	}
	if st := alice.Stats(); st.PeersRevoked != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestStopFlushesGoodbye: Stop writes out what was queued before the
// GOODBYE (here a backlog far larger than the sockets' buffers, towards a
// peer that is not reading yet) and the GOODBYE itself, so the peer gets
// every whisper and then the GOODBYE.
func TestStopFlushesGoodbye(t *testing.T) {
	// The backlog of 48 MiB towards a peer that does not read is what
	// Config.SendQueueTime refuses (Whisper fails past 256 KiB and a
	// message there): off here, to have it.
	a := startNode(t, Config{Name: "a", Beacon: BeaconConfig{Disabled: true}, Bind: "127.0.0.1", SendQueueTime: -1})
	a.linger = eventTimeout // the bound, not the expected wait
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()

	// A raw peer: its inbox reads only when the test says so.
	inbox, err := zmtp.ListenRouter("tcp", "127.0.0.1:0", zmtp.Options{RecvHWM: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer inbox.Close()
	rawID := uuid.New()
	d, err := zmtp.DialDealer("tcp", strings.TrimPrefix(a.Endpoint(), "tcp://"), zmtp.Options{Identity: Identity(rawID)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	hello, err := (&zremsg.Msg{ID: zremsg.MsgHello, Sequence: 1, Endpoint: "tcp://" + inbox.Addr().String(), Name: "raw",
		Headers: []Header{{Key: HeaderGoodbye, Value: "1"}}}).Frames()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Send(hello...); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, a, eventTimeout, "ENTER raw", isEnter(rawID))

	const n, size = 48, 1 << 20
	for i := range n {
		if err := a.Whisper(rawID, bytes.Repeat([]byte{byte(i)}, size)); err != nil {
			t.Fatal(err)
		}
	}
	stopped := make(chan error, 1)
	go func() { stopped <- a.Stop(ctx) }()
	// Not a wait the test needs: a Stop that returns without flushing
	// (as one with a fixed linger did) returns within this window, and
	// then the check below fails for sure. A flushing Stop waits for the
	// reads below.
	window := time.NewTimer(time.Second)
	select {
	case err := <-stopped:
		stopped <- err
	case <-window.C:
	}
	window.Stop()

	whispers := 0
	for {
		m, err := inbox.Recv(ctx)
		if err != nil {
			t.Fatalf("raw peer: after %d whispers: no GOODBYE: %v", whispers, err)
		}
		zm, err := zremsg.Decode(m.Frames)
		if err != nil {
			t.Fatal(err)
		}
		if zm.ID == zremsg.MsgGoodbye {
			break
		}
		if zm.ID != zremsg.MsgWhisper {
			continue // our HELLO, a PING
		}
		if len(zm.Content) != 1 || len(zm.Content[0]) != size || zm.Content[0][0] != byte(whispers) {
			t.Fatalf("whisper %d: wrong content", whispers)
		}
		whispers++
	}
	if whispers != n {
		t.Fatalf("%d whispers of %d before the GOODBYE", whispers, n)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}
