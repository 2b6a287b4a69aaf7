package trust

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/atomicfile"
)

// FileName is the store's file inside the node's home directory; the
// lock file beside it is FileName + ".lock".
const FileName = "trust.json"

// Default limits.
const (
	DefaultMaxPeers               = 4096
	DefaultMaxSigners             = 256
	DefaultMaxStatementsPerSigner = 1000
	DefaultSeenResolution         = time.Minute
	DefaultMaxClockSkew           = 24 * time.Hour
	maxFileSize                   = 64 << 20
)

// Options tune a Store. The zero value is ready to use.
type Options struct {
	// Now returns the current time for changes that take none; nil means
	// time.Now.
	Now func() time.Time
	// Logger gets warnings; nil means slog.Default().
	Logger *slog.Logger
	// FS performs atomic file replacement; nil means the real file system.
	// Tests use it to inject crashes.
	FS atomicfile.FS
	// MaxPeers caps the records; a new peer beyond it is refused.
	MaxPeers int
	// MaxSigners caps the statement logs kept (one per signer).
	MaxSigners int
	// MaxStatementsPerSigner caps one signer's log.
	MaxStatementsPerSigner int
	// SeenResolution is how stale a record's LastSeen may get before
	// Admit rewrites it; 0 means DefaultSeenResolution. Keeping it coarse
	// keeps Admit of known peers free of writes.
	SeenResolution time.Duration
	// MaxClockSkew is how far in the future a statement's time may be.
	MaxClockSkew time.Duration
	// OnRevoked, if set, is called after a change revokes keys (Apply of
	// an honoured revocation, Revoke, MarkVerified honouring a stored
	// revocation), outside the store's locks, on the caller's goroutine.
	// The node closes its connections to these keys.
	OnRevoked func([]Record)
}

// Store is one trust.json. Its methods are safe for concurrent use by
// goroutines and by processes (the zyre CLI beside a running node): every
// change takes the file lock, re-reads the file, applies the change and
// replaces the file atomically. Reads use a copy cached while the file's
// identity, size and modification time are unchanged.
type Store struct {
	path string
	opts Options

	cache struct {
		sync.Mutex
		st    *state
		stamp fileStamp
	}
}

// fileStamp identifies a version of the file: every write renames a new
// file into place, so each version is a different file (os.SameFile), and
// size and modification time guard against in-place edits.
type fileStamp struct {
	fi      fs.FileInfo // nil when the file is missing
	missing bool
}

func stampOf(fi fs.FileInfo) fileStamp { return fileStamp{fi: fi} }

func (a fileStamp) equal(b fileStamp) bool {
	if a.missing || b.missing || a.fi == nil || b.fi == nil {
		return a.missing && b.missing
	}
	return os.SameFile(a.fi, b.fi) && a.fi.Size() == b.fi.Size() && a.fi.ModTime().Equal(b.fi.ModTime())
}

