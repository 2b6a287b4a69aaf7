package trust

import (
	"container/list"
	"crypto/ed25519"
	"slices"
	"sort"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
)

// sigKey is an Ed25519 public key as a map key.
type sigKey [ed25519.PublicKeySize]byte

func toSigKey(k ed25519.PublicKey) (sigKey, bool) {
	var s sigKey
	if len(k) != len(s) {
		return s, false
	}
	copy(s[:], k)
	return s, true
}

// signerLog is one signer's chain of statements, oldest first.
type signerLog struct {
	signer sigKey
	stmts  []*Statement
}

func (l *signerLog) head() (uint64, [32]byte) {
	if len(l.stmts) == 0 {
		return 0, [32]byte{}
	}
	last := l.stmts[len(l.stmts)-1]
	return last.Seq, last.Hash()
}

// revKey names the latest revoke or unrevoke of a key by one signer.
type revKey struct {
	key    curve.PublicKey
	signer sigKey
}

// state is the store in memory with its indexes, all kept up to date by
// every change (no change costs more than the records it touches). It is
// guarded by Store.mu; records are changed in place through add, change
// and remove, which also note what must be written (dirty).
type state struct {
	policy Policy
	byKey  map[curve.PublicKey]*Record
	logs   []*signerLog
	order  uint64 // the order of the next new record
	gen    uint64 // generation of the snapshot read (parseFile)

	byUUID   map[uuid.UUID]*Record
	bySigner map[sigKey]*Record
	byName   map[string][]*Record
	logOf    map[sigKey]*signerLog
	// vouches maps a vouched-for key to the signers of vouches for it.
	vouches map[curve.PublicKey][]sigKey
	// revokes maps a key to the signers of revocations of it (withdrawn
	// or not); lastRev holds each signer's latest revoke or unrevoke.
	revokes map[curve.PublicKey][]sigKey
	lastRev map[revKey]*Statement
	// lru holds the tofu records, the most recently seen at the front:
	// the back is evicted first.
	lru *list.List
	// nRevoked counts the revoked records that are not evictable.
	nRevoked int

	// What changed since the last write to disk.
	// dirty holds the records changed (upserted or deleted) since the
	// last write, each with its base: a copy as it was on disk before
	// (nil: it was not), for merging with another process's change.
	dirty       map[curve.PublicKey]*Record
	dirtyPolicy bool
	dropped     map[sigKey]bool // logs forgotten (dropLog)
	written     map[sigKey]int  // statements of each log on disk
	// own holds the signers whose statements this process signed (Sign):
	// the node's own log, never dropped to make room.
	own map[sigKey]bool
	// version counts the changes (Store.Version).
	version uint64
}

func newState() *state {
	st := &state{policy: DefaultPolicy()}
	st.init()
	return st
}

func (st *state) init() {
	st.byKey = map[curve.PublicKey]*Record{}
	st.byUUID = map[uuid.UUID]*Record{}
	st.bySigner = map[sigKey]*Record{}
	st.byName = map[string][]*Record{}
	st.logOf = map[sigKey]*signerLog{}
	st.vouches = map[curve.PublicKey][]sigKey{}
	st.revokes = map[curve.PublicKey][]sigKey{}
	st.lastRev = map[revKey]*Statement{}
	st.lru = list.New()
	st.nRevoked = 0
	st.dirty = map[curve.PublicKey]*Record{}
	st.written = map[sigKey]int{}
	st.dropped = map[sigKey]bool{}
	st.own = map[sigKey]bool{}
}

// index enters r in the indexes (r.Key must not be in byKey yet).
func (st *state) index(r *Record) {
	st.byKey[r.Key] = r
	st.byUUID[r.UUID] = r
	if k, ok := toSigKey(r.SigningKey); ok {
		st.bySigner[k] = r
	}
	if r.Name != "" {
		st.byName[r.Name] = append(st.byName[r.Name], r)
	}
	if evictable(r) && r.elem == nil {
		r.elem = st.lru.PushFront(r)
	}
	if r.State == StateRevoked && !evictable(r) {
		st.nRevoked++
	}
}

// evictable reports whether r may be forgotten to make room: a tofu
// record, or one that was only tofu (or unknown) and revoked by its own
// key (anyone can make such keys by the thousand; forgetting one loses
// nothing anyone checked).
func evictable(r *Record) bool {
	return r.State == StateTOFU || r.State == StateRevoked && r.RevokedBy == r.Key && r.RevokedFrom <= StateTOFU
}

