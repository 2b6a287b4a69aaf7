package zyregroup

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/privgroup"
	"github.com/zyre-go/zyre/zmtp"
)

// Members and keys: who holds our sender key, rotations, trust rechecks,
// key requests. Everything here runs on the Group's goroutine.

// sending is the sending side's state.
type sending struct {
	s       *privgroup.Sender
	members map[uuid.UUID]curve.PublicKey // given our current key
	holds   map[uuid.UUID]uint32          // the epoch of the last key each member took
	// stalled: members given up (what waited for them passed SendTimeout);
	// nobody waits for them until they take something again.
	stalled map[uuid.UUID]bool
	pend    map[uuid.UUID]*line // what waits for each member whose queue was full
	// inflight counts the sends waiting for a queue, on their goroutines.
	inflight int
	auto     bool // our suite follows the members (Crypto.Suite was SuiteAuto)
	base     privgroup.Suite
	fast     map[uuid.UUID]byte // suites each member said it opens fast
	ours     byte               // the suites we open fast, sent with our key
	// rotateErr: a rotation that a removed member made necessary failed;
	// nothing more is sealed under the old epoch until one succeeds.
	rotateErr      error
	rotateExclude  uuid.UUID
	writer         *Writer
	drained        []chan struct{} // Writers waiting for the members' queues
	batch          *time.Timer
	armed          bool
	interval       time.Duration
	sent, answered map[uuid.UUID]time.Time // key requests, rate-limited
}

func (sd *sending) init(g *Group, opts Options) error {
	crypto := opts.Crypto
	crypto.VerifySender = g.verifySender
	if crypto.Suite == privgroup.SuiteAuto {
		pref := opts.preferredSuite
		if pref == nil {
			pref = privgroup.PreferredSuite
		}
		crypto.Suite, sd.auto = pref(g.opts.ChunkSize), true
	}
	sd.base = crypto.Suite
	fast := opts.FastSuite
	if fast == nil {
		fast = privgroup.Suite.Fast
	}
	for _, su := range []privgroup.Suite{privgroup.SuiteChaCha20SHA256, privgroup.SuiteAESGCMBLAKE3} {
		if fast(su) {
			sd.ours |= 1 << su
		}
	}
	s, err := privgroup.NewSender(g.group, g.self, &opts.Secret, crypto)
	if err != nil {
		return err
	}
	sd.s, sd.members, sd.holds, sd.stalled = s, map[uuid.UUID]curve.PublicKey{}, map[uuid.UUID]uint32{}, map[uuid.UUID]bool{}
	sd.pend, sd.fast = map[uuid.UUID]*line{}, map[uuid.UUID]byte{}
	sd.sent, sd.answered = map[uuid.UUID]time.Time{}, map[uuid.UUID]time.Time{}
	sd.interval = cmp(opts.Crypto.BatchInterval, privgroup.DefaultBatchInterval)
	sd.batch = time.NewTimer(time.Hour)
	sd.batch.Stop()
	return nil
}

// giveKey sends our current sender key to peer if it is trusted: at once,
// or behind what waits for it.
func (g *Group) giveKey(peer uuid.UUID) {
	sd := &g.send
	if peer == g.self {
		return
	}
	key, ok := g.peerKey(peer)
	if !ok || !g.trusted(peer, key) {
		g.st.Passed++
		g.log.Debug("zyregroup: member passed over", "group", g.group, "peer", peer, "key", ok)
		return
	}
	// A batch record first, so the member can authenticate from the first
	// message it can open.
	if sd.s.Pending() > 0 {
		if rec, err := sd.s.Batch(nil); err == nil && len(rec) > 0 {
			g.shout(rec)
		}
	}
	rec, err := sd.s.KeyFor(key)
	if err != nil {
		g.log.Warn("zyregroup: cannot make sender key", "group", g.group, "peer", peer, "err", err)
		return
	}
	it := item{key: [][]byte{[]byte(WhisperPrefix), []byte(g.group), rec, {sd.ours}}, epoch: sd.s.Epoch()}
	if l := sd.pend[peer]; l != nil {
		// Behind what waits for it, once per epoch.
		sd.members[peer] = key
		if slices.ContainsFunc(l.items, func(o item) bool { return o.key != nil && o.epoch == it.epoch }) {
			clear(rec)
			return
		}
		g.push(peer, it)
		return
	}
	switch err := g.node.Whisper(peer, it.key...); {
	case err == nil:
		clear(rec)
		sd.members[peer], sd.holds[peer] = key, it.epoch
		delete(sd.stalled, peer)
		g.st.KeysSent++
	case errors.Is(err, zmtp.ErrPeerNotResponding):
		sd.members[peer] = key
		g.push(peer, it)
	default:
		clear(rec)
		g.log.Warn("zyregroup: cannot send sender key", "group", g.group, "peer", peer, "err", err)
	}
}