// Open returns the store in directory home (the node's home, see
// keystore.DefaultHome). It does not touch the disk; the directory and
// trust.json are created (mode 0700 and 0600) by the first change. A
// missing file is an empty store with DefaultPolicy.
func Open(home string, opts Options) (*Store, error) {
	if home == "" {
		return nil, errors.New("trust: empty home directory")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxPeers <= 0 {
		opts.MaxPeers = DefaultMaxPeers
	}
	if opts.MaxSigners <= 0 {
		opts.MaxSigners = DefaultMaxSigners
	}
	if opts.MaxStatementsPerSigner <= 0 {
		opts.MaxStatementsPerSigner = DefaultMaxStatementsPerSigner
	}
	if opts.SeenResolution <= 0 {
		opts.SeenResolution = DefaultSeenResolution
	}
	if opts.MaxClockSkew <= 0 {
		opts.MaxClockSkew = DefaultMaxClockSkew
	}
	return &Store{path: filepath.Join(home, FileName), opts: opts}, nil
}

// Path returns the path of trust.json.
func (s *Store) Path() string { return s.path }

// read parses the file; a missing file is a new state.
func (s *Store) read() (*state, fileStamp, error) {
	f, err := os.Open(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return newState(), fileStamp{missing: true}, nil
	}
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("trust: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("trust: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fileStamp{}, fmt.Errorf("%w: %s: not a regular file", ErrCorrupt, s.path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("trust: read %s: %w", s.path, err)
	}
	if len(data) > maxFileSize {
		return nil, fileStamp{}, fmt.Errorf("%w: %s: larger than %d octets", ErrCorrupt, s.path, maxFileSize)
	}
	st, err := parseFile(data)
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("%s: %w", s.path, err)
	}
	return st, stampOf(fi), nil
}

// load returns the current state, from the cache when the file has not
// changed. The result must not be modified.
func (s *Store) load() (*state, error) {
	var stamp fileStamp
	fi, err := os.Stat(s.path)
	switch {
	case err == nil:
		stamp = stampOf(fi)
	case errors.Is(err, fs.ErrNotExist):
		stamp = fileStamp{missing: true}
	default:
		return nil, fmt.Errorf("trust: %w", err)
	}
	s.cache.Lock()
	defer s.cache.Unlock()
	if s.cache.st != nil && s.cache.stamp.equal(stamp) {
		return s.cache.st, nil
	}
	st, stamp, err := s.read()
	if err != nil {
		return nil, err
	}
	s.cache.st, s.cache.stamp = st, stamp
	return st, nil
}

// errNoChange tells mutate that fn changed nothing: no write.
var errNoChange = errors.New("no change")

// mutate runs one read-modify-write cycle: take the lock, parse the file
// afresh, apply fn, write the file atomically, release the lock. When fn
// fails nothing is written; when it returns errNoChange neither.
func (s *Store) mutate(ctx context.Context, fn func(st *state) error) error {
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("trust: failed to create %s: %w", filepath.Dir(s.path), err)
	}
	unlock, err := atomicfile.Lock(ctx, s.path)
	if err != nil {
		return fmt.Errorf("trust: %w", err)
	}
	defer unlock()
	st, _, err := s.read()
	if err != nil {
		return err
	}
	if err := fn(st); err != nil {
		if errors.Is(err, errNoChange) {
			return nil
		}
		return err
	}
	st.reindex()
	data, err := st.marshal()
	if err != nil {
		return err
	}
	// Never write what we could not read back.
	if _, err := parseFile(data); err != nil {
		return fmt.Errorf("trust: internal error, refusing to write %s: %w", s.path, err)
	}
	if err := atomicfile.WriteWith(s.path, data, 0o600, atomicfile.Options{FS: s.opts.FS}); err != nil {
		return fmt.Errorf("trust: %w", err)
	}
	if fi, err := os.Stat(s.path); err == nil {
		s.cache.Lock()
		s.cache.st, s.cache.stamp = st, stampOf(fi)
		s.cache.Unlock()
	}
	return nil
}

// Policy returns the local policy.
func (s *Store) Policy() (Policy, error) {
	st, err := s.load()
	if err != nil {
		return Policy{}, err
	}
	return st.policy, nil
}

// SetPolicy replaces the local policy.
func (s *Store) SetPolicy(ctx context.Context, p Policy) error {
	if _, ok := modeNames[p.Mode]; !ok {
		return fmt.Errorf("%w: mode %v", ErrInvalidPolicy, p.Mode)
	}
	return s.mutate(ctx, func(st *state) error {
		st.policy = p
		return nil
	})
}

// List returns copies of all records, in the order they were first seen.
func (s *Store) List() ([]Record, error) {
	st, err := s.load()
	if err != nil {
		return nil, err
	}
	out := make([]Record, 0, len(st.recs))
	for _, r := range st.recs {
		out = append(out, r.clone())
	}
	return out, nil
}

// Lookup returns the record of a key.
func (s *Store) Lookup(key curve.PublicKey) (Record, bool, error) {
	st, err := s.load()
	if err != nil {
		return Record{}, false, err
	}
	r, ok := st.byKey[key]
	if !ok {
		return Record{}, false, nil
	}
	return r.clone(), true, nil
}

// Revoked returns the revoked records. A node can call it on its
// housekeeping tick (it costs one stat(2) when nothing changed) to close
// connections to keys revoked by another process, such as "zyre trust
// revoke".
func (s *Store) Revoked() ([]Record, error) {
	st, err := s.load()
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, r := range st.recs {
		if r.State == StateRevoked {
			out = append(out, r.clone())
		}
	}
	return out, nil
}

