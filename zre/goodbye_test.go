package zre

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/zmtp"
	"github.com/zyre-go/zyre/zre/zremsg"
)

// TestStateGoodbyeOnlyToPeersThatKnowIt: at Stop, a peer whose HELLO
// carried HeaderGoodbye gets a GOODBYE, one whose HELLO did not (pyre,
// gyre, the C reference outside gossip mode) gets nothing more.
func TestStateGoodbyeOnlyToPeersThatKnowIt(t *testing.T) {
	tests := []struct {
		name    string
		headers []Header
		want    bool
	}{
		{"no header", []Header{{Key: "X-ROLE", Value: "tester"}}, false},
		{"header 1", []Header{{Key: "X-ROLE", Value: "tester"}, {Key: HeaderGoodbye, Value: "1"}}, true},
		{"header other value", []Header{{Key: HeaderGoodbye, Value: "0"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgHello, Sequence: 1, Endpoint: epB, Name: "node-b", Headers: tt.headers})
			h.wantEvents("ENTER node-b")
			l := h.link(epB)
			sent := len(l.sent)
			h.st.stop()
			got := len(l.sent) > sent && l.sent[len(l.sent)-1].ID == zremsg.MsgGoodbye
			if got != tt.want || len(l.sent) > sent+1 {
				t.Fatalf("GOODBYE sent: %v, want %v (sent %+v)", got, tt.want, l.sent[sent:])
			}
		})
	}
}

// TestStateHelloAnnouncesGoodbyeOnce: a configuration that has the header
// already does not send it twice (a HELLO with a duplicate header would be
// refused by the encoder).
func TestStateHelloAnnouncesGoodbyeOnce(t *testing.T) {
	h := newHarness(t)
	h.cfg.Headers = []Header{{Key: HeaderGoodbye, Value: "1"}, {Key: "X-K", Value: "v"}}
	m := h.st.hello()
	if len(m.Headers) != 2 || m.Headers[0] != (Header{Key: HeaderGoodbye, Value: "1"}) {
		t.Fatalf("headers %q", m.Headers)
	}
	if _, err := m.Frames(); err != nil {
		t.Fatal(err)
	}
}

// TestStopGoodbyeOverTheWire: a peer that does not know GOODBYE (a raw
// ZRE peer on our zmtp whose HELLO lacks HeaderGoodbye, as pyre's and
// gyre's do) gets nothing after our last whisper when we stop, only the
// connection closing (a beacon peer also gets our port-0 beacon); one whose
// HELLO has the header gets the GOODBYE.
func TestStopGoodbyeOverTheWire(t *testing.T) {
	for _, knows := range []bool{false, true} {
		t.Run(map[bool]string{false: "old peer", true: "peer that knows GOODBYE"}[knows], func(t *testing.T) {
			stopToRawPeer(t, knows)
		})
	}
}

func stopToRawPeer(t *testing.T, knows bool) {
	a := startNode(t, Config{Name: "a", Beacon: BeaconConfig{Disabled: true}, Bind: "127.0.0.1"})
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	inbox, err := zmtp.ListenRouter("tcp", "127.0.0.1:0", zmtp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer inbox.Close()
	// Everything the inbox gets, read as it comes (a message the test had
	// not taken when the connection closed would be lost).
	got := make(chan zremsg.MsgID, 16)
	go func() {
		for {
			m, err := inbox.Recv(ctx)
			if err != nil {
				return
			}
			if zm, err := zremsg.Decode(m.Frames); err == nil {
				got <- zm.ID
			}
		}
	}()
	rawID := uuid.New()
	d, err := zmtp.DialDealer("tcp", strings.TrimPrefix(a.Endpoint(), "tcp://"), zmtp.Options{Identity: Identity(rawID)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	hello := &zremsg.Msg{ID: zremsg.MsgHello, Sequence: 1, Endpoint: "tcp://" + inbox.Addr().String(), Name: "raw"}
	if knows {
		hello.Headers = []Header{{Key: HeaderGoodbye, Value: "1"}}
	}
	frames, err := hello.Frames()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Send(frames...); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, a, eventTimeout, "ENTER raw", isEnter(rawID))
	if err := a.Whisper(rawID, []byte("last")); err != nil {
		t.Fatal(err)
	}
	var ids []zremsg.MsgID
	for len(ids) < 2 {
		select {
		case id := <-got:
			ids = append(ids, id)
		case <-ctx.Done():
			t.Fatalf("raw peer got %v, then nothing", ids)
		}
	}
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// Stop flushed and closed its link to us: once the inbox has no
	// connection left, every message it carried was read.
	for len(inbox.Peers()) > 0 {
		select {
		case <-ctx.Done():
			t.Fatal("the node's link to the raw peer stayed open after Stop")
		case <-time.After(10 * time.Millisecond):
		}
	}
	for len(got) > 0 {
		ids = append(ids, <-got)
	}
	want := []zremsg.MsgID{zremsg.MsgHello, zremsg.MsgWhisper}
	if knows {
		want = append(want, zremsg.MsgGoodbye)
	}
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("raw peer got %v, want %v", ids, want)
	}
}
