package zyregroup

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/privgroup"
	"github.com/zyre-go/zyre/zmtp"
)

// Members and keys: who holds our sender key, rotations, trust rechecks
// and key requests, on the Group's goroutine.

type sending struct {
	s              *privgroup.Sender
	members        map[uuid.UUID]curve.PublicKey // given our current key
	holds          map[uuid.UUID]uint32          // the epoch of the last key each took
	stalled        map[uuid.UUID]bool            // given up: not waited for until it takes something
	passed         map[uuid.UUID]bool            // in the group without our key, passed over (or given up: true)
	to             []uuid.UUID                   // shout's
	pend           map[uuid.UUID]*line           // what waits for a member's full queue
	inflight       int                           // line sends waiting, on their goroutines
	auto           bool                          // our suite follows the members' (SuiteAuto)
	base           privgroup.Suite
	fast           map[uuid.UUID]byte // the suites each member opens fast
	ours           byte
	rotateErr      error // a rotation that a removed member made necessary failed: seal nothing
	rotateExclude  uuid.UUID
	failing        atomic.Bool // rotateErr != nil, for the Writer
	writer         *Writer
	drained        []chan struct{} // Writers waiting for the lines
	batch          *time.Timer
	armed          bool
	interval       time.Duration
	sent, answered map[uuid.UUID]time.Time // key requests
}

func (sd *sending) init(s *privgroup.Sender, base privgroup.Suite, fast func(privgroup.Suite) bool, interval time.Duration) {
	sd.s, sd.base, sd.interval = s, base, interval
	if fast == nil {
		fast = privgroup.Suite.Fast
	}
	for _, su := range []privgroup.Suite{privgroup.SuiteChaCha20SHA256, privgroup.SuiteAESGCMBLAKE3} {
		if fast(su) {
			sd.ours |= 1 << su
		}
	}
	sd.members, sd.holds, sd.stalled, sd.pend = map[uuid.UUID]curve.PublicKey{}, map[uuid.UUID]uint32{}, map[uuid.UUID]bool{}, map[uuid.UUID]*line{}
	sd.passed, sd.fast, sd.sent, sd.answered = map[uuid.UUID]bool{}, map[uuid.UUID]byte{}, map[uuid.UUID]time.Time{}, map[uuid.UUID]time.Time{}
	sd.batch = time.NewTimer(time.Hour)
	sd.batch.Stop()
}

// giveKey sends our current sender key to peer if it is trusted (else it
// is passed over, until a recheck): at once, or behind what waits for it
// (once per epoch), or, without wait, not at all: then at the next recheck.
func (g *Group) giveKey(peer uuid.UUID, wait bool) {
	sd := &g.send
	if peer == g.self {
		return
	}
	key, ok := g.peerKey(peer)
	if !ok || !g.trusted(peer, key) {
		g.st.Passed++
		sd.passed[peer] = false
		g.log.Debug("zyregroup: member passed over", "group", g.group, "peer", peer, "key", ok)
		return
	}
	delete(sd.passed, peer)
	if sd.s.Pending() > 0 { // a batch record first: the key authenticates from its first message
		g.batch()
	}
	rec, err := sd.s.KeyFor(key)
	if err != nil {
		g.log.Warn("zyregroup: cannot make sender key", "group", g.group, "peer", peer, "err", err)
		return
	}
	it := item{key: [][]byte{[]byte(WhisperPrefix), []byte(g.group), rec, {sd.ours}}, epoch: sd.s.Epoch()}
	if l := sd.pend[peer]; l != nil {
		sd.members[peer] = key
		if slices.ContainsFunc(l.items, func(o item) bool { return o.key != nil && o.epoch == it.epoch }) {
			clear(rec)
		} else {
			g.push(peer, it)
		}
		return
	}
	switch err := g.node.Whisper(peer, it.key...); {
	case err == nil:
		clear(rec)
		sd.members[peer], sd.holds[peer] = key, it.epoch
		delete(sd.stalled, peer)
		g.st.KeysSent++
	case errors.Is(err, zmtp.ErrPeerNotResponding) && wait:
		sd.members[peer] = key
		g.push(peer, it)
	case !wait:
		clear(rec)
		sd.passed[peer] = true
	default:
		clear(rec)
		g.log.Warn("zyregroup: cannot send sender key", "group", g.group, "peer", peer, "err", err)
	}
}