// removeMember makes peer no member: it holds none of our keys from now
// on, and what waited for it is dropped.
func (g *Group) removeMember(peer uuid.UUID) {
	delete(g.send.members, peer)
	delete(g.send.stalled, peer)
	delete(g.send.holds, peer)
	g.dropLine(peer)
}

// rotate starts a new epoch and gives the new key to the current trusted
// members, but never to exclude.
func (g *Group) rotate(exclude uuid.UUID) error {
	sd := &g.send
	if err := sd.s.SetSuite(g.suite(exclude)); err != nil {
		sd.rotateErr, sd.rotateExclude = err, exclude
		return err
	}
	rec, err := sd.s.Rotate(nil)
	if len(rec) > 0 {
		g.shout(rec)
	}
	if err != nil {
		sd.rotateErr, sd.rotateExclude = err, exclude
		return err
	}
	sd.rotateErr, sd.rotateExclude = nil, uuid.Nil
	g.st.Rotations++
	g.distribute(exclude)
	if sd.rotateErr != nil {
		return g.rotated("rotate") // a removed peer held this key: once more
	}
	return nil
}

// rotated makes the rotation that failed, if one did, before anything more
// is sealed (for op); it fails while rotations do.
func (g *Group) rotated(op string) error {
	if g.send.rotateErr == nil {
		return nil
	}
	if err := g.rotate(g.send.rotateExclude); err != nil {
		return fmt.Errorf("zyregroup: %s: a rotation failed, and nothing is sent under the key a removed member holds: %w", op, err)
	}
	return nil
}

// errRemovedHolds: a peer removed from the members holds the current key.
var errRemovedHolds = errors.New("zyregroup: a removed peer holds the current key")

// distribute gives the current key to every trusted member of the group
// except exclude, and makes them the member set. One not given it that
// took this very key (a key request answered meanwhile) makes the next
// seal rotate first.
func (g *Group) distribute(exclude uuid.UUID) {
	sd := &g.send
	old := sd.members
	sd.members = make(map[uuid.UUID]curve.PublicKey, len(old))
	for _, p := range g.node.PeersByGroup(g.group) {
		if p != exclude {
			g.giveKey(p)
		}
	}
	for p := range old {
		if _, ok := sd.members[p]; !ok {
			if sd.holds[p] == sd.s.Epoch() {
				sd.rotateErr, sd.rotateExclude = errRemovedHolds, uuid.Nil
			}
			g.removeMember(p)
		}
	}
}

// rotateIfDue rotates when the policy says so (count or age).
func (g *Group) rotateIfDue() {
	if g.send.s.RotationDue() {
		g.logRotate(g.rotate(uuid.Nil))
	}
}

func (g *Group) logRotate(err error) {
	if err != nil {
		g.log.Warn("zyregroup: rotate", "group", g.group, "err", err)
	}
}

// memberSuites records which suites a member (whose key we took) opens
// fast, and rotates to suite 1, which every member opens fast, when ours is
// automatic and that member opens it slowly. It never rotates for anything
// else, so a member resending its key cannot make us re-key again and
// again.
func (g *Group) memberSuites(peer uuid.UUID, fast byte) {
	sd := &g.send
	sd.fast[peer] = fast
	cur := sd.s.Suite()
	if !sd.auto || fast&(1<<cur) != 0 || cur == privgroup.SuiteChaCha20SHA256 || g.suite(uuid.Nil) != privgroup.SuiteChaCha20SHA256 {
		return
	}
	g.log.Info("zyregroup: a member opens our suite slowly; changing suite", "group", g.group, "peer", peer, "suite", cur)
	g.logRotate(g.rotate(uuid.Nil))
}

