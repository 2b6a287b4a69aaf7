package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

// Discovery is how long a node takes to meet the peers on its network
// (a few beacons): before that, a group with nobody in it may only be a
// group whose members are not met yet.
const Discovery = 3 * time.Second

// GroupAbsent says whether nobody has joined group (as far as n knows),
// and if so what n has seen, for a user: "groups seen: family" or "no
// group seen". A mistyped group is the usual cause.
func GroupAbsent(n *zre.Node, group string) (string, bool) {
	if len(n.PeersByGroup(group)) > 0 {
		return "", false
	}
	// trust.Group carries the nodes' trust statements: nobody's to stream in.
	seen := slices.DeleteFunc(n.PeerGroups(), func(g string) bool { return g == trust.Group })
	slices.Sort(seen)
	const most = 8
	more := ""
	if len(seen) > most {
		more = fmt.Sprintf(" and %d more", len(seen)-most)
		seen = seen[:most]
	}
	for i, g := range seen {
		if q := strconv.Quote(g); q[1:len(q)-1] != g {
			seen[i] = q
		}
	}
	list := "no group seen"
	if len(seen) > 0 {
		list = "groups seen: " + strings.Join(seen, ", ") + more
	}
	return list, true
}

// MembersError is the error of a stream sender that did not meet want
// trusted members holding its key in group within wait: nobody there
// (GroupAbsent), or how many of the peers there did.
func MembersError(n *zre.Node, group string, have, want int, wait time.Duration) error {
	if seen, ok := GroupAbsent(n, group); ok {
		return fmt.Errorf("stream: nobody has joined %q within %v (%s)", group, wait, seen)
	}
	there := len(n.PeersByGroup(group))
	return fmt.Errorf("stream: %d of the %d peer(s) in %q hold our key as trusted members within %v, %d wanted (is the other side trusted? see zyre trust, --trust)",
		have, there, group, wait, want)
}

// AbsentNotice is the notice of a stream sender still waiting for a
// member in group, when nobody has joined it: `nobody has joined "famly"
// yet (groups seen: family); waiting up to 30s for a member (--wait)`.
func AbsentNotice(n *zre.Node, group string, wait time.Duration) (string, bool) {
	seen, ok := GroupAbsent(n, group)
	if !ok {
		return "", false
	}
	return fmt.Sprintf("nobody has joined %q yet (%s); waiting up to %v for a member (--wait)", group, seen, wait), true
}

// NotStreamingText is a receiver's error for a user when nobody streamed
// in its group: ns.Text, or, when the wait ended with nobody in the group
// at all, that nobody has joined it (a mistyped name, usually), not a hint
// about trust.
func NotStreamingText(n *zre.Node, ns *NotStreamingError, wait time.Duration) string {
	if len(ns.Senders) == 0 && errors.Is(ns.Err, context.DeadlineExceeded) {
		if seen, ok := GroupAbsent(n, ns.Group); ok {
			return fmt.Sprintf("nobody has joined %q within %v (%s)", ns.Group, wait, seen)
		}
	}
	return ns.Text(n.PeerName, wait)
}

// NearGroup is, when nobody has joined group, a group seen whose name is
// at most two edits from it ("famly", "family"): a typo, said at once by
// a stream sender rather than after its whole wait. A group nobody has
// joined yet with a name of its own is still waited for.
func NearGroup(n *zre.Node, group string) (string, bool) {
	if len(n.PeersByGroup(group)) > 0 || len([]rune(group)) < 3 {
		return "", false
	}
	for _, g := range n.PeerGroups() {
		if g != trust.Group && g != group && editDistance(g, group) <= 2 {
			return g, true
		}
	}
	return "", false
}

// NearGroupError is the error of a stream sender whose group is a typo of
// near, a group seen.
func NearGroupError(n *zre.Node, group, near string) error {
	seen, _ := GroupAbsent(n, group)
	return fmt.Errorf("stream: nobody has joined %q (%s): did you mean %q?", group, seen, near)
}

// editDistance is the Levenshtein distance of a and b, in runes (names of
// at most 255 octets: small).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