func (s *Store) notifyRevoked(rs []Record) {
	if len(rs) > 0 && s.opts.OnRevoked != nil {
		s.opts.OnRevoked(rs)
	}
}

// cleanText makes untrusted text storable: valid UTF-8, at most 255
// octets.
func cleanText(s string) string {
	s = toValidUTF8(s)
	if len(s) > maxTextLen {
		s = s[:maxTextLen]
		s = toValidUTF8(s)
	}
	return s
}

func toValidUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// Admit decides whether to admit a peer and records what it learned. The
// node calls it once per connection (from the zmtp authorizer, see
// Authorizer) and once per HELLO (with the name), never per message. A
// known peer seen again costs a stat(2) and map look-ups; the file is
// rewritten only when something changed: a new key pinned, a name, UUID or
// address changed, a key change to record, or LastSeen older than
// Options.SeenResolution.
//
// The rules, in order (spec/trust.md):
//   - a revoked key is refused, in every mode;
//   - in open mode everyone else is admitted and nothing is recorded;
//   - a UUID, or for an unbound peer a name, known with another key is
//     refused with a KeyChange, recorded for "zyre trust accept" (a
//     verified peer's name is matched whether or not the peer is bound);
//   - a known key is admitted in tofu mode; in strict mode if verified or
//     introduced;
//   - a new key vouched for by a verified peer (Policy.Introductions) is
//     recorded as introduced and admitted;
//   - any other new key is pinned as tofu in tofu mode, refused in strict
//     mode.
//
// An error means the store could not be read or written (a corrupt file,
// say): the node must refuse the peer and report the error.
func (s *Store) Admit(ctx context.Context, obs Observation, now time.Time) (Verdict, error) {
	if obs.Key.IsZero() {
		return Verdict{Reason: "no CURVE key"}, nil
	}
	if obs.UUID == (uuid.UUID{}) {
		return Verdict{Reason: "no UUID"}, nil
	}
	obs.Name = cleanText(obs.Name)
	obs.Addr = cleanText(obs.Addr)
	now = now.UTC()
	var binding *learnedBinding
	if len(obs.Binding) > 0 {
		k, t, err := VerifyBinding(obs.Binding, obs.Key)
		switch {
		case err != nil:
			s.opts.Logger.Warn("trust: ignoring a bad binding", "key", obs.Key.Z85(), "err", err)
		case t.After(now.Add(s.opts.MaxClockSkew)):
			s.opts.Logger.Warn("trust: ignoring a binding from the future", "key", obs.Key.Z85(), "time", t)
		default:
			binding = &learnedBinding{key: k, time: t}
		}
	}
	st, err := s.load()
	if err != nil {
		return Verdict{Reason: "trust store unreadable"}, err
	}
	v, change := s.decide(st, obs, binding, now)
	if change == nil {
		return v, nil
	}
	var revoked []Record
	err = s.mutate(ctx, func(st *state) error {
		var change func(st *state)
		v, change = s.decide(st, obs, binding, now)
		if change == nil {
			return errNoChange
		}
		change(st)
		st.reindex()
		if binding != nil {
			// A newly learned signing key may make stored revocations count.
			revoked = s.honourStored(st, now)
		}
		if r, ok := st.byKey[obs.Key]; ok && v.KeyChange == nil {
			v.Record = r.clone()
		}
		return nil
	})
	if err != nil {
		return Verdict{Reason: "trust store unwritable"}, err
	}
	s.notifyRevoked(revoked)
	return v, nil
}

type learnedBinding struct {
	key  ed25519.PublicKey
	time time.Time
}

