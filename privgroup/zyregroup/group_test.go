package zyregroup

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/privgroup"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zmtp"
	"github.com/zyre-go/zyre/zre"
)

const group = "hotel-room"

// sink drains a Reader in the background.
type sink struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	gaps []privgroup.GapError
	err  error
	done chan struct{}
}

func drain(rd *Reader) *sink {
	s := &sink{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		p := make([]byte, 32<<10)
		for {
			n, err := rd.Read(p)
			s.mu.Lock()
			s.buf.Write(p[:n])
			var gap *privgroup.GapError
			switch {
			case errors.As(err, &gap):
				s.gaps = append(s.gaps, *gap)
			case err != nil:
				s.err = err
				s.mu.Unlock()
				return
			}
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *sink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Len()
}

func (s *sink) bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.buf.Bytes())
}

// wait waits for the end of the stream and returns its error (io.EOF at a
// clean end).
func (s *sink) wait(t *testing.T, rd *Reader) error {
	t.Helper()
	select {
	case <-s.done:
	case <-timeAfter(t):
		rd.Close()
		<-s.done
		t.Fatalf("stream did not end within %v (%d octets read)", eventTimeout, s.len())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// readStream opens reader's Reader of sender's stream and drains it into a
// sink; the Reader is closed when the test ends.
func readStream(t *testing.T, reader, sender *member) (*Reader, *sink) {
	t.Helper()
	rd, err := reader.g.NewReader(sender.n.UUID())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rd.Close() })
	return rd, drain(rd)
}

// streamExact sends data as one whole stream of from's Writer and checks
// that the Reader rd, drained into sink, gets exactly data and the end.
func streamExact(t *testing.T, from *member, rd *Reader, sink *sink, data []byte) {
	t.Helper()
	w, err := from.g.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	endStream(t, "reader", w, data, rd, sink)
	if !bytes.Equal(sink.bytes(), data) {
		t.Fatalf("read %d of %d octets", sink.len(), len(data))
	}
}

// writeAll writes data in pieces of varying sizes and returns the Writer
// unclosed.
// endStream writes last into w, closes it and waits until the reader
// draining rd into sink reaches the end of the stream.
func endStream(t *testing.T, who string, w *Writer, last []byte, rd *Reader, sink *sink) {
	t.Helper()
	writeAll(t, w, last)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sink.wait(t, rd); err != io.EOF {
		t.Fatalf("%s: stream ended with %v, want io.EOF", who, err)
	}
}

func writeAll(t *testing.T, w *Writer, data []byte) {
	t.Helper()
	for i, k := 0, 1; i < len(data); k = k*7%9973 + 1 {
		n := min(k, len(data)-i)
		if _, err := w.Write(data[i : i+n]); err != nil {
			t.Fatalf("write at %d: %v", i, err)
		}
		i += n
	}
}

// A stream round-trips byte-exact between two secure nodes on loopback.
func TestStreamRoundTripSecure(t *testing.T) {
	a, b := trustedPair(t)
	a.awaitSender(b)

	rd, err := b.g.NewReader(a.n.UUID())
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	if _, err := b.g.NewReader(a.n.UUID()); !errors.Is(err, ErrBusy) {
		t.Fatalf("second reader: %v, want ErrBusy", err)
	}
	s := drain(rd)
	data := randomBytes(1<<20+123, 1)
	w, err := a.g.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.g.NewWriter(); !errors.Is(err, ErrBusy) {
		t.Fatalf("second writer: %v, want ErrBusy", err)
	}
	endStream(t, "bob", w, data, rd, s)
	if got := s.bytes(); !bytes.Equal(got, data) {
		t.Fatalf("got %d octets, want %d (equal prefix %d)", len(got), len(data), commonPrefix(got, data))
	}
	if len(s.gaps) != 0 || rd.Dropped() != 0 {
		t.Fatalf("gaps %v, dropped %d", s.gaps, rd.Dropped())
	}
	st := b.g.ReceiverStats()
	if st.Authenticated == 0 || st.Authenticated != st.Opened {
		t.Fatalf("receiver stats %+v: every message must be authenticated", st)
	}
	if a.g.Stats().KeysSent == 0 || b.g.Stats().KeysReceived == 0 {
		t.Fatalf("stats a %+v b %+v", a.g.Stats(), b.g.Stats())
	}
}

func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// collector records the SHOUT content a node receives from one peer.
type collector struct {
	mu   sync.Mutex
	recs [][]byte
}

func (c *collector) tap(from uuid.UUID) func(zre.Event) {
	return func(ev zre.Event) {
		if s, ok := ev.(*zre.Shout); ok && s.Peer == from && s.Group == group {
			c.mu.Lock()
			for _, f := range s.Content {
				c.recs = append(c.recs, bytes.Clone(f))
			}
			c.mu.Unlock()
		}
	}
}

func (c *collector) all() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.recs...)
}

// checkNoRecord checks that an outsider received no SHOUT of the sender's
// in the group but marker (shouted last, which shows what it received was
// tapped): no record at all, not even ciphertext.
func checkNoRecord(t *testing.T, who string, recs [][]byte, marker string) {
	t.Helper()
	if len(recs) == 0 || string(recs[len(recs)-1]) != marker {
		t.Fatalf("%s: the marker was not the last SHOUT it received (%d SHOUTs)", who, len(recs))
	}
	if n := len(recs) - 1; n != 0 {
		t.Fatalf("%s received %d SHOUTs of the sender's in the group besides the marker (first %q): records go only to members", who, n, recs[0][:min(len(recs[0]), 40)])
	}
}

// An untrusted member of the group (secure, running privgroup) gets no
// key and no record at all, not even ciphertext (it used to receive every
// record: usertry4 #3), while a trusted member reads the stream whole; its
// own key is refused.
func TestUntrustedMemberGetsNoRecord(t *testing.T) {
	port := testBeaconPort()
	a, b, u := newNode(t, "alice", port, false), newNode(t, "bob", port, false), newNode(t, "mallory", port, false)
	// Oscar is trusted but not in the group: a non-member gets no key.
	o := newNode(t, "oscar", port, false)
	var oscarKeys atomic.Int32
	o.tap = func(ev zre.Event) {
		if w, ok := ev.(*zre.Whisper); ok && len(w.Content) > 0 && string(w.Content[0]) == WhisperPrefix {
			oscarKeys.Add(1)
		}
	}
	o.pump()
	var seen collector
	u.tap = seen.tap(a.n.UUID())
	a.attach(group, Options{Trusted: trustKeys(a, b, o)})
	b.attach(group, Options{Trusted: trustKeys(a, b, o)})
	u.attach(group, Options{Trusted: trustKeys(a, b, u)}) // mallory trusts everyone
	b.awaitSender(a)
	waitFor(t, "alice refusing mallory's key", func() bool { return a.g.Stats().KeysRefused > 0 })
	waitFor(t, "alice passing mallory over", func() bool { return a.g.Stats().Passed > 0 })

	rd, s := readStream(t, b, a)
	secret := bytes.Repeat([]byte("the room number is 1207; "), 200)
	streamExact(t, a, rd, s, secret)
	const marker = "end of test"
	shoutMarker(a, u, marker)

	checkNoRecord(t, "mallory", seen.all(), marker)
	if contains(u.g.Senders(), a.n.UUID()) || contains(a.g.Members(), u.n.UUID()) {
		t.Fatalf("mallory holds alice's key: senders %v, members %v", u.g.Senders(), a.g.Members())
	}
	if !contains(a.g.Members(), b.n.UUID()) {
		t.Fatalf("bob is not a member of alice's: %v", a.g.Members())
	}
	if oscarKeys.Load() != 0 || contains(a.g.Members(), o.n.UUID()) {
		t.Fatalf("oscar, not in the group, got %d keys", oscarKeys.Load())
	}
	if st := u.g.Stats(); st.Opaque != 0 || st.Records != 0 {
		t.Fatalf("mallory's stats %+v: want no record at all", st)
	}
}

