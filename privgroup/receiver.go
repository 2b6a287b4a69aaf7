package privgroup

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"hash"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/nacl/secretbox"

	"github.com/zyre-go/zyre/curve"
)

// Status says how far a message is trusted.
type Status uint8

const (
	// Pending: the message decrypted under a sender key, so a member of
	// the group made it, but no signed batch record covers it yet: another
	// member could have forged it. Hold it, or use it tentatively.
	Pending Status = 1
	// Authenticated: a batch record signed with the sender's epoch key
	// covers the message.
	Authenticated Status = 2
)

// String names the status.
func (s Status) String() string {
	switch s {
	case Pending:
		return "pending"
	case Authenticated:
		return "authenticated"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Settlement is the final verdict on a range of counters of one sender
// epoch: [First, First+Count). Authenticated ranges were covered by a valid
// batch record; every pending message in them may be released. Other ranges
// were given up (lost messages, a batch record that never came or did not
// verify, or the epoch expired): discard their pending messages. Missing
// counts the counters of the range that never arrived. Settlements of one
// epoch come in counter order without holes.
type Settlement struct {
	Epoch         uint32
	First         uint32
	Count         uint32
	Authenticated bool
	Missing       uint32
}

const maxSettlements = 8

// Info describes a record that Open accepted.
type Info struct {
	Kind   Kind
	Sender uuid.UUID
	Epoch  uint32
	KeyID  KeyID
	// Counter is the message counter (data) or the first counter covered
	// (batch); Count the number of messages a batch covers.
	Counter uint32
	Count   uint16
	// Status of a data message is always Pending: wait for a settlement.
	// A batch is Authenticated when it verified, Pending when it waits for
	// messages of its range that have not arrived.
	Status Status
	// Gap is the number of counters this data message skipped: messages
	// lost or still on their way (reordered).
	Gap uint32
	// Lost is the number of counters given up in this call that never
	// arrived: they are lost for good.
	Lost uint32

	settled  [maxSettlements]Settlement
	nSettled int
}

// Settlements returns the ranges settled by this call, in order.
func (i *Info) Settlements() []Settlement { return i.settled[:i.nSettled] }

func (i *Info) addSettlement(s Settlement) {
	if !s.Authenticated {
		i.Lost += s.Missing
	}
	if i.nSettled > 0 {
		last := &i.settled[i.nSettled-1]
		if last.Epoch == s.Epoch && last.Authenticated == s.Authenticated && last.First+last.Count == s.First {
			last.Count += s.Count
			last.Missing += s.Missing
			return
		}
	}
	if i.nSettled < maxSettlements {
		i.settled[i.nSettled] = s
		i.nSettled++
	}
}

// KeyInfo describes a sender key that AddSenderKey accepted.
type KeyInfo struct {
	Sender  uuid.UUID
	Epoch   uint32
	Counter uint32 // the first counter this key can open
	KeyID   KeyID
	Suite   Suite
	// Duplicate: the same key was already known; nothing changed.
	Duplicate bool
}

// Stats counts what a Receiver refused or gave up.
type Stats struct {
	Opened, Authenticated, Lost, Replayed, TooOld, BadTag, BadSignature, UnknownKey uint64
}

// Receiver opens the data messages and batch records of one private group
// from all senders whose sender keys it was given. It is safe for
// concurrent use; it has no goroutines and does no I/O.
type Receiver struct {
	mu     sync.Mutex
	group  string
	sk     curve.SecretKey
	pub    curve.PublicKey
	opts   Options
	peers  map[uuid.UUID]*peer
	chains map[KeyID]*chain
	hasher [3]hash.Hash // by suite, made when first needed
	sigBuf []byte
	stats  Stats
	closed bool
	nonce  [nonceSize]byte // scratch, see Sender
	walked uint64          // chain steps walked to open messages ahead (tests)
}

type peer struct {
	key    curve.PublicKey
	chains []*chain // oldest first; the last is current
	// ended: the sender's session ended (EndSession); its next key starts
	// a new session, whatever its epoch.
	ended bool
}

// chain is one sender epoch at a receiver. Counters are uint64 so that
// arithmetic near 1<<32 cannot wrap.
type chain struct {
	sender  uuid.UUID
	epoch   uint32
	id      KeyID
	suite   Suite
	signPub [32]byte
	ck      [32]byte // chain key of counter next
	next    uint64
	base    uint64 // first counter the key can open
	top     uint64 // newest counter received + 1 (base when none)
	settled uint64 // counters below it are settled
	have    []uint64
	hashes  [][32]byte // hashes (the suite's) of received, unsettled messages by counter % window
	skipped map[uint64][32]byte
	ad      []byte
	pending []batchRec
	// marks are chain keys met by walks ahead of next, at every
	// markEvery-th counter, ascending (the chain key of counter at): a
	// record far ahead whose tag fails commits nothing, and without them
	// each such record, from anyone who sees the key id, would cost a walk
	// of up to MaxAhead steps.
	marks []mark
	// supersededAt is when a newer epoch of the sender was seen.
	supersededAt time.Time
	dead         bool
}

// markEvery is the spacing of a chain's marks: a walk ahead of next
// starts at most markEvery-1 steps below its target once a walk has passed
// there, and a chain holds at most MaxAhead/markEvery+1 marks.
const markEvery = 16

type mark struct {
	at uint64
	ck [32]byte
}

// markBelow returns the highest mark at or below n.
func (c *chain) markBelow(n uint64) (mark, bool) {
	for i := len(c.marks) - 1; i >= 0; i-- {
		if c.marks[i].at <= n {
			return c.marks[i], true
		}
	}
	return mark{}, false
}

// addMark records the chain key of counter at, above every mark held.
func (c *chain) addMark(at uint64, ck *[32]byte) {
	if k := len(c.marks); k == 0 || c.marks[k-1].at < at {
		c.marks = append(c.marks, mark{at: at, ck: *ck})
	}
}

// dropMarks wipes the marks below counter next.
func (c *chain) dropMarks(next uint64) {
	k := 0
	for k < len(c.marks) && c.marks[k].at < next {
		clear(c.marks[k].ck[:])
		k++
	}
	if k > 0 {
		c.marks = append(c.marks[:0], c.marks[k:]...)
	}
}

type batchRec struct {
	first, end uint64
	head       [BatchRecordSize - signatureSize]byte
	sig        [signatureSize]byte
}

// NewReceiver returns a Receiver for group whose member has the long-term
// CURVE secret key ourKey (the Receiver keeps its own copy).
func NewReceiver(group string, ourKey *curve.SecretKey, opts Options) (*Receiver, error) {
	if err := checkGroup(group); err != nil {
		return nil, errf("privgroup: new receiver: %w", err)
	}
	if ourKey == nil || ourKey.IsZero() {
		return nil, errf("privgroup: new receiver: %w: no secret key", ErrInvalidOptions)
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, errf("privgroup: new receiver: %w", err)
	}
	r := &Receiver{
		group: group, opts: o,
		peers: map[uuid.UUID]*peer{}, chains: map[KeyID]*chain{},
	}
	r.sk, _ = curve.NewSecretKey(ourKey.Bytes())
	r.pub = r.sk.Public()
	return r, nil
}

// Stats returns the counters so far.
func (r *Receiver) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Close erases every key the Receiver holds. Later calls fail with
// ErrClosed. It is safe to call twice.
func (r *Receiver) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	r.sk.Wipe()
	for _, c := range r.chains {
		c.wipe()
	}
	clear(r.chains)
	clear(r.peers)
}

// RemoveSender forgets every sender key of id (the member left or was
// revoked); its later records fail with ErrUnknownKey.
func (r *Receiver) RemoveSender(id uuid.UUID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.peers[id]
	if p == nil {
		return
	}
	for _, c := range p.chains {
		c.wipe()
		delete(r.chains, c.id)
	}
	delete(r.peers, id)
}

// EndSession says that sender id's session ended: the node saw it go (it
// left the group, or its node stopped or restarted), and its next sender
// key comes from a new Sender, whose first epoch may be older than the
// ones held (its clock, or a burst of rotations before it restarted). That
// key is then taken whatever its epoch, as after RemoveSender, but the keys
// held of the ended session stay for the records already received: they
// are superseded by it (and expire Grace later), and the one of them with
// its epoch, if any, is dropped at once. Epochs only increase again from
// there. Nothing else changes: the key must still be sealed by the
// sender's long-term key to ours, and VerifySender must accept it.
func (r *Receiver) EndSession(id uuid.UUID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.peers[id]; p != nil {
		p.ended = true
	}
}

// holdsEpoch reports whether r still holds a key of sender for epoch: the
// records of an epoch it dropped will never be settled.
func (r *Receiver) holdsEpoch(sender uuid.UUID, epoch uint32) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.peers[sender]; p != nil {
		for _, c := range p.chains {
			if c.epoch == epoch && !c.dead {
				return true
			}
		}
	}
	return false
}