// decide computes the verdict on st, which it does not modify, and the
// change to record (nil when nothing needs writing).
func (s *Store) decide(st *state, obs Observation, b *learnedBinding, now time.Time) (Verdict, func(*state)) {
	pol := st.policy
	bound := isBound(obs.UUID, obs.Key)
	rec := st.byKey[obs.Key]
	if rec != nil && rec.State == StateRevoked {
		why := "key revoked locally"
		if !rec.RevokedBy.IsZero() {
			why = "key revoked by " + s.describe(st, rec.RevokedBy)
		}
		if rec.RevokeReason != "" {
			why += ": " + rec.RevokeReason
		}
		return Verdict{Reason: why, Record: rec.clone()}, nil
	}
	if pol.Mode == ModeOpen {
		v := Verdict{Allow: true, Reason: "open policy"}
		if rec != nil {
			v.Record = rec.clone()
		}
		return v, nil
	}
	// Key change: the UUID, or the name, belongs to another key.
	if other := s.conflicting(st, obs, bound); other != nil {
		kc := &KeyChange{UUID: obs.UUID, Name: obs.Name, Old: other.Key, New: obs.Key,
			OldFingerprint: other.Fingerprint, NewFingerprint: Fingerprint(obs.Key), Bound: bound, Seen: now, Addr: obs.Addr}
		why := fmt.Sprintf("KEY CHANGED: %s was %s, now presents %s", peerLabel(other), other.Fingerprint, kc.NewFingerprint)
		if other.State == StateVerified {
			why += " (verified peer: refusing)"
		}
		v := Verdict{Reason: why, Record: other.clone(), KeyChange: kc}
		old := other.KeyChange
		// Record the change at most once per SeenResolution per record, so
		// impostors churning keys cannot make every attempt a write.
		if old != nil && (now.Sub(old.Seen) < s.opts.SeenResolution || old.New == kc.New && old.UUID == kc.UUID && old.Name == kc.Name) {
			return v, nil
		}
		return v, func(st *state) {
			if r := st.byKey[other.Key]; r != nil {
				r.KeyChange = kc
			}
		}
	}
	var introducer *Record
	if rec == nil || rec.State == StateTOFU {
		introducer = s.introducer(st, obs.Key)
	}
	if rec != nil {
		v := Verdict{Allow: true, Reason: "known key (" + rec.State.String() + ")", Record: rec.clone()}
		if pol.Mode == ModeStrict && rec.State == StateTOFU && introducer == nil {
			// Refused: record nothing, so refused peers cannot make us write.
			return Verdict{Reason: "strict policy: key is only tofu, not verified or introduced", Record: rec.clone()}, nil
		}
		upd := rec.UUID != obs.UUID || rec.LastAddr != obs.Addr && obs.Addr != "" ||
			obs.Name != "" && rec.Name != obs.Name || now.Sub(rec.LastSeen) >= s.opts.SeenResolution ||
			introducer != nil || canLearn(st, rec, b)
		if !upd {
			return v, nil
		}
		if introducer != nil {
			v.Reason = "introduced by " + peerLabel(introducer)
		}
		intro := introducer
		return v, func(st *state) {
			r := st.byKey[obs.Key]
			if r == nil {
				return
			}
			r.UUID, r.Bound = obs.UUID, bound
			if obs.Name != "" {
				r.Name = obs.Name
			}
			if obs.Addr != "" {
				r.LastAddr = obs.Addr
			}
			if now.After(r.LastSeen) {
				r.LastSeen = now
			}
			if intro != nil && r.State == StateTOFU {
				r.State, r.IntroducedBy = StateIntroduced, intro.Key
			}
			learn(st, r, b)
		}
	}
	// A new key.
	initial, why := StateTOFU, "new key pinned (tofu)"
	switch {
	case introducer != nil:
		initial, why = StateIntroduced, "new key introduced by "+peerLabel(introducer)
	case pol.Mode == ModeStrict:
		return Verdict{Reason: "strict policy: unknown key " + Fingerprint(obs.Key)}, nil
	}
	if len(st.recs) >= s.opts.MaxPeers {
		return Verdict{Reason: fmt.Sprintf("trust store full (%d peers)", s.opts.MaxPeers)}, nil
	}
	r := &Record{UUID: obs.UUID, Name: obs.Name, Key: obs.Key, Fingerprint: Fingerprint(obs.Key),
		Bound: bound, State: initial, FirstSeen: now, LastSeen: now, LastAddr: obs.Addr}
	if introducer != nil {
		r.IntroducedBy = introducer.Key
	}
	learn(st, r, b)
	v := Verdict{Allow: true, Reason: why, Record: r.clone(), New: true}
	return v, func(st *state) {
		if _, ok := st.byKey[r.Key]; ok {
			return
		}
		n := r.clone()
		st.recs = append(st.recs, &n)
	}
}