// A plain node (no CURVE, no privgroup) in the group receives no record
// at all (it used to receive them all, as ciphertext), while the member
// reads the stream whole. The members here are plain nodes too, with keys
// learnt out of band (Options.PeerKey).
func TestPlainNodeGetsNoRecord(t *testing.T) {
	port := testBeaconPort()
	a, b, c := newNode(t, "alice", port, true), newNode(t, "bob", port, true), newNode(t, "czmq", port, true)
	var seen collector
	c.tap = seen.tap(a.n.UUID())
	if err := c.n.Join(group); err != nil {
		t.Fatal(err)
	}
	c.pump()
	opts := Options{Trusted: trustKeys(a, b), PeerKey: keyDirectory(a, b)}
	a.attach(group, opts)
	b.attach(group, opts)
	b.awaitSender(a)
	rd, s := readStream(t, b, a)
	// c must be in alice's view of the group before she shouts.
	waitFor(t, "czmq in alice's group", func() bool { return contains(a.n.PeersByGroup(group), c.n.UUID()) })
	secret := bytes.Repeat([]byte("plain nodes see nothing "), 300)
	streamExact(t, a, rd, s, secret)
	const marker = "end of test"
	shoutMarker(a, c, marker)
	checkNoRecord(t, "czmq", seen.all(), marker)
}

// trustStore opens a trust store in a temporary home with the given
// members verified.
func trustStore(t *testing.T, ms ...*member) *trust.Store {
	t.Helper()
	st, err := trust.Open(t.TempDir(), trust.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if _, err := st.MarkVerified(context.Background(), m.sk.Public(), m.n.UUID(), m.name, "test", nil); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// A member revoked in the sender's trust store reads nothing sent after
// the rotation that follows, and receives no record from then on (it used
// to receive them, as ciphertext); the others read everything.
func TestRevokedMemberCannotReadAfterRotation(t *testing.T) {
	port := testBeaconPort()
	a, b, m := newNode(t, "alice", port, false), newNode(t, "bob", port, false), newNode(t, "mike", port, false)
	var seen collector
	m.tap = seen.tap(a.n.UUID())
	storeA := trustStore(t, b, m)
	a.attach(group, Options{Trust: storeA})
	b.attach(group, Options{Trust: trustStore(t, a, m)})
	m.attach(group, Options{Trust: trustStore(t, a, b)})
	b.awaitSender(a)
	m.awaitSender(a)
	a.awaitSender(b)
	rdB, err := b.g.NewReader(a.n.UUID())
	if err != nil {
		t.Fatal(err)
	}
	defer rdB.Close()
	rdM, err := m.g.NewReader(a.n.UUID())
	if err != nil {
		t.Fatal(err)
	}
	defer rdM.Close()
	sB, sM := drain(rdB), drain(rdM)

	before := bytes.Repeat([]byte("before the revocation. "), 500)
	after := bytes.Repeat([]byte("AFTER THE REVOCATION! "), 500)
	w, _ := a.g.NewWriter()
	writeAll(t, w, before)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "mike reading the first part", func() bool { return sM.len() == len(before) })
	epoch := a.g.Epoch()

	if _, err := storeA.Revoke(context.Background(), m.sk.Public(), "lost phone"); err != nil {
		t.Fatal(err)
	}
	a.g.Recheck()
	if a.g.Epoch() == epoch {
		t.Fatal("no rotation after the revocation")
	}
	if mem := a.g.Members(); contains(mem, m.n.UUID()) || !contains(mem, b.n.UUID()) {
		t.Fatalf("members after the revocation: %v", mem)
	}
	opaqueBefore, mark := m.g.Stats().Opaque, len(seen.all())
	endStream(t, "bob", w, after, rdB, sB)
	if got, want := sB.bytes(), append(bytes.Clone(before), after...); !bytes.Equal(got, want) {
		t.Fatalf("bob read %d octets, want %d", len(got), len(want))
	}
	shoutMarker(a, m, "end of test")
	if got := sM.bytes(); !bytes.Equal(got, before) {
		t.Fatalf("mike read %d octets (%q...), want exactly the %d before the revocation", len(got), got[len(before):min(len(got), len(before)+30)], len(before))
	}
	if m.g.Stats().Opaque != opaqueBefore {
		t.Fatal("mike received records of the new epoch")
	}
	checkNoRecord(t, "mike after the revocation", seen.all()[mark:], "end of test")
	// A revoked sender is dropped on the receiving side too.
	if _, err := storeA.Revoke(context.Background(), b.sk.Public(), "test"); err != nil {
		t.Fatal(err)
	}
	a.g.Recheck()
	if contains(a.g.Senders(), b.n.UUID()) {
		t.Fatal("alice still holds bob's key after revoking him")
	}
}

// Records replayed or tampered with by a hostile member (one that holds
// the keys) are refused: a record under alice's key that eve shouts is
// dropped by the Group before any Reader sees it (its header is in clear,
// so anyone could fill alice's queue that way); the stream stays
// byte-exact. (privgroup's tests refuse replayed and tampered records that
// do reach a Receiver.)
func TestHostileReshoutRefused(t *testing.T) {
	port := testBeaconPort()
	a, b, h := newNode(t, "alice", port, false), newNode(t, "bob", port, false), newNode(t, "eve", port, false)
	var seen collector
	h.tap = seen.tap(a.n.UUID())
	trusted := trustKeys(a, b, h)
	a.attach(group, Options{Trusted: trusted, ChunkSize: 512})
	b.attach(group, Options{Trusted: trusted})
	h.attach(group, Options{Trusted: trusted})
	b.awaitSender(a)
	h.awaitSender(a)
	rd, s := readStream(t, b, a)
	part1, part2 := randomBytes(20000, 2), randomBytes(30000, 3)
	w, _ := a.g.NewWriter()
	writeAll(t, w, part1)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bob reading part 1", func() bool { return s.len() == len(part1) })
	waitFor(t, "eve receiving part 1", func() bool { return h.g.Stats().Records >= b.g.Stats().Records })

	// Eve re-shouts everything of alice's she got (replays), a data
	// record moved to a future counter (tampered header) and one with a
	// flipped ciphertext octet, each as its own SHOUT.
	recs := seen.all()
	var hostile [][]byte
	var lastData []byte
	for _, rec := range recs {
		hostile = append(hostile, rec)
		if h, err := privgroup.ParseHeader(rec); err == nil && h.Kind == privgroup.KindData {
			lastData = rec
		}
	}
	moved := bytes.Clone(lastData)
	moved[privgroup.DataHeaderSize-1]++ // counter + 1: the next one alice will use
	flipped := bytes.Clone(lastData)
	flipped[privgroup.DataHeaderSize-1]++
	flipped[privgroup.DataHeaderSize+3] ^= 0x40
	hostile = append(hostile, moved, flipped)
	for _, rec := range hostile {
		if err := h.n.Shout(group, rec); err != nil {
			t.Fatal(err)
		}
	}
	shoutMarker(h, b, "eve is done")
	endStream(t, "bob", w, part2, rd, s)
	if got, want := s.bytes(), append(bytes.Clone(part1), part2...); !bytes.Equal(got, want) {
		t.Fatalf("bob read %d octets, want %d", len(got), len(want))
	}
	if len(s.gaps) != 0 {
		t.Fatalf("gaps %v", s.gaps)
	}
	if st := b.g.Stats(); st.Relayed != uint64(len(hostile)) || rd.Dropped() != 0 {
		t.Fatalf("%d of %d hostile records dropped as relayed, %d reached the Reader (stats %+v)", st.Relayed, len(hostile), rd.Dropped(), st)
	}
}

// A member that leaves the group makes the sender rotate; it is no longer
// a member. A member that joins later gets the current key and reads from
// there (the part before is a gap).
func TestLeaveRotatesAndLateJoiner(t *testing.T) {
	port := testBeaconPort()
	a, b, c := newNode(t, "alice", port, false), newNode(t, "bob", port, false), newNode(t, "carol", port, false)
	trusted := trustKeys(a, b, c)
	a.attach(group, Options{Trusted: trusted})
	b.attach(group, Options{Trusted: trusted})
	b.awaitSender(a)
	epoch := a.g.Epoch()
	w, _ := a.g.NewWriter()
	part1, part2 := randomBytes(50000, 4), randomBytes(40000, 5)
	writeAll(t, w, part1)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}

	c.attach(group, Options{Trusted: trusted})
	c.awaitSender(a)
	rd, s := readStream(t, c, a)
	endStream(t, "carol", w, part2, rd, s)
	if !bytes.Equal(s.bytes(), part2) || len(s.gaps) != 1 || s.gaps[0].Bytes != uint64(len(part1)) {
		t.Fatalf("carol read %d octets with gaps %+v, want %d after a gap of %d", s.len(), s.gaps, len(part2), len(part1))
	}

	if err := b.n.Leave(group); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "alice rotating after bob left", func() bool { return a.g.Epoch() != epoch && !contains(a.g.Members(), b.n.UUID()) })
	if !contains(a.g.Members(), c.n.UUID()) {
		t.Fatalf("carol is not a member after the rotation: %v", a.g.Members())
	}
	if a.g.Stats().Rotations == 0 {
		t.Fatal("no rotation counted")
	}

	// Carol stops (EXIT at alice): another rotation, no member left.
	epoch = a.g.Epoch()
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	if err := c.n.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "alice rotating after carol's exit", func() bool { return a.g.Epoch() != epoch && len(a.g.Members()) == 0 })
}

