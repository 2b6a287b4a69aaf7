package zre

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/zmtp"
	"github.com/zyre-go/zyre/zre/zremsg"
)

// queueLink is a link with a bounded queue, as a zmtp.Dealer's: Send
// refuses when it is full, SendContext waits for room. A reader takes the
// frames out.
type queueLink struct {
	q      chan [][]byte
	done   chan struct{}
	closed sync.Once
}

func newQueueLink(size int) *queueLink {
	return &queueLink{q: make(chan [][]byte, size), done: make(chan struct{})}
}

func (l *queueLink) Send(frames ...[]byte) error {
	select {
	case <-l.done:
		return zmtp.ErrClosed
	default:
	}
	select {
	case l.q <- frames:
		return nil
	default:
		return fmt.Errorf("queue link: %w", zmtp.ErrPeerNotResponding)
	}
}

func (l *queueLink) SendContext(ctx context.Context, frames ...[]byte) error {
	select {
	case <-l.done:
		return zmtp.ErrClosed
	default:
	}
	select {
	case l.q <- frames:
		return nil
	case <-l.done:
		return zmtp.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *queueLink) Close() error { l.closed.Do(func() { close(l.done) }); return nil }

// queueHarness is a harness whose links to B are queueLinks.
func queueHarness(t *testing.T, size int) (*harness, *queueLink) {
	h := newHarness(t)
	l := newQueueLink(size)
	h.st.dial = func(string) (link, error) { return l, nil }
	h.enterB("g")
	if m := <-l.q; mustDecode(t, m).ID != zremsg.MsgHello {
		t.Fatal("first message is not our HELLO")
	}
	return h, l
}

func mustDecode(t *testing.T, frames [][]byte) *zremsg.Msg {
	t.Helper()
	m, err := zremsg.Decode(frames)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Many goroutines whisper and shout with and without waiting while the
// loop sends PING-OKs and JOINs: every message arrives once, with
// consecutive sequence numbers, and nothing waits for the loop.
func TestConcurrentSendersKeepSequence(t *testing.T) {
	h, l := queueHarness(t, 8)
	const senders, each = 4, 200
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()

	got := make(chan []*zremsg.Msg)
	go func() { // the peer: reads until it had everything
		var ms []*zremsg.Msg
		want := senders*each + 50 + 20
		for len(ms) < want {
			select {
			case f := <-l.q:
				m, err := zremsg.Decode(f)
				if err != nil {
					t.Error(err)
				}
				ms = append(ms, m)
				if len(ms)%16 == 0 {
					runtime.Gosched() // a slow reader: queues fill
				}
			case <-ctx.Done():
				got <- ms
				return
			}
		}
		got <- ms
	}()
	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() {
			for j := range each {
				var err error
				switch i % 2 {
				case 0:
					err = h.st.dir.whisper(ctx, &h.stats, uuidB, [][]byte{[]byte("w")})
				default:
					err = h.st.dir.shout(ctx, &h.stats, "g", nil, [][]byte{[]byte("s")})
				}
				if err != nil {
					t.Errorf("sender %d, message %d: %v", i, j, err)
					return
				}
			}
		})
	}
	// Meanwhile the loop (this goroutine): 50 PINGs from B get PING-OKs,
	// and we join 20 groups. None of this may wait for the senders.
	for i := range 50 {
		h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgPing, Sequence: uint16(2 + i)})
		if i < 20 {
			if err := h.st.join(fmt.Sprintf("j%d", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	wg.Wait()
	// Loop messages still waiting for room when the last sender was done
	// go out at the loop's next reap.
	var ms []*zremsg.Msg
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for received := false; !received; {
		select {
		case ms = <-got:
			received = true
		case <-tick.C:
			h.st.reap(h.now)
		}
	}
	if len(ms) != senders*each+70 {
		t.Fatalf("peer got %d messages, want %d", len(ms), senders*each+70)
	}
	var pingOKs, joins int
	for i, m := range ms {
		if m.Sequence != uint16(i+2) {
			t.Fatalf("message %d (%s) has sequence %d, want %d", i, m.ID, m.Sequence, i+2)
		}
		switch m.ID {
		case zremsg.MsgPingOK:
			pingOKs++
		case zremsg.MsgJoin:
			joins++
			if m.Status != uint8(joins) {
				t.Fatalf("JOIN %d with status %d: out of order", joins, m.Status)
			}
		}
	}
	if pingOKs != 50 || joins != 20 {
		t.Fatalf("%d PING-OKs, %d JOINs, want 50 and 20", pingOKs, joins)
	}
}

// WhisperContext waits while the queue is full and gives up at ctx's end
// with an error that says both; Whisper fails at once meanwhile; the loop's
// messages wait behind the waiting sender and go out in order.
func TestWhisperContextFullQueue(t *testing.T) {
	h, l := queueHarness(t, 2)
	if err := h.st.whisper(uuidB, [][]byte{[]byte("1")}); err != nil {
		t.Fatal(err)
	}
	if err := h.st.whisper(uuidB, [][]byte{[]byte("2")}); err != nil {
		t.Fatal(err)
	}
	err := h.st.whisper(uuidB, [][]byte{[]byte("3")})
	if !errors.Is(err, zmtp.ErrPeerNotResponding) {
		t.Fatalf("whisper to a full queue: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	err = h.st.dir.whisper(ctx, &h.stats, uuidB, [][]byte{[]byte("3")})
	cancel()
	if !errors.Is(err, zmtp.ErrPeerNotResponding) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WhisperContext past its deadline: %v", err)
	}

	// A waiting sender: the loop's PING-OK queues behind it, a Whisper
	// fails at once.
	ctx, cancel = context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.st.dir.whisper(ctx, &h.stats, uuidB, [][]byte{[]byte("3")}) }()
	p := h.st.peers[uuidB]
	for p.tx.waiting.Load() == 0 {
		runtime.Gosched()
	}
	h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgPing, Sequence: 2}) // the loop does not wait
	if err := h.st.whisper(uuidB, [][]byte{[]byte("x")}); !errors.Is(err, zmtp.ErrPeerNotResponding) {
		t.Fatalf("Whisper while a sender waits: %v", err)
	}
	var seqs []uint16
	var ids []zremsg.MsgID
	for len(seqs) < 3 { // room: the waiting one goes
		m := mustDecode(t, <-l.q)
		seqs, ids = append(seqs, m.Sequence), append(ids, m.ID)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The waiting sender sent the PING-OK after its WHISPER if the queue
	// had room by then; if not, the loop's next reap does.
	h.st.reap(h.now)
	for len(seqs) < 4 {
		m := mustDecode(t, <-l.q)
		seqs, ids = append(seqs, m.Sequence), append(ids, m.ID)
	}
	if fmt.Sprint(seqs) != "[2 3 4 5]" || ids[2] != zremsg.MsgWhisper || ids[3] != zremsg.MsgPingOK {
		t.Fatalf("sent %v %v, want sequences 2 to 5, the waiting WHISPER before the PING-OK", seqs, ids)
	}
}

// A peer removed while a sender waits for it: the wait ends with
// ErrUnknownPeer (its link is closed); sends after that fail at once.
func TestWhisperContextPeerGone(t *testing.T) {
	h, l := queueHarness(t, 1)
	if err := h.st.whisper(uuidB, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.st.dir.whisper(ctx, &h.stats, uuidB, nil) }()
	for h.st.peers[uuidB].tx.waiting.Load() == 0 {
		runtime.Gosched()
	}
	h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgGoodbye, Sequence: 2})
	if err := <-done; err == nil || ctx.Err() != nil {
		t.Fatalf("wait for a peer that left: %v (ctx %v)", err, ctx.Err())
	}
	if err := h.st.dir.whisper(ctx, &h.stats, uuidB, nil); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("whisper to a peer that left: %v", err)
	}
	_ = l
}

