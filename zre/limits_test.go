package zre

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/zyre-go/zyre/zre/zremsg"
)

// Spoofed beacons with random UUIDs make at most Limits.MaxPendingPerAddr
// pending peers per source address and Limits.MaxPending in all; a real
// peer's HELLO frees its place, and the known peers are untouched.
func TestStatePendingCaps(t *testing.T) {
	h := newHarness(t)
	h.enterB()
	lim := h.cfg.Limits
	beacon := func(from string, port uint16) {
		b := Beacon{Version: BeaconV1, UUID: uuid.New(), Port: port}
		h.st.onBeacon(b.AppendMarshal(nil), netip.MustParseAddrPort(from), h.now)
	}
	for i := range 1000 {
		beacon("127.0.0.2:5670", uint16(1000+i))
	}
	if got := len(h.st.peers) - 1; got != lim.MaxPendingPerAddr {
		t.Fatalf("%d pending peers from one address, want %d", got, lim.MaxPendingPerAddr)
	}
	if got := h.stats.snapshot().PendingRefused; got != uint64(1000-lim.MaxPendingPerAddr) {
		t.Fatalf("PendingRefused = %d", got)
	}
	for i := range 100 {
		for j := range 10 {
			beacon(fmt.Sprintf("10.0.%d.%d:5670", i, j+1), uint16(1000+i))
		}
	}
	if got := len(h.st.peers) - 1; got != lim.MaxPending || h.st.pendingTotal != lim.MaxPending {
		t.Fatalf("%d pending peers (counted %d), want %d", got, h.st.pendingTotal, lim.MaxPending)
	}
	open := 0
	for _, ls := range h.links {
		for _, l := range ls {
			if !l.closed {
				open++
			}
		}
	}
	if open != lim.MaxPending+1 {
		t.Fatalf("%d links open, want %d", open, lim.MaxPending+1)
	}
	// The real peer is still served.
	if err := h.st.whisper(uuidB, [][]byte{[]byte("hi")}); err != nil {
		t.Fatal(err)
	}
	// A pending peer that says HELLO leaves the count: room for another.
	var some *peer
	for _, p := range h.st.peers {
		if !p.ready {
			some = p
			break
		}
	}
	h.recv(some.id, &zremsg.Msg{ID: zremsg.MsgHello, Sequence: 1, Endpoint: some.endpoint, Name: "late"})
	if h.st.pendingTotal != lim.MaxPending-1 {
		t.Fatalf("pending %d after a HELLO", h.st.pendingTotal)
	}
	beacon("10.9.9.9:5670", 999)
	if h.st.pendingTotal != lim.MaxPending {
		t.Fatalf("pending %d, want the freed place taken", h.st.pendingTotal)
	}
	// Every pending peer goes after Config.Expired without a HELLO.
	for range int(h.cfg.Expired/time.Second) + 1 {
		h.advance(time.Second)
		h.beacon(uuidB, 50002, "127.0.0.1:5670")
		h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgPing, Sequence: h.st.peers[uuidB].wantSeq + 1})
		h.recv(some.id, &zremsg.Msg{ID: zremsg.MsgPing, Sequence: h.st.peers[some.id].wantSeq + 1})
		h.st.reap(h.now)
	}
	if len(h.st.peers) != 2 || h.st.pendingTotal != 0 || len(h.st.pendingBySrc) != 0 {
		t.Fatalf("%d peers, %d pending (%v) after expiry", len(h.st.peers), h.st.pendingTotal, h.st.pendingBySrc)
	}
}