func TestAttachOptions(t *testing.T) {
	port := testBeaconPort()
	sec, plain := newNode(t, "secure", port, false), newNode(t, "plain", port, true)
	yes := func(uuid.UUID, curve.PublicKey) bool { return true }
	for _, tc := range []struct {
		name string
		node *member
		opts Options
	}{
		{"no secret", sec, Options{Trusted: yes}},
		{"not the node's secret", sec, Options{Secret: secretKey(t), Trusted: yes}},
		{"no trust decision", sec, Options{Secret: sec.sk}},
		{"plain without PeerKey", plain, Options{Secret: plain.sk, Trusted: yes}},
		{"bad crypto options", sec, Options{Secret: sec.sk, Trusted: yes, Crypto: privgroup.Options{Window: 65}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := Attach(tc.node.n, group, tc.opts)
			if err == nil {
				g.Close()
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrInvalidOptions) && !errors.Is(err, privgroup.ErrInvalidOptions) {
				t.Fatalf("error %v, want ErrInvalidOptions", err)
			}
			if strings.Contains(err.Error(), tc.node.sk.Z85()) {
				t.Fatal("the error shows the secret key")
			}
		})
	}
}

// Handle ignores what is not its group's and never panics on garbage.
func TestHandleHostileContent(t *testing.T) {
	port := testBeaconPort()
	a := newNode(t, "alice", port, false)
	g, err := Attach(a.n, group, Options{Secret: a.sk, Trusted: func(uuid.UUID, curve.PublicKey) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	peer := uuid.New()
	hdr := zre.EventHeader{Peer: peer, Name: "x"}
	for _, tc := range []struct {
		ev   zre.Event
		want bool
	}{
		{&zre.Shout{EventHeader: hdr, Group: group, Content: [][]byte{[]byte("plain text")}}, false},
		{&zre.Shout{EventHeader: hdr, Group: "other", Content: [][]byte{{0x11}}}, false},
		{&zre.Shout{EventHeader: hdr, Group: group, Content: [][]byte{{0x11, 1, 2}}}, true},
		{&zre.Shout{EventHeader: hdr, Group: group, Content: [][]byte{{}}}, false},
		{&zre.Shout{EventHeader: hdr, Group: group, Content: nil}, false},
		{&zre.Shout{EventHeader: hdr, Group: group, Content: [][]byte{append([]byte{0x11}, make([]byte, 40)...)}}, true},
		{&zre.Whisper{EventHeader: hdr, Content: [][]byte{[]byte(WhisperPrefix)}}, false},
		{&zre.Whisper{EventHeader: hdr, Content: [][]byte{[]byte(WhisperPrefix), []byte(group)}}, true},
		{&zre.Whisper{EventHeader: hdr, Content: [][]byte{[]byte(WhisperPrefix), []byte(group), {0x13, 0}}}, true},
		{&zre.Whisper{EventHeader: hdr, Content: [][]byte{[]byte(WhisperPrefix), []byte("other"), {0x13}}}, false},
		{&zre.Whisper{EventHeader: hdr, Content: [][]byte{[]byte(WhisperPrefix), []byte(group), {0x13, 0}, {6, 6}}}, true},
		{&zre.Whisper{EventHeader: hdr, Content: [][]byte{[]byte(WhisperPrefix), []byte(group), {0x13, 0}, {6}, {6}}}, true},
		{&zre.Whisper{EventHeader: hdr, Content: [][]byte{[]byte("hello")}}, false},
		{&zre.Join{EventHeader: hdr, Group: group}, false},
		{&zre.Leave{EventHeader: hdr, Group: group}, false},
		{&zre.Exit{EventHeader: hdr}, false},
	} {
		if got := g.Handle(tc.ev); got != tc.want {
			t.Errorf("Handle(%T %+v) = %v, want %v", tc.ev, tc.ev, got, tc.want)
		}
	}
	st := g.Stats()
	if st.KeysReceived != 0 || st.Records != 0 || st.Opaque == 0 || st.Malformed == 0 {
		t.Fatalf("stats %+v", st)
	}
	if st.KeysRefused == 0 {
		t.Fatalf("a sender key from an unknown peer was not refused: %+v", st)
	}
}

// Whole chunks written without Flush or Close are released by the batch
// records of the Group's timer, which the Writer starts: a stream that
// pauses is authenticated within BatchInterval, twice, with the timer idle
// in between.
func TestBatchTimerWithoutFlush(t *testing.T) {
	a, b := trustedPair(t)
	_, s := readStream(t, b, a)
	w, err := a.g.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	data := randomBytes(6000, 3)
	for i, part := range [][]byte{data[:3000], data[3000:]} { // whole chunks only
		if _, err := w.Write(part); err != nil {
			t.Fatal(err)
		}
		want := 3000 * (i + 1)
		waitFor(t, fmt.Sprintf("%d octets released by the timer's batch record", want), func() bool { return s.len() == want })
	}
	if got := s.bytes(); !bytes.Equal(got, data) {
		t.Fatalf("got %d octets, want %d", len(got), len(data))
	}
}

// A member that opens suite 2 slowly says so with its key: a sender whose
// suite is automatic switches to suite 1 at once (a rotation), streams to
// it, and goes back to suite 2 when that member leaves; a sender whose
// suite was set keeps it.
func TestSuiteFollowsMembers(t *testing.T) {
	preferred := func(int) privgroup.Suite { return privgroup.SuiteAESGCMBLAKE3 }
	port := testBeaconPort()
	a, b, c := newNode(t, "alice", port, false), newNode(t, "bob", port, false), newNode(t, "carol", port, false)
	trusted := trustKeys(a, b, c)
	a.attach(group, Options{Trusted: trusted, preferredSuite: preferred})
	c.attach(group, Options{Trusted: trusted, Crypto: privgroup.Options{Suite: privgroup.SuiteAESGCMBLAKE3}, preferredSuite: preferred})
	c.awaitSender(a)
	if a.g.Suite() != privgroup.SuiteAESGCMBLAKE3 || c.g.Suite() != privgroup.SuiteAESGCMBLAKE3 {
		t.Fatalf("suites before bob: alice %s, carol %s", a.g.Suite(), c.g.Suite())
	}
	rotations := a.g.Stats().Rotations
	slow := func(s privgroup.Suite) bool { return s == privgroup.SuiteChaCha20SHA256 }
	b.attach(group, Options{Trusted: trusted, FastSuite: slow, preferredSuite: preferred})
	waitFor(t, "alice on suite 1 for bob", func() bool { return a.g.Suite() == privgroup.SuiteChaCha20SHA256 })
	if a.g.Stats().Rotations <= rotations {
		t.Fatalf("alice changed suite without a rotation: %+v", a.g.Stats())
	}
	waitFor(t, "carol holding bob's key", func() bool { return contains(c.g.Senders(), b.n.UUID()) })
	if c.g.Suite() != privgroup.SuiteAESGCMBLAKE3 {
		t.Fatalf("carol's suite was set, yet it changed to %s", c.g.Suite())
	}
	b.awaitSender(a)
	rd, s := readStream(t, b, a)
	streamExact(t, a, rd, s, randomBytes(100_000, 8))
	if err := b.n.Leave(group); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "alice back on suite 2 once bob left", func() bool { return a.g.Suite() == privgroup.SuiteAESGCMBLAKE3 })
}

// A revocation in the trust store is picked up by the periodic recheck:
// the sender rotates without being told.
func TestPeriodicRecheckRotates(t *testing.T) {
	port := testBeaconPort()
	a, b := newNode(t, "alice", port, false), newNode(t, "bob", port, false)
	store := trustStore(t, b)
	a.attach(group, Options{Trust: store, RecheckInterval: 50 * time.Millisecond})
	b.attach(group, Options{Trust: trustStore(t, a)})
	b.awaitSender(a)
	waitFor(t, "bob a member", func() bool { return contains(a.g.Members(), b.n.UUID()) })
	epoch := a.g.Epoch()
	if _, err := store.Revoke(context.Background(), b.sk.Public(), "test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a rotation after the revocation", func() bool { return a.g.Epoch() != epoch })
	if contains(a.g.Members(), b.n.UUID()) {
		t.Fatalf("bob still a member: %v", a.g.Members())
	}
}

// A member whose Group missed the sender's key WHISPER (its node joined the
// group before the Group was attached) asks for the key when it sees a
// record it cannot open, gets it, and reads from there on.
func TestKeyRequest(t *testing.T) {
	port := testBeaconPort()
	a, b := newNode(t, "alice", port, false), newNode(t, "bob", port, false)
	trusted := trustKeys(a, b)
	if err := b.n.Join(group); err != nil {
		t.Fatal(err)
	}
	a.attach(group, Options{Trusted: trusted})
	// Bob's application has no Group yet: alice's key goes nowhere.
	deadline := time.After(eventTimeout)
	for missed := false; !missed; {
		select {
		case ev := <-b.n.Events():
			w, ok := ev.(*zre.Whisper)
			missed = ok && w.Peer == a.n.UUID() && len(w.Content) == 4 && string(w.Content[0]) == WhisperPrefix
		case <-deadline:
			t.Fatal("no key WHISPER from alice")
		}
	}
	b.attach(group, Options{Trusted: trusted})
	rd, s := readStream(t, b, a)
	w, _ := a.g.NewWriter()
	part1, part2 := randomBytes(5000, 6), randomBytes(7000, 7)
	writeAll(t, w, part1)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	b.awaitSender(a)
	if b.g.Stats().KeyRequests == 0 {
		t.Fatalf("bob got alice's key without asking: %+v", b.g.Stats())
	}
	endStream(t, "bob", w, part2, rd, s)
	all := append(bytes.Clone(part1), part2...)
	if got := s.bytes(); !bytes.HasSuffix(got, part2) || !bytes.HasSuffix(all, got) {
		t.Fatalf("bob read %d octets, want a suffix of the stream that holds part 2", len(got))
	}
}

// The suites octet of a member's key WHISPER can make an automatic sender
// change suite, but not rotate for nothing: a copy of a key already held,
// resent a hundred times with octets that leave our suite out, rotates at
// most once (when that moves us to suite 1), and never when we are on
// suite 1 already, nor for a peer outside the group (found by review:
// every such WHISPER re-keyed the group).
func TestSuiteOctetCannotForceRotations(t *testing.T) {
	const suite1, suite2 = byte(1 << privgroup.SuiteChaCha20SHA256), byte(1 << privgroup.SuiteAESGCMBLAKE3)
	for _, tc := range []struct {
		name      string
		preferred privgroup.Suite
		octets    []byte // sent in turn, 100 WHISPERs in all
		rotations uint64
		suite     privgroup.Suite
		outside   bool // the member is not in the ZRE group (left, or never joined)
	}{
		{"on suite 2, from a peer outside the group", privgroup.SuiteAESGCMBLAKE3, []byte{0}, 0, privgroup.SuiteAESGCMBLAKE3, true},
		{"on suite 1, told nothing is fast", privgroup.SuiteChaCha20SHA256, []byte{0}, 0, privgroup.SuiteChaCha20SHA256, false},
		{"on suite 1, told only suite 2 is fast", privgroup.SuiteChaCha20SHA256, []byte{suite2}, 0, privgroup.SuiteChaCha20SHA256, false},
		{"on suite 2, told only suite 1 is fast", privgroup.SuiteAESGCMBLAKE3, []byte{suite1}, 1, privgroup.SuiteChaCha20SHA256, false},
		{"on suite 2, told one thing then another", privgroup.SuiteAESGCMBLAKE3, []byte{suite1, suite1 | suite2, 0}, 1, privgroup.SuiteChaCha20SHA256, false},
		{"on suite 2, told suite 2 only, then nothing, in turn", privgroup.SuiteAESGCMBLAKE3, []byte{suite2, 0}, 1, privgroup.SuiteChaCha20SHA256, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			all := byte(1<<privgroup.SuiteChaCha20SHA256 | 1<<privgroup.SuiteAESGCMBLAKE3)
			f := newFakeGroup(t, all, func(o *Options) { o.preferredSuite = func(int) privgroup.Suite { return tc.preferred } })
			g := f.g
			if g.Suite() != tc.preferred {
				t.Fatalf("suite %s before any WHISPER, want %s", g.Suite(), tc.preferred)
			}
			if tc.outside {
				g.node.(*fakeNode).setPeers([]uuid.UUID{f.x})
			}
			before := g.Stats()
			for i := range 100 {
				g.Handle(keyWhisper(f.p, f.key, tc.octets[i%len(tc.octets)]))
			}
			st := g.Stats()
			if st.KeysReceived != before.KeysReceived || st.KeysRefused != before.KeysRefused {
				t.Fatalf("copies of a key taken or refused: %+v", st)
			}
			if r := st.Rotations - before.Rotations; r != tc.rotations || g.Suite() != tc.suite {
				t.Fatalf("%d rotations, now on %s; want %d, on %s (%d key WHISPERs sent)", r, g.Suite(), tc.rotations, tc.suite, st.KeysSent-before.KeysSent)
			}
		})
	}
}

