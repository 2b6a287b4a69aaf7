package main

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/privgroup/zyregroup"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

// revocations connects the trust store's revocations to a command's
// private group: the group rechecks its members at once (a revoked member
// is removed and the group rotates), and a revocation of this device's own
// key is reported on ours. Its hook runs on the store's goroutine
// (trust.Options.OnRevoked); it may be installed before the node and the
// group exist.
type revocations struct {
	g    atomic.Pointer[zyregroup.Group]
	own  atomic.Pointer[curve.PublicKey]
	ours chan trust.Record // buffered: the first revocation of our key
	// before, if set, is called first with the revoked records: a command
	// tells the revoked members, while its node still reaches them.
	before atomic.Pointer[func([]trust.Record)]
}

func newRevocations() *revocations { return &revocations{ours: make(chan trust.Record, 1)} }

// hook is trust.Options.OnRevoked.
func (r *revocations) hook(rs []trust.Record) {
	if f := r.before.Load(); f != nil {
		(*f)(rs)
	}
	if g := r.g.Load(); g != nil {
		g.Recheck()
	}
	own := r.own.Load()
	for _, rec := range rs {
		if own != nil && rec.Key.Equal(*own) {
			select {
			case r.ours <- rec:
			default:
			}
		}
	}
}

// ownRevokedError is the error of a command whose own key was revoked.
func ownRevokedError(rec trust.Record, st *trust.Store) error {
	by := "a peer"
	if !rec.RevokedBy.IsZero() && st != nil {
		if r, ok, err := st.Lookup(rec.RevokedBy); err == nil && ok && r.Name != "" {
			by = safe(r.Name)
		}
	}
	reason := ""
	if rec.RevokeReason != "" {
		reason = " (" + safe(rec.RevokeReason) + ")"
	}
	return fmt.Errorf("this device's key was revoked by %s%s: it is removed from the private group", by, reason)
}

// memberWatch follows a private group's members (those holding our sender
// key) and tells, when one is removed, which and why. One goroutine owns
// it.
type memberWatch struct {
	n     *zre.Node
	g     *zyregroup.Group
	st    *trust.Store
	known map[uuid.UUID]watched
}

type watched struct {
	name string
	key  curve.PublicKey
}

func newMemberWatch(n *zre.Node, g *zyregroup.Group, st *trust.Store) *memberWatch {
	return &memberWatch{n: n, g: g, st: st, known: map[uuid.UUID]watched{}}
}

// removal is a member that no longer holds our sender key.
type removal struct {
	peer    uuid.UUID
	name    string
	revoked bool
	reason  string
}

// update compares the members with those of the last call and returns the
// removed ones, each with its reason.
func (m *memberWatch) update() (count int, removed []removal) {
	now := m.g.Members()
	cur := make(map[uuid.UUID]bool, len(now))
	for _, p := range now {
		cur[p] = true
		if _, ok := m.known[p]; !ok {
			k, _ := m.n.PeerKey(p)
			m.known[p] = watched{name: m.n.PeerName(p), key: k}
		}
	}
	for p, w := range m.known {
		if cur[p] {
			continue
		}
		delete(m.known, p)
		r := removal{peer: p, name: w.name, reason: "it left the group or stopped"}
		if m.st != nil && !w.key.IsZero() {
			if rec, ok, err := m.st.Lookup(w.key); err == nil && ok {
				switch {
				case rec.State == trust.StateRevoked:
					r.revoked, r.reason = true, "its key is revoked"
					if rec.RevokeReason != "" {
						r.reason += " (" + safe(rec.RevokeReason) + ")"
					}
				case !rec.Trusted():
					r.reason = "it is no longer trusted"
				}
			}
		}
		removed = append(removed, r)
	}
	return len(now), removed
}

// report prints a removal on w.
func (r removal) report(w io.Writer, group string) {
	fmt.Fprintf(w, "zyre: removed %s %s from the private group %q: %s\n", safe(r.name), uuidText(r.peer), group, r.reason)
}

// removedFrame is the second frame of the WHISPER by which a command tells
// a member whose key was revoked that it is removed from the private
// group, before its node drops that member: frames streamAck,
// removedFrame, the group, the reason. The node drops a revoked peer on
// its next housekeeping tick and discards what waits for it, so the notice
// may be lost; the member then learns it from the silence of the sender
// (a Silent event) or from records it cannot open.
const removedFrame = "REMOVED"

// tellRemoved whispers the notice to the peers of n whose key rs revoke.
func tellRemoved(n *zre.Node, group string, rs []trust.Record) {
	for _, pi := range n.PeerInfos() {
		for _, r := range rs {
			if !pi.Key.IsZero() && pi.Key.Equal(r.Key) {
				reason := "its key is revoked"
				if r.RevokeReason != "" {
					reason += " (" + r.RevokeReason + ")"
				}
				n.Whisper(pi.UUID, []byte(streamAck), []byte(removedFrame), []byte(group), []byte(reason))
			}
		}
	}
}

// removedNotice reports whether w is a removal notice for group, and its
// reason.
func removedNotice(w *zre.Whisper, group string) (string, bool) {
	if len(w.Content) != 4 || string(w.Content[0]) != streamAck || string(w.Content[1]) != removedFrame || string(w.Content[2]) != group {
		return "", false
	}
	return string(w.Content[3]), true
}

// A member that goes silent (its beacons arrive, no message for
// zre.Config.Silent: a Silent event) is idle, or its node dropped ours. A
// probe tells: frames streamAck, probeFrame, the group, answered with
// probedFrame in place of probeFrame. No answer within probeWait: cut
// off.
const (
	probeFrame  = "PROBE"
	probedFrame = "PROBED"
	probeWait   = 3 * time.Second
)

// probeMsg reports whether w is a probe (or, with answer, the answer to
// one) for group.
func probeMsg(w *zre.Whisper, group string, answer bool) bool {
	want := probeFrame
	if answer {
		want = probedFrame
	}
	return len(w.Content) == 3 && string(w.Content[0]) == streamAck && string(w.Content[1]) == want && string(w.Content[2]) == group
}

// sendProbe whispers a probe (or an answer) for group to peer.
func sendProbe(n *zre.Node, peer uuid.UUID, group string, answer bool) {
	f := probeFrame
	if answer {
		f = probedFrame
	}
	n.Whisper(peer, []byte(streamAck), []byte(f), []byte(group))
}

// cutOffError is the error of a command whose sender no longer answers.
func cutOffError(name string, peer uuid.UUID, group string) error {
	return fmt.Errorf("%s %s sends this device nothing any more and answers no probe while its beacons arrive: cut off from the private group %q (revoked, or the network drops the connection)",
		safe(name), uuidText(peer), group)
}

// streamNotice reports whether w is a stream's notice of kind
// (agent.QueryFrame or agent.StreamingFrame) for group.
func streamNotice(w *zre.Whisper, group, kind string) bool {
	return len(w.Content) == 3 && string(w.Content[0]) == streamAck && string(w.Content[1]) == kind && string(w.Content[2]) == group
}