func (c *chain) wipe() {
	clear(c.ck[:])
	c.dropMarks(1<<64 - 1)
	c.marks = nil
	for k, v := range c.skipped {
		clear(v[:])
		delete(c.skipped, k)
	}
	c.have, c.hashes, c.pending, c.skipped = nil, nil, nil, nil
	c.dead = true
}

// AddSenderKey opens a sender-key record that the member with long-term
// CURVE public key from sent us (over the authenticated CURVE connection),
// checks that it names from, us and our group, and installs it. A record of
// an older epoch than one already known is refused (unless EndSession ended
// the sender's session since); a newer one starts the grace window of the
// older epochs.
func (r *Receiver) AddSenderKey(sealed []byte, from curve.PublicKey) (KeyInfo, error) {
	var ki KeyInfo
	if err := checkSenderKeyOuter(sealed); err != nil {
		return ki, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ki, errf("privgroup: sender key: %w", ErrClosed)
	}
	k, err := boxKey(&r.sk, from)
	if err != nil {
		return ki, err
	}
	var nonce [boxNonceSize]byte
	copy(nonce[:], sealed[1:])
	plain, ok := secretbox.Open(nil, sealed[1+boxNonceSize:], &nonce, &k)
	clear(k[:])
	if !ok {
		return ki, errf("privgroup: sender key: %w: box does not open (not for us, or not from %s)", ErrSenderKey, from)
	}
	defer clear(plain)
	body, err := parseSenderKeyBody(plain)
	if err != nil {
		return ki, err
	}
	defer clear(body.chainKey[:])
	fromArr, pubArr := from.Array(), r.pub.Array()
	switch {
	case body.senderKey != fromArr:
		return ki, errf("privgroup: sender key: %w: made by another key than %s", ErrSenderKey, from)
	case body.recipientKey != pubArr:
		return ki, errf("privgroup: sender key: %w: addressed to another member", ErrSenderKey)
	case body.group != r.group:
		return ki, errf("privgroup: sender key: %w: for group %q, not %q", ErrSenderKey, body.group, r.group)
	}
	id := uuid.UUID(body.senderID)
	if r.opts.VerifySender != nil {
		if err := r.opts.VerifySender(id, from); err != nil {
			return ki, errf("privgroup: sender key from %s: %w: %w", id, ErrSenderKey, err)
		}
	}
	keyID := makeKeyID(r.group, body.senderID, body.epoch, body.signingKey[:])
	ki = KeyInfo{Sender: id, Epoch: body.epoch, Counter: body.counter, KeyID: keyID, Suite: body.suite}
	p := r.peers[id]
	if p != nil && !p.key.Equal(from) {
		return KeyInfo{}, errf("privgroup: sender key: %w: sender %s is bound to another key", ErrSenderKey, id)
	}
	if p != nil && len(p.chains) > 0 {
		cur := p.chains[len(p.chains)-1]
		switch {
		case body.epoch == cur.epoch && cur.id == keyID:
			ki.Duplicate = true
			return ki, nil
		case p.ended:
			// A new session: no epoch of the last one applies.
		case body.epoch < cur.epoch:
			return KeyInfo{}, errf("privgroup: sender key from %s: %w: stale epoch %d, have %d", id, ErrSenderKey, body.epoch, cur.epoch)
		case body.epoch == cur.epoch:
			return KeyInfo{}, errf("privgroup: sender key from %s: %w: a different key for epoch %d", id, ErrSenderKey, body.epoch)
		}
	}
	if _, taken := r.chains[keyID]; taken {
		return KeyInfo{}, errf("privgroup: sender key from %s: %w: key id %s already in use", id, ErrSenderKey, keyID)
	}
	if p == nil {
		p = &peer{key: from}
		r.peers[id] = p
	}
	w := r.opts.Window
	c := &chain{
		sender: id, epoch: body.epoch, id: keyID, suite: body.suite, signPub: body.signingKey, ck: body.chainKey,
		next: uint64(body.counter), base: uint64(body.counter), top: uint64(body.counter), settled: uint64(body.counter),
		have: make([]uint64, w/64), hashes: make([][32]byte, w), skipped: map[uint64][32]byte{},
		ad: newAD(r.group, body.senderID, body.epoch),
	}
	now := r.opts.Now()
	kept := 0
	for _, old := range p.chains {
		if old.epoch == body.epoch {
			// Only after EndSession: the ended session's chain of this
			// epoch goes, so that an epoch names one chain of the sender
			// (Settlements and the stream Reader go by epoch).
			old.wipe()
			delete(r.chains, old.id)
			continue
		}
		if old.supersededAt.IsZero() {
			old.supersededAt = now
		}
		p.chains[kept] = old
		kept++
	}
	clear(p.chains[kept:])
	p.chains = append(p.chains[:kept], c)
	p.ended = false
	// Keep at most two older epochs: they are in their grace window.
	for len(p.chains) > 3 {
		old := p.chains[0]
		old.wipe()
		delete(r.chains, old.id)
		p.chains = p.chains[1:]
	}
	r.chains[keyID] = c
	return ki, nil
}

