package zre

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/internal/golden"
	"github.com/zyre-go/zyre/zre/zremsg"
)

// fakeLink records what the state sends to one peer.
type fakeLink struct {
	endpoint string
	sent     []*zremsg.Msg
	closed   bool
	full     bool // refuse sends, as a full DEALER queue does
	gaveUp   bool // never connected: given up (giveUpLink)
	down     bool // not connected (a DEALER reconnecting)
}

func (l *fakeLink) GaveUp() bool { return l.gaveUp }

func (l *fakeLink) Connected() bool { return !l.down }

func (l *fakeLink) Send(frames ...[]byte) error {
	if l.closed {
		return errors.New("fake link closed")
	}
	if l.full {
		return errFakeFull
	}
	m, err := zremsg.Decode(frames)
	if err != nil {
		return fmt.Errorf("fake link: we sent a bad message: %w", err)
	}
	l.sent = append(l.sent, m)
	return nil
}

func (l *fakeLink) Close() error { l.closed = true; return nil }

var errFakeFull = errors.New("fake link full")

// harness drives a state synchronously with a fake clock and fake links.
type harness struct {
	t     *testing.T
	st    *state
	cfg   Config
	stats counters
	links map[string][]*fakeLink // by endpoint, every link dialled
	now   time.Time
}

var (
	uuidA = uuid.MustParse("7d1c5a0e-9b4f-4e2a-8c3d-6b5a4f3e2d1c")
	uuidB = uuid.MustParse("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
	uuidS = uuid.MustParse("11111111-2222-3333-4444-555555555555") // ourselves
)

const epSelf = "tcp://127.0.0.1:40000"

const epA = "tcp://127.0.0.1:50001"

func newHarness(t *testing.T) *harness {
	t.Helper()
	cfg, err := Config{UUID: uuidS, Name: "self", Headers: []Header{{Key: "X-K", Value: "v"}}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, cfg: cfg, links: make(map[string][]*fakeLink), now: time.Unix(1000, 0)}
	h.st = newState(&h.cfg, epSelf, func(ep string) (link, error) {
		l := &fakeLink{endpoint: ep}
		h.links[ep] = append(h.links[ep], l)
		return l, nil
	}, &h.stats)
	return h
}

func (h *harness) link(ep string) *fakeLink {
	h.t.Helper()
	ls := h.links[ep]
	if len(ls) == 0 {
		h.t.Fatalf("no link to %s", ep)
	}
	return ls[len(ls)-1]
}

func (h *harness) advance(d time.Duration) { h.now = h.now.Add(d) }

func (h *harness) beacon(id uuid.UUID, port uint16, from string) {
	b := Beacon{Version: BeaconV1, UUID: id, Port: port}
	h.st.onBeacon(b.AppendMarshal(nil), netip.MustParseAddrPort(from), h.now)
}

func (h *harness) recv(id uuid.UUID, m *zremsg.Msg) {
	h.t.Helper()
	frames, err := m.Frames()
	if err != nil {
		h.t.Fatal(err)
	}
	h.st.onMessage(inboxMsg{identity: Identity(id), frames: frames, remote: "test"}, h.now)
}

// events returns and clears the queued events, as "TYPE name [group]".
func (h *harness) events() []string {
	var out []string
	for _, e := range h.st.events {
		s := e.Type().String() + " " + e.PeerName()
		switch e := e.(type) {
		case *Join:
			s += " " + e.Group
		case *Leave:
			s += " " + e.Group
		case *Shout:
			s += " " + e.Group + " " + string(bytes.Join(e.Content, []byte("|")))
		case *Whisper:
			s += " " + string(bytes.Join(e.Content, []byte("|")))
		}
		out = append(out, s)
	}
	h.st.events = nil
	return out
}

func (h *harness) wantEvents(want ...string) {
	h.t.Helper()
	got := h.events()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		h.t.Fatalf("events:\n got %q\nwant %q", got, want)
	}
}

const epB = "tcp://127.0.0.1:50002"

func helloB(seq uint16, status uint8, groups ...string) *zremsg.Msg {
	return &zremsg.Msg{ID: zremsg.MsgHello, Sequence: seq, Endpoint: epB, Groups: groups, Status: status, Name: "node-b",
		Headers: []Header{{Key: "X-ROLE", Value: "tester"}}}
}

// enterB makes peer B known and ready, with sequence 1 consumed.
func (h *harness) enterB(groups ...string) {
	h.t.Helper()
	h.recv(uuidB, helloB(1, uint8(len(groups)), groups...))
	ev := []string{"ENTER node-b"}
	for _, g := range groups {
		ev = append(ev, "JOIN node-b "+g)
	}
	h.wantEvents(ev...)
}

