package zre

import (
	"context"
	"testing"
	"time"
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
			ac.Headers = []Header{{HeaderGoodbye, "0"}} // no GOODBYE for us
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
	h.recvKey(idB, kb, &Msg{ID: MsgPing, Sequence: 2}) // it talks again: a new connection
	h.beaconV3(idB, kb, 0, "127.0.0.1:5670")
	h.wantEvents()
}