// removeMember: peer gets none of our keys from now on, nor what waited.
func (g *Group) removeMember(peer uuid.UUID) {
	delete(g.send.members, peer)
	delete(g.send.stalled, peer)
	delete(g.send.holds, peer)
	g.dropLine(peer)
}

// removedWord is the last frame of a removed notice (WhisperPrefix).
const removedWord = "removed"

// dismiss tells a member removed for trust that it is (no wait: a full
// queue loses the notice, and the member then learns nothing more).
func (g *Group) dismiss(peer uuid.UUID) {
	if err := g.node.Whisper(peer, []byte(WhisperPrefix), []byte(g.group), nil, []byte(removedWord)); err != nil {
		g.log.Debug("zyregroup: removed notice", "group", g.group, "peer", peer, "err", err)
		return
	}
	g.st.Dismissed++
}

// rotate starts a new epoch and gives its key to the current trusted
// members but exclude; a failure fails closed (rotated).
func (g *Group) rotate(exclude uuid.UUID) error {
	sd := &g.send
	err := sd.s.SetSuite(g.suite(exclude))
	if err == nil {
		var rec []byte
		if rec, err = sd.s.Rotate(nil); len(rec) > 0 {
			g.shout(rec)
		}
	}
	g.failed(err, exclude)
	if err != nil {
		return err
	}
	g.st.Rotations++
	g.distribute(exclude)
	return g.rotated("rotate") // a removed peer held this key: once more
}

// rotated makes the rotation that failed, if one did, before anything more
// is sealed (by op).
func (g *Group) rotated(op string) error {
	if g.send.rotateErr == nil {
		return nil
	}
	if err := g.rotate(g.send.rotateExclude); err != nil {
		return fmt.Errorf("zyregroup: %s: a rotation failed, and nothing is sent under the key a removed member holds: %w", op, err)
	}
	return nil
}

func (g *Group) failed(err error, exclude uuid.UUID) {
	if err == nil {
		exclude = uuid.Nil
	}
	g.send.rotateErr, g.send.rotateExclude = err, exclude
	g.send.failing.Store(err != nil)
}

var errRemovedHolds = errors.New("zyregroup: a removed peer holds the current key")

// distribute gives the current key to every trusted member of the group
// but exclude, and makes them the members. One left out that took this
// very key (a key request answered meanwhile) makes the next seal rotate
// first.
func (g *Group) distribute(exclude uuid.UUID) {
	sd := &g.send
	old := sd.members
	sd.members = make(map[uuid.UUID]curve.PublicKey, len(old))
	for _, p := range g.node.PeersByGroup(g.group) {
		if p != exclude {
			g.giveKey(p, true)
		}
	}
	for p := range old {
		if _, ok := sd.members[p]; !ok {
			if sd.holds[p] == sd.s.Epoch() {
				g.failed(errRemovedHolds, uuid.Nil)
			}
			g.removeMember(p)
			if givenUp, passed := sd.passed[p]; passed && !givenUp {
				g.dismiss(p) // still here, no longer trusted
			}
		}
	}
}

// rotateNow rotates when due is true, and logs a failure.
func (g *Group) rotateNow(due bool, exclude uuid.UUID) {
	if !due {
		return
	}
	if err := g.rotate(exclude); err != nil {
		g.log.Warn("zyregroup: rotate", "group", g.group, "err", err)
	}
}

// memberSuites records which suites a member opens fast and rotates to
// suite 1, which every member opens fast, when ours is automatic and that
// member opens it slowly; for nothing else, so that a member resending its
// key cannot make us re-key again and again.
func (g *Group) memberSuites(peer uuid.UUID, fast byte) {
	sd := &g.send
	sd.fast[peer] = fast
	if cur := sd.s.Suite(); sd.auto && fast&(1<<cur) == 0 && cur != privgroup.SuiteChaCha20SHA256 && g.suite(uuid.Nil) == privgroup.SuiteChaCha20SHA256 {
		g.log.Info("zyregroup: a member opens our suite slowly; changing suite", "group", g.group, "peer", peer, "suite", cur)
		g.rotateNow(true, uuid.Nil)
	}
}

