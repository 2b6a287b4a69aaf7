package zre

import (
	"bytes"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
)

// group is a group some peers are in, as we know it from their HELLO and
// JOIN/LEAVE messages.
type group struct {
	name  string
	peers map[uuid.UUID]*peer

	// Leader election (election.go): whether we contest the group, the
	// election under way, and the leader when it is a peer.
	contest   bool
	election  *election
	leader    uuid.UUID
	restartAt time.Time // when to start a stalled election again
	joinWave  bool      // start a wave at the next reap: we joined the group (electOnOwnJoin)
}

// ownGroups is the set of groups we are in, in the order we joined them
// (the order our HELLO lists them).
type ownGroups struct {
	names []string
}

func (g *ownGroups) has(name string) bool { return slices.Contains(g.names, name) }

func (g *ownGroups) add(name string) bool {
	if g.has(name) {
		return false
	}
	g.names = append(g.names, name)
	return true
}

func (g *ownGroups) remove(name string) bool {
	i := slices.Index(g.names, name)
	if i < 0 {
		return false
	}
	g.names = slices.Delete(g.names, i, i+1)
	return true
}

func (g *ownGroups) list() []string { return slices.Clone(g.names) }

// directory is what the application's goroutines read of the state without
// a round trip to the loop: the peers that entered, their groups, and our
// own groups. The loop writes it as the state changes (O(1) per peer or
// group change: no copy of the whole), under mu; readers take mu for
// reading. Whisper and Shout find their peers here.
//
// (Not an immutable snapshot behind an atomic pointer: rebuilding one per
// change costs O(peers) each time, O(peers²) for a node meeting a network,
// which is the cost issue 18 measured in reap's sort; nor one rebuilt on
// demand, which needs the round trip it avoids.)
type directory struct {
	mu     sync.RWMutex
	peers  map[uuid.UUID]*dirPeer
	groups map[string]*dirGroup
	own    []string
}

// dirPeer is one entered peer: what its HELLO said (immutable) and its
// groups (a slice: usually one or a few names, and it costs a tenth of a
// map; at most Config.MaxPeerGroups).
type dirPeer struct {
	p      *peer
	info   dirInfo
	groups []dirMember
}

// dirMember is one of a peer's groups and its place in the group's
// members (an index map per group cost 60 octets a link).
type dirMember struct {
	name string
	at   int
}

// member returns the index in dp.groups of group name, or -1.
func (dp *dirPeer) member(name string) int {
	for i := range dp.groups {
		if dp.groups[i].name == name {
			return i
		}
	}
	return -1
}

// groupNames returns dp's groups, sorted.
func (dp *dirPeer) groupNames() []string {
	out := make([]string, len(dp.groups))
	for i, m := range dp.groups {
		out[i] = m.name
	}
	slices.Sort(out)
	return out
}

// dirInfo is what a PeerInfo tells but its UUID, groups and Bound (a
// copy of the whole PeerInfo cost 48 octets more a link).
type dirInfo struct {
	name, endpoint string
	headers        []Header
	key            curve.PublicKey
}

// dirGroup is the peers of one group, in the order they joined (a peer
// that leaves is replaced by the last): Shout walks it as it is, without
// sorting.
type dirGroup struct {
	members []*dirPeer
}

func newDirectory() *directory {
	return &directory{peers: make(map[uuid.UUID]*dirPeer), groups: make(map[string]*dirGroup)}
}

// add publishes a peer that entered (the loop).
func (d *directory) add(p *peer, info PeerInfo) {
	di := dirInfo{name: info.Name, endpoint: info.Endpoint, headers: info.Headers, key: info.Key}
	d.mu.Lock()
	d.peers[p.id] = &dirPeer{p: p, info: di}
	d.mu.Unlock()
}

// remove forgets a peer and takes it out of its groups (the loop).
func (d *directory) remove(id uuid.UUID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dp := d.peers[id]
	if dp == nil {
		return
	}
	for len(dp.groups) > 0 {
		d.leaveLocked(dp, dp.groups[len(dp.groups)-1].name)
	}
	delete(d.peers, id)
}

// join records that an entered peer is in a group (the loop).
func (d *directory) join(id uuid.UUID, name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dp := d.peers[id]
	if dp == nil {
		return
	}
	g := d.groups[name]
	if g == nil {
		g = &dirGroup{}
		d.groups[name] = g
	}
	// (The state calls it for a new membership only.)
	dp.groups = append(dp.groups, dirMember{name: name, at: len(g.members)})
	g.members = append(g.members, dp)
}

