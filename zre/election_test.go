package zre

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/zyre-go/zyre/zre/zremsg"
)

// elNet runs several states in one goroutine, deterministically: a link
// appends what it sends to its own FIFO (a TCP connection), and run
// delivers the head of one non-empty FIFO at a time, picked by a seeded
// random source (or always the oldest, when rnd is nil), so the links
// interleave in many orders while each keeps its own.
type elNet struct {
	t      *testing.T
	nodes  []*elNode
	byEP   map[string]*elNode
	queues []*elLink
	rnd    *rand.Rand
	now    time.Time

	runs, stalls int // how many runs ended with an election unfinished before the stall timers
}

type elNode struct {
	st     *state
	cfg    Config
	stats  counters
	id     uuid.UUID
	ep     string
	dead   bool
	leader []string // Leader events, as "group:name"
	// noTimers: the node has no election stall timers, as a C node
	// (election_c_test.go); the rest of its election is ours.
	noTimers bool
}

type elLink struct {
	net    *elNet
	from   *elNode
	to     string
	q      [][][]byte
	closed bool
}

func (l *elLink) Send(frames ...[]byte) error {
	if l.closed {
		return errNotConnected
	}
	l.q = append(l.q, cloneFrames(frames))
	return nil
}

func (l *elLink) Close() error { l.closed = true; return nil }

// elUUID returns the UUID of node i: node 0 has the lowest.
func elUUID(i int) uuid.UUID {
	return uuid.MustParse(fmt.Sprintf("%08x-0000-4000-8000-00000000000%d", i+1, i))
}

func newElNet(t *testing.T, n int, seed uint64, contest []bool, groups ...string) *elNet {
	net := &elNet{t: t, byEP: map[string]*elNode{}, now: time.Unix(1000, 0)}
	if seed != 0 {
		net.rnd = rand.New(rand.NewPCG(seed, seed))
	}
	for i := range n {
		nd := &elNode{id: elUUID(i), ep: fmt.Sprintf("tcp://127.0.0.1:%d", 41000+i)}
		cfg, err := Config{UUID: nd.id, Name: fmt.Sprintf("n%d", i)}.withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		nd.cfg = cfg
		nd.st = newState(&nd.cfg, nd.ep, func(ep string) (link, error) {
			l := &elLink{net: net, from: nd, to: ep}
			net.queues = append(net.queues, l)
			return l, nil
		}, &nd.stats)
		for _, g := range groups {
			if contest[i] {
				nd.st.requireGroup(g).contest = true
			}
			if err := nd.st.join(g); err != nil {
				t.Fatal(err)
			}
		}
		net.nodes = append(net.nodes, nd)
		net.byEP[nd.ep] = nd
	}
	return net
}

// meet has every live node hear every other's beacon, then runs.
func (net *elNet) meet() {
	for _, a := range net.nodes {
		for j, b := range net.nodes {
			if a == b || a.dead || b.dead {
				continue
			}
			bc := Beacon{Version: BeaconV1, UUID: b.id, Port: uint16(41000 + j)}
			a.st.onBeacon(bc.AppendMarshal(nil), netip.MustParseAddrPort(fmt.Sprintf("127.0.0.1:%d", 41000+j)), net.now)
		}
	}
	net.run()
}

// run delivers messages until every link is empty, then lets 12 seconds
// pass in reap ticks (the election's stall timers), delivering what they
// send; then it collects the Leader events.
func (net *elNet) run() {
	net.deliver()
	net.runs++
	for _, nd := range net.nodes {
		if g := nd.st.groups["g"]; !nd.dead && g != nil && g.election != nil && g.election.caw != "" {
			net.stalls++ // it needs the stall timers
			break
		}
	}
	for range 12 {
		net.now = net.now.Add(time.Second)
		for _, nd := range net.nodes {
			if nd.dead {
				continue
			}
			for j, b := range net.nodes { // beacons keep the living alive
				if b != nd && !b.dead {
					bc := Beacon{Version: BeaconV1, UUID: b.id, Port: uint16(41000 + j)}
					nd.st.onBeacon(bc.AppendMarshal(nil), netip.MustParseAddrPort(fmt.Sprintf("127.0.0.1:%d", 41000+j)), net.now)
				}
			}
			if nd.noTimers {
				for _, g := range nd.st.groups {
					if g.election != nil {
						g.election.last = net.now
					}
					g.restartAt = time.Time{}
				}
			}
			nd.st.reap(net.now)
		}
		net.deliver()
	}
	for _, nd := range net.nodes {
		for _, e := range nd.st.events {
			if ld, ok := e.(*Leader); ok {
				nd.leader = append(nd.leader, ld.Group+":"+ld.Name)
			}
		}
		nd.st.events = nil
	}
}