// Open opens a record of the group: a data message (appending its
// plaintext to dst, allocation-free with enough capacity) or a batch record
// (appending nothing). On error nothing of the record is committed and the
// plaintext is not returned, but Info may still report settlements: the
// epochs of the sender whose grace window is over are given up first.
// Info says what the record was and which ranges of counters it settled;
// see Status and Settlement for what the caller may release.
func (r *Receiver) Open(dst, msg []byte) ([]byte, Info, error) {
	var info Info
	h, err := ParseHeader(msg)
	if err != nil {
		return dst, info, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return dst, info, errf("privgroup: open: %w", ErrClosed)
	}
	c := r.chains[h.KeyID]
	if c == nil {
		r.stats.UnknownKey++
		return dst, info, errf("privgroup: open %s: %w: key id %s", h.Kind, ErrUnknownKey, h.KeyID)
	}
	info.Kind, info.Sender, info.Epoch, info.KeyID = h.Kind, c.sender, c.epoch, c.id
	info.Counter, info.Count = h.Counter, h.Count
	r.expireLocked(c.sender, &info)
	if c.dead {
		return dst, info, errf("privgroup: open %s from %s: %w: epoch %d", h.Kind, c.sender, ErrEpochExpired, c.epoch)
	}
	if h.Kind == KindBatch {
		err = r.batchLocked(c, h, msg, &info)
		return dst, info, err
	}
	return r.dataLocked(c, h, dst, msg, &info)
}