func TestStateHelloEnter(t *testing.T) {
	h := newHarness(t)
	if err := h.st.join("chat"); err != nil {
		t.Fatal(err)
	}
	h.recv(uuidB, helloB(1, 2, "GLOBAL", "chat"))
	h.wantEvents("ENTER node-b", "JOIN node-b GLOBAL", "JOIN node-b chat")
	// We connected back and said HELLO with sequence 1, our groups and status.
	l := h.link(epB)
	if len(l.sent) != 1 {
		t.Fatalf("sent %d messages, want our HELLO", len(l.sent))
	}
	m := l.sent[0]
	if m.ID != zremsg.MsgHello || m.Sequence != 1 || m.Endpoint != epSelf || m.Status != 1 || m.Name != "self" ||
		len(m.Groups) != 1 || m.Groups[0] != "chat" || len(m.Headers) != 2 || m.Headers[0] != (Header{Key: "X-K", Value: "v"}) ||
		m.Headers[1] != (Header{Key: HeaderGoodbye, Value: "1"}) {
		t.Fatalf("our HELLO = %+v", m)
	}
	p := h.st.peers[uuidB]
	if p.status != 2 || !p.ready || p.name != "node-b" {
		t.Fatalf("peer = %+v", p)
	}
	if got := h.stats.snapshot().PeersEntered; got != 1 {
		t.Fatalf("PeersEntered = %d", got)
	}
	// A whisper reaches the consumer; a shout too.
	h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgWhisper, Sequence: 2, Content: [][]byte{[]byte("hi"), []byte("there")}})
	h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgShout, Sequence: 3, Group: "chat", Content: [][]byte{[]byte("all")}})
	h.wantEvents("WHISPER node-b hi|there", "SHOUT node-b chat all")
}

func TestStateGoldenHello(t *testing.T) {
	// The C reference's HELLO (testdata/zre/hello.hex) enters a peer.
	h := newHarness(t)
	frames := golden.HexLines(t, "hello.hex")
	h.st.onMessage(inboxMsg{identity: Identity(uuidA), frames: frames}, h.now)
	h.wantEvents("ENTER node-a", "JOIN node-a GLOBAL", "JOIN node-a chat")
	p := h.st.peers[uuidA]
	if p.endpoint != "tcp://10.77.0.1:49152" || p.status != 2 {
		t.Fatalf("peer = %+v", p)
	}
	// join.hex has sequence 4: 2 and 3 are missing, so that is a gap.
	h.st.onMessage(inboxMsg{identity: Identity(uuidA), frames: golden.HexLines(t, "join.hex")}, h.now)
	h.wantEvents("EXIT node-a")
}

func TestStateJoinLeaveStatus(t *testing.T) {
	h := newHarness(t)
	h.enterB("GLOBAL") // status 1
	h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgJoin, Sequence: 2, Group: "ops", Status: 2})
	h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgLeave, Sequence: 3, Group: "GLOBAL", Status: 3})
	h.wantEvents("JOIN node-b ops", "LEAVE node-b GLOBAL")
	if got := h.st.peers[uuidB].status; got != 3 {
		t.Fatalf("peer status = %d, want 3", got)
	}
	if g := h.st.groups["GLOBAL"]; len(g.peers) != 0 {
		t.Fatalf("GLOBAL still has %d peers", len(g.peers))
	}

	// Our own counter: +1 on every JOIN and LEAVE we send, none for a repeat.
	l := h.link(epB)
	l.sent = nil
	for _, step := range []struct {
		join  bool
		group string
	}{{true, "a"}, {true, "a"}, {true, "b"}, {false, "a"}, {false, "zzz"}, {false, "b"}} {
		var err error
		if step.join {
			err = h.st.join(step.group)
		} else {
			err = h.st.leave(step.group)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, m := range l.sent {
		got = append(got, fmt.Sprintf("%s %s %d seq %d", m.ID, m.Group, m.Status, m.Sequence))
	}
	want := []string{"JOIN a 1 seq 2", "JOIN b 2 seq 3", "LEAVE a 3 seq 4", "LEAVE b 4 seq 5"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("sent %q, want %q", got, want)
	}
	if h.st.status != 4 {
		t.Fatalf("status = %d", h.st.status)
	}
}

func TestStateWrongJoinStatusResetsPeer(t *testing.T) {
	for _, status := range []uint8{0, 1, 3, 255} { // want 2
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			h := newHarness(t)
			h.enterB("GLOBAL")
			h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgJoin, Sequence: 2, Group: "ops", Status: status})
			h.wantEvents("EXIT node-b")
			if _, ok := h.st.peers[uuidB]; ok {
				t.Fatal("peer still known")
			}
			if got := h.stats.snapshot().ProtocolErrors; got != 1 {
				t.Fatalf("ProtocolErrors = %d", got)
			}
			if !h.link(epB).closed {
				t.Fatal("link not closed")
			}
			// Further messages from it are dropped until it says HELLO again.
			h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgWhisper, Sequence: 3})
			h.wantEvents()
			h.recv(uuidB, helloB(1, 0))
			h.wantEvents("ENTER node-b")
		})
	}
}

func TestStateSequenceGap(t *testing.T) {
	h := newHarness(t)
	h.enterB()
	h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgWhisper, Sequence: 2, Content: [][]byte{[]byte("ok")}})
	h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgWhisper, Sequence: 5, Content: [][]byte{[]byte("lost")}})
	h.wantEvents("WHISPER node-b ok", "EXIT node-b")
	if got := h.stats.snapshot().SequenceGaps; got != 1 {
		t.Fatalf("SequenceGaps = %d", got)
	}
	// A HELLO must be sequence 1.
	h.recv(uuidB, helloB(2, 0))
	h.wantEvents()
	if got := h.stats.snapshot().SequenceGaps; got != 2 {
		t.Fatalf("SequenceGaps = %d", got)
	}
}

