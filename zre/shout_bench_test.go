package zre

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/zre/zremsg"
)

// discardLink is a link that takes every message and keeps nothing: what
// the benchmarks below measure is the node's own work per message, not
// the DEALER's queue.
type discardLink struct{ sent int }

func (l *discardLink) Send(frames ...[]byte) error { l.sent++; return nil }
func (l *discardLink) Close() error                { return nil }

// benchState returns a state with peers entered peers, every one in
// group "GLOBAL", their links discarding what is sent.
func benchState(tb testing.TB, peers int) (*state, []uuid.UUID) {
	tb.Helper()
	cfg, err := Config{UUID: uuidS, Name: "self"}.withDefaults()
	if err != nil {
		tb.Fatal(err)
	}
	cfg.EventQueue = 1 << 20
	var stats counters
	st := newState(&cfg, epSelf, func(ep string) (link, error) { return &discardLink{}, nil }, &stats)
	if err := st.join("GLOBAL"); err != nil {
		tb.Fatal(err)
	}
	now := time.Unix(1000, 0)
	ids := make([]uuid.UUID, peers)
	for i := range ids {
		ids[i] = uuid.New()
		m := &zremsg.Msg{ID: zremsg.MsgHello, Sequence: 1, Endpoint: fmt.Sprintf("tcp://127.0.0.1:%d", 50000+i),
			Groups: []string{"GLOBAL"}, Status: 1, Name: fmt.Sprintf("peer-%d", i)}
		frames, err := m.Frames()
		if err != nil {
			tb.Fatal(err)
		}
		st.onMessage(inboxMsg{identity: Identity(ids[i]), frames: frames, remote: "bench"}, now)
	}
	if got := len(st.dir.members(nil, "GLOBAL")); got != peers {
		tb.Fatalf("%d peers in GLOBAL, want %d", got, peers)
	}
	st.events = nil
	return st, ids
}

// BenchmarkStateShout is the sending side of a SHOUT to 25 peers (the perf
// protocol's group) without the DEALERs: finding the members, taking each
// peer's lock, numbering and encoding the message. Per op: one Shout (25
// copies).
//
//	go test -run XXX -bench 'StateShout|StateRecvShout' -benchtime 50000x ./zre/
func BenchmarkStateShout(b *testing.B) {
	st, _ := benchState(b, 25)
	content := [][]byte{[]byte("S:SHOUT")}
	b.ReportAllocs()
	for b.Loop() {
		if err := st.shout("GLOBAL", nil, content); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStateRecvShout is the receiving side: one SHOUT from a peer
// decoded, checked and turned into an event (the event queue emptied as
// the loop's flush would). Per op: one message.
func BenchmarkStateRecvShout(b *testing.B) {
	st, ids := benchState(b, 25)
	now := time.Unix(1000, 0)
	seq := make([]uint16, len(ids))
	for i := range seq {
		seq[i] = 1
	}
	ident := make([][]byte, len(ids))
	for i, id := range ids {
		ident[i] = Identity(id)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := i % len(ids)
		i++
		seq[k]++
		b.StopTimer()
		m := zremsg.Msg{ID: zremsg.MsgShout, Sequence: seq[k], Group: "GLOBAL", Content: [][]byte{[]byte("R:SHOUT")}}
		frames, err := m.Frames()
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		st.onMessage(inboxMsg{identity: ident[k], frames: frames, remote: "bench"}, now)
		if len(st.events) != 1 {
			b.Fatalf("%d events after a SHOUT (stats %+v)", len(st.events), st.stats.snapshot())
		}
		st.events[0] = nil
		st.events = st.events[:0]
		st.evBytes = 0
	}
}

// keepLink keeps the frames it is given, as a DEALER's queue does until
// they are written, and decodes them only when asked.
type keepLink struct{ sent [][][]byte }

func (l *keepLink) Send(frames ...[]byte) error { l.sent = append(l.sent, frames); return nil }
func (l *keepLink) Close() error                { return nil }

// TestShoutCopiesApart: a SHOUT is encoded once for every peer (the
// copies share two arrays, shoutFrames); each peer's copy must keep its
// own sequence number and content while the next copies and the next
// shouts are written, as a queue holds them until the socket writes them.
// Checked after every send, with ShoutTo (fewer copies than members) and
// a peer named twice (fewer copies than planned).
func TestShoutCopiesApart(t *testing.T) {
	cfg, err := Config{UUID: uuidS, Name: "self"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	var stats counters
	links := map[string]*keepLink{}
	st := newState(&cfg, epSelf, func(ep string) (link, error) {
		l := &keepLink{}
		links[ep] = l
		return l, nil
	}, &stats)
	now := time.Unix(1000, 0)
	const peers = 5
	ids := make([]uuid.UUID, peers)
	eps := make([]string, peers)
	for i := range ids {
		ids[i] = uuid.New()
		eps[i] = fmt.Sprintf("tcp://127.0.0.1:%d", 50000+i)
		m := &zremsg.Msg{ID: zremsg.MsgHello, Sequence: 1, Endpoint: eps[i], Groups: []string{"g"}, Status: 1, Name: fmt.Sprint("p", i)}
		frames, err := m.Frames()
		if err != nil {
			t.Fatal(err)
		}
		st.onMessage(inboxMsg{identity: Identity(ids[i]), frames: frames, remote: "test"}, now)
	}
	// want[i]: the content of every message peer i should have, after
	// our HELLO (sequence 1).
	want := make([][]string, peers)
	send := func(only []uuid.UUID, text string) {
		t.Helper()
		if err := st.shout("g", only, [][]byte{[]byte(text), []byte("2nd")}); err != nil {
			t.Fatal(err)
		}
		for i, id := range ids {
			if only == nil || slices.Contains(only, id) {
				want[i] = append(want[i], text)
			}
		}
		for i, ep := range eps {
			l := links[ep]
			if len(l.sent) != 1+len(want[i]) {
				t.Fatalf("after %q: peer %d has %d messages, want %d", text, i, len(l.sent), 1+len(want[i]))
			}
			for k, frames := range l.sent[1:] {
				m, err := zremsg.Decode(frames)
				if err != nil {
					t.Fatalf("after %q: peer %d message %d: %v", text, i, k+2, err)
				}
				if m.ID != zremsg.MsgShout || m.Group != "g" || m.Sequence != uint16(k+2) ||
					len(m.Content) != 2 || string(m.Content[0]) != want[i][k] || string(m.Content[1]) != "2nd" {
					t.Fatalf("after %q: peer %d message %d = %s %q seq %d %q, want SHOUT g seq %d %q",
						text, i, k+2, m.ID, m.Group, m.Sequence, m.Content, k+2, want[i][k])
				}
			}
		}
	}
	send(nil, "one")
	send(nil, "two")
	send([]uuid.UUID{ids[3], ids[1]}, "three")
	send([]uuid.UUID{ids[2], ids[2]}, "four")
	send([]uuid.UUID{}, "none")
	send(nil, "five")
}