// expireLocked wipes the old epochs of sender whose grace window is over,
// giving up their unsettled counters.
func (r *Receiver) expireLocked(sender uuid.UUID, info *Info) {
	p := r.peers[sender]
	if p == nil {
		return
	}
	var now time.Time
	for _, c := range p.chains {
		if c.dead || c.supersededAt.IsZero() {
			continue
		}
		if now.IsZero() {
			now = r.opts.Now()
		}
		if now.Sub(c.supersededAt) < r.opts.Grace {
			continue
		}
		if c.top > c.settled {
			r.giveUpLocked(c, c.top, info)
		}
		c.wipe()
	}
}

func (c *chain) slot(n uint64) int { return int(n % uint64(len(c.hashes))) }

func (c *chain) has(n uint64) bool {
	i := c.slot(n)
	return c.have[i/64]&(1<<(i%64)) != 0
}

func (c *chain) setHave(n uint64, v bool) {
	i := c.slot(n)
	if v {
		c.have[i/64] |= 1 << (i % 64)
	} else {
		c.have[i/64] &^= 1 << (i % 64)
	}
}

func (r *Receiver) dataLocked(c *chain, h Header, dst, msg []byte, info *Info) ([]byte, Info, error) {
	n := uint64(h.Counter)
	w := uint64(r.opts.Window)
	switch {
	case n < c.base:
		r.stats.TooOld++
		return dst, *info, errf("privgroup: open message %d from %s: %w: the sender key starts at %d", n, c.sender, ErrTooOld, c.base)
	case n < c.settled || (c.top > w && n < c.top-w):
		r.stats.TooOld++
		return dst, *info, errf("privgroup: open message %d from %s: %w: behind the window or already settled", n, c.sender, ErrTooOld)
	case n < c.top && c.has(n):
		r.stats.Replayed++
		return dst, *info, errf("privgroup: open message %d from %s: %w", n, c.sender, ErrReplay)
	case n >= c.top && n-c.top >= uint64(r.opts.MaxAhead):
		return dst, *info, errf("privgroup: open message %d from %s: %w: newest is %d, limit %d ahead", n, c.sender, ErrTooFarAhead, c.top, r.opts.MaxAhead)
	}
	// The message key: from the skipped cache, or by walking a copy of the
	// chain forward; nothing is committed before the tag verifies.
	var mk, ck [32]byte // ck: the chain key after n, when n is the next counter
	defer clear(ck[:])
	if n < c.next {
		k, ok := c.skipped[n]
		if !ok {
			r.stats.TooOld++
			return dst, *info, errf("privgroup: open message %d from %s: %w: its key was dropped", n, c.sender, ErrTooOld)
		}
		mk = k
	} else {
		ck = c.ck
		from := c.next
		if m, ok := c.markBelow(n); ok {
			ck, from = m.ck, m.at
		}
		for i := from; i < n; i++ {
			advance(&ck)
			r.walked++
			if (i+1)%markEvery == 0 {
				c.addMark(i+1, &ck)
			}
		}
		mk = ratchet(&ck)
	}
	aead, err := c.suite.aead(&mk)
	clear(mk[:])
	if err != nil {
		return dst, *info, errf("privgroup: open: %w", err)
	}
	r.nonce = nonceOf(c.id, h.Counter)
	copy(c.ad[:DataHeaderSize], msg[:DataHeaderSize])
	ret, err := aead.Open(dst, r.nonce[:], msg[DataHeaderSize:], c.ad)
	if err != nil {
		r.stats.BadTag++
		return dst, *info, errf("privgroup: open message %d from %s: %w", n, c.sender, ErrAuth)
	}
	// Commit.
	if n < c.next {
		k := c.skipped[n]
		clear(k[:])
		delete(c.skipped, n)
	} else if n == c.next { // in order: the walk above is the commit
		c.ck = ck
		c.next = n + 1
	} else {
		low := uint64(0)
		if n+1 > w {
			low = n + 1 - w
		}
		for i := c.next; i < n; i++ {
			if i < low {
				advance(&c.ck)
				continue
			}
			k := ratchet(&c.ck)
			c.skipped[i] = k
			clear(k[:])
		}
		c.ck = ck
		c.next = n + 1
	}
	if len(c.marks) > 0 {
		c.dropMarks(c.next)
	}
	if n >= c.top {
		info.Gap = uint32(n - c.top)
		r.advanceLocked(c, n+1, info)
	}
	c.setHave(n, true)
	c.hashes[c.slot(n)] = c.suite.sum(msg)
	r.stats.Opened++
	info.Status = Pending
	// A waiting batch record may now be complete. Records that fail are
	// dropped and the search goes on: anyone can shout a record with the
	// right key id and range, so the genuine one may wait behind junk.
	for i := 0; i < len(c.pending); {
		p := c.pending[i]
		if n < p.first || n >= p.end || !r.completeLocked(c, p.first, p.end) {
			i++
			continue
		}
		c.pending = append(c.pending[:i], c.pending[i+1:]...)
		if err := r.verifyLocked(c, &p, info); err != nil {
			r.stats.BadSignature++
			continue
		}
		break
	}
	return ret, *info, nil
}