func TestStateSequenceWrap(t *testing.T) {
	h := newHarness(t)
	h.enterB()
	h.st.peers[uuidB].wantSeq = 65534
	for _, seq := range []uint16{65535, 0, 1} {
		h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgPing, Sequence: seq})
	}
	h.wantEvents()
	if got := h.stats.snapshot().SequenceGaps; got != 0 {
		t.Fatalf("SequenceGaps = %d", got)
	}
	// Each PING got a PING-OK; our own counter wraps the same way.
	l := h.link(epB)
	p := h.st.peers[uuidB]
	p.sentSeq = 65534
	l.sent = nil
	h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgPing, Sequence: 2})
	h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgPing, Sequence: 3})
	if len(l.sent) != 2 || l.sent[0].Sequence != 65535 || l.sent[1].Sequence != 0 || l.sent[1].ID != zremsg.MsgPingOK {
		t.Fatalf("sent %+v", l.sent)
	}
	// The golden wrap vectors: 65535 then 0.
	p.wantSeq = 65534
	for _, f := range []string{"ping_seq65535.hex", "ping_seq0.hex"} {
		h.st.onMessage(inboxMsg{identity: Identity(uuidB), frames: golden.HexLines(t, f)}, h.now)
	}
	h.wantEvents()
	if _, ok := h.st.peers[uuidB]; !ok {
		t.Fatal("peer dropped on wrap")
	}
}

func TestStatePresenceTimers(t *testing.T) {
	h := newHarness(t)
	h.beacon(uuidB, 50002, "127.0.0.1:5670")
	h.recv(uuidB, helloB(1, 0))
	h.wantEvents("ENTER node-b")
	l := h.link(epB)
	l.sent = nil

	// Beacons keep coming but no message: SILENT once, after Silent.
	for range 6 {
		h.advance(time.Second)
		h.beacon(uuidB, 50002, "127.0.0.1:5670")
		h.st.reap(h.now)
	}
	h.wantEvents("SILENT node-b")
	if len(l.sent) != 0 {
		t.Fatalf("sent %d messages to a silent peer", len(l.sent))
	}

	// Then nothing at all: EVASIVE with one PING at Evasive, EXIT at Expired.
	for range 5 {
		h.advance(time.Second)
		h.st.reap(h.now)
	}
	h.wantEvents("EVASIVE node-b")
	if len(l.sent) != 1 || l.sent[0].ID != zremsg.MsgPing {
		t.Fatalf("sent %+v, want one PING", l.sent)
	}
	// A PING-OK refreshes the timers.
	h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgPingOK, Sequence: 2})
	h.advance(4 * time.Second)
	h.st.reap(h.now)
	h.wantEvents()
	h.advance(time.Second)
	h.st.reap(h.now)
	h.wantEvents("EVASIVE node-b")
	h.advance(h.cfg.Expired)
	h.st.reap(h.now)
	h.wantEvents("EXIT node-b")
	if got := h.stats.snapshot().PeersExited; got != 1 {
		t.Fatalf("PeersExited = %d", got)
	}
}

func TestStateBeacons(t *testing.T) {
	h := newHarness(t)
	// Our own beacon: ignored, counted.
	h.beacon(uuidS, 40000, "127.0.0.1:5670")
	// Garbage: counted.
	for _, p := range [][]byte{nil, []byte("ZRE"), []byte("ZRE\x02xxxxxxxxxxxxxxxxxx"), bytes.Repeat([]byte{1}, 22),
		append([]byte("ZRE\x03"), make([]byte, 50)...)} {
		h.st.onBeacon(p, netip.MustParseAddrPort("127.0.0.1:5670"), h.now)
	}
	st := h.stats.snapshot()
	if st.BeaconsOwn != 1 || st.BeaconsInvalid != 5 || st.BeaconsReceived != 6 || len(h.links) != 0 {
		t.Fatalf("stats %+v, links %v", st, h.links)
	}
	// A beacon from an unknown peer connects to it and says HELLO.
	h.beacon(uuidB, 50002, "127.0.0.1:5670")
	l := h.link(epB)
	if len(l.sent) != 1 || l.sent[0].ID != zremsg.MsgHello || l.sent[0].Sequence != 1 {
		t.Fatalf("sent %+v", l.sent)
	}
	// Messages before its HELLO are dropped.
	h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgWhisper, Sequence: 1})
	h.wantEvents()
	if got := h.stats.snapshot().MessagesDropped; got != 1 {
		t.Fatalf("MessagesDropped = %d", got)
	}
	h.recv(uuidB, helloB(1, 0))
	h.wantEvents("ENTER node-b")
	// A second beacon does not reconnect.
	h.beacon(uuidB, 50002, "127.0.0.1:5670")
	if len(h.links[epB]) != 1 {
		t.Fatalf("%d links", len(h.links[epB]))
	}
	// Port 0: anyone can send that beacon, so a peer alive on its
	// connection is probed (a PING) and leaves when nothing is heard from
	// it for Config.Evasive.
	h.beacon(uuidB, 0, "127.0.0.1:5670")
	h.wantEvents()
	if got := l.sent[len(l.sent)-1]; got.ID != zremsg.MsgPing {
		t.Fatalf("sent %+v, want a PING", got)
	}
	h.advance(h.cfg.Evasive)
	h.st.reap(h.now)
	h.wantEvents("EXIT node-b")
	if !l.closed || len(h.st.peers) != 0 {
		t.Fatal("peer not removed")
	}
	// A peer whose link is down goes at once.
	h.beacon(uuidB, 50002, "127.0.0.1:5670")
	h.recv(uuidB, helloB(1, 0))
	h.wantEvents("ENTER node-b")
	h.st.peers[uuidB].link.(*fakeLink).down = true
	h.beacon(uuidB, 0, "127.0.0.1:5670")
	h.wantEvents("EXIT node-b")
	// Port 0 from an unknown peer: nothing.
	h.beacon(uuidA, 0, "127.0.0.1:5670")
	h.wantEvents()
}

