package zre

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/uuid"
)

// The directory stays consistent through random joins, leaves and
// removals: every member knows its place in its groups, and the groups
// hold exactly the members that say they are in them.
func TestDirectoryConsistent(t *testing.T) {
	d := newDirectory()
	rng := rand.New(rand.NewPCG(1, 2))
	var ids []uuid.UUID
	in := make(map[uuid.UUID]map[string]bool)
	for i := range 40 {
		id := uuid.NewSHA1(uuid.Nil, []byte{byte(i)})
		ids = append(ids, id)
		d.add(newPeer(id), PeerInfo{Name: fmt.Sprint(i)})
		in[id] = make(map[string]bool)
	}
	for step := range 20000 {
		id := ids[rng.IntN(len(ids))]
		g := fmt.Sprintf("g%d", rng.IntN(8))
		switch rng.IntN(10) {
		case 0:
			d.remove(id)
			d.add(newPeer(id), PeerInfo{})
			in[id] = make(map[string]bool)
		case 1, 2, 3, 4:
			if !in[id][g] {
				d.join(id, g)
				in[id][g] = true
			}
		default:
			d.leave(id, g)
			delete(in[id], g)
		}
		if step%500 != 0 {
			continue
		}
		for name, grp := range d.groups {
			if len(grp.members) == 0 {
				t.Fatalf("step %d: empty group %q kept", step, name)
			}
			for at, dp := range grp.members {
				i := dp.member(name)
				if i < 0 || dp.groups[i].at != at || !in[dp.p.id][name] {
					t.Fatalf("step %d: member %d of %q out of place", step, at, name)
				}
			}
		}
		for _, id := range ids {
			names := d.peers[id].groupNames()
			var exp []string
			for g := range in[id] {
				exp = append(exp, g)
			}
			slices.Sort(exp)
			if !slices.Equal(names, exp) && len(names)+len(exp) > 0 {
				t.Fatalf("step %d: peer in %v, want %v", step, names, exp)
			}
		}
	}
}
