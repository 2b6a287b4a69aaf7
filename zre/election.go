package zre

import (
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/zyre-go/zyre/zre/zremsg"
)

// Leader election, as the C reference does it (zyre_election.c and the
// ELECT and LEADER cases of zyre_node.c): the echo algorithm with
// extinction. Every node of a group takes part; only the nodes that
// contest the group (Node.SetContest, zyre_set_contest_in_group) start
// waves, so only they can win, and the lowest contesting UUID (as the C
// reference prints it: 32 upper-case hex digits, compared as text) wins.
//
// A contesting node starts a wave (ELECT with itself as challenger, to
// every peer of the group) when a peer enters with the group in its HELLO,
// when a peer joins the group while we are in it, when the leader leaves
// the group, and when a peer is removed while an election is unfinished or
// was the leader. A node that gets an ELECT with a challenger lower than
// the wave it supports (or while it supports none) supports the new one:
// it takes the sender as its father and passes the ELECT to its other
// peers in the group. Every ELECT of the supported wave counts; when one
// came from every peer of the group, the challenger itself sends LEADER to
// its peers, every other node echoes the ELECT to its father. A node passes
// the first LEADER on (with the challenger it supports) and when one came
// from every peer of the group, the election is over: a Leader event says
// who won. A node that does not contest answers waves all the same, so it
// never blocks an election (it reports the Leader event too).
//
// The C reference's algorithm cannot tell two waves of one challenger
// apart: a contester that starts a wave again (a peer entered or joined
// while its wave ran) can leave counts that never add up, and the election
// then never ends (in the C reference, until the next membership change).
// We add one thing that a run that ends never sees: an election that is
// unfinished after electionStall without an ELECT or LEADER is dropped by
// every node, and electionRestart after that last message each contester
// of the group starts one wave again. Every node's timer starts from the
// same last message, so all have dropped the old counts before the new
// waves come (reap runs every second: the gap between the two is larger).

// The stall timers (see above).
const (
	electionStall   = 3 * time.Second
	electionRestart = 6 * time.Second
)

// election is the state of one election in one group (zyre_election_t).
type election struct {
	caw    string    // the challenger of the current active wave; "" for none
	father uuid.UUID // the peer that brought us the wave
	erec   int       // ELECTs received in the wave
	lrec   int       // LEADERs received
	leader string    // the leader the LEADERs name
	echoed bool      // we echoed the wave to our father
	last   time.Time // the last ELECT or LEADER of the group (zero until the next reap)
}

// Leader: the election of a group is over; the event's peer is the leader
// (our own UUID and name when we won). Every node of the group reports it,
// whether it contested or not.
type Leader struct {
	EventHeader
	Group string
}

// Type returns EventLeader.
func (*Leader) Type() EventType { return EventLeader }

var _ Event = (*Leader)(nil)

// SetContest makes us contest the leadership of group (the C reference's
// zyre_set_contest_in_group). Set it before joining the group: elections
// start when peers enter or join a group we contest (see election.go). A
// node that does not contest still takes part in its groups' elections.
func (n *Node) SetContest(group string) error {
	if err := checkGroup(group); err != nil {
		return err
	}
	return n.do(func(st *state) { st.requireGroup(group).contest = true })
}

// GroupLeader returns the leader of a group as the last finished election
// told us: a peer's UUID, or our own when we won. It reports false while
// no election finished since the last change.
func (n *Node) GroupLeader(group string) (uuid.UUID, bool) {
	var id uuid.UUID
	var ok bool
	n.do(func(st *state) {
		if g := st.groups[group]; g != nil && g.leader != uuid.Nil {
			id, ok = g.leader, true
		}
	})
	return id, ok
}

// requireGroup returns the group of peers called name, made if needed
// (zyre_node_require_peer_group).
func (s *state) requireGroup(name string) *group {
	g := s.groups[name]
	if g == nil {
		g = &group{name: name, peers: make(map[uuid.UUID]*peer)}
		s.groups[name] = g
	}
	return g
}