// leave records that a peer left a group (the loop).
func (d *directory) leave(id uuid.UUID, name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if dp := d.peers[id]; dp != nil {
		d.leaveLocked(dp, name)
	}
}

func (d *directory) leaveLocked(dp *dirPeer, name string) {
	i := dp.member(name)
	if i < 0 {
		return
	}
	at := dp.groups[i].at
	end := len(dp.groups) - 1 // (order is kept by sorting at read)
	dp.groups[i] = dp.groups[end]
	dp.groups[end] = dirMember{}
	dp.groups = dp.groups[:end]
	g := d.groups[name]
	// The group's last member takes the place: O(its groups), and the
	// order stays the same for the same history.
	last := len(g.members) - 1
	if at != last {
		moved := g.members[last]
		g.members[at] = moved
		moved.groups[moved.member(name)].at = at
	}
	g.members[last] = nil
	g.members = g.members[:last]
	if len(g.members) == 0 {
		delete(d.groups, name)
	}
}

// setOwn publishes our own groups (the loop, or Join/Leave before Start).
func (d *directory) setOwn(names []string) {
	d.mu.Lock()
	d.own = names
	d.mu.Unlock()
}

// clear forgets every peer (the loop, at Stop and Close).
func (d *directory) clear() {
	d.mu.Lock()
	d.peers = make(map[uuid.UUID]*dirPeer)
	d.groups = make(map[string]*dirGroup)
	d.mu.Unlock()
}

// members appends the peers of a group to buf, in the group's order.
func (d *directory) members(buf []*peer, name string) []*peer {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if g := d.groups[name]; g != nil {
		for _, dp := range g.members {
			buf = append(buf, dp.p)
		}
	}
	return buf
}

// ids returns the UUIDs of the entered peers, sorted.
func (d *directory) ids() []uuid.UUID {
	d.mu.RLock()
	out := make([]uuid.UUID, 0, len(d.peers))
	for id := range d.peers {
		out = append(out, id)
	}
	d.mu.RUnlock()
	slices.SortFunc(out, compareUUIDs)
	return out
}

// groupIDs returns the UUIDs of a group's peers, sorted.
func (d *directory) groupIDs(name string) []uuid.UUID {
	d.mu.RLock()
	var out []uuid.UUID
	if g := d.groups[name]; g != nil {
		out = make([]uuid.UUID, 0, len(g.members))
		for _, dp := range g.members {
			out = append(out, dp.p.id)
		}
	}
	d.mu.RUnlock()
	slices.SortFunc(out, compareUUIDs)
	return out
}

// infos returns what we know of every entered peer, in UUID order.
func (d *directory) infos() []PeerInfo {
	d.mu.RLock()
	out := make([]PeerInfo, 0, len(d.peers))
	for _, dp := range d.peers {
		out = append(out, dp.infoLocked())
	}
	d.mu.RUnlock()
	slices.SortFunc(out, func(a, b PeerInfo) int { return compareUUIDs(a.UUID, b.UUID) })
	return out
}

// info returns what we know of one entered peer.
func (d *directory) info(id uuid.UUID) (PeerInfo, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	dp := d.peers[id]
	if dp == nil {
		return PeerInfo{}, false
	}
	return dp.pub(), true // (Headers is never changed: callers that hand it out clone it)
}

// pub is the PeerInfo without its groups, Headers shared.
func (dp *dirPeer) pub() PeerInfo {
	i := &dp.info
	return PeerInfo{UUID: dp.p.id, Name: i.name, Endpoint: i.endpoint, Headers: i.headers, Key: i.key,
		Bound: !i.key.IsZero() && IsBound(dp.p.id, i.key)}
}

func (dp *dirPeer) infoLocked() PeerInfo {
	info := dp.pub()
	info.Headers = slices.Clone(info.Headers)
	info.Groups = dp.groupNames()
	return info
}

// groupNames returns the groups our peers are in, sorted.
func (d *directory) groupNames() []string {
	d.mu.RLock()
	out := make([]string, 0, len(d.groups))
	for name := range d.groups {
		out = append(out, name)
	}
	d.mu.RUnlock()
	slices.Sort(out)
	return out
}

// ownGroups returns our groups, in the order we joined them.
func (d *directory) ownGroups() []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return slices.Clone(d.own)
}

func compareUUIDs(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) }

// peerName returns an entered peer and its name (or label), or nil.
func (d *directory) peerName(id uuid.UUID) (*peer, string) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	dp := d.peers[id]
	if dp == nil {
		return nil, ""
	}
	name := dp.info.name
	if name == "" {
		name = DefaultName(id)
	}
	return dp.p, name
}