func TestStateGoodbye(t *testing.T) {
	h := newHarness(t)
	h.enterB()
	h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgGoodbye, Sequence: 2})
	h.wantEvents("EXIT node-b")
}

func TestStateDrops(t *testing.T) {
	h := newHarness(t)
	hello, _ := helloB(1, 0).Frames()
	cases := []struct {
		name string
		in   inboxMsg
	}{
		{"identity 16 octets", inboxMsg{identity: uuidB[:], frames: hello}},
		{"identity 18 octets", inboxMsg{identity: append(Identity(uuidB), 0), frames: hello}},
		{"no identity", inboxMsg{frames: hello}},
		{"our own UUID", inboxMsg{identity: Identity(uuidS), frames: hello}},
		{"garbage", inboxMsg{identity: Identity(uuidB), frames: [][]byte{[]byte("garbage")}}},
		{"no frames", inboxMsg{identity: Identity(uuidB)}},
		{"version 3", inboxMsg{identity: Identity(uuidB), frames: [][]byte{withVersion(hello[0], 3)}}},
		{"version 1", inboxMsg{identity: Identity(uuidB), frames: [][]byte{withVersion(hello[0], 1)}}},
		{"whisper before hello", inboxMsg{identity: Identity(uuidB), frames: mustFrames(&zremsg.Msg{ID: zremsg.MsgWhisper, Sequence: 1})}},
		{"bad endpoint", inboxMsg{identity: Identity(uuidB), frames: mustFrames(&zremsg.Msg{ID: zremsg.MsgHello, Sequence: 1, Endpoint: "udp://x:1"})}},
	}
	for i, c := range cases {
		h.st.onMessage(c.in, h.now)
		h.wantEvents()
		st := h.stats.snapshot()
		if st.MessagesDropped+st.ProtocolErrors != uint64(i+1) {
			t.Fatalf("%s: not counted: %+v", c.name, st)
		}
		if len(h.st.peers) != 0 || len(h.links) != 0 {
			t.Fatalf("%s: created a peer", c.name)
		}
	}
	// ELECT and LEADER are decoded and ignored.
	h.enterB()
	h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgElect, Sequence: 2, Group: "g", ChallengerID: "x"})
	h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgLeader, Sequence: 3, Group: "g", LeaderID: "x"})
	h.wantEvents()
	if h.st.peers[uuidB] == nil {
		t.Fatal("peer dropped")
	}
}

func withVersion(f []byte, v byte) []byte {
	g := bytes.Clone(f)
	g[3] = v
	return g
}

func mustFrames(m *zremsg.Msg) [][]byte {
	f, err := m.Frames()
	if err != nil {
		panic(err)
	}
	return f
}