// suite is the suite for our next epoch: our own, unless it is automatic
// and a member in the group (but exclude) opens it slowly; then suite 1.
func (g *Group) suite(exclude uuid.UUID) privgroup.Suite {
	sd := &g.send
	for _, p := range g.node.PeersByGroup(g.group) {
		if f, ok := sd.fast[p]; sd.auto && ok && p != exclude && f&(1<<sd.base) == 0 {
			return privgroup.SuiteChaCha20SHA256
		}
	}
	return sd.base
}

// memberGone handles a LEAVE of the group or an EXIT: a member holding our
// key makes us rotate; its own stream ends.
func (g *Group) memberGone(peer uuid.UUID) {
	delete(g.send.fast, peer)
	delete(g.send.passed, peer)
	_, member := g.send.members[peer]
	g.removeMember(peer)
	g.rotateNow(member, peer)
	if q := g.rcv.queues[peer]; q != nil {
		q.Close()
		if g.rcv.readers[peer] == 0 {
			g.dropSender(peer)
		} else {
			// Its Readers keep the keys for what they have not read, but
			// the peer's next session (a restart) is a new one.
			g.rcv.r.EndSession(peer)
			g.gone(peer)
		}
	}
}

// resync follows the group's members after the node dropped membership
// events (zre.Overflow).
func (g *Group) resync() {
	in := g.node.PeersByGroup(g.group)
	for p := range g.send.members {
		if !slices.Contains(in, p) {
			g.memberGone(p)
		}
	}
	for _, p := range in {
		if _, ok := g.send.members[p]; !ok {
			g.giveKey(p, true)
		}
	}
}

func (g *Group) doRecheck() {
	gone := false
	for p, k := range g.send.members {
		if cur, ok := g.peerKey(p); !ok || !cur.Equal(k) || !g.trusted(p, k) {
			g.removeMember(p)
			g.dismiss(p)
			gone = true
		}
	}
	g.rotateNow(gone, uuid.Nil) // (distribute asks everyone again)
	// Peers passed over that are trusted now get our key, and are asked for
	// theirs (we refused it); one given up gets it if its queue takes it.
	for p, givenUp := range g.send.passed {
		if key, ok := g.peerKey(p); ok && g.trusted(p, key) {
			if !givenUp {
				g.requestKey(p)
			}
			g.giveKey(p, !givenUp)
		}
	}
	for p, ss := range g.rcv.senders {
		if !g.trusted(p, ss.key) {
			g.dropSender(p)
		}
	}
}

// allow reports whether peer's last event in m is requestInterval old, and
// records this one.
func allow(m map[uuid.UUID]time.Time, peer uuid.UUID) bool {
	now := time.Now()
	if last, ok := m[peer]; ok && now.Sub(last) < requestInterval {
		return false
	}
	if len(m) >= 4096 {
		clear(m)
	}
	m[peer] = now
	return true
}

// requestKey asks a trusted peer for its key: at Attach (it may have sent
// it before), when it turns trusted, and when it shouts a record we hold no
// key for (we lost it).
func (g *Group) requestKey(peer uuid.UUID) {
	if key, ok := g.peerKey(peer); !allow(g.send.sent, peer) || !ok || !g.trusted(peer, key) {
		return
	}
	if err := g.node.Whisper(peer, []byte(WhisperPrefix), []byte(g.group)); err != nil {
		g.log.Debug("zyregroup: key request", "group", g.group, "peer", peer, "err", err)
		return
	}
	g.st.KeyRequests++
}

func (g *Group) answerRequest(peer uuid.UUID) {
	switch {
	case peer == g.self || !allow(g.send.answered, peer):
	case !slices.Contains(g.node.PeersByGroup(g.group), peer):
		g.st.Passed++
	default:
		g.giveKey(peer, true)
	}
}