// unindex removes r from the indexes.
func (st *state) unindex(r *Record) {
	if st.byKey[r.Key] == r {
		delete(st.byKey, r.Key)
	}
	if st.byUUID[r.UUID] == r {
		delete(st.byUUID, r.UUID)
	}
	if k, ok := toSigKey(r.SigningKey); ok && st.bySigner[k] == r {
		delete(st.bySigner, k)
	}
	if r.Name != "" {
		l := slices.DeleteFunc(st.byName[r.Name], func(x *Record) bool { return x == r })
		if len(l) == 0 {
			delete(st.byName, r.Name)
		} else {
			st.byName[r.Name] = l
		}
	}
	if r.elem != nil {
		st.lru.Remove(r.elem)
		r.elem = nil
	}
	if r.State == StateRevoked && !evictable(r) {
		st.nRevoked--
	}
}

// add enters a new record.
func (st *state) add(r *Record) {
	r.order = st.order
	st.order++
	st.touched(r.Key, nil)
	st.index(r)
}

// change applies fn to r, keeping the indexes right whatever fn changes.
func (st *state) change(r *Record, fn func(r *Record)) {
	old := r.Key
	st.touched(old, r)
	st.unindex(r)
	fn(r)
	if r.Key != old {
		st.touched(r.Key, st.byKey[r.Key])
	}
	st.index(r)
}

// remove deletes r.
func (st *state) remove(r *Record) {
	st.touched(r.Key, r)
	st.unindex(r)
}

// touched notes that the record of key, now cur (nil: none), is about to
// change and must be written (or deleted).
func (st *state) touched(key curve.PublicKey, cur *Record) {
	if _, ok := st.dirty[key]; !ok {
		var base *Record
		if cur != nil {
			c := cur.clone()
			base = &c
		}
		st.dirty[key] = base
	}
	st.version++
}

// mergeRecord merges our change of a record (base to mine) into the
// version another process wrote meanwhile (theirs), field group by field
// group: what we changed wins, the rest is theirs; a revocation always
// wins; LastSeen is the later one. mine nil (we forgot it) keeps theirs.
func mergeRecord(base, mine, theirs *Record) *Record {
	if mine == nil {
		return theirs
	}
	out := theirs.clone()
	if base == nil {
		base = &Record{}
	}
	if mine.UUID != base.UUID || mine.Bound != base.Bound {
		out.UUID, out.Bound = mine.UUID, mine.Bound
	}
	if mine.Name != base.Name {
		out.Name = mine.Name
	}
	if mine.LastSeen.After(out.LastSeen) {
		out.LastSeen = mine.LastSeen
	}
	if mine.LastAddr != base.LastAddr {
		out.LastAddr = mine.LastAddr
	}
	if out.FirstSeen.IsZero() || !mine.FirstSeen.IsZero() && mine.FirstSeen.Before(out.FirstSeen) {
		out.FirstSeen = mine.FirstSeen
	}
	// The trust fields: ours win if only we changed them; if both
	// processes did, the stronger state wins (revoked, then verified,
	// introduced, tofu), so that a verification or a revocation is never
	// lost to a concurrent weaker change.
	if mineT, theirsT := trustChanged(base, mine), trustChanged(base, &out); mineT && (!theirsT || trustRank(mine.State) >= trustRank(out.State)) {
		out.State, out.IntroducedBy, out.VerifiedMethod, out.VerifiedAt = mine.State, mine.IntroducedBy, mine.VerifiedMethod, mine.VerifiedAt
		out.RevokedBy, out.RevokedAt, out.RevokeReason, out.RevokedFrom = mine.RevokedBy, mine.RevokedAt, mine.RevokeReason, mine.RevokedFrom
	}
	if !mine.SigningKey.Equal(base.SigningKey) || !mine.BindingTime.Equal(base.BindingTime) {
		out.SigningKey, out.BindingTime = mine.SigningKey, mine.BindingTime
	}
	if !keyChangeEqual(mine.KeyChange, base.KeyChange) && out.State != StateRevoked {
		out.KeyChange = mine.KeyChange
	}
	if mine.Notes != base.Notes {
		out.Notes = mine.Notes
	}
	out.order = theirs.order
	return &out
}

// trustChanged reports whether the trust fields of r differ from base's.
func trustChanged(base, r *Record) bool {
	return r.State != base.State || r.IntroducedBy != base.IntroducedBy || r.VerifiedMethod != base.VerifiedMethod ||
		!r.VerifiedAt.Equal(base.VerifiedAt) || r.RevokedBy != base.RevokedBy || !r.RevokedAt.Equal(base.RevokedAt) ||
		r.RevokeReason != base.RevokeReason || r.RevokedFrom != base.RevokedFrom
}