// A second HELLO (the peer restarted with the same UUID) over a new
// connection: one re-entry, and our HELLO again (sequence 1, on our link
// as it is). A HELLO that answers ours comes over the connection of the
// peer's previous one and is not answered (within helloHoldoff), so that
// two nodes never feed each other HELLOs. A second HELLO with another
// endpoint gets a new link.
func TestStateSecondHelloReenters(t *testing.T) {
	h := newHarness(t)
	h.enterB("g")
	recvFrom := func(m *zremsg.Msg, remote string) {
		h.st.onMessage(inboxMsg{identity: Identity(uuidB), frames: mustFrames(m), remote: remote}, h.now)
	}
	first := h.link(epB)
	sent := len(first.sent)
	h.advance(helloMinGap)
	recvFrom(helloB(1, 0), "127.0.0.1:1001") // the restarted peer's new connection
	h.wantEvents("EXIT node-b", "ENTER node-b")
	if len(h.links[epB]) != 1 || first.closed {
		t.Fatal("want the link kept")
	}
	if got := first.sent[sent:]; len(got) != 1 || got[0].ID != zremsg.MsgHello || got[0].Sequence != 1 {
		t.Fatalf("sent %+v, want our HELLO", got)
	}
	// B takes our HELLO for a second one and answers over the same
	// connection: re-entry, no answer.
	h.advance(time.Second)
	recvFrom(helloB(1, 0, "g"), "127.0.0.1:1001")
	h.wantEvents("EXIT node-b", "ENTER node-b", "JOIN node-b g")
	if len(h.links[epB]) != 1 || len(first.sent) != sent+1 {
		t.Fatalf("answered a HELLO that answered ours: %d links, sent %+v", len(h.links[epB]), first.sent[sent:])
	}
	// The sequence goes on from our HELLO.
	if err := h.st.whisper(uuidB, [][]byte{[]byte("x")}); err != nil {
		t.Fatal(err)
	}
	if got := first.sent[sent+1]; got.Sequence != 2 {
		t.Fatalf("sent %+v", got)
	}
	recvFrom(&zremsg.Msg{ID: zremsg.MsgWhisper, Sequence: 2, Content: [][]byte{[]byte("y")}}, "127.0.0.1:1001")
	h.wantEvents("WHISPER node-b y")
	// Over the same connection but after helloHoldoff: answered.
	h.advance(helloHoldoff)
	recvFrom(helloB(1, 0), "127.0.0.1:1001")
	h.wantEvents("EXIT node-b", "ENTER node-b")
	if got := first.sent[len(first.sent)-1]; got.ID != zremsg.MsgHello || got.Sequence != 1 {
		t.Fatalf("sent %+v, want our HELLO", got)
	}
	// B restarted elsewhere: a new link to its new endpoint.
	moved := helloB(1, 0)
	moved.Endpoint = "tcp://127.0.0.1:50003"
	recvFrom(moved, "127.0.0.1:1002")
	h.wantEvents("EXIT node-b", "ENTER node-b")
	if !first.closed || len(h.links["tcp://127.0.0.1:50003"]) != 1 {
		t.Fatal("want the old link closed and one to the new endpoint")
	}
	// Another over yet another connection at once (a peer that makes a
	// new link for each answer, as the C reference does): re-entry, but
	// no answer within helloMinGap of ours.
	moved2 := h.link("tcp://127.0.0.1:50003")
	recvFrom(moved, "127.0.0.1:1003")
	h.wantEvents("EXIT node-b", "ENTER node-b")
	if len(moved2.sent) != 1 || moved2.closed {
		t.Fatalf("answered again within %v: sent %+v", helloMinGap, moved2.sent)
	}
	h.advance(helloMinGap)
	recvFrom(moved, "127.0.0.1:1004")
	h.wantEvents("EXIT node-b", "ENTER node-b")
	if len(moved2.sent) != 2 || moved2.sent[1].ID != zremsg.MsgHello || moved2.sent[1].Sequence != 1 {
		t.Fatalf("not answered after %v: sent %+v", helloMinGap, moved2.sent)
	}
}

// Two states connected through fake links, one of which gets a second
// HELLO: they settle after one exchange however long they run.
func TestStateTwoNodesSettleAfterSecondHello(t *testing.T) {
	a, b := newHarness(t), newHarness(t)
	b.cfg.UUID, b.st.self, b.cfg.Name = uuidB, uuidB, "node-b"
	b.st.endpoint = epB
	a.cfg.UUID, a.st.self, a.cfg.Name = uuidA, uuidA, "node-a"
	a.st.endpoint = epA
	// deliver moves what each sent on its links (from index done[...]) to
	// the other; it returns how many HELLOs went across.
	done := map[*fakeLink]int{}
	deliver := func() (hellos int) {
		for _, pair := range []struct {
			from, to *harness
			ep       string
		}{{a, b, epB}, {b, a, epA}} {
			for _, l := range pair.from.links[pair.ep] {
				for _, m := range l.sent[done[l]:] {
					if m.ID == zremsg.MsgHello {
						hellos++
					}
					frames, err := m.Frames()
					if err != nil {
						t.Fatal(err)
					}
					pair.to.st.onMessage(inboxMsg{identity: Identity(pair.from.st.self), frames: frames}, pair.to.now)
				}
				done[l] = len(l.sent)
			}
		}
		return hellos
	}
	a.beacon(uuidB, 50002, "127.0.0.1:5670")
	b.beacon(uuidA, 50001, "127.0.0.1:5670")
	if n := deliver(); n != 2 {
		t.Fatalf("%d HELLOs at the start", n)
	}
	a.wantEvents("ENTER node-b")
	b.wantEvents("ENTER node-a")
	// A says HELLO again (it restarted, or gave up waiting): B answers
	// once, and nothing more goes across.
	a.advance(helloHoldoff)
	b.advance(helloHoldoff)
	a.st.peers[uuidB].link.Close()
	a.st.peers[uuidB].link = nil
	a.beacon(uuidB, 50002, "127.0.0.1:5670")
	total := 0
	for range 10 {
		a.advance(time.Second)
		b.advance(time.Second)
		total += deliver()
	}
	if total != 2 {
		t.Fatalf("%d HELLOs went across, want 2 (A's and B's answer)", total)
	}
	a.wantEvents("EXIT node-b", "ENTER node-b")
	b.wantEvents("EXIT node-a", "ENTER node-a")
}