// Records under a member's key that another peer shouts (anyone can read
// the key id in clear) are dropped before the member's queue, so they
// cannot push its real records out (found by review: an untrusted peer
// filled a trusted sender's queue and its records were dropped).
func TestRelayedRecordsDropped(t *testing.T) {
	f := newFakeGroup(t, 0xff)
	junk := make([]byte, privgroup.Overhead+8) // a data record: type, key id, counter 0
	junk[0] = 0x11
	kid := f.s.KeyID()
	copy(junk[1:], kid[:])
	for range DefaultQueueRecords + 10 {
		f.g.Handle(&zre.Shout{EventHeader: zre.EventHeader{Peer: f.x}, Group: group, Content: [][]byte{junk}})
	}
	rec, err := f.s.Seal(nil, []byte("\x80\x00\x00\x00\x00\x00\x00\x00genuine"))
	if err != nil {
		t.Fatal(err)
	}
	f.g.Handle(&zre.Shout{EventHeader: zre.EventHeader{Peer: f.p}, Group: group, Content: [][]byte{rec}})
	if st := f.g.Stats(); st.QueueDropped != 0 || st.Records != 1 || st.Relayed != DefaultQueueRecords+10 {
		t.Fatalf("stats %+v: want the genuine record queued and every relayed one dropped", st)
	}
}