// groupSend sends a copy of m to every peer of g (zyre_group_send), in
// UUID order, skipping except.
func (s *state) groupSend(g *group, m zremsg.Msg, except uuid.UUID) {
	ps := make([]*peer, 0, len(g.peers))
	for id, p := range g.peers {
		if id != except {
			ps = append(ps, p)
		}
	}
	slices.SortFunc(ps, comparePeers)
	for _, p := range ps {
		c := m
		s.sendTo(p, &c)
	}
}

// startElection discards g's election and starts a wave with us as the
// challenger.
func (s *state) startElection(g *group) {
	g.restartAt = time.Time{}
	g.election = &election{caw: uuidString(s.self)}
	g.leader = uuid.Nil
	s.log.Debug("zre: election: send ELECT", "group", g.name)
	s.groupSend(g, zremsg.Msg{ID: zremsg.MsgElect, Group: g.name, ChallengerID: g.election.caw}, uuid.Nil)
}

// electOnHelloGroup: a peer entered with group name in its HELLO (already
// joined to it). This starts a wave when we contest the group and are in
// it. (The C reference starts one whether it is in the group or not; we
// count no answer for a group we are not in, and the peers that supported
// our wave would wait for its end for ever. electOnOwnJoin starts the wave
// when we join.)
func (s *state) electOnHelloGroup(name string) {
	if g := s.groups[name]; g != nil && g.contest && s.own.has(name) {
		s.startElection(g)
	}
}

// electOnOwnJoin: we joined group name (our JOIN sent). When we contest it
// and it has peers, the next reap starts a wave: the one the C reference
// would have started on meeting them, had we contested it then. Not at
// once: a peer that passes our ELECT on to another before our JOIN reached
// that one makes it count a group without us, and the wave never ends
// (TestElectionContestThenJoin); a reap (up to a second) later, our JOIN
// has reached them.
func (s *state) electOnOwnJoin(name string) {
	if g := s.groups[name]; g != nil && g.contest && len(g.peers) > 0 {
		g.joinWave = true
	}
}

// electOnJoin: a peer joined group name (already joined to it).
func (s *state) electOnJoin(name string) {
	if g := s.groups[name]; g != nil && g.contest && s.own.has(name) {
		s.startElection(g)
	}
}

// electOnLeave: p left group name (already removed from it). When p was
// the leader, elect again; alone, we are the leader.
func (s *state) electOnLeave(p *peer, name string) {
	g := s.groups[name]
	if g == nil || !g.contest || !s.own.has(name) || g.leader != p.id {
		return
	}
	if s.keepWave(g, p.id, len(g.peers)) {
		return
	}
	g.election = nil
	if len(g.peers) == 0 {
		s.leaderSelf(g)
		return
	}
	s.startElection(g)
}

// electOnRemove: p is being removed (still in its groups). In every group
// we are in and contest, an unfinished election or a leader that was p
// starts a wave again; left alone, we are the leader. (The C reference
// counts p among the peers left; it sends p the ELECT too. We count and
// send to the others: the same when p was in the group, and no false
// "alone" when it was not.)
func (s *state) electOnRemove(p *peer) {
	for _, name := range s.own.list() {
		g := s.groups[name]
		if g == nil || !g.contest {
			continue
		}
		e := g.election
		if !(e != nil && e.lrec != len(g.peers) || g.leader == p.id) {
			continue
		}
		others := len(g.peers)
		if g.peers[p.id] != nil {
			others--
		}
		if s.keepWave(g, p.id, others) {
			continue
		}
		g.election = nil
		if others == 0 {
			s.leaderSelf(g)
			continue
		}
		g.election = &election{caw: uuidString(s.self)}
		g.leader = uuid.Nil
		s.groupSend(g, zremsg.Msg{ID: zremsg.MsgElect, Group: g.name, ChallengerID: g.election.caw}, p.id)
	}
}

// leaderSelf reports that we lead g.
func (s *state) leaderSelf(g *group) {
	g.leader = s.self
	s.emit(&Leader{EventHeader: EventHeader{Peer: s.self, Name: s.cfg.Name}, Group: g.name})
	s.log.Debug("zre: election: we lead", "group", g.name)
}