func TestStateWhisperShout(t *testing.T) {
	h := newHarness(t)
	if err := h.st.whisper(uuidB, nil); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("whisper to unknown: %v", err)
	}
	h.enterB("g")
	l := h.link(epB)
	l.sent = nil
	if err := h.st.whisper(uuidB, [][]byte{[]byte("x")}); err != nil {
		t.Fatal(err)
	}
	if err := h.st.shout("g", nil, [][]byte{[]byte("y")}); err != nil {
		t.Fatal(err)
	}
	if err := h.st.shout("other", nil, [][]byte{[]byte("z")}); err != nil {
		t.Fatal(err)
	}
	if len(l.sent) != 2 || l.sent[0].ID != zremsg.MsgWhisper || l.sent[1].ID != zremsg.MsgShout || l.sent[1].Group != "g" ||
		l.sent[0].Sequence != 2 || l.sent[1].Sequence != 3 {
		t.Fatalf("sent %+v", l.sent)
	}
	// A refused send does not advance the sequence.
	l.full = true
	if err := h.st.whisper(uuidB, nil); err == nil {
		t.Fatal("whisper on a full link succeeded")
	}
	l.full = false
	h.st.whisper(uuidB, nil)
	if got := l.sent[len(l.sent)-1].Sequence; got != 4 {
		t.Fatalf("sequence after a refused send = %d, want 4", got)
	}
	if err := h.st.join(""); err == nil {
		t.Fatal("empty group accepted")
	}
}

func TestStateConnectPeerPending(t *testing.T) {
	h := newHarness(t)
	if err := h.st.connectPeer(uuid.Nil, epB, h.now); err != nil {
		t.Fatal(err)
	}
	l := h.link(epB)
	if len(l.sent) != 1 || l.sent[0].ID != zremsg.MsgHello || l.sent[0].Sequence != 1 {
		t.Fatalf("sent %+v", l.sent)
	}
	// Its HELLO adopts the pending link: no second connection, no second HELLO.
	h.recv(uuidB, helloB(1, 0))
	h.wantEvents("ENTER node-b")
	if len(h.links[epB]) != 1 {
		t.Fatalf("%d links", len(h.links[epB]))
	}
	h.st.whisper(uuidB, [][]byte{[]byte("x")})
	if got := l.sent[len(l.sent)-1].Sequence; got != 2 {
		t.Fatalf("whisper sequence %d, want 2", got)
	}
	for _, bad := range []string{"", "tcp://", "tcp://host", "tcp://host:0", "tcp://host:99999", "ipc://x", epSelf} {
		if err := h.st.connectPeer(uuid.Nil, bad, h.now); err == nil {
			t.Errorf("connectPeer(%q) succeeded", bad)
		}
	}
	// A pending connection that never answers is dropped at expiry.
	const epC = "tcp://127.0.0.1:50003"
	h.st.connectPeer(uuid.Nil, epC, h.now)
	h.advance(h.cfg.Expired)
	h.st.reap(h.now)
	if !h.link(epC).closed || len(h.st.pending) != 0 {
		t.Fatal("pending connection not dropped")
	}
}

func TestStateSlowConsumerPolicy(t *testing.T) {
	h := newHarness(t)
	h.cfg.EventQueue = 3
	h.enterB()
	seq := uint16(2)
	for range 10 {
		h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgWhisper, Sequence: seq, Content: [][]byte{[]byte("w")}})
		seq++
	}
	h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgJoin, Sequence: seq, Group: "g", Status: 1})
	seq++
	h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgShout, Sequence: seq, Group: "g"})
	seq++
	h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgLeave, Sequence: seq, Group: "g", Status: 2})
	h.wantEvents("WHISPER node-b w", "WHISPER node-b w", "WHISPER node-b w", "JOIN node-b g", "LEAVE node-b g")
	if got := h.stats.snapshot().EventsDropped; got != 8 {
		t.Fatalf("EventsDropped = %d, want 8", got)
	}
}

func TestStateStop(t *testing.T) {
	h := newHarness(t)
	h.enterB()
	l := h.link(epB)
	// B's HELLO did not say it understands GOODBYE: it gets none (our
	// port-0 beacon says goodbye).
	sent := len(l.sent)
	links := h.st.stop()
	if len(links) != 1 || len(l.sent) != sent {
		t.Fatalf("links %d, sent %+v", len(links), l.sent[sent:])
	}
	h.wantEvents("STOP self")
	h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgWhisper, Sequence: 3})
	h.beacon(uuidA, 1, "127.0.0.1:5670")
	h.wantEvents()
}

func TestDefaultName(t *testing.T) {
	if got := DefaultName(uuidB); got != "0F1E2D" {
		t.Fatalf("DefaultName = %q", got)
	}
	if !bytes.Equal(Identity(uuidA), golden.HexLines(t, "identity.hex")[0]) {
		t.Fatal("Identity differs from identity.hex")
	}
}

func TestStateReconnectsDisconnectedPeer(t *testing.T) {
	h := newHarness(t)
	h.beacon(uuidB, 50002, "127.0.0.1:5670")
	p := h.st.peers[uuidB]
	p.disconnect() // as when another UUID took its endpoint over
	h.recv(uuidB, helloB(1, 0))
	h.wantEvents("ENTER node-b")
	if len(h.links[epB]) != 2 || p.link == nil {
		t.Fatal("no new link")
	}
	if err := h.st.whisper(uuidB, nil); err != nil {
		t.Fatal(err)
	}
	if got := h.link(epB).sent; got[0].ID != zremsg.MsgHello || got[0].Sequence != 1 || got[1].Sequence != 2 {
		t.Fatalf("sent %+v", got)
	}
}

