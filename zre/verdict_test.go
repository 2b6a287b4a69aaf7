package zre

import (
	"testing"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/zre/zremsg"
)

// A peer whose checks never end (an Authorize waiting for a user) sends its
// HELLO again after each hold expires: the checks running at once stay
// within maxChecks, late verdicts of dropped holds are ignored, and once
// verdicts come back a HELLO is checked and accepted again.
func TestStateChecksInFlightBounded(t *testing.T) {
	h := newSecureHarness(t)
	kb, _ := genKeys(t)
	idB := UUIDFromKey(kb)
	type call struct {
		id    uuid.UUID
		token uint64
		pk    PeerKey
	}
	var calls []call
	h.st.checkOffLoop = func(id uuid.UUID, token uint64, pk PeerKey) {
		calls = append(calls, call{id, token, pk})
	}
	const rounds = 4 * maxChecks
	for range rounds {
		h.recvKey(idB, kb, helloWithKey(epB, kb))
		h.advance(h.cfg.Expired)
		h.st.reap(h.now)
	}
	if len(calls) > maxChecks {
		t.Fatalf("%d checks running after %d HELLOs whose checks never ended, want at most %d", len(calls), rounds, maxChecks)
	}
	if got := h.stats.snapshot().MessagesDropped; got < rounds-maxChecks {
		t.Fatalf("MessagesDropped = %d", got)
	}
	// The verdicts come back, late: nothing enters.
	for _, c := range calls {
		h.st.onVerdict(verdict{id: c.id, token: c.token, key: c.pk.Key}, h.now)
	}
	if p := h.st.peers[idB]; p != nil && p.ready {
		t.Fatal("a late verdict let the peer in")
	}
	if h.st.checking != 0 {
		t.Fatalf("%d checks counted after every verdict", h.st.checking)
	}
	calls = nil
	h.recvKey(idB, kb, helloWithKey(epB, kb))
	if len(calls) != 1 {
		t.Fatalf("%d checks started for a HELLO after the verdicts", len(calls))
	}
	h.st.onVerdict(verdict{id: idB, token: calls[0].token, key: kb}, h.now)
	if p := h.st.peers[idB]; p == nil || !p.ready {
		t.Fatal("peer not ready after its verdict")
	}
}

// A HELLO whose connection closes while its checks run is not admitted by
// their verdict, late: its hold goes with the connection (the peer, if it
// lives, connects and says HELLO again). Another key's close on the same
// identity leaves the hold alone.
func TestStateVerdictAfterClose(t *testing.T) {
	h := newSecureHarness(t)
	kb, _ := genKeys(t)
	kf, _ := genKeys(t)
	idB := UUIDFromKey(kb)
	var tokens []uint64
	h.st.checkOffLoop = func(id uuid.UUID, token uint64, pk PeerKey) { tokens = append(tokens, token) }

	// A forger's connection with B's identity closes: B's hold stays.
	h.recvKey(idB, kb, helloWithKey(epB, kb))
	h.st.onInboxClosed(inboxClosed{identity: Identity(idB), publicKey: kf.Bytes()}, h.now)
	h.st.onVerdict(verdict{id: idB, token: tokens[0], key: kb}, h.now)
	if p := h.st.peers[idB]; p == nil || !p.ready {
		t.Fatal("another key's close dropped the HELLO held for B")
	}

	// B's own connection closes while its next HELLO's checks run.
	h2 := newSecureHarness(t)
	tokens = nil
	h2.st.checkOffLoop = func(id uuid.UUID, token uint64, pk PeerKey) { tokens = append(tokens, token) }
	h2.recvKey(idB, kb, helloWithKey(epB, kb))
	dropped := h2.stats.snapshot().MessagesDropped
	h2.st.onInboxClosed(inboxClosed{identity: Identity(idB), publicKey: kb.Bytes()}, h2.now)
	h2.st.onVerdict(verdict{id: idB, token: tokens[0], key: kb}, h2.now)
	if p := h2.st.peers[idB]; p != nil && p.ready {
		t.Fatal("a verdict after its connection closed let the peer in")
	}
	if got := h2.stats.snapshot().MessagesDropped - dropped; got != 1 {
		t.Fatalf("MessagesDropped grew by %d, want 1 (the held HELLO)", got)
	}
	if h2.st.checking != 0 {
		t.Fatalf("%d checks counted after the verdict", h2.st.checking)
	}
}

// Messages held behind a HELLO whose checks run off the loop are handled
// after the verdict, in order, each with its own fields: onMessage decodes
// every message into the same Msg (state.rx), so what is held must be a
// copy, not that Msg.
func TestStateHeldMessagesKeepTheirOwnFields(t *testing.T) {
	h := newSecureHarness(t)
	kb, _ := genKeys(t)
	idB := UUIDFromKey(kb)
	var tokens []uint64
	h.st.checkOffLoop = func(id uuid.UUID, token uint64, pk PeerKey) { tokens = append(tokens, token) }
	hello := helloWithKey(epB, kb)
	hello.Groups, hello.Status = []string{"g"}, 1
	h.recvKey(idB, kb, hello)
	h.recvKey(idB, kb, &zremsg.Msg{ID: zremsg.MsgWhisper, Sequence: 2, Content: [][]byte{[]byte("one")}})
	h.recvKey(idB, kb, &zremsg.Msg{ID: zremsg.MsgShout, Sequence: 3, Group: "g", Content: [][]byte{[]byte("two"), []byte("2b")}})
	h.recvKey(idB, kb, &zremsg.Msg{ID: zremsg.MsgJoin, Sequence: 4, Group: "h", Status: 2})
	h.recvKey(idB, kb, &zremsg.Msg{ID: zremsg.MsgShout, Sequence: 5, Group: "h", Content: [][]byte{[]byte("three")}})
	if len(tokens) != 1 {
		t.Fatalf("%d checks started, want 1", len(tokens))
	}
	h.wantEvents() // nothing before the verdict
	h.st.onVerdict(verdict{id: idB, token: tokens[0], key: kb}, h.now)
	h.wantEvents("ENTER peer", "JOIN peer g", "WHISPER peer one", "SHOUT peer g two|2b", "JOIN peer h", "SHOUT peer h three")
	if got := h.stats.snapshot().SequenceGaps; got != 0 {
		t.Fatalf("SequenceGaps = %d", got)
	}
}