// suite is the suite for our next epoch: our own preference, unless it is
// automatic and a member in the group (but exclude) said it opens that
// suite slowly; then suite 1, which every machine opens fast.
func (g *Group) suite(exclude uuid.UUID) privgroup.Suite {
	sd := &g.send
	if !sd.auto {
		return sd.base
	}
	for _, p := range g.node.PeersByGroup(g.group) {
		if f, ok := sd.fast[p]; ok && p != exclude && f&(1<<sd.base) == 0 {
			return privgroup.SuiteChaCha20SHA256
		}
	}
	return sd.base
}

// memberGone handles a LEAVE of the group or an EXIT: a member holding our
// key makes us rotate; its own stream ends.
func (g *Group) memberGone(peer uuid.UUID) {
	delete(g.send.fast, peer)
	if _, ok := g.send.members[peer]; ok {
		g.removeMember(peer)
		g.logRotate(g.rotate(peer))
	}
	rv := &g.rcv
	if q := rv.queues[peer]; q != nil {
		q.close()
		if rv.readers[peer] == 0 {
			g.dropSender(peer)
		} else {
			// Its Reader keeps the keys for what it has not read yet, but
			// they must not refuse the key of the peer's next session.
			rv.r.EndSession(peer)
			g.gone(peer)
		}
	}
}

// doRecheck is Recheck on the Group's goroutine.
func (g *Group) doRecheck() {
	var gone []uuid.UUID
	for p, k := range g.send.members {
		if cur, ok := g.peerKey(p); !ok || !cur.Equal(k) || !g.trusted(p, k) {
			gone = append(gone, p)
		}
	}
	if len(gone) > 0 {
		for _, p := range gone {
			g.removeMember(p)
		}
		g.logRotate(g.rotate(uuid.Nil)) // (distribute asks everyone again)
	}
	for p, ss := range g.rcv.senders {
		if !g.trusted(p, ss.key) {
			g.dropSender(p)
		}
	}
}

// allow reports whether an event for peer in m is at least requestInterval
// after the last one, and records it. The maps are bounded: when full they
// are cleared.
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

// requestKey asks peer, which shouted a record of the group we hold no key
// for, for its current sender key, if it is trusted, at most once per
// requestInterval.
func (g *Group) requestKey(peer uuid.UUID) {
	if !allow(g.send.sent, peer) {
		return
	}
	key, ok := g.peerKey(peer)
	if !ok || !g.trusted(peer, key) {
		return
	}
	if err := g.node.Whisper(peer, []byte(WhisperPrefix), []byte(g.group)); err != nil {
		g.log.Debug("zyregroup: key request", "group", g.group, "peer", peer, "err", err)
		return
	}
	g.st.KeyRequests++
}

// answerRequest gives our current key to peer if it is a trusted member of
// the group, at most once per requestInterval.
func (g *Group) answerRequest(peer uuid.UUID) {
	if peer == g.self || !allow(g.send.answered, peer) {
		return
	}
	if !slices.Contains(g.node.PeersByGroup(g.group), peer) {
		g.st.Passed++
		return
	}
	g.giveKey(peer)
}

// verifySender is the Receiver's Options.VerifySender: the sender id in a
// sender key must be the peer whose WHISPER carried it, and that peer must
// be trusted. It runs inside AddSenderKey, on the Group's goroutine.
func (g *Group) verifySender(id uuid.UUID, key curve.PublicKey) error {
	if id != g.rcv.from {
		return fmt.Errorf("sender id %s in a key whispered by %s", id, g.rcv.from)
	}
	if !g.trusted(id, key) {
		return fmt.Errorf("%w: %s", ErrUntrusted, id)
	}
	return nil
}