// FuzzStateMessage feeds arbitrary frames from a known, ready peer and from
// an unknown one: the state must never panic and must stay consistent.
func FuzzStateMessage(f *testing.F) {
	for _, name := range []string{"hello", "whisper", "shout", "join", "leave", "ping", "ping_ok", "elect", "leader", "goodbye", "hello_empty", "shout_2frames"} {
		lines := golden.HexLines(f, name+".hex")
		var rest []byte
		if len(lines) > 1 {
			rest = lines[1]
		}
		f.Add(lines[0], rest, true)
	}
	f.Add([]byte{0xAA, 0xA1, 4, 2, 0, 2, 1, 'g', 9}, []byte(nil), true)
	f.Fuzz(func(t *testing.T, first, second []byte, known bool) {
		h := newHarness(t)
		h.enterB("g")
		frames := [][]byte{first}
		if second != nil {
			frames = append(frames, second)
		}
		id := uuidB
		if !known {
			id = uuidA
		}
		h.st.onMessage(inboxMsg{identity: Identity(id), frames: frames}, h.now)
		for _, p := range h.st.peers {
			for g := range p.groups {
				if h.st.groups[g].peers[p.id] != p {
					t.Fatalf("peer %s in group %q but not the group's", p.label(), g)
				}
			}
		}
		for name, g := range h.st.groups {
			for id := range g.peers {
				if p := h.st.peers[id]; p == nil || !p.groups[name] {
					t.Fatalf("group %q holds a peer that is gone or not in it", name)
				}
			}
		}
		h.st.reap(h.now.Add(time.Hour))
		if len(h.st.peers) != 0 {
			t.Fatal("peers left after expiry")
		}
	})
}

func TestStateEndpointTakenOver(t *testing.T) {
	// B restarts with a new UUID (A's) on the same endpoint: A's HELLO
	// makes A enter, but a HELLO is no proof that B is gone (anyone may
	// send one): B is probed with a PING, and removed when nothing was
	// heard from it for Config.Evasive. Then A's beacon connects to A.
	h := newHarness(t)
	h.enterB("g")
	h.recv(uuidA, &zremsg.Msg{ID: zremsg.MsgHello, Sequence: 1, Endpoint: epB, Name: "node-b2"})
	h.wantEvents("ENTER node-b2")
	if got := h.link(epB).sent; got[len(got)-1].ID != zremsg.MsgPing {
		t.Fatalf("B not probed: sent %+v", got)
	}
	if len(h.links[epB]) != 1 || h.st.peers[uuidA].link != nil {
		t.Fatal("dialled B's endpoint for A while B is alive")
	}
	h.advance(h.cfg.Evasive - time.Second)
	h.beacon(uuidA, 50002, "127.0.0.1:5670") // A's beacon: still waits for B
	if len(h.links[epB]) != 1 {
		t.Fatal("dialled B's endpoint for A while B is alive")
	}
	h.advance(time.Second)
	h.st.reap(h.now)
	h.wantEvents("EXIT node-b", "SILENT node-b2") // (A sent nothing since its HELLO)
	if len(h.st.peers) != 1 || h.st.peers[uuidA] == nil || len(h.st.groups["g"].peers) != 0 {
		t.Fatalf("peers %v", h.st.peers)
	}
	h.beacon(uuidA, 50002, "127.0.0.1:5670")
	if len(h.links[epB]) != 2 || h.st.peers[uuidA].link == nil {
		t.Fatal("A not connected once B was gone")
	}
	if got := h.link(epB).sent; got[0].ID != zremsg.MsgHello {
		t.Fatalf("sent %+v", got)
	}
	// A entered without a link; now it has one, the application can send.
	if err := h.st.whisper(uuidA, [][]byte{[]byte("hi")}); err != nil {
		t.Fatal(err)
	}
	if got := h.link(epB).sent; len(got) != 2 || got[1].ID != zremsg.MsgWhisper || got[1].Sequence != 2 {
		t.Fatalf("sent %+v", got)
	}
}

// A spoofed beacon (a new UUID with a live peer's address and port) never
// evicts the peer: it is ignored, the peer probed once per Config.Evasive,
// and the peer stays as long as it is heard.
func TestStateSpoofedBeaconKeepsLivePeer(t *testing.T) {
	h := newHarness(t)
	h.enterB("g")
	for i := range 3 * int(h.cfg.Expired/time.Second) {
		h.advance(time.Second)
		h.beacon(uuid.New(), 50002, "127.0.0.1:5670") // the spoof
		h.beacon(uuidB, 50002, "127.0.0.1:5670")      // the real one
		if i%3 == 0 {
			h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgPingOK, Sequence: uint16(2 + i/3)})
		}
		h.st.reap(h.now)
	}
	h.wantEvents()
	if len(h.st.peers) != 1 || len(h.links[epB]) != 1 || h.link(epB).closed {
		t.Fatalf("peers %d, links %d", len(h.st.peers), len(h.links[epB]))
	}
	pings := 0
	for _, m := range h.link(epB).sent {
		if m.ID == zremsg.MsgPing {
			pings++
		}
	}
	if max := 3*int(h.cfg.Expired/h.cfg.Evasive) + 1; pings == 0 || pings > max {
		t.Fatalf("%d probes, want 1 to %d", pings, max)
	}
	if got := h.stats.snapshot().EndpointConflicts; got != uint64(3*int(h.cfg.Expired/time.Second)) {
		t.Fatalf("EndpointConflicts = %d", got)
	}
}