// deliver delivers messages until every link is empty.
func (net *elNet) deliver() {
	for steps := 0; ; steps++ {
		if steps > 100000 {
			net.t.Fatal("elNet: no quiescence after 100000 messages")
		}
		var ready []*elLink
		for _, l := range net.queues {
			if len(l.q) > 0 {
				ready = append(ready, l)
			}
		}
		if len(ready) == 0 {
			break
		}
		l := ready[0]
		if net.rnd != nil {
			l = ready[net.rnd.IntN(len(ready))]
		}
		frames := l.q[0]
		l.q = l.q[1:]
		to := net.byEP[l.to]
		if to == nil || to.dead || l.from.dead {
			continue
		}
		if elTrace {
			if m, err := zremsg.Decode(frames); err == nil && (m.ID == zremsg.MsgElect || m.ID == zremsg.MsgLeader || m.ID == zremsg.MsgLeave || m.ID == zremsg.MsgJoin || m.ID == zremsg.MsgHello) {
				net.t.Logf("%s -> %s: %s %s %.8s%.8s", l.from.cfg.Name, to.cfg.Name, m.ID, m.Group, m.ChallengerID, m.LeaderID)
			}
		}
		to.st.onMessage(inboxMsg{identity: Identity(l.from.id), frames: frames, remote: "el"}, net.now)
	}
}

// leader checks that every live node in group g reports the same leader
// as its last Leader event and as GroupLeader, with no election left
// unfinished and no error, and returns that leader's index. The leader
// must be a live contester.
func (net *elNet) leader(g string) int {
	net.t.Helper()
	got := -1
	for i, nd := range net.nodes {
		if nd.dead || !nd.st.own.has(g) {
			continue
		}
		if len(nd.leader) == 0 {
			net.t.Fatalf("n%d: no Leader event", i)
		}
		var l int
		if _, err := fmt.Sscanf(nd.leader[len(nd.leader)-1], g+":n%d", &l); err != nil {
			net.t.Fatalf("n%d: Leader events %q", i, nd.leader)
		}
		if got == -1 {
			got = l
		}
		if l != got {
			net.t.Fatalf("n%d: Leader events %q, another node said n%d", i, nd.leader, got)
		}
		gr := nd.st.groups[g]
		if gr.leader != elUUID(l) {
			net.t.Fatalf("n%d: group leader %v, want n%d", i, gr.leader, l)
		}
		if gr.election != nil && gr.election.caw != "" {
			net.t.Fatalf("n%d: election left unfinished: %+v", i, *gr.election)
		}
		if st := nd.stats.snapshot(); st.SequenceGaps != 0 || st.ProtocolErrors != 0 || st.MessagesDropped != 0 {
			net.t.Fatalf("n%d: stats %+v", i, st)
		}
	}
	if got == -1 {
		net.t.Fatal("no node in the group")
	}
	if ld := net.nodes[got]; ld.dead || !ld.st.own.has(g) || !ld.st.groups[g].contest {
		net.t.Fatalf("leader n%d is not a live contester of %s", got, g)
	}
	return got
}

func (net *elNet) clearLeaders() {
	for _, nd := range net.nodes {
		nd.leader = nil
	}
}

// leaveGroup: node i leaves g.
func (net *elNet) leaveGroup(i int, g string) {
	if err := net.nodes[i].st.leave(g); err != nil {
		net.t.Fatal(err)
	}
	net.run()
}

// stopNode: node i stops (port-0 beacon: the others remove it at once).
func (net *elNet) stopNode(i int) {
	nd := net.nodes[i]
	nd.st.stop()
	nd.dead = true
	for j, o := range net.nodes {
		if !o.dead {
			bc := Beacon{Version: BeaconV1, UUID: nd.id, Port: 0}
			o.st.onBeacon(bc.AppendMarshal(nil), netip.MustParseAddrPort(fmt.Sprintf("127.0.0.1:%d", 41000+j)), net.now)
		}
	}
	net.run()
}

