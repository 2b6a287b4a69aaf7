package zre

import (
	"slices"
	"time"

	"github.com/google/uuid"
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

func sortStrings(s []string) { slices.Sort(s) }