// advanceLocked moves the newest counter of c to top, giving up the
// counters that leave the window unsettled and clearing their slots.
func (r *Receiver) advanceLocked(c *chain, top uint64, info *Info) {
	w := uint64(len(c.hashes))
	if top > w && top-w > c.settled {
		r.giveUpLocked(c, top-w, info)
	}
	from := c.top
	if top-from > w {
		from = top - w
	}
	for i := from; i < top; i++ {
		c.setHave(i, false)
	}
	c.top = top
}

// giveUpLocked settles [c.settled, to) as not authenticated.
func (r *Receiver) giveUpLocked(c *chain, to uint64, info *Info) {
	if to <= c.settled {
		return
	}
	var missing uint64
	for i := c.settled; i < to; i++ {
		if i >= c.top || !c.has(i) {
			missing++
		}
	}
	r.settleLocked(c, to, false, missing, info)
}

// settleLocked settles [c.settled, to) and forgets what it no longer needs.
func (r *Receiver) settleLocked(c *chain, to uint64, auth bool, missing uint64, info *Info) {
	info.addSettlement(Settlement{
		Epoch: c.epoch, First: uint32(c.settled), Count: uint32(to - c.settled),
		Authenticated: auth, Missing: uint32(missing),
	})
	if auth {
		r.stats.Authenticated += to - c.settled
	} else {
		r.stats.Lost += missing
	}
	c.settled = to
	for k, v := range c.skipped {
		if k < to {
			clear(v[:])
			delete(c.skipped, k)
		}
	}
	keep := c.pending[:0]
	for _, p := range c.pending {
		if p.first >= to {
			keep = append(keep, p)
		}
	}
	c.pending = keep
}