// A Reader of a sender that left before it was opened (its queue already
// gone) ends at once instead of blocking until the Group closes (found by
// review); a Reader opened before the LEAVE ends too. Once the sender
// joins again, a new Reader waits for its stream.
func TestReaderOfDepartedSender(t *testing.T) {
	f := newFakeGroup(t, 0xff)
	early, err := f.g.NewReader(f.x) // in the group, no key yet: it waits
	if err != nil {
		t.Fatal(err)
	}
	f.g.Handle(&zre.Leave{EventHeader: zre.EventHeader{Peer: f.p}, Group: group})
	f.g.Handle(&zre.Leave{EventHeader: zre.EventHeader{Peer: f.x}, Group: group})
	for who, rd := range map[string]func() (*Reader, error){
		"opened before x left": func() (*Reader, error) { return early, nil },
		"opened after p left":  func() (*Reader, error) { return f.g.NewReader(f.p) },
	} {
		r, err := rd()
		if err != nil {
			t.Fatalf("%s: NewReader: %v", who, err)
		}
		if _, err := r.Read(make([]byte, 10)); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("%s: Read: %v, want io.ErrUnexpectedEOF", who, err)
		}
		r.Close()
	}
	f.g.Handle(&zre.Join{EventHeader: zre.EventHeader{Peer: f.p}, Group: group})
	again, err := f.g.NewReader(f.p)
	if err != nil {
		t.Fatal(err)
	}
	again.Close() // a Reader that waits for the stream ends with Close
	if _, err := again.Read(make([]byte, 10)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read of a Reader of a sender that joined again, after Close: %v, want ErrClosed", err)
	}
}

// A Reader open while its sender leaves and joins again (its node
// restarted) does not make the sender gone when it closes: a new Reader
// waits for the sender's stream instead of ending at once (found with
// TestRestartedSenderReaderClosedLate: closed between the JOIN and the new
// key, the old Reader marked the sender gone, though it was back).
func TestReaderClosedAfterSenderCameBack(t *testing.T) {
	f := newFakeGroup(t, 0xff)
	for _, back := range []bool{false, true} {
		old, err := f.g.NewReader(f.p)
		if err != nil {
			t.Fatal(err)
		}
		f.g.Handle(&zre.Exit{EventHeader: zre.EventHeader{Peer: f.p}})
		if back {
			f.g.Handle(&zre.Join{EventHeader: zre.EventHeader{Peer: f.p}, Group: group})
		}
		old.Close()
		rd, err := f.g.NewReader(f.p)
		if err != nil {
			t.Fatal(err)
		}
		want := io.ErrUnexpectedEOF // it left: the stream is cut
		if back {
			rd.Close() // it waits for the stream: Close ends it
			want = ErrClosed
		}
		if _, err := rd.Read(make([]byte, 10)); !errors.Is(err, want) {
			t.Fatalf("came back %v: Read of a new Reader: %v, want %v", back, err, want)
		}
		rd.Close()
		f.g.Handle(keyWhisper(f.p, f.key, 0xff)) // p's key again, for the next round
	}
}

// A revocation during one long Write takes effect from the next chunk:
// Write holds the Group's sending lock one chunk at a time, so Recheck
// runs between chunks and everything after is sealed under a new key the
// revoked member lacks (found by review: Recheck, and every event, waited
// for the whole Write, all of it under the old key).
func TestRevocationDuringOneWrite(t *testing.T) {
	f := newFakeGroup(t, 0xff)
	node := f.g.node.(*fakeNode)
	if !contains(f.g.Members(), f.p) {
		t.Fatal("p does not hold our key")
	}
	var old privgroup.KeyID
	f.g.read(func() { old = f.g.send.s.KeyID() })
	rotations := f.g.Stats().Rotations
	var once sync.Once
	mark := -1 // shouts before the revocation
	f.g.opts.betweenWrites = func() {
		once.Do(func() {
			node.mu.Lock()
			mark = len(node.shouts)
			node.mu.Unlock()
			f.revoked.Store(true)
			f.g.Recheck()
		})
	}
	w, err := f.g.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 10*privgroup.DefaultChunkSize)); err != nil {
		t.Fatal(err)
	}
	if mark < 0 {
		t.Fatal("the revocation did not run during the Write")
	}
	var oldData, newData int
	node.mu.Lock()
	for _, c := range node.shouts[mark:] {
		if h, err := privgroup.ParseHeader(c[0]); err == nil && h.Kind == privgroup.KindData {
			if h.KeyID == old {
				oldData++
			} else {
				newData++
			}
		}
	}
	node.mu.Unlock()
	if oldData != 0 || newData < 9 || f.g.Stats().Rotations != rotations+1 || contains(f.g.Members(), f.p) {
		t.Fatalf("after the revocation: %d chunks under the revoked member's key, %d under a new one, %d rotations, members %v; want 0, at least 9, 1 and not p",
			oldData, newData, f.g.Stats().Rotations-rotations, f.g.Members())
	}
}

// A record that some peers' full queues refused is sent again only to the
// members holding our key among them, never to the others again, and never
// to a peer that cannot read it (found by review: the whole SHOUT was
// repeated, and an untrusted peer that stopped reading held up the
// stream). The Writer's records wait for it; a batch or rotation record
// goes on at once. The slow member's record waits once (one
// ShoutToContext, which the fake node tries again as the node's queue
// would take it), and counts once in SendRetries.
func TestShoutRetriesOnlyTheSlowMember(t *testing.T) {
	for _, tc := range []struct {
		name    string
		slow    func(*fakeGroup) uuid.UUID
		retries int
	}{
		{"a member holding our key", func(f *fakeGroup) uuid.UUID { return f.p }, 3},
		{"an untrusted peer", func(f *fakeGroup) uuid.UUID { return f.x }, 0},
	} {
		for _, path := range []string{"Writer", "batch"} {
			t.Run(tc.name+"/"+path, func(t *testing.T) {
				f := newFakeGroup(t, 0xff)
				node, slow := f.g.node.(*fakeNode), tc.slow(f)
				attempts := 0
				node.mu.Lock()
				node.refuse = func(peers []uuid.UUID) error {
					if attempts++; attempts > 3 {
						return nil
					}
					// The other peer fails first, for another reason: only the
					// slow member's own error decides (found by review).
					other := f.x
					if slow == f.x {
						other = f.p
					}
					gone := errors.New("zre: peer not connected")
					return &zre.ShoutError{Group: group, Peers: []uuid.UUID{other, slow},
						Errs: []error{gone, zmtp.ErrPeerNotResponding}, Err: gone}
				}
				shouts := len(node.shouts)
				node.mu.Unlock()
				var err error
				if path == "Writer" {
					err = f.g.writerShout([]byte("record"))
				} else {
					f.g.read(func() { err = f.g.shout([]byte("record")) })
				}
				if err != nil {
					t.Fatal(err)
				}
				waitFor(t, "the record sent to every member", func() bool {
					return f.g.is(func() bool { return len(f.g.send.pend) == 0 })
				})
				node.mu.Lock()
				defer node.mu.Unlock()
				if len(node.shouts)-shouts != 1 || len(node.shoutsTo) != tc.retries {
					t.Fatalf("%d SHOUTs to the group and %d to some members; want 1 and %d", len(node.shouts)-shouts, len(node.shoutsTo), tc.retries)
				}
				for _, p := range node.shoutsTo {
					if len(p) != 1 || p[0] != slow {
						t.Fatalf("a retry went to %v, want only %v", p, slow)
					}
				}
				if st := f.g.Stats(); st.SendRetries != uint64(min(tc.retries, 1)) || node.waits != min(tc.retries, 1) || st.Undelivered != 0 {
					t.Fatalf("SendRetries %d (%d waits), Undelivered %d; want %d and 0", st.SendRetries, node.waits, st.Undelivered, min(tc.retries, 1))
				}
			})
		}
	}
}