// trustRank orders the states for a merge: the higher wins.
func trustRank(s State) int {
	switch s {
	case StateRevoked:
		return 4
	case StateVerified:
		return 3
	case StateIntroduced:
		return 2
	case StateTOFU:
		return 1
	}
	return 0
}

func keyChangeEqual(a, b *KeyChange) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// seen moves a tofu record to the front of the eviction order.
func (st *state) seen(r *Record) {
	if r.elem != nil {
		st.lru.MoveToFront(r.elem)
	}
}

// evict forgets the least recently seen tofu records beyond max, never
// keep (the record just admitted). It returns how many it forgot.
func (st *state) evict(max int, keep *Record) int {
	n := 0
	for st.lru.Len() > max {
		e := st.lru.Back()
		r := e.Value.(*Record)
		if r == keep {
			st.lru.MoveToFront(e)
			if st.lru.Len() == 1 {
				break
			}
			continue
		}
		// Forgotten in memory only: no entry is written (a record on disk
		// is dropped by the next compaction, or by the eviction that
		// follows every read of the files) — unless the disk holds it in
		// a state that is not evictable (introduced, say, demoted here
		// since): then its deletion is written, so that it cannot come
		// back from disk trusted.
		st.unindex(r)
		if k, ok := toSigKey(r.SigningKey); ok && !st.own[k] {
			st.dropLogOf(k) // a stranger's log goes with its record
		}
		if base, ok := st.dirty[r.Key]; ok && base != nil && !evictable(base) {
			st.dirty[r.Key] = base // byKey has none: a deletion
		} else {
			delete(st.dirty, r.Key)
		}
		st.version++
		n++
	}
	return n
}

// sorted returns the records in the order they were first recorded.
func (st *state) sorted() []*Record {
	out := make([]*Record, 0, len(st.byKey))
	for _, r := range st.byKey {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].order < out[j].order })
	return out
}

// counts returns the number of evictable records and of the others.
func (st *state) counts() (tofu, other int) {
	return st.lru.Len(), len(st.byKey) - st.lru.Len()
}

// trustedCount returns the number of verified and introduced records.
func (st *state) trustedCount() int {
	_, other := st.counts()
	return other - st.nRevoked
}

// addLog starts the log of signer.
func (st *state) addLog(signer sigKey) *signerLog {
	l := &signerLog{signer: signer}
	st.logs = append(st.logs, l)
	st.logOf[signer] = l
	return l
}

// appendStatement adds s to its signer's log (the caller checked that it
// is the next one) and indexes it.
func (st *state) appendStatement(l *signerLog, s *Statement) {
	l.stmts = append(l.stmts, s)
	st.indexStatement(s)
	st.version++
}

func (st *state) indexStatement(s *Statement) {
	k, _ := toSigKey(s.Signer)
	switch b := s.Body.(type) {
	case *Vouch:
		if !slices.Contains(st.vouches[b.Key], k) {
			st.vouches[b.Key] = append(st.vouches[b.Key], k)
		}
	case *Revoke:
		if !slices.Contains(st.revokes[b.Key], k) {
			st.revokes[b.Key] = append(st.revokes[b.Key], k)
		}
		st.lastRev[revKey{b.Key, k}] = s
	case *Unrevoke:
		st.lastRev[revKey{b.Key, k}] = s
	}
}

// loaded finishes a state parsed from disk: it rebuilds the indexes, puts
// the tofu records in eviction order by LastSeen, and notes that
// everything is on disk.
func (st *state) loaded(recs []*Record) {
	pol := st.policy
	logs := st.logs
	st.init()
	st.policy, st.logs = pol, logs
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].order < recs[j].order })
	byAge := make([]*Record, 0, len(recs))
	for _, r := range recs {
		r.elem = nil
		st.order = max(st.order, r.order+1)
		st.index(r)
		if r.elem != nil {
			st.lru.Remove(r.elem)
			r.elem = nil
			byAge = append(byAge, r)
		}
	}
	sort.SliceStable(byAge, func(i, j int) bool { return byAge[i].LastSeen.Before(byAge[j].LastSeen) })
	for _, r := range byAge {
		r.elem = st.lru.PushFront(r)
	}
	for _, l := range st.logs {
		st.logOf[l.signer] = l
		st.written[l.signer] = len(l.stmts)
		for _, s := range l.stmts {
			st.indexStatement(s)
		}
	}
}