// canLearn reports whether binding b would teach r a new signing key: it
// is not older than the one recorded, and no other record uses the key.
func canLearn(st *state, r *Record, b *learnedBinding) bool {
	if b == nil || b.time.Before(r.BindingTime) || b.key.Equal(r.SigningKey) {
		return false
	}
	k, _ := toSigKey(b.key)
	o := st.bySigner[k]
	return o == nil || o.Key == r.Key
}

// learn records the signing key of binding b in r when canLearn.
func learn(st *state, r *Record, b *learnedBinding) {
	if !canLearn(st, r, b) {
		return
	}
	r.SigningKey = append(ed25519.PublicKey(nil), b.key...)
	r.BindingTime = b.time
}

// conflicting returns the record that claims obs's UUID, or name, with
// another key.
func (s *Store) conflicting(st *state, obs Observation, bound bool) *Record {
	// A revoked record's UUID stays taken: nobody else may claim it.
	if r := st.byUUID[obs.UUID]; r != nil && r.Key != obs.Key {
		return r
	}
	if obs.Name == "" {
		return nil
	}
	for _, r := range st.recs {
		if r.Name == obs.Name && r.Key != obs.Key && r.State != StateRevoked && (!bound || r.State == StateVerified) {
			return r
		}
	}
	return nil
}

// introducer returns the verified peer whose vouch introduces key, if
// the policy allows introductions.
func (s *Store) introducer(st *state, key curve.PublicKey) *Record {
	if !st.policy.Introductions {
		return nil
	}
	for _, signer := range st.vouches[key] {
		if r := st.bySigner[signer]; r != nil && r.State == StateVerified {
			return r
		}
	}
	return nil
}

// canRevoke reports whether signer's revocation of key is honoured, and
// returns the signer's record.
func canRevoke(st *state, signer sigKey, key curve.PublicKey) (*Record, bool) {
	r := st.bySigner[signer]
	if r == nil {
		return nil, false
	}
	if r.Key == key {
		return r, true // the key's own signing key
	}
	return r, r.State == StateVerified && st.policy.VerifiedRevoke
}

// honourStored applies stored revocations that count now (after a
// signer was verified or its signing key learned) and returns the records
// it revoked. st's indexes must be current.
func (s *Store) honourStored(st *state, now time.Time) []Record {
	var out []Record
	for _, l := range st.logs {
		for _, stmt := range l.stmts {
			rv, ok := stmt.Body.(*Revoke)
			if !ok {
				continue
			}
			signer, ok := canRevoke(st, l.signer, rv.Key)
			if !ok {
				continue
			}
			if r := revokeKey(st, rv.Key, signer.Key, rv.Reason, stmt.Time, s.opts.MaxPeers); r != nil {
				out = append(out, r.clone())
			}
		}
	}
	return out
}

// revokeKey marks key revoked (creating its record if needed) and returns
// the record, or nil if it was revoked already or there is no room.
func revokeKey(st *state, key, by curve.PublicKey, reason string, at time.Time, maxPeers int) *Record {
	r := st.byKey[key]
	if r != nil && r.State == StateRevoked {
		return nil
	}
	if r == nil {
		if len(st.recs) >= maxPeers+maxPeers/4 { // room beyond MaxPeers for revocations
			return nil
		}
		r = &Record{Key: key, Fingerprint: Fingerprint(key), FirstSeen: at, UUID: keyUUID(key)}
		r.Bound = true
		if st.byUUID[r.UUID] != nil {
			return nil
		}
		st.recs = append(st.recs, r)
	}
	r.State, r.RevokedAt, r.RevokedBy, r.RevokeReason = StateRevoked, at.UTC(), by, reason
	r.KeyChange = nil
	st.byKey[key] = r
	st.byUUID[r.UUID] = r
	demoteIntroduced(st, key)
	return r
}

