package zre

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/zyre-go/zyre/zre/zremsg"
)

// budgetHarness is a state test harness whose events go into a channel as
// in a node (the loop's batch flush after each message) that nobody reads.
func budgetHarness(t *testing.T, queue, bytes int) *harness {
	h := newHarness(t)
	h.cfg.EventQueue, h.cfg.EventBytes = queue, bytes
	h.st.evq = make(chan Event, min(queue, eventChanSize))
	return h
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// checkBudget fails when what waits passes the policy's bounds, or when
// the heap grew past the budget + 10 % since base.
func checkBudget(t *testing.T, h *harness, base uint64, budget int) {
	t.Helper()
	h.st.reclaim()
	n := len(h.st.events) + len(h.st.evq)
	if n > 2*h.cfg.EventQueue+1 {
		t.Errorf("%d events wait, more than twice EventQueue %d (+1 Overflow)", n, h.cfg.EventQueue)
	}
	if limit := h.cfg.EventBytes + h.cfg.EventBytes/16 + 64<<10; h.st.evBytes > limit {
		t.Errorf("events hold %d bytes, more than %d", h.st.evBytes, limit)
	}
	grown := int64(heapInUse()) - int64(base)
	t.Logf("%d events wait, %d bytes counted; heap grew %d KiB (budget %d KiB); stats %+v",
		n, h.st.evBytes, grown>>10, budget>>10, h.stats.snapshot())
	if grown > int64(budget)*11/10 {
		t.Errorf("heap grew %d KiB, more than the budget %d KiB + 10 %%", grown>>10, budget>>10)
	}
}

// An application that never reads: 64 KiB whispers (issue 16, item 5).
func TestEventBudgetLargeWhispers(t *testing.T) {
	const budget = 8 << 20
	h := budgetHarness(t, DefaultEventQueue, budget)
	h.enterB()
	base := heapInUse()
	for i := range 1000 { // 64 MiB offered
		h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgWhisper, Sequence: uint16(2 + i), Content: [][]byte{make([]byte, 64<<10)}})
		h.st.flushEvents()
	}
	checkBudget(t, h, base, budget)
	st := h.stats.snapshot()
	if st.EventsDropped < 1000-budget/(64<<10) || st.MembershipDropped != 0 {
		t.Fatalf("dropped %d events (%d membership), want at least %d whispers and no membership", st.EventsDropped, st.MembershipDropped, 1000-budget/(64<<10))
	}
}

// JOIN/LEAVE churn over ever new group names (issue 16, item 4): past the
// bounds, membership events are dropped and one Overflow says so; the
// groups emptied are forgotten.
func TestEventBudgetJoinLeaveChurn(t *testing.T) {
	const budget = 4 << 20
	h := budgetHarness(t, DefaultEventQueue, budget)
	h.enterB()
	h.st.evBytes = 0 // (wantEvents took the ENTER out behind the count's back)
	base := heapInUse()
	seq, status := uint16(2), uint8(0)
	for i := range 100000 { // 200 000 messages
		g := fmt.Sprintf("group-%d-%s", i, strings.Repeat("x", i%50))
		status++
		h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgJoin, Sequence: seq, Group: g, Status: status})
		seq++
		status++
		h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgLeave, Sequence: seq, Group: g, Status: status})
		seq++
		h.st.flushEvents()
	}
	if h.st.peers[uuidB] == nil {
		t.Fatal("the peer was dropped")
	}
	checkBudget(t, h, base, budget)
	if len(h.st.groups) > maxEmptyGroups+1 {
		t.Errorf("%d groups kept for a peer in none", len(h.st.groups))
	}
	st := h.stats.snapshot()
	if st.MembershipDropped == 0 {
		t.Fatal("no membership event dropped")
	}
	// One Overflow, after the events that fit.
	var overflows int
	var got []Event
	for len(h.st.evq) > 0 || len(h.st.events) > 0 {
		select {
		case e := <-h.st.evq:
			got = append(got, e)
		default:
		}
		h.st.flushEvents()
	}
	for _, e := range got {
		if _, ok := e.(*Overflow); ok {
			overflows++
		}
	}
	if overflows != 1 || got[len(got)-1].Type() != EventOverflow {
		t.Fatalf("%d Overflow events (last event %s), want one, last", overflows, got[len(got)-1].Type())
	}
	// Once it was received, the next drop tells again.
	h.st.reclaim()
	if h.st.overflow {
		t.Fatal("overflow still set after the consumer received it")
	}
	if h.st.evBytes != 0 {
		t.Fatalf("%d bytes counted for an empty queue", h.st.evBytes)
	}
}

// A HELLO listing 100 000 groups (issue 16, item 4): the peer is in
// MaxPeerGroups of them; the rest are ignored and counted.
func TestEventBudgetHugeHello(t *testing.T) {
	const budget = 16 << 20
	h := budgetHarness(t, DefaultEventQueue, budget)
	base := heapInUse()
	groups := make([]string, 100000)
	for i := range groups {
		groups[i] = fmt.Sprintf("g%06d", i)
	}
	h.recv(uuidB, helloB(1, 0, groups...))
	groups = nil
	h.st.flushEvents()
	p := h.st.peers[uuidB]
	if p == nil || len(p.groups) != DefaultMaxPeerGroups {
		t.Fatalf("peer in %d groups, want %d", len(p.groups), DefaultMaxPeerGroups)
	}
	if got := h.stats.snapshot().GroupsIgnored; got != 100000-DefaultMaxPeerGroups {
		t.Fatalf("GroupsIgnored = %d, want %d", got, 100000-DefaultMaxPeerGroups)
	}
	// A LEAVE of an ignored group changes nothing; one of a kept group
	// does.
	h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgLeave, Sequence: 2, Group: "g099999", Status: 1})
	h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgLeave, Sequence: 3, Group: "g000000", Status: 2})
	if len(p.groups) != DefaultMaxPeerGroups-1 || h.st.peers[uuidB] == nil {
		t.Fatalf("peer in %d groups after leaving one", len(p.groups))
	}
	checkBudget(t, h, base, budget)
}

// The consumer may take an event out of the channel before the loop
// records that it went in (the loop's select sent it): the byte count
// stays right.
func TestEventBudgetConsumerFirst(t *testing.T) {
	h := budgetHarness(t, 10, 1<<20)
	h.enterB()
	h.st.evBytes = 0 // (wantEvents took the ENTER out behind the count's back)
	for i := range 3 {
		h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgWhisper, Sequence: uint16(2 + i), Content: [][]byte{make([]byte, 100)}})
	}
	for range 3 { // as the loop's "case out <- next", the consumer quicker
		h.st.evq <- h.st.events[0]
		<-h.st.evq
		h.st.pushedHead()
	}
	if h.st.reclaim(); h.st.evBytes != 0 || h.st.ringLen != 0 {
		t.Fatalf("%d bytes, %d ring entries counted for an empty queue", h.st.evBytes, h.st.ringLen)
	}
}