// completeLocked reports whether every message of [first, end) arrived and
// is still unsettled.
func (r *Receiver) completeLocked(c *chain, first, end uint64) bool {
	if first < c.settled || end > c.top {
		return false
	}
	for i := first; i < end; i++ {
		if !c.has(i) {
			return false
		}
	}
	return true
}

// verifyLocked checks a complete batch record against the hashes of the
// messages received and settles its range when it verifies.
func (r *Receiver) verifyLocked(c *chain, p *batchRec, info *Info) error {
	h := r.hasher[c.suite]
	if h == nil {
		h = c.suite.newHash()
		r.hasher[c.suite] = h
	}
	h.Reset()
	for i := p.first; i < p.end; i++ {
		h.Write(c.hashes[c.slot(i)][:])
	}
	var root [32]byte
	h.Sum(root[:0])
	r.sigBuf = batchSigned(r.sigBuf[:0], c.suite, r.group, c.sender, c.epoch, p.head[:], &root)
	if !ed25519.Verify(c.signPub[:], r.sigBuf, p.sig[:]) {
		return errf("privgroup: batch %d+%d from %s: %w", p.first, p.end-p.first, c.sender, ErrBadSignature)
	}
	r.giveUpLocked(c, p.first, info)
	r.settleLocked(c, p.end, true, 0, info)
	return nil
}

func (r *Receiver) batchLocked(c *chain, h Header, msg []byte, info *Info) error {
	first, end := uint64(h.Counter), uint64(h.Counter)+uint64(h.Count)
	switch {
	case first < c.settled:
		r.stats.TooOld++
		return errf("privgroup: batch %d+%d from %s: %w: counters below %d are settled", first, h.Count, c.sender, ErrTooOld, c.settled)
	case int(h.Count) > r.opts.Window/2:
		return errf("privgroup: batch %d+%d from %s: %w: larger than half the window", first, h.Count, c.sender, ErrTooFarAhead)
	case end > c.top && end-c.top > uint64(r.opts.MaxAhead):
		return errf("privgroup: batch %d+%d from %s: %w", first, h.Count, c.sender, ErrTooFarAhead)
	}
	p := batchRec{first: first, end: end}
	copy(p.head[:], msg)
	copy(p.sig[:], msg[len(p.head):])
	if !r.completeLocked(c, first, end) {
		for i := range c.pending {
			if c.pending[i].first == first && bytes.Equal(c.pending[i].sig[:], p.sig[:]) {
				info.Status = Pending
				return nil
			}
		}
		if len(c.pending) >= r.opts.MaxPending {
			c.pending = append(c.pending[:0], c.pending[1:]...)
		}
		c.pending = append(c.pending, p)
		info.Status = Pending
		return nil
	}
	if err := r.verifyLocked(c, &p, info); err != nil {
		r.stats.BadSignature++
		return err
	}
	info.Status = Authenticated
	return nil
}

// IsRecordError reports whether err concerns one record only (a bad, stale,
// replayed, forged or unknown record), so a caller drops that record and
// goes on.
func IsRecordError(err error) bool {
	for _, e := range []error{ErrMalformed, ErrVersion, ErrUnknownKey, ErrAuth, ErrReplay, ErrTooOld,
		ErrTooFarAhead, ErrEpochExpired, ErrBadSignature, ErrSenderKey} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