// demoteIntroduced re-examines the peers introduced by the peer with key
// gone (revoked, or no longer verified): each keeps its state if another
// verified peer vouched for it, else falls back to tofu.
func demoteIntroduced(st *state, gone curve.PublicKey) {
	for _, r := range st.recs {
		if r.State != StateIntroduced || r.IntroducedBy != gone {
			continue
		}
		r.State, r.IntroducedBy = StateTOFU, curve.PublicKey{}
		if !st.policy.Introductions {
			continue
		}
		for _, signer := range st.vouches[r.Key] {
			if v := st.bySigner[signer]; v != nil && v.State == StateVerified && v.Key != gone {
				r.State, r.IntroducedBy = StateIntroduced, v.Key
				break
			}
		}
	}
}

// describe names a peer by key for messages.
func (s *Store) describe(st *state, key curve.PublicKey) string {
	if r := st.byKey[key]; r != nil {
		return peerLabel(r)
	}
	return Fingerprint(key)
}

func peerLabel(r *Record) string {
	if r.Name != "" {
		return fmt.Sprintf("%q (%s)", r.Name, r.Fingerprint)
	}
	return r.Fingerprint
}

// MarkVerified records that key was verified by a person (pairing:
// method says how, e.g. "qr" or "code"): it creates or updates the record
// with state verified, and learns the peer's signing key when given. A
// revoked key gives ErrRevoked; a UUID pinned to another key gives
// ErrConflict (resolve it with Accept or Revoke first). Revocations the
// peer signed earlier and that now count are honoured.
func (s *Store) MarkVerified(ctx context.Context, key curve.PublicKey, id uuid.UUID, name, method string, signingKey ed25519.PublicKey) (Record, error) {
	if key.IsZero() {
		return Record{}, fmt.Errorf("%w: zero CURVE key", ErrInvalidKey)
	}
	if signingKey != nil && len(signingKey) != ed25519.PublicKeySize {
		return Record{}, fmt.Errorf("%w: signing key is %d octets", ErrInvalidKey, len(signingKey))
	}
	if id == (uuid.UUID{}) {
		return Record{}, fmt.Errorf("%w: zero UUID", ErrInvalidKey)
	}
	now := s.opts.Now().UTC()
	var out Record
	var revoked []Record
	err := s.mutate(ctx, func(st *state) error {
		r := st.byKey[key]
		if r != nil && r.State == StateRevoked {
			return fmt.Errorf("%w: %s", ErrRevoked, peerLabel(r))
		}
		if o := st.byUUID[id]; o != nil && o.Key != key {
			return fmt.Errorf("%w: uuid %s is pinned to %s", ErrConflict, id, peerLabel(o))
		}
		if signingKey != nil {
			if k, _ := toSigKey(signingKey); st.bySigner[k] != nil && st.bySigner[k].Key != key {
				return fmt.Errorf("%w: signing key already belongs to %s", ErrConflict, peerLabel(st.bySigner[k]))
			}
		}
		if r == nil {
			if len(st.recs) >= s.opts.MaxPeers {
				return fmt.Errorf("%w (%d)", ErrStoreFull, s.opts.MaxPeers)
			}
			r = &Record{Key: key, Fingerprint: Fingerprint(key), FirstSeen: now, LastSeen: now}
			st.recs = append(st.recs, r)
		}
		r.UUID, r.Bound = id, isBound(id, key)
		if name = cleanText(name); name != "" {
			r.Name = name
		}
		r.State, r.VerifiedMethod, r.VerifiedAt = StateVerified, cleanText(method), now
		r.IntroducedBy = curve.PublicKey{}
		if signingKey != nil {
			r.SigningKey = append(ed25519.PublicKey(nil), signingKey...)
			r.BindingTime = now
		}
		st.reindex()
		revoked = s.honourStored(st, now)
		out = r.clone()
		return nil
	})
	if err != nil {
		return Record{}, err
	}
	s.notifyRevoked(revoked)
	return out, nil
}