// failingRand is crypto/rand until fail is set.
type failingRand struct{ fail atomic.Bool }

func (f *failingRand) Read(p []byte) (int, error) {
	if f.fail.Load() {
		return 0, errors.New("entropy source failed")
	}
	return rand.Read(p)
}

// A rotation that a revocation needs and that fails (here the random
// source fails) fails closed: the Writer refuses to seal anything more
// under the key the revoked member holds, and goes on once a rotation
// succeeds (found by review: it was logged and the old key stayed in use).
func TestFailedRotationFailsClosed(t *testing.T) {
	fr := &failingRand{}
	f := newFakeGroup(t, 0xff, func(o *Options) { o.Crypto.Rand = fr })
	var old privgroup.KeyID
	f.g.read(func() { old = f.g.send.s.KeyID() })
	fr.fail.Store(true)
	f.revoked.Store(true)
	f.g.Recheck()
	w, err := f.g.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 100)); err == nil || !strings.Contains(err.Error(), "a rotation failed") {
		t.Fatalf("Write after a failed rotation: %v, want refused", err)
	}
	// Flush and Close, which would seal what is buffered, refuse too
	// (found by review: they sealed it under the old key).
	node := f.g.node.(*fakeNode)
	node.mu.Lock()
	shouts := len(node.shouts)
	node.mu.Unlock()
	if err := w.Flush(); err == nil || !strings.Contains(err.Error(), "a rotation failed") {
		t.Fatalf("Flush after a failed rotation: %v, want refused", err)
	}
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "a rotation failed") {
		t.Fatalf("Close after a failed rotation: %v, want refused", err)
	}
	node.mu.Lock()
	for _, c := range node.shouts[shouts:] {
		if h, err := privgroup.ParseHeader(c[0]); err == nil && h.KeyID == old {
			t.Fatalf("a %s record under the old key after the failed rotation", h.Kind)
		}
	}
	node.mu.Unlock()
	fr.fail.Store(false)
	if _, err := w.Write(make([]byte, 100)); err != nil {
		t.Fatalf("Write once rotations work again: %v", err)
	}
	var now privgroup.KeyID
	f.g.read(func() { now = f.g.send.s.KeyID() })
	if now == old || contains(f.g.Members(), f.p) {
		t.Fatalf("key %x (was %x), members %v: want a new key without the revoked member", now, old, f.g.Members())
	}
}

// While a Write waits for a member whose queue is full, the Group still
// handles events: the Writer lets go of its lock between tries, so a JOIN,
// a LEAVE or a revocation does not wait up to SendTimeout behind it.
func TestWriterRetryLetsEventsThrough(t *testing.T) {
	f, slow, _, wrote := writeToSlowMember(t)
	handled := make(chan error, 1)
	go func() {
		f.g.Handle(&zre.Join{EventHeader: zre.EventHeader{Peer: f.x}, Group: group})
		handled <- nil
	}()
	awaitErr(t, "a JOIN while a Write retries for a slow member", handled)
	slow.released.Store(true)
	if err := awaitErr(t, "the Write, once the member took the record", wrote); err != nil {
		t.Fatal(err)
	}
	if st := f.g.Stats(); st.SendRetries == 0 || st.Passed == 0 {
		t.Fatalf("stats %+v: want retries, and the untrusted peer's JOIN passed over", st)
	}
}

// A member removed while a record waits for it (its queue was full) is not
// sent that record any more: each retry goes only to those still members.
func TestRetryDropsARemovedMember(t *testing.T) {
	f, _, _, wrote := writeToSlowMember(t) // never released
	f.revoked.Store(true)
	f.g.Recheck() // runs while the Writer waits between tries
	node := f.g.node.(*fakeNode)
	node.mu.Lock()
	mark := len(node.shoutsTo)
	node.mu.Unlock()
	if err := awaitErr(t, "the Write, once the slow member was removed", wrote); err != nil {
		t.Fatal(err)
	}
	node.mu.Lock()
	defer node.mu.Unlock()
	for _, peers := range node.shoutsTo[mark:] {
		if slices.Contains(peers, f.p) {
			t.Fatalf("a retry after the revocation went to the revoked member: %v", peers)
		}
	}
}

// Handle never waits for a member whose queue is full (it used to: a
// rotation's record and the members' new keys were retried with the
// sending lock held, so a LEAVE, a JOIN or a revocation held up the
// application's event loop for up to SendTimeout behind one slow member).
// The new key waits in the Group until the member takes it, and the
// Writer's data of the new epoch waits for the key, so the member can
// read them.
func TestHandleDoesNotWaitForASlowMember(t *testing.T) {
	f := newFakeGroup(t, 0xff, func(o *Options) {
		o.SendTimeout = 10 * time.Minute
		o.Trusted = func(uuid.UUID, curve.PublicKey) bool { return true } // x too
	})
	if m := f.g.Members(); len(m) != 2 {
		t.Fatalf("members %v, want p and x", m)
	}
	node := f.g.node.(*fakeNode)
	slow := newSlowMember(f)
	epoch := f.g.Epoch()
	node.setPeers([]uuid.UUID{f.p})
	node.mu.Lock()
	mark := len(node.sent)
	node.mu.Unlock()
	handled := make(chan error, 1)
	go func() {
		f.g.Handle(&zre.Leave{EventHeader: zre.EventHeader{Peer: f.x}, Group: group})
		handled <- nil
	}()
	awaitErr(t, "a LEAVE while a member's queue is full", handled)
	if f.g.Epoch() == epoch {
		t.Fatal("no rotation after the LEAVE")
	}
	if m := f.g.Members(); len(m) != 1 || m[0] != f.p {
		t.Fatalf("members %v while p's new key waits, want p alone", m)
	}
	node.mu.Lock()
	for _, e := range node.sent[mark:] {
		if e == "whisper "+f.p.String() {
			t.Fatal("p took a key while its queue was full")
		}
	}
	node.mu.Unlock()
	w, err := f.g.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	wrote := make(chan error, 1)
	go func() { _, err := w.Write(make([]byte, privgroup.DefaultChunkSize)); wrote <- err }()
	slow.await(t, 20) // the key refused twenty more times
	select {
	case err := <-wrote:
		t.Fatalf("the Write ended (%v) while the member's key still waited", err)
	default:
	}
	slow.released.Store(true)
	if err := awaitErr(t, "the Write, once the member took its key", wrote); err != nil {
		t.Fatal(err)
	}
	if !contains(f.g.Members(), f.p) || contains(f.g.Members(), f.x) {
		t.Fatalf("members %v, want p alone", f.g.Members())
	}
	node.mu.Lock()
	defer node.mu.Unlock()
	shout := 0
	for _, e := range node.sent[:mark] {
		if strings.HasPrefix(e, "shout") {
			shout++
		}
	}
	keyAt := -1
	for i, e := range node.sent[mark:] {
		switch e {
		case "whisper " + f.x.String():
			t.Fatal("x, which left, was given the new key")
		case "whisper " + f.p.String():
			keyAt = i
		case "shout", "shout to nobody": // (nobody: it did not go out)
			c := node.shouts[shout]
			shout++
			if h, err := privgroup.ParseHeader(c[0]); err == nil && h.Kind == privgroup.KindData && keyAt < 0 && e == "shout" {
				t.Fatalf("data of the new epoch went out (log %q) before p's key", node.sent[mark:])
			}
		}
	}
	if keyAt < 0 {
		t.Fatalf("p never got the new key: log %q", node.sent[mark:])
	}
}