// ShoutContext gives the SHOUT to peers with room at once and waits for
// the full one; at ctx's end the ShoutError names only the full one.
func TestShoutContextWaitsForFullPeers(t *testing.T) {
	h := newHarness(t)
	lb, lc := newQueueLink(1), newQueueLink(100)
	h.st.dial = func(ep string) (link, error) {
		if ep == epB {
			return lb, nil
		}
		return lc, nil
	}
	h.enterB("g")
	const epC = "tcp://127.0.0.1:50003"
	uuidC := uuid.MustParse("22222222-3333-4444-5555-666666666666")
	h.recv(uuidC, &zremsg.Msg{ID: zremsg.MsgHello, Sequence: 1, Endpoint: epC, Groups: []string{"g"}, Status: 1, Name: "node-c"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	err := h.st.dir.shout(ctx, &h.stats, "g", nil, [][]byte{[]byte("s")}) // B's queue holds our HELLO
	var se *ShoutError
	if !errors.As(err, &se) || len(se.Peers) != 1 || se.Peers[0] != uuidB || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("shout with B full: %v", err)
	}
	if len(lc.q) != 2 { // HELLO, SHOUT
		t.Fatalf("C has %d messages, want 2", len(lc.q))
	}
	<-lb.q // B reads: room
	ctx2, cancel2 := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel2()
	if err := h.st.dir.shout(ctx2, &h.stats, "g", se.Peers, [][]byte{[]byte("s")}); err != nil {
		t.Fatal(err)
	}
	if m := mustDecode(t, <-lb.q); m.ID != zremsg.MsgShout || m.Sequence != 2 || len(lc.q) != 2 {
		t.Fatalf("retry to B: %+v, C has %d", m, len(lc.q))
	}
}

// A node whose application reads nothing while a peer churns through
// JOIN/LEAVE: its membership events stop at twice EventQueue and one
// Overflow says so; the peers and groups it reads are current all the
// same (they do not wait for the events), so the application catches up
// by re-reading them.
func TestNodeOverflowThenReread(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	a := startNode(t, Config{Name: "a", Beacon: BeaconConfig{Disabled: true}})
	b := startNode(t, Config{Name: "b", Beacon: BeaconConfig{Disabled: true}, EventQueue: 5})
	if err := a.ConnectPeer(ctx, b.Endpoint(), b.UUID()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(eventTimeout)
	for len(a.Peers()) == 0 || len(b.Peers()) == 0 { // b's events unread
		if time.Now().After(deadline) {
			t.Fatal("nodes did not meet")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := range 30 {
		g := fmt.Sprintf("g%d", i)
		if err := a.Join(g); err != nil {
			t.Fatal(err)
		}
		if err := a.Leave(g); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Join("final"); err != nil {
		t.Fatal(err)
	}
	for len(b.PeersByGroup("final")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("b does not see a in final (stats %+v)", b.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := b.PeerGroups(); len(got) != 1 || got[0] != "final" {
		t.Fatalf("b reads groups %v, want [final]", got)
	}
	// ENTER, 30 × (JOIN, LEAVE), JOIN final: 62, of which 2 × EventQueue
	// are kept.
	if st := b.Stats(); st.MembershipDropped != 62-10 || st.EventsDropped != 62-10 {
		t.Fatalf("dropped %d membership events (%d in all), want 52: %+v", st.MembershipDropped, st.EventsDropped, st)
	}
	var n, overflows int
	for n < 10+1 {
		select {
		case e := <-b.Events():
			n++
			if _, ok := e.(*Overflow); ok {
				overflows++
				if e.PeerUUID() != b.UUID() {
					t.Fatalf("Overflow names %s, want b", e.PeerUUID())
				}
			}
		case <-ctx.Done():
			t.Fatalf("got %d events, want 11 (10 and the Overflow)", n)
		}
	}
	select {
	case e := <-b.Events():
		t.Fatalf("event %s past the bound", e.Type())
	default:
	}
	if overflows != 1 {
		t.Fatalf("%d Overflow events, want 1", overflows)
	}
}

// A peer that entered while our dial to it failed gets a link on its next
// beacon, and the application can then send to it, in sequence after our
// new HELLO.
func TestWhisperAfterLateLink(t *testing.T) {
	h := newHarness(t)
	var l *fakeLink
	h.st.dial = func(ep string) (link, error) {
		if l == nil {
			l = &fakeLink{endpoint: ep} // (the next dial succeeds)
			return nil, errors.New("dial failed")
		}
		return l, nil
	}
	h.recv(uuidB, helloB(1, 0))
	h.wantEvents("ENTER node-b")
	if err := h.st.whisper(uuidB, nil); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("whisper without a link: %v", err)
	}
	h.beacon(uuidB, 50002, "127.0.0.1:5670")
	if err := h.st.whisper(uuidB, [][]byte{[]byte("hi")}); err != nil {
		t.Fatal(err)
	}
	if len(l.sent) != 2 || l.sent[0].ID != zremsg.MsgHello || l.sent[1].ID != zremsg.MsgWhisper || l.sent[1].Sequence != 2 {
		t.Fatalf("sent %+v", l.sent)
	}
}
