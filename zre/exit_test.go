package zre

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/zyre-go/zyre/zre/zremsg"
	"golang.org/x/sys/unix"
)

// TestExitFast: a peer that stops without a GOODBYE to us (as a C node
// does outside gossip mode: we tell it we do not want one) is seen to exit
// as soon as its port-0 beacon and the close of its connection are both
// in, not after Config.Evasive — in secure mode and in plain mode (where a
// port-0 beacon alone only gets a live peer probed, since anyone can send
// one).
func TestExitFast(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "secure"}[secure], func(t *testing.T) {
			port := testBeaconPort()
			ac := Config{Name: "alpha", Beacon: BeaconConfig{Port: port}}
			bc := Config{Name: "beta", Beacon: BeaconConfig{Port: port}}
			if secure {
				ac, bc = secureConfig(t, "alpha", port), secureConfig(t, "beta", port)
			}
			ac.Headers = []Header{{Key: HeaderGoodbye, Value: "0"}} // no GOODBYE for us
			a := startNode(t, ac)
			b := startNode(t, bc)
			waitEvent(t, a, eventTimeout, "ENTER beta", isEnter(b.UUID()))
			waitEvent(t, b, eventTimeout, "ENTER alpha", isEnter(a.UUID()))
			ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
			defer cancel()
			stopped := time.Now()
			if err := b.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			waitEvent(t, a, eventTimeout, "EXIT beta", func(e Event) bool { x, ok := e.(*Exit); return ok && x.Peer == b.UUID() })
			d := time.Since(stopped)
			t.Logf("EXIT %v after Stop", d)
			if d >= DefaultEvasive {
				t.Fatalf("EXIT after %v: by the PING's timeout, not by the beacon and the closed connection", d)
			}
		})
	}
}

// TestStateSecureExitNeedsBoth: a port-0 beacon alone (anyone can forge
// it) or a closed connection alone (a reconnect) removes nobody; both
// within Evasive do, in either order.
func TestStateSecureExitNeedsBoth(t *testing.T) {
	for _, beaconFirst := range []bool{true, false} {
		h := newSecureHarness(t)
		kb, _ := genKeys(t)
		idB := UUIDFromKey(kb)
		h.beaconV3(idB, kb, 50002, "127.0.0.1:5670")
		h.recvKey(idB, kb, helloWithKey(epB, kb))
		h.wantEvents("ENTER peer")
		closed := inboxClosed{identity: Identity(idB), publicKey: kb.Bytes()}
		if beaconFirst {
			h.beaconV3(idB, kb, 0, "127.0.0.1:5670")
			h.wantEvents()
			// A close authenticated with another key is not B's.
			kf, _ := genKeys(t)
			h.st.onInboxClosed(inboxClosed{identity: Identity(idB), publicKey: kf.Bytes()}, h.now)
			h.wantEvents()
			h.advance(100 * time.Millisecond)
			h.st.onInboxClosed(closed, h.now)
		} else {
			h.st.onInboxClosed(closed, h.now)
			h.wantEvents()
			h.advance(100 * time.Millisecond)
			h.beaconV3(idB, kb, 0, "127.0.0.1:5670")
		}
		h.wantEvents("EXIT peer")
	}
	// A close long before the beacon (a reconnect, then a forged beacon):
	// nothing but the PING.
	h := newSecureHarness(t)
	kb, _ := genKeys(t)
	idB := UUIDFromKey(kb)
	h.beaconV3(idB, kb, 50002, "127.0.0.1:5670")
	h.recvKey(idB, kb, helloWithKey(epB, kb))
	h.wantEvents("ENTER peer")
	h.st.onInboxClosed(inboxClosed{identity: Identity(idB), publicKey: kb.Bytes()}, h.now)
	h.advance(time.Second)
	h.recvKey(idB, kb, &zremsg.Msg{ID: zremsg.MsgPing, Sequence: 2}) // it talks again: a new connection
	h.beaconV3(idB, kb, 0, "127.0.0.1:5670")
	h.wantEvents()
}

// sendBeacon broadcasts one beacon on lo to 127.255.255.255:port, as a
// stranger on the network can.
func sendBeacon(t *testing.T, port int, b Beacon) {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1) })
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	dst := &net.UDPAddr{IP: net.IPv4(127, 255, 255, 255), Port: port}
	if _, err := pc.WriteTo(b.AppendMarshal(nil), dst); err != nil {
		t.Fatal(err)
	}
}

// TestSecureExitForgedAfterReconnect: a secure peer's connection into our
// inbox closes and it connects again at once (a network blip), with
// nothing to say; a stranger then forges its port-0 beacon. The peer did
// not stop, and stays. (Its connection had closed within Evasive, and the
// forged beacon removed it at once.) Then the peer dies, and the forged
// beacon does remove it at once.
func TestSecureExitForgedAfterReconnect(t *testing.T) {
	port := testBeaconPort()
	ac := secureConfig(t, "alpha", port)
	ac.Headers = []Header{{Key: HeaderGoodbye, Value: "0"}}
	a := startNode(t, ac)
	b := startNode(t, secureConfig(t, "beta", port))
	waitEvent(t, a, eventTimeout, "ENTER beta", isEnter(b.UUID()))
	waitEvent(t, b, eventTimeout, "ENTER alpha", isEnter(a.UUID()))
	idB := Identity(b.UUID())
	waitFor(t, "beta's connection into alpha's inbox", func() bool { return a.inboxHas(idB) })
	if !a.disconnectInbound(idB) {
		t.Fatal("no connection from beta to close")
	}
	waitFor(t, "beta connecting again", func() bool { return a.inboxHas(idB) })
	forged := Beacon{Version: BeaconV3, UUID: b.UUID(), Port: 0, PublicKey: b.PublicKey()}
	sendBeacon(t, port, forged)
	deadline := time.NewTimer(2 * time.Second)
	defer deadline.Stop()
wait:
	for {
		select {
		case e := <-a.Events():
			if x, ok := e.(*Exit); ok && x.Peer == b.UUID() {
				t.Fatal("a forged port-0 beacon after a reconnect removed a live peer")
			}
		case <-deadline.C:
			break wait
		}
	}
	if a.PeerAddress(b.UUID()) == "" {
		t.Fatal("beta is gone")
	}

	b.Close() // dies: no port-0 beacon, its connections close
	waitFor(t, "beta's connection closed", func() bool { return !a.inboxHas(idB) })
	died := time.Now()
	sendBeacon(t, port, forged)
	waitEvent(t, a, eventTimeout, "EXIT beta", func(e Event) bool { x, ok := e.(*Exit); return ok && x.Peer == b.UUID() })
	if d := time.Since(died); d >= DefaultEvasive {
		t.Fatalf("EXIT after %v: not by the beacon and the closed connection", d)
	}
}