// Accept makes the pending key change of the record with key old (see
// Verdict.KeyChange) take effect: the record gets the new key, UUID and
// name, and state tofu (a verification does not carry over to a new key).
// It is the explicit user act behind "zyre trust accept". A tofu record
// of the new key (pinned when it connected, before its name was known)
// merges into this one. It refuses
// (ErrConflict) a bound UUID presented with another key: such a peer is
// an impostor, since a new key gives a new UUID.
func (s *Store) Accept(ctx context.Context, old curve.PublicKey) (Record, error) {
	now := s.opts.Now().UTC()
	var out Record
	err := s.mutate(ctx, func(st *state) error {
		r := st.byKey[old]
		if r == nil {
			return fmt.Errorf("%w: key %s", ErrNotFound, Fingerprint(old))
		}
		if r.State == StateRevoked {
			return fmt.Errorf("%w: %s", ErrRevoked, peerLabel(r))
		}
		kc := r.KeyChange
		if kc == nil {
			return fmt.Errorf("%w for %s", ErrNoKeyChange, peerLabel(r))
		}
		if r.Bound && kc.UUID == r.UUID {
			return fmt.Errorf("%w: uuid %s is derived from the old key %s, so a peer presenting it with %s is an impostor, not a key change",
				ErrConflict, r.UUID, r.Fingerprint, kc.NewFingerprint)
		}
		if o := st.byKey[kc.New]; o != nil {
			// The new key may have been pinned on its own already (the
			// authorizer admits by UUID before HELLO tells the name): a
			// tofu record of it merges into this one.
			if o.State != StateTOFU {
				return fmt.Errorf("%w: the new key already belongs to %s (%s)", ErrConflict, peerLabel(o), o.State)
			}
			st.recs = slices.DeleteFunc(st.recs, func(x *Record) bool { return x == o })
			delete(st.byUUID, o.UUID)
			delete(st.byKey, o.Key)
		}
		if o := st.byUUID[kc.UUID]; o != nil && o != r {
			return fmt.Errorf("%w: uuid %s belongs to %s", ErrConflict, kc.UUID, peerLabel(o))
		}
		prev := r.State
		if prev == StateVerified {
			demoteIntroduced(st, r.Key)
		}
		r.Key, r.Fingerprint, r.UUID, r.Bound = kc.New, kc.NewFingerprint, kc.UUID, kc.Bound
		if kc.Name != "" {
			r.Name = kc.Name
		}
		r.State, r.LastSeen, r.LastAddr = StateTOFU, kc.Seen, kc.Addr
		r.VerifiedMethod, r.VerifiedAt, r.IntroducedBy = "", time.Time{}, curve.PublicKey{}
		r.SigningKey, r.BindingTime = nil, time.Time{}
		note := fmt.Sprintf("%s: accepted key change from %s (was %s)", now.Format(time.RFC3339), kc.OldFingerprint, prev)
		if r.Notes != "" {
			r.Notes += "\n"
		}
		r.Notes += note
		r.KeyChange = nil
		out = r.clone()
		return nil
	})
	return out, err
}

// Revoke revokes key locally (the user's act behind "zyre trust revoke"):
// it is refused from then on. To tell other nodes, sign a Revoke
// statement with Sign as well. Revoking a revoked key is not an error.
func (s *Store) Revoke(ctx context.Context, key curve.PublicKey, reason string) (Record, error) {
	if key.IsZero() {
		return Record{}, fmt.Errorf("%w: zero CURVE key", ErrInvalidKey)
	}
	now := s.opts.Now().UTC()
	var out Record
	var revoked []Record
	err := s.mutate(ctx, func(st *state) error {
		if r := revokeKey(st, key, curve.PublicKey{}, cleanText(reason), now, s.opts.MaxPeers); r != nil {
			revoked = append(revoked, r.clone())
		}
		r := st.byKey[key]
		if r == nil {
			return fmt.Errorf("%w (%d)", ErrStoreFull, s.opts.MaxPeers)
		}
		out = r.clone()
		return nil
	})
	if err != nil {
		return Record{}, err
	}
	s.notifyRevoked(revoked)
	return out, nil
}

// SetNotes replaces a record's notes.
func (s *Store) SetNotes(ctx context.Context, key curve.PublicKey, notes string) error {
	return s.mutate(ctx, func(st *state) error {
		r := st.byKey[key]
		if r == nil {
			return fmt.Errorf("%w: key %s", ErrNotFound, Fingerprint(key))
		}
		r.Notes = notes
		return nil
	})
}
