package zre

import (
	"fmt"
	"testing"
)

// Elections with nodes that behave as C zyre nodes where it matters to us:
// they have no stall timers, so a wave that waits for our answer waits for
// ever (see spec/election.md, "C nodes").

// TestElectionContestThenJoin: our node contests a group before it joins
// it. It starts no wave while it is not in the group (it would count no
// answer, and its C peers would support a wave that never ends); it starts
// one when it joins, and every member elects it. (It started its wave on
// meeting the peers, ignored their answers, started none on joining, and
// its C peers, with no stall timers, never elected anyone.)
func TestElectionContestThenJoin(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			net := newElNet(t, 3, seed, []bool{true, false, false}, "g")
			net.nodes[1].noTimers = true
			net.nodes[2].noTimers = true
			if err := net.nodes[0].st.leave("g"); err != nil {
				t.Fatal(err)
			}
			net.meet()
			if err := net.nodes[0].st.join("g"); err != nil {
				t.Fatal(err)
			}
			net.run()
			if l := net.leader("g"); l != 0 {
				t.Fatalf("n%d elected, want n0", l)
			}
		})
	}
}