// A key that a member's full queue refuses until SendTimeout is dropped and
// counted (Stats.Undelivered); the member is not one (its Reader will
// report what it cannot open), and the Writer does not wait for it.
func TestUndeliveredKeyDropped(t *testing.T) {
	f := newFakeGroup(t, 0xff, func(o *Options) { o.SendTimeout = 50 * time.Millisecond })
	newSlowMember(f) // never released
	if err := f.g.Rotate(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the key given up", func() bool { return f.g.Stats().Undelivered == 1 })
	var waiting int
	f.g.read(func() { waiting = len(f.g.send.pend) })
	if waiting != 0 || contains(f.g.Members(), f.p) {
		t.Fatalf("%d sends waiting, members %v; want none", waiting, f.g.Members())
	}
	w, err := f.g.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// slowMember makes f's node refuse every record and WHISPER for member p,
// as a full queue does, until released is set; refused is closed at the
// first refusal and tries counts the refusals.
type slowMember struct {
	released atomic.Bool
	refused  chan struct{}
	tries    atomic.Int64
}

func newSlowMember(f *fakeGroup) *slowMember {
	s := &slowMember{refused: make(chan struct{})}
	var once sync.Once
	node := f.g.node.(*fakeNode)
	node.mu.Lock()
	defer node.mu.Unlock()
	node.refuse = func(peers []uuid.UUID) error {
		if s.released.Load() || (peers != nil && !slices.Contains(peers, f.p)) {
			return nil // (a ShoutTo of others: p's queue is not asked)
		}
		s.tries.Add(1)
		once.Do(func() { close(s.refused) })
		return &zre.ShoutError{Group: group, Peers: []uuid.UUID{f.p}, Errs: []error{zmtp.ErrPeerNotResponding}, Err: zmtp.ErrPeerNotResponding}
	}
	node.refuseWhisper = func(peer uuid.UUID) error {
		if peer != f.p || s.released.Load() {
			return nil
		}
		s.tries.Add(1)
		once.Do(func() { close(s.refused) })
		return fmt.Errorf("zre: whisper: %w", zmtp.ErrPeerNotResponding)
	}
	return s
}

// writeToSlowMember starts a Write of one chunk in a fake group whose
// member p is slow, and returns once the Writer waits for p (the Write's
// result comes on wrote).
func writeToSlowMember(t *testing.T) (f *fakeGroup, slow *slowMember, w *Writer, wrote chan error) {
	t.Helper()
	f = newFakeGroup(t, 0xff, func(o *Options) { o.SendTimeout = 10 * time.Minute })
	slow = newSlowMember(f)
	w, err := f.g.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	wrote = make(chan error, 1)
	go func() { _, err := w.Write(make([]byte, privgroup.DefaultChunkSize)); wrote <- err }()
	slow.await(t, 0)
	return f, slow, w, wrote
}

// awaitErr waits for what to end, with a deadline, and returns its error.
func awaitErr(t *testing.T, what string, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(eventTimeout):
		t.Fatalf("%s did not end within %v", what, eventTimeout)
		return nil
	}
}

// await waits until the Writer has been refused n more times, so that it
// waited, with the Group's lock let go, n times.
func (s *slowMember) await(t *testing.T, n int64) {
	t.Helper()
	select {
	case <-s.refused:
	case <-time.After(eventTimeout):
		t.Fatal("the Writer never sent")
	}
	want := s.tries.Load() + n
	waitFor(t, "the Writer retrying", func() bool { return s.tries.Load() >= want })
}

// A Close (or Flush) from another goroutine while a Write waits for a slow
// member waits for that Write: the chunk in flight is sent once, and the
// end follows it (found by review: Close sealed the same chunk again,
// under the next counter, while the Writer had let go of the Group).
func TestWriterCloseWaitsForARetryingWrite(t *testing.T) {
	f, slow, w, wrote := writeToSlowMember(t)
	closed := make(chan error, 1)
	go func() { closed <- w.Close() }()
	slow.await(t, 20) // twenty waits in which Close could have cut in
	slow.released.Store(true)
	for what, ch := range map[string]chan error{"Write": wrote, "Close": closed} {
		if err := awaitErr(t, what, ch); err != nil {
			t.Fatal(err)
		}
	}
	node := f.g.node.(*fakeNode)
	node.mu.Lock()
	defer node.mu.Unlock()
	var sizes []int
	for _, c := range node.shouts {
		if h, err := privgroup.ParseHeader(c[0]); err == nil && h.Kind == privgroup.KindData {
			sizes = append(sizes, len(c[0])-privgroup.Overhead-privgroup.ChunkHeaderSize)
		}
	}
	if len(sizes) != 2 || sizes[0] != privgroup.DefaultChunkSize || sizes[1] != 0 {
		t.Fatalf("data records of %v octets; want the chunk once, then the empty end", sizes)
	}
}

// While Close waits for a slow member to take the end of the stream, no
// other Writer opens (found by review: NewWriter succeeded, and two
// streams shared one Sender).
func TestNewWriterWaitsForAClosingWriter(t *testing.T) {
	f := newFakeGroup(t, 0xff, func(o *Options) { o.SendTimeout = 10 * time.Minute })
	w, err := f.g.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("the end is still to come")); err != nil { // buffered
		t.Fatal(err)
	}
	slow := newSlowMember(f)
	closed := make(chan error, 1)
	go func() { closed <- w.Close() }()
	slow.await(t, 1)
	if _, err := f.g.NewWriter(); !errors.Is(err, ErrBusy) {
		t.Fatalf("NewWriter while the last Writer's end waits: %v, want ErrBusy", err)
	}
	slow.released.Store(true)
	if err := awaitErr(t, "Close", closed); err != nil {
		t.Fatal(err)
	}
	if w2, err := f.g.NewWriter(); err != nil {
		t.Fatalf("NewWriter after Close: %v", err)
	} else {
		w2.Close()
	}
}

// firstData returns the first data record the fake node was asked to
// SHOUT to the group (refused or not).
func firstData(t *testing.T, node *fakeNode) []byte {
	t.Helper()
	node.mu.Lock()
	defer node.mu.Unlock()
	for _, c := range node.shouts {
		if h, err := privgroup.ParseHeader(c[0]); err == nil && h.Kind == privgroup.KindData {
			return bytes.Clone(c[0])
		}
	}
	t.Fatal("no data record shouted")
	return nil
}

// A rotation while a Write waits for a slow member does not make that
// member lose the record: its new key waits (its queue is full), so it is
// not among those holding the current key, but it holds the one the record
// is sealed under, and the retries still go to it (found by review).
func TestRotationWhileWriteWaitsKeepsTheRecord(t *testing.T) {
	f, slow, _, wrote := writeToSlowMember(t)
	node := f.g.node.(*fakeNode)
	rec := firstData(t, node)
	// The rotation policy, another member's LEAVE or Rotate: all the same.
	if err := f.g.Rotate(); err != nil {
		t.Fatal(err)
	}
	slow.await(t, 20)
	slow.released.Store(true)
	if err := awaitErr(t, "the Write", wrote); err != nil {
		t.Fatal(err)
	}
	// Let the Group's goroutine deliver what waits (p's key, records).
	waitFor(t, "nothing waiting", func() bool {
		return f.g.is(func() bool { return len(f.g.send.pend) == 0 })
	})
	node.mu.Lock()
	defer node.mu.Unlock()
	for i := range node.shoutsTo {
		if slices.Contains(node.shoutsTo[i], f.p) && bytes.Equal(node.shoutsToContent[i][0], rec) && node.shoutsToErr[i] == nil {
			return
		}
	}
	t.Fatalf("p never got the data record its queue refused (a rotation happened while the Writer waited for it); stats %+v", f.g.Stats())
}