// electionMsg checks an ELECT or LEADER from p (id is its challenger or
// leader) and returns the group and its election, made if need be, marked
// as alive at now; a nil election when the message is to be ignored.
func (s *state) electionMsg(p *peer, m *zremsg.Msg, what, id string, now time.Time) (*group, *election) {
	if checkGroup(m.Group) != nil || id == "" {
		s.log.Debug("zre: election: message ignored", "err", fmt.Errorf("%w: %s from %s: group %q, %s %q", ErrProtocol, m.ID, p.label(), m.Group, what, id))
		return nil, nil
	}
	g := s.groups[m.Group] // not made: a message of a group nobody we know is in leaves nothing behind
	if !s.inElection(g, p, m) {
		return nil, nil
	}
	if g.election == nil {
		g.election = &election{}
	}
	e := g.election
	e.last = now
	g.restartAt = time.Time{}
	return g, e
}

// onElect handles an ELECT from p.
func (s *state) onElect(p *peer, m *zremsg.Msg, now time.Time) {
	g, e := s.electionMsg(p, m, "challenger", m.ChallengerID, now)
	if e == nil {
		return
	}
	challenger := m.ChallengerID
	if e.caw == "" || challenger < e.caw {
		// A better wave: support it, pass it on to everyone else.
		*e = election{caw: challenger, father: p.id, last: now}
		s.groupSend(g, zremsg.Msg{ID: zremsg.MsgElect, Group: g.name, ChallengerID: e.caw}, p.id)
		s.log.Debug("zre: election: support challenger", "group", g.name, "challenger", challenger)
	}
	if e.caw != challenger {
		return // an unworthy challenger's wave is ignored
	}
	e.erec++
	if e.erec != len(g.peers) {
		return
	}
	if e.caw == uuidString(s.self) {
		s.groupSend(g, zremsg.Msg{ID: zremsg.MsgLeader, Group: g.name, LeaderID: e.caw}, uuid.Nil)
		s.log.Debug("zre: election: LEADER decision", "group", g.name)
		return
	}
	s.echo(g, e)
}

// echo sends the wave back to our father.
func (s *state) echo(g *group, e *election) {
	e.echoed = true
	if f := s.peers[e.father]; f != nil {
		c := zremsg.Msg{ID: zremsg.MsgElect, Group: g.name, ChallengerID: e.caw}
		s.sendTo(f, &c)
	}
}

// keepWave reports whether g's election goes on across the departure of
// gone, leaving size peers in the group: when it is the wave of a lower
// challenger than us whose root and our father are not gone. (The C
// reference starts a wave of its own instead, and the two then often leave
// counts that never add up: a lower challenger, having seen the change
// first, started its wave before the change reached us.) A kept wave is
// checked against the new size: the ELECT or LEADER of gone will not come.
func (s *state) keepWave(g *group, gone uuid.UUID, size int) bool {
	e := g.election
	if e == nil || e.caw == "" || e.caw >= uuidString(s.self) || e.father == gone || e.caw == uuidString(gone) || size == 0 {
		return false
	}
	switch {
	case e.lrec > 0:
		if e.lrec >= size {
			s.finishElection(g, e)
		}
	case !e.echoed && e.erec >= size:
		s.echo(g, e)
	}
	return true
}