// killNode: node i dies silently; the others expire it.
func (net *elNet) killNode(i int) {
	net.nodes[i].dead = true
	net.now = net.now.Add(DefaultExpired + time.Second)
	for _, o := range net.nodes {
		if o.dead {
			continue
		}
		// The living keep hearing each other.
		for j, b := range net.nodes {
			if b != o && !b.dead {
				bc := Beacon{Version: BeaconV1, UUID: b.id, Port: uint16(41000 + j)}
				o.st.onBeacon(bc.AppendMarshal(nil), netip.MustParseAddrPort(fmt.Sprintf("127.0.0.1:%d", 41000+j)), net.now)
			}
		}
		o.st.reap(net.now)
	}
	net.run()
}

func all(n int) []bool { return slices.Repeat([]bool{true}, n) }

// TestElectionEcho: 3 to 5 nodes that all contest elect exactly one
// leader in many interleavings of their messages; the leader leaves the
// group, then the next stops, then the next dies: each time the others
// elect one new leader. With the messages in order (seed 0) the leader is
// the lowest UUID each time; in other interleavings the C reference's
// algorithm may elect another contester (see election.go), and the test
// counts how often the lowest won.
func TestElectionEcho(t *testing.T) {
	lowest, rounds, runs, stalls := 0, 0, 0, 0
	for n := 3; n <= 5; n++ {
		for seed := uint64(0); seed < 30; seed++ {
			t.Run(fmt.Sprintf("%d nodes seed %d", n, seed), func(t *testing.T) {
				net := newElNet(t, n, seed, all(n), "g")
				defer func() { runs += net.runs; stalls += net.stalls }()
				check := func(l, lowestLive int) {
					t.Helper()
					rounds++
					if l == lowestLive {
						lowest++
					} else if seed == 0 {
						t.Fatalf("in order, n%d was elected, not n%d", l, lowestLive)
					}
				}
				net.meet()
				l := net.leader("g")
				check(l, 0)

				// The leader leaves the group.
				net.clearLeaders()
				net.leaveGroup(l, "g")
				if len(net.nodes[l].leader) != 0 {
					t.Fatalf("n%d left and still heard %q", l, net.nodes[l].leader)
				}
				l2 := net.leader("g")
				check(l2, lowestIn(net, "g"))

				// The new leader stops.
				net.clearLeaders()
				net.stopNode(l2)
				l3 := net.leader("g")
				check(l3, lowestIn(net, "g"))
				if n == 3 {
					return // alone: it leads without an election
				}

				// The next one dies.
				net.clearLeaders()
				net.killNode(l3)
				check(net.leader("g"), lowestIn(net, "g"))
			})
		}
	}
	t.Logf("the lowest UUID won %d of %d elections; %d of %d rounds of messages needed the stall timers", lowest, rounds, stalls, runs)
}

// lowestIn returns the lowest live node in group g.
func lowestIn(net *elNet, g string) int {
	for i, nd := range net.nodes {
		if !nd.dead && nd.st.own.has(g) {
			return i
		}
	}
	return -1
}

// TestElectionNonContestant: nodes that do not contest answer the waves
// (the election finishes) and report the leader, the lowest contester,
// even when they have lower UUIDs.
func TestElectionNonContestant(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			net := newElNet(t, 4, seed, []bool{false, true, false, true}, "g")
			net.meet()
			if l := net.leader("g"); seed == 0 && l != 1 {
				t.Fatalf("in order, n%d was elected, not n1", l)
			}
		})
	}
}

// TestElectionNobodyContests: no node contests: no ELECT, no Leader.
func TestElectionNobodyContests(t *testing.T) {
	net := newElNet(t, 3, 1, []bool{false, false, false}, "g")
	net.meet()
	for i, nd := range net.nodes {
		if len(nd.leader) != 0 || nd.st.groups["g"].election != nil {
			t.Fatalf("n%d: %q %+v", i, nd.leader, nd.st.groups["g"].election)
		}
	}
}

var _ = context.Background

var elTrace = os.Getenv("EL_TRACE") != ""

// leaderWatch drains a node's events in the background, counting Leader
// events, until the node's events close.
func leaderWatch(n *Node) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range n.Events() {
		}
	}()
	return done
}