// A link that never connected is given up (giveUpLink): the pending peer is
// forgotten and its endpoint not dialled again for dialRetryAfter.
func TestStateDialGivenUp(t *testing.T) {
	h := newHarness(t)
	spoof := uuid.New()
	h.beacon(spoof, 9, "127.0.0.2:5670")
	ep := "tcp://127.0.0.2:9"
	h.link(ep).gaveUp = true
	h.advance(time.Second)
	h.st.reap(h.now)
	if len(h.st.peers) != 0 || h.st.pendingTotal != 0 || !h.link(ep).closed {
		t.Fatalf("given-up peer kept: %d peers", len(h.st.peers))
	}
	if got := h.stats.snapshot().DialsGivenUp; got != 1 {
		t.Fatalf("DialsGivenUp = %d", got)
	}
	for range int(dialRetryAfter/time.Second) - 1 {
		h.advance(time.Second)
		h.beacon(spoof, 9, "127.0.0.2:5670")
		h.beacon(uuid.New(), 9, "127.0.0.2:5670")
		h.st.reap(h.now)
	}
	if len(h.links[ep]) != 1 {
		t.Fatalf("%d dials to a given-up endpoint within %v", len(h.links[ep]), dialRetryAfter)
	}
	h.advance(time.Second)
	h.beacon(spoof, 9, "127.0.0.2:5670")
	if len(h.links[ep]) != 2 {
		t.Fatalf("%d dials after %v, want it tried again", len(h.links[ep]), dialRetryAfter)
	}
	// A ready peer whose new link gives up keeps its place, unconnected,
	// and is dialled again on a beacon after dialRetryAfter.
	h.enterB()
	h.link(epB).gaveUp = true
	h.st.reap(h.now)
	if p := h.st.peers[uuidB]; p == nil || !p.ready || p.link != nil {
		t.Fatal("ready peer dropped or still linked")
	}
	h.advance(dialRetryAfter)
	h.beacon(uuidB, 50002, "127.0.0.1:5670")
	if len(h.links[epB]) != 2 {
		t.Fatalf("%d links to B", len(h.links[epB]))
	}
}

// Strangers beaconing from as many addresses as MaxPending, with fresh
// UUIDs, keep the total cap full; a new honest peer still gets its place
// (a random pending peer makes room) and enters on its HELLO, while the
// caps and the count of pending peers hold throughout. First come, first
// served, its beacon was refused for as long as the flood went on.
func TestStatePendingCapFairToNewPeers(t *testing.T) {
	h := newHarness(t)
	h.enterB()
	lim := h.cfg.Limits
	n := 0
	spoof := func(k int) {
		for range k {
			n++
			b := Beacon{Version: BeaconV1, UUID: uuid.New(), Port: uint16(1000 + n%5000)}
			from := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(n >> 8), byte(n)}), 5670)
			h.st.onBeacon(b.AppendMarshal(nil), from, h.now)
		}
	}
	check := func() {
		t.Helper()
		if h.st.pendingTotal > lim.MaxPending || len(h.st.pendingList) != h.st.pendingTotal {
			t.Fatalf("pending %d, listed %d, cap %d", h.st.pendingTotal, len(h.st.pendingList), lim.MaxPending)
		}
		for i, p := range h.st.pendingList {
			if p.pendingIdx != i || !p.pendingSrc.IsValid() || h.st.peers[p.id] != p {
				t.Fatalf("pending list entry %d inconsistent", i)
			}
		}
	}
	spoof(lim.MaxPending)
	check()
	honest := uuid.New()
	const honestFrom, honestEp = "10.9.9.9:5670", "tcp://10.9.9.9:40000"
	for second := range 30 {
		spoof(lim.MaxPending) // a new full cap's worth every second
		h.beacon(honest, 40000, honestFrom)
		check()
		spoof(lim.MaxPending / 8) // while its handshake and HELLO are under way
		check()
		if p := h.st.peers[honest]; p != nil && p.link != nil {
			h.recv(honest, &zremsg.Msg{ID: zremsg.MsgHello, Sequence: 1, Endpoint: honestEp, Name: "honest"})
			if p := h.st.peers[honest]; p == nil || !p.ready {
				t.Fatal("honest peer not ready after its HELLO")
			}
			t.Logf("honest peer entered after %d s of flood (%d spoofed beacons)", second+1, n)
			if p := h.st.peers[uuidB]; p == nil || !p.ready {
				t.Fatal("known peer lost")
			}
			return
		}
		h.advance(time.Second)
	}
	t.Fatalf("honest peer never dialled in 30 s of spoofed beacons from %d addresses", n)
}