// onLeader handles a LEADER from p.
func (s *state) onLeader(p *peer, m *zremsg.Msg, now time.Time) {
	g, e := s.electionMsg(p, m, "leader", m.LeaderID, now)
	if e == nil {
		return
	}
	if e.caw == "" {
		s.log.Debug("zre: election: LEADER without a wave (an election was reset): ignored", "group", g.name, "from", p.label())
		return
	}
	if m.LeaderID < e.caw && e.lrec == 0 {
		// The wave of a lower challenger has ended: every node echoed it,
		// we too, before we started a wave of our own again (a peer entered
		// or joined). Ours cannot win against it; support the winner. (The
		// C reference counts the LEADER and passes one on naming whatever
		// wave it supports; ignoring it would leave our peers waiting for
		// our LEADER for ever.)
		s.log.Debug("zre: election: LEADER of a lower challenger: supported", "group", g.name, "leader", m.LeaderID, "supported", e.caw)
		e.caw = m.LeaderID
	}
	if m.LeaderID != e.caw {
		// The LEADER of a higher challenger than the wave we support: in
		// a run that ends, the lower wave's LEADER comes later, and we pass
		// that one on. (The C reference counts it all the same, and two
		// nodes that both count a wave complete can then each be reported
		// leader.)
		s.log.Debug("zre: election: LEADER for another wave ignored", "group", g.name, "leader", m.LeaderID, "supported", e.caw)
		return
	}
	self := uuidString(s.self)
	if m.LeaderID != self && e.lrec == 0 {
		s.groupSend(g, zremsg.Msg{ID: zremsg.MsgLeader, Group: g.name, LeaderID: e.caw}, uuid.Nil)
	}
	e.lrec++
	e.leader = m.LeaderID
	if e.lrec != len(g.peers) {
		return
	}
	s.finishElection(g, e)
}

// finishElection reports the leader and ends the election.
func (s *state) finishElection(g *group, e *election) {
	if e.leader == uuidString(s.self) {
		s.leaderSelf(g)
	} else if id, err := uuid.Parse(e.leader); err == nil && s.peers[id] != nil {
		lp := s.peers[id]
		g.leader = id
		s.emit(&Leader{EventHeader: s.header(lp), Group: g.name})
	}
	s.log.Debug("zre: election finished", "group", g.name, "leader", e.leader)
	g.election = nil
}

// inElection reports whether an ELECT or LEADER from p counts: we are in
// the group and so is p. (The C reference counts every one. One from a
// node that has left, or before we are in the group, counts towards a
// number of peers it is not among, and a wave then ends early with a wrong
// leader or never ends. In a run where every node is in the group, as the
// C reference's own tests, nothing changes. A C node that contests a
// group it has not joined starts a wave on meeting its members; C members
// that answer it elect it in few interleavings and in some pass ELECT and
// LEADER back and forth without end (spec/election.md); we ignore it.)
func (s *state) inElection(g *group, p *peer, m *zremsg.Msg) bool {
	if g != nil && s.own.has(g.name) && g.peers[p.id] != nil {
		return true
	}
	s.log.Debug("zre: election: message from outside the group ignored", "group", m.Group, "msg", m.ID, "from", p.label(), "we are in it", s.own.has(m.Group))
	return false
}

// electionReap runs the stall timers of every group's election (reap).
func (s *state) electionReap(now time.Time) {
	for _, name := range s.own.list() {
		g := s.groups[name]
		if g == nil {
			continue
		}
		if e := g.election; e != nil && e.caw != "" {
			switch {
			case e.last.IsZero():
				e.last = now
			case now.Sub(e.last) >= electionStall:
				s.log.Debug("zre: election stalled: dropped", "group", name, "challenger", e.caw, "erec", e.erec, "lrec", e.lrec)
				g.election = nil
				if g.contest && len(g.peers) > 0 {
					g.restartAt = e.last.Add(electionRestart)
				}
			}
		}
		if g.joinWave {
			g.joinWave = false
			// Unless a wave that ours cannot beat runs (a lower
			// challenger's; then it elects a leader without us starting).
			if e := g.election; g.contest && len(g.peers) > 0 && (e == nil || e.caw == "" || e.caw > uuidString(s.self)) {
				s.log.Debug("zre: election: we joined a group we contest", "group", name)
				s.startElection(g)
			}
		}
		if !g.restartAt.IsZero() && !now.Before(g.restartAt) {
			g.restartAt = time.Time{}
			if g.contest && len(g.peers) > 0 && g.election == nil {
				s.log.Debug("zre: election stalled: starting again", "group", name)
				s.startElection(g)
			}
		}
	}
}