// TestStateNoHelloStartsOver: a peer whose beacons keep coming but whose
// HELLO never arrives (lost with a connection that broke right after its
// handshake) is dropped after Config.Expired and dialled again on its next
// beacon, with a new HELLO from us; a ready peer is never dropped this way.
func TestStateNoHelloStartsOver(t *testing.T) {
	h := newHarness(t)
	h.beacon(uuidB, 50002, "127.0.0.1:5670")
	first := h.link(epB)
	for i := 0; i < int(h.cfg.Expired/time.Second)+1; i++ {
		h.advance(time.Second)
		h.beacon(uuidB, 50002, "127.0.0.1:5670")
		h.st.reap(h.now)
	}
	if !first.closed || len(h.st.peers) != 0 {
		t.Fatalf("peer without HELLO kept after %v (link closed %v, %d peers)", h.cfg.Expired, first.closed, len(h.st.peers))
	}
	if got := h.stats.snapshot().HelloTimeouts; got != 1 {
		t.Fatalf("HelloTimeouts = %d, want 1", got)
	}
	h.wantEvents() // it never entered, so no EXIT
	h.beacon(uuidB, 50002, "127.0.0.1:5670")
	again := h.link(epB)
	if again == first || len(again.sent) != 1 || again.sent[0].ID != zremsg.MsgHello || again.sent[0].Sequence != 1 {
		t.Fatalf("not dialled again with a HELLO: %+v", again.sent)
	}
	h.recv(uuidB, helloB(1, 0))
	h.wantEvents("ENTER node-b")
	for i := 0; i < 2*int(h.cfg.Expired/time.Second); i++ {
		h.advance(time.Second)
		h.beacon(uuidB, 50002, "127.0.0.1:5670")
		h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgPingOK, Sequence: uint16(2 + i)})
		h.st.reap(h.now)
	}
	if len(h.st.peers) != 1 || again.closed || h.stats.snapshot().HelloTimeouts != 1 {
		t.Fatalf("a ready peer was dropped: %d peers, link closed %v, stats %+v", len(h.st.peers), again.closed, h.stats.snapshot())
	}
}

// A SHOUT that one peer cannot take reaches the others, and the error
// names that peer; ShoutTo gives it the SHOUT without a second copy for
// the others.
func TestStateShoutErrorAndShoutTo(t *testing.T) {
	h := newHarness(t)
	if err := h.st.join("g"); err != nil {
		t.Fatal(err)
	}
	h.enterB("g")
	const epC = "tcp://127.0.0.1:50003"
	uuidC := uuid.MustParse("22222222-3333-4444-5555-666666666666")
	h.recv(uuidC, &zremsg.Msg{ID: zremsg.MsgHello, Sequence: 1, Endpoint: epC, Groups: []string{"g"}, Status: 1, Name: "node-c"})
	lb, lc := h.link(epB), h.link(epC)
	lb.sent, lc.sent = nil, nil
	lb.full = true
	err := h.st.shout("g", nil, [][]byte{[]byte("y")})
	var se *ShoutError
	if !errors.As(err, &se) || !errors.Is(err, errFakeFull) || se.Group != "g" || len(se.Peers) != 1 || se.Peers[0] != uuidB ||
		len(se.Errs) != 1 || !errors.Is(se.Errs[0], errFakeFull) {
		t.Fatalf("shout with B full: %v (%+v)", err, se)
	}
	if !strings.Contains(err.Error(), "node-b") || len(lc.sent) != 1 || len(lb.sent) != 0 {
		t.Fatalf("%q; sent to C %d, to B %d", err, len(lc.sent), len(lb.sent))
	}
	lb.full = false
	if err := h.st.shout("g", se.Peers, [][]byte{[]byte("y")}); err != nil {
		t.Fatal(err)
	}
	if len(lb.sent) != 1 || len(lc.sent) != 1 || lb.sent[0].ID != zremsg.MsgShout || lb.sent[0].Group != "g" {
		t.Fatalf("retry to B: sent to B %d, to C %d", len(lb.sent), len(lc.sent))
	}
	// An empty list reaches nobody; a peer not in the group is skipped.
	if err := h.st.shout("g", []uuid.UUID{}, [][]byte{[]byte("z")}); err != nil || len(lb.sent)+len(lc.sent) != 2 {
		t.Fatalf("shout to nobody: %v, sent %d", err, len(lb.sent)+len(lc.sent))
	}
	if err := h.st.shout("g", []uuid.UUID{uuidA}, [][]byte{[]byte("z")}); err != nil || len(lb.sent)+len(lc.sent) != 2 {
		t.Fatalf("shout to a stranger: %v, sent %d", err, len(lb.sent)+len(lc.sent))
	}
}