// While a Writer waits for a member's key, each send that waits for the
// member (the key, then the chunk behind it: one WhisperContext or
// ShoutToContext each) counts once in Stats.SendRetries, however long it
// waits (found by review: the Writer's wait counted it a second time).
func TestSendRetriesCountedOnceWhileAKeyWaits(t *testing.T) {
	f := newFakeGroup(t, 0xff, func(o *Options) { o.SendTimeout = 10 * time.Minute })
	slow := newSlowMember(f)
	if err := f.g.Rotate(); err != nil { // p's new key waits
		t.Fatal(err)
	}
	w, err := f.g.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	wrote := make(chan error, 1)
	go func() { _, err := w.Write(make([]byte, privgroup.DefaultChunkSize)); wrote <- err }()
	slow.await(t, 100)
	slow.released.Store(true)
	if err := awaitErr(t, "the Write", wrote); err != nil {
		t.Fatal(err)
	}
	node := f.g.node.(*fakeNode)
	node.mu.Lock()
	waits := node.waits
	node.mu.Unlock()
	if st := f.g.Stats(); st.SendRetries != uint64(waits) || waits < 2 {
		t.Fatalf("SendRetries %d for %d sends that waited (the key and the chunk), refused %d times", st.SendRetries, waits, slow.tries.Load())
	}
}

// Behind a slow member's waiting record, the keys of epochs rotated past
// are dropped at once (found by review: they piled up until the record's
// deadline, one per rotation, and the Writer waited for them).
func TestStaleKeysDroppedBehindAWaitingRecord(t *testing.T) {
	f := newFakeGroup(t, 0xff, func(o *Options) { o.SendTimeout = 10 * time.Minute })
	w, err := f.g.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 100)); err != nil { // pending
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, privgroup.DefaultChunkSize)); err != nil { // pending, unbatched
		t.Fatal(err)
	}
	slow := newSlowMember(f)
	const n = 200
	for range n {
		if err := f.g.Rotate(); err != nil {
			t.Fatal(err)
		}
	}
	slow.await(t, 20) // the Group's goroutine flushed many times
	waiting, stale := 0, 0
	f.g.read(func() {
		for _, ob := range f.g.send.pend {
			waiting += len(ob.items)
			for _, it := range ob.items {
				if it.key != nil && it.epoch != f.g.send.s.Epoch() {
					stale++
				}
			}
		}
	})
	if stale != 0 {
		t.Fatalf("%d sends waiting, %d of them keys of epochs rotated past", waiting, stale)
	}
}

// A sender that leaves while our Reader of it is open and joins again
// without restarting (same Sender, same key) has its records queued for a
// new Reader; the old one ends (found by review: they went to the old
// Reader's closed queue and were dropped, with no key request, and no new
// Reader could open until the old one closed).
func TestSenderBackWithoutRestartWhileReaderOpen(t *testing.T) {
	f := newFakeGroup(t, 0xff)
	old, err := f.g.NewReader(f.p)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	hdr := zre.EventHeader{Peer: f.p}
	f.g.Handle(&zre.Leave{EventHeader: hdr, Group: group})
	f.g.Handle(&zre.Join{EventHeader: hdr, Group: group})
	rec, err := f.s.Seal(nil, make([]byte, 8+10))
	if err != nil {
		t.Fatal(err)
	}
	f.g.Handle(&zre.Shout{EventHeader: hdr, Group: group, Content: [][]byte{rec}})
	_, nerr := f.g.NewReader(f.p)
	if st := f.g.Stats(); st.QueueDropped != 0 || st.Records != 1 || errors.Is(nerr, ErrBusy) {
		t.Fatalf("the back sender's record: stats %+v, a new Reader: %v; want it queued for a Reader", st, nerr)
	}
}

// Any callback may call Recheck (it waits only for the Group's goroutine,
// which waits for no peer, and not at all from the trust decision, which
// runs on that goroutine): the trust decision, and trust.Options.OnRevoked, wherever the store
// runs it (a revocation applied by the node runs it on the node's
// goroutine: Recheck used to deadlock there). OnOpaque runs on Handle's
// caller and may call any method of the Group.
func TestRecheckFromCallbacks(t *testing.T) {
	var gp atomic.Pointer[Group]
	var opaque atomic.Int64
	f := newFakeGroup(t, 0xff, func(o *Options) {
		trusted := o.Trusted
		o.Trusted = func(id uuid.UUID, k curve.PublicKey) bool {
			if g := gp.Load(); g != nil {
				g.Recheck()
			}
			return trusted(id, k)
		}
		o.OnOpaque = func(uuid.UUID, []byte) {
			if g := gp.Load(); g != nil && !contains(g.Members(), uuid.Nil) {
				g.Recheck()
				opaque.Add(1)
			}
		}
	})
	gp.Store(f.g)
	done := make(chan error, 1)
	go func() {
		f.g.Handle(&zre.Join{EventHeader: zre.EventHeader{Peer: f.p}, Group: group})
		if err := f.g.Rotate(); err != nil {
			done <- err
			return
		}
		f.revoked.Store(true)
		f.g.Recheck()
		rec, err := f.s.Seal(nil, make([]byte, 8+10))
		if err == nil {
			f.g.Handle(&zre.Shout{EventHeader: zre.EventHeader{Peer: f.p}, Group: group, Content: [][]byte{rec}})
		}
		done <- err
	}()
	if err := awaitErr(t, "calls from the callbacks", done); err != nil {
		t.Fatal(err)
	}
	if contains(f.g.Members(), f.p) || contains(f.g.Senders(), f.p) || opaque.Load() != 1 {
		t.Fatalf("after the revocation: members %v, senders %v, %d opaque records (want p in neither, 1)", f.g.Members(), f.g.Senders(), opaque.Load())
	}

	// Secure nodes: the store's OnRevoked calls Recheck, and nothing else.
	port := testBeaconPort()
	a, b := newNode(t, "alice", port, false), newNode(t, "bob", port, false)
	var ga atomic.Pointer[Group]
	st, err := trust.Open(t.TempDir(), trust.Options{OnRevoked: func([]trust.Record) {
		if g := ga.Load(); g != nil {
			g.Recheck()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.MarkVerified(context.Background(), b.sk.Public(), b.n.UUID(), b.name, "test", nil); err != nil {
		t.Fatal(err)
	}
	a.attach(group, Options{Trust: st, RecheckInterval: time.Hour})
	ga.Store(a.g)
	b.attach(group, Options{Trusted: trustKeys(a, b)})
	b.awaitSender(a)
	waitFor(t, "bob a member", func() bool { return contains(a.g.Members(), b.n.UUID()) })
	epoch := a.g.Epoch()
	if _, err := st.Revoke(context.Background(), b.sk.Public(), "test"); err != nil {
		t.Fatal(err)
	}
	// OnRevoked runs on a goroutine of the store's, after Revoke returned.
	waitFor(t, "bob removed and a rotation after OnRevoked", func() bool {
		return !contains(a.g.Members(), b.n.UUID()) && a.g.Epoch() != epoch
	})
}

// After an OVERFLOW (the node dropped membership events), the Group
// follows the group's members as the node has them: a member gone meanwhile
// is removed with a rotation (its stream ends), one that joined gets our
// key.
func TestOverflowFollowsMembers(t *testing.T) {
	f := newFakeGroup(t, 0xff, func(o *Options) { o.Trusted = func(uuid.UUID, curve.PublicKey) bool { return true } })
	node := f.g.node.(*fakeNode)
	if m := f.g.Members(); len(m) != 2 {
		t.Fatalf("members %v, want p and x", m)
	}
	epoch := f.g.Epoch()
	node.setPeers([]uuid.UUID{f.x}) // p left; its LEAVE was dropped
	f.g.Handle(&zre.Overflow{})
	if m := f.g.Members(); len(m) != 1 || m[0] != f.x || f.g.Epoch() == epoch || contains(f.g.Senders(), f.p) {
		t.Fatalf("after p left: members %v, senders %v, epoch %d (was %d)", f.g.Members(), f.g.Senders(), f.g.Epoch(), epoch)
	}
	node.setPeers([]uuid.UUID{f.x, f.p}) // p back; its JOIN was dropped
	f.g.Handle(&zre.Overflow{})
	if !contains(f.g.Members(), f.p) {
		t.Fatalf("after p joined: members %v", f.g.Members())
	}
}