// waitAgree waits until every node of nodes has the others in group g and
// all name the same leader, one of them, and returns it.
func waitAgree(t *testing.T, g string, nodes []*Node) *Node {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var leader uuid.UUID
		agree := true
		for _, n := range nodes {
			l, ok := n.GroupLeader(g)
			if !ok || len(n.PeersByGroup(g)) != len(nodes)-1 || leader != uuid.Nil && l != leader {
				agree = false
				break
			}
			leader = l
		}
		if agree {
			for _, n := range nodes {
				if n.UUID() == leader {
					return n
				}
			}
		}
		if time.Now().After(deadline) {
			var got []string
			for _, n := range nodes {
				l, ok := n.GroupLeader(g)
				got = append(got, fmt.Sprintf("%s: %v %v (%d peers)", n.Name(), l, ok, len(n.PeersByGroup(g))))
			}
			t.Fatalf("no agreement on a leader of %s: %q", g, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestElectionNodes: five nodes on loopback, four contesting, one not
// (it answers the waves all the same): they agree on one leader, a
// contester; it leaves the group and the others agree on another; that one
// stops and the others agree on a third; that one dies (no goodbye: the
// others expire it) and the last two agree on a fourth.
func TestElectionNodes(t *testing.T) {
	port := testBeaconPort()
	var nodes []*Node
	for i, name := range []string{"e0", "e1", "e2", "e3", "e4"} {
		n := startNode(t, Config{Name: name, Beacon: BeaconConfig{Port: port},
			Evasive: time.Second, Silent: time.Second, Expired: 3 * time.Second})
		leaderWatch(n)
		if i != 4 {
			if err := n.SetContest("g"); err != nil {
				t.Fatal(err)
			}
		}
		if err := n.Join("g"); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	contester := func(l *Node) {
		t.Helper()
		if l == nodes[4] {
			t.Fatal("the node that does not contest was elected")
		}
	}
	without := func(ns []*Node, x *Node) []*Node {
		var out []*Node
		for _, n := range ns {
			if n != x {
				out = append(out, n)
			}
		}
		return out
	}
	start := time.Now()
	l1 := waitAgree(t, "g", nodes)
	contester(l1)
	t.Logf("leader %s (%v)", l1.Name(), time.Since(start).Round(time.Millisecond))

	if err := l1.Leave("g"); err != nil {
		t.Fatal(err)
	}
	rest := without(nodes, l1)
	start = time.Now()
	l2 := waitAgree(t, "g", rest)
	contester(l2)
	t.Logf("after %s left: leader %s (%v)", l1.Name(), l2.Name(), time.Since(start).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	if err := l2.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	rest = without(rest, l2)
	start = time.Now()
	l3 := waitAgree(t, "g", rest)
	contester(l3)
	t.Logf("after %s stopped: leader %s (%v)", l2.Name(), l3.Name(), time.Since(start).Round(time.Millisecond))

	l3.Close() // dies: no port-0 beacon, no GOODBYE
	rest = without(rest, l3)
	start = time.Now()
	l4 := waitAgree(t, "g", rest)
	contester(l4)
	t.Logf("after %s died: leader %s (%v)", l3.Name(), l4.Name(), time.Since(start).Round(time.Millisecond))
}

// TestStateElectionHostile: ELECT and LEADER for groups we are not in, or
// from a peer that is not in the group, change nothing and make no group.
func TestStateElectionHostile(t *testing.T) {
	h := newHarness(t)
	h.st.requireGroup("g").contest = true
	if err := h.st.join("g"); err != nil {
		t.Fatal(err)
	}
	h.enterB()
	seq := uint16(2)
	for i := range 50 {
		h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgElect, Sequence: seq, Group: fmt.Sprintf("x%d", i), ChallengerID: "0"})
		seq++
		h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgLeader, Sequence: seq, Group: fmt.Sprintf("y%d", i), LeaderID: "0"})
		seq++
	}
	// B is not in g: its ELECT and LEADER for g are ignored too.
	h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgElect, Sequence: seq, Group: "g", ChallengerID: "0"})
	seq++
	h.recv(uuidB, &zremsg.Msg{ID: zremsg.MsgLeader, Sequence: seq, Group: "g", LeaderID: "0"})
	if len(h.st.groups) != 1 || h.st.groups["g"].election != nil {
		t.Fatalf("groups %d, election %+v", len(h.st.groups), h.st.groups["g"].election)
	}
	h.wantEvents()
	if st := h.stats.snapshot(); st.SequenceGaps != 0 || st.ProtocolErrors != 0 {
		t.Fatalf("stats %+v", st)
	}
}
