package trust

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/atomicfile"
)

// FileName is the store's file inside the node's home directory; the
// lock file beside it is FileName + ".lock".
const FileName = "trust.json"

// Default limits.
const (
	DefaultMaxPeers               = 1024
	DefaultMaxNewPerMinute        = 64
	DefaultMaxSigners             = 256
	DefaultMaxStatementsPerSigner = 1000
	DefaultSeenResolution         = time.Minute
	DefaultMaxClockSkew           = 24 * time.Hour
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
	// MaxPeers caps the tofu records (keys pinned, never verified): beyond
	// it the least recently seen one is forgotten, so a flood of new keys
	// never locks anyone out. Verified, introduced and revoked records are
	// never forgotten; verified and introduced ones are capped at
	// 4 x MaxPeers (ErrStoreFull); the revoked records that revocations
	// of keys never seen here create, apart, at 5 x MaxPeers.
	MaxPeers int
	// MaxNewPerMinute bounds the new tofu records (keys nobody vouched
	// for, pinned at their HELLO) per minute: beyond it, for the rest of
	// that minute, a new key is admitted as in tofu mode but not recorded
	// (Verdict.Unrecorded; it is pinned at a later admission), so that a
	// flood of fresh keys cannot push the known peers out of the store
	// faster than that. A minute that left keys unrecorded or forgot
	// records is logged once, at info level (Stats counts them). 0 means
	// DefaultMaxNewPerMinute; negative: no bound.
	MaxNewPerMinute int
	// MaxSigners caps the statement logs kept (one per signer).
	MaxSigners int
	// MaxStatementsPerSigner caps one signer's log.
	MaxStatementsPerSigner int
	// SeenResolution is how stale a record's LastSeen may get before
	// Admit records it again; 0 means DefaultSeenResolution. Keeping it
	// coarse keeps Admit of known peers free of writes.
	SeenResolution time.Duration
	// MaxClockSkew is how far in the future a statement's time may be.
	MaxClockSkew time.Duration
	// PollInterval is how often the store looks for changes made by
	// another process (the zyre CLI beside a running node): at most once
	// per interval, a call starts a look on the store's goroutine and
	// answers at once from memory. 0 means DefaultPollInterval.
	PollInterval time.Duration
	// WriteDelay is how long a change made by Admit or Apply (a key
	// pinned, a name or LastSeen updated, a statement from the network)
	// may wait in memory before it is written: the changes of that time
	// go to disk in one append, and a tofu record forgotten within it (a
	// flood of new keys) is never written at all. A crash loses at most
	// that much of them; they are learned again. 0 means
	// DefaultWriteDelay. The user's acts are written before they return.
	WriteDelay time.Duration
	// SelfName and SelfKey are this device's node: the name it presents
	// and its key. A key nobody vouched for that presents SelfName is
	// another device calling itself like this one, refused as the name of
	// a known record is (spec/trust.md, Admission rule 4; NameTaken.Self).
	// The default name is derived from the UUID, so only a name chosen
	// the same (or an impostor) meets it. Empty: no such rule (a store
	// opened by a command without a node).
	SelfName string
	SelfKey  curve.PublicKey
	// OnRevoked, if set, is called after a change revokes keys (Apply of
	// an honoured revocation, Revoke, Sign, MarkVerified honouring a
	// stored revocation, or another process's revocation read from disk).
	// It runs on a goroutine of the Store, never the caller's, one call at
	// a time in order, with no lock held: it may call any Store method
	// (Flush included: it waits for the writer goroutine, which never
	// waits for OnRevoked), and any method of a node (zre.Node, Close
	// included) or of a private group (zyregroup.Group.Recheck) without
	// deadlock. A slow OnRevoked delays only the calls after it.
	OnRevoked func([]Record)
}

// Defaults of Options.PollInterval and Options.WriteDelay.
const (
	DefaultPollInterval = 500 * time.Millisecond
	DefaultWriteDelay   = time.Second
)

// writeTimeout bounds the wait of the store's goroutine for the file lock.
const writeTimeout = 30 * time.Second

// Store is one trust store: trust.json and its journal (spec/trust.md).
// Its methods are safe for concurrent use by goroutines and by processes
// (the zyre CLI beside a running node).
//
// The store lives in memory. Reads, Admit and Apply/Handle (the methods a
// node calls from its loop) answer from memory and never wait for the
// disk: what they change is written to the journal by a goroutine the
// Store owns, which also picks up changes made by other processes (at
// most once per Options.PollInterval, started by a call) — the goroutine
// runs only while there is such work, so a Store needs no Close. Flush
// waits until everything is written. The user's acts (MarkVerified,
// Accept, Revoke, Unrevoke, Forget, Sign, SetPolicy, SetNotes) are written
// before they return: an error means nothing changed.
type Store struct {
	path, jpath string
	opts        Options
	fs          fileOps
	onRead      func(path string) // tests: called for each read of a file
	maxFile     int64             // what a read of a file accepts: maxFileSize (tests lower it)

	loaded atomic.Bool
	wmu    sync.Mutex // the disk work of this process; guards disk and loadErr
	disk   diskState
	// loadErr is why the last read of the store on first use failed, at
	// loadErrAt.
	loadErr   error
	loadErrAt time.Time
	loadFails int

	mu       sync.Mutex // guards st and what follows; never held for file work
	st       *state
	running  bool // the writer goroutine runs
	again    bool // it must run once more
	writeNow bool // it must write what is pending (due, or Flush)
	// writeTimer makes the writer write WriteDelay after a change.
	writeTimer *time.Timer
	idle       chan struct{} // closed when it stops
	lastPoll   time.Time
	lastErr    error
	warned     time.Time
	minute     newKeys // the new keys of the minute under way
	stats      Stats

	nmu       sync.Mutex // guards notes and notifying
	notes     [][]Record
	notifying bool
}

// Open returns the store in directory home (the node's home, see
// keystore.DefaultHome). It does not touch the disk; the first call
// reads the store, and the first change creates the directory (mode 0700),
// trust.json and trust.journal (mode 0600). A missing file is an empty
// store with DefaultPolicy.
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
	if opts.MaxNewPerMinute == 0 {
		opts.MaxNewPerMinute = DefaultMaxNewPerMinute
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
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.WriteDelay <= 0 {
		opts.WriteDelay = DefaultWriteDelay
	}
	return &Store{path: filepath.Join(home, FileName), jpath: filepath.Join(home, JournalName), opts: opts, fs: osFileOps{fs: opts.FS}, maxFile: maxFileSize}, nil
}

// Path returns the path of trust.json.
func (s *Store) Path() string { return s.path }

// ensure reads the store on first use. An unreadable store is read again
// by a call at most once per PollInterval, doubling after each failure up
// to a minute; the calls between get the same error at once (a node calls Admit for every connection: reading a
// large corrupt file each time would stall it).
func (s *Store) ensure() error {
	if s.loaded.Load() {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.loaded.Load() {
		return nil
	}
	if s.loadErr != nil && time.Since(s.loadErrAt) < min(s.opts.PollInterval<<min(s.loadFails, 16), time.Minute) {
		return s.loadErr
	}
	st, ds, err := s.readAll()
	if err != nil {
		s.loadErr, s.loadErrAt = err, time.Now()
		s.loadFails++
		return err
	}
	s.loadErr, s.loadFails = nil, 0
	s.disk = ds
	s.mu.Lock()
	s.st, s.lastPoll = st, time.Now()
	s.mu.Unlock()
	s.loaded.Store(true)
	return nil
}

// view runs fn on the state in memory, with s.mu held. It starts a look
// for other processes' changes when one is due.
func (s *Store) view(fn func(st *state)) error {
	if err := s.ensure(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running && time.Since(s.lastPoll) >= s.opts.PollInterval {
		s.kick()
	}
	fn(s.st)
	return nil
}

// kick makes the writer goroutine run (once more). Called with s.mu held.
func (s *Store) kick() {
	s.lastPoll = time.Now()
	if s.running {
		s.again = true
		return
	}
	s.running = true
	s.idle = make(chan struct{})
	go s.work()
}

// work is the store's goroutine: it catches up with the files and writes
// what is pending once it is due (WriteDelay after the first unwritten
// change, or at once for Flush), until nothing is left to do.
func (s *Store) work() {
	for {
		s.mu.Lock()
		due := s.writeNow
		s.writeNow = false
		s.mu.Unlock()
		s.wmu.Lock()
		err := s.catchUp()
		if err == nil && due {
			s.mu.Lock()
			p := s.st.pending()
			s.mu.Unlock()
			if p {
				ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
				err = s.write(ctx)
				cancel()
			}
		}
		s.wmu.Unlock()
		s.mu.Lock()
		s.lastErr = err
		if err != nil && time.Since(s.warned) > time.Minute {
			s.warned = time.Now()
			s.opts.Logger.Warn("trust: store not written, will try again", "path", s.path, "err", err)
		}
		if !s.again {
			s.running = false
			close(s.idle)
			if s.st.pending() {
				s.scheduleWrite() // not due yet, or failed: later
			}
			s.mu.Unlock()
			return
		}
		s.again = false
		s.mu.Unlock()
	}
}

// scheduleWrite makes the writer run WriteDelay from now, unless a run is
// scheduled already. Called with s.mu held.
func (s *Store) scheduleWrite() {
	if s.writeTimer != nil {
		return
	}
	s.writeTimer = time.AfterFunc(s.opts.WriteDelay, func() {
		s.mu.Lock()
		s.writeTimer = nil
		s.writeNow = true
		s.kick()
		s.mu.Unlock()
	})
}

// Flush waits until every change made so far is written (and any change
// by another process is read), and returns the error of the last write
// if changes remain unwritten. It may be called from any goroutine,
// OnRevoked included.
func (s *Store) Flush(ctx context.Context) error {
	if !s.loaded.Load() {
		return nil
	}
	s.mu.Lock()
	s.writeNow = true
	s.kick()
	for {
		ch := s.idle
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("trust: flush: %w", ctx.Err())
		}
		s.mu.Lock()
		if s.running {
			continue
		}
		err := s.lastErr
		pending := s.st.pending()
		s.mu.Unlock()
		if pending && err != nil {
			return err
		}
		return nil
	}
}

// Version counts the changes to the store in memory, ours and those read
// from other processes: a node compares it on its housekeeping tick and
// reads the records (List) only when it moved. It never touches the disk.
func (s *Store) Version() uint64 {
	var v uint64
	s.view(func(st *state) { v = st.version })
	return v
}

// changeNow applies a change in memory (the node's path: Admit, Apply)
// and leaves the writing to the store's goroutine. fn runs with s.mu held
// and returns the records it revoked.
func (s *Store) changeNow(fn func(st *state) []Record) error {
	var revoked []Record
	err := s.view(func(st *state) {
		revoked = fn(st)
		if st.pending() {
			s.scheduleWrite()
		}
	})
	if err != nil {
		return err
	}
	s.notify(revoked)
	return nil
}

// errNoChange tells mutate that fn changed nothing.
var errNoChange = errors.New("no change")

// mutate applies a user's change and writes it before returning: it takes
// the file lock, catches up with the files, applies fn in memory (fn must
// change nothing when it fails) and appends it to the journal. If the
// write fails, the store is read again from disk, so that memory never
// holds what the disk does not. fn returns the records it revoked.
func (s *Store) mutate(ctx context.Context, fn func(st *state) ([]Record, error)) error {
	if err := s.ensure(); err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	unlock, err := s.lockFiles(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	s.mu.Lock()
	revoked, err := fn(s.st)
	s.mu.Unlock()
	if errors.Is(err, errNoChange) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := s.flushLocked(); err != nil {
		if rerr := s.replaceFromDisk(); rerr != nil {
			s.opts.Logger.Warn("trust: cannot read the store back after a failed write", "path", s.path, "err", rerr)
		}
		return err
	}
	s.notify(revoked)
	return nil
}

// replaceFromDisk drops the state in memory for the one on disk (after a
// failed write: changes not written are lost, as in a crash). Called with
// s.wmu held.
func (s *Store) replaceFromDisk() error {
	st, ds, err := s.readAll()
	if err != nil {
		return err
	}
	s.disk = ds
	s.mu.Lock()
	st.version = s.st.version + 1
	s.st = st
	s.mu.Unlock()
	return nil
}

// notify hands revoked records to OnRevoked on the store's notifier
// goroutine. Call it with no lock held.
func (s *Store) notify(rs []Record) {
	if len(rs) == 0 || s.opts.OnRevoked == nil {
		return
	}
	s.nmu.Lock()
	s.notes = append(s.notes, rs)
	if !s.notifying {
		s.notifying = true
		go s.deliver()
	}
	s.nmu.Unlock()
}

func (s *Store) deliver() {
	for {
		s.nmu.Lock()
		if len(s.notes) == 0 {
			s.notifying = false
			s.nmu.Unlock()
			return
		}
		rs := s.notes[0]
		s.notes = s.notes[1:]
		s.nmu.Unlock()
		s.opts.OnRevoked(rs)
	}
}

// Policy returns the local policy.
func (s *Store) Policy() (Policy, error) {
	var p Policy
	err := s.view(func(st *state) { p = st.policy })
	return p, err
}

// SetPolicy replaces the local policy.
func (s *Store) SetPolicy(ctx context.Context, p Policy) error {
	if _, ok := modeNames[p.Mode]; !ok {
		return fmt.Errorf("%w: mode %v", ErrInvalidPolicy, p.Mode)
	}
	return s.mutate(ctx, func(st *state) ([]Record, error) {
		if st.policy == p {
			return nil, errNoChange
		}
		st.policy, st.dirtyPolicy = p, true
		st.version++
		// Revocations by verified peers may count now.
		return s.honourStored(st, s.opts.Now().UTC()), nil
	})
}

// List returns copies of all records, in the order they were first seen.
// It copies the whole store: a node calls it only when Version moved.
func (s *Store) List() ([]Record, error) {
	var out []Record
	err := s.view(func(st *state) {
		out = make([]Record, 0, len(st.byKey))
		for _, r := range st.sorted() {
			out = append(out, r.clone())
		}
	})
	return out, err
}

// Lookup returns the record of a key.
func (s *Store) Lookup(key curve.PublicKey) (Record, bool, error) {
	var out Record
	var ok bool
	err := s.view(func(st *state) {
		if r := st.byKey[key]; r != nil {
			out, ok = r.clone(), true
		}
	})
	return out, ok, err
}

// Trusted reports whether key, presented by the peer with UUID id, may
// see private data: its record is verified or introduced (Record.Trusted)
// and pinned to that UUID. A tofu (only known), revoked or unknown key is
// not trusted. It answers from memory.
func (s *Store) Trusted(id uuid.UUID, key curve.PublicKey) bool {
	ok := false
	s.view(func(st *state) {
		r := st.byKey[key]
		ok = r != nil && r.Trusted() && (r.UUID == id || r.UUID == uuid.Nil)
	})
	return ok
}

// Revoked returns the revoked records.
func (s *Store) Revoked() ([]Record, error) {
	var out []Record
	err := s.view(func(st *state) {
		for _, r := range st.sorted() {
			if r.State == StateRevoked {
				out = append(out, r.clone())
			}
		}
	})
	return out, err
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
// node calls it once per connection and once per HELLO (with the name),
// never per message. It answers from memory and never waits for the
// disk: what it records (a new key pinned; a name, UUID or address
// changed; a key change; LastSeen older than Options.SeenResolution) is
// written by the store's goroutine.
//
// The rules, in order (spec/trust.md):
//   - a revoked key is refused, in every mode;
//   - in open mode everyone else is admitted and nothing is recorded;
//   - a UUID, or between unbound peers a name, known with another key is
//     refused with a KeyChange, recorded for "zyre trust accept" (of
//     unbound peers only) or "reject";
//   - a key nobody vouched for that presents the name of a verified,
//     introduced or revoked record is another device: refused with a
//     NameTaken, nothing recorded on that record;
//   - a known key is admitted in tofu mode; in strict mode if verified or
//     introduced;
//   - a new key vouched for by a verified peer (Policy.Introductions) is
//     recorded as introduced and admitted;
//   - any other new key is pinned as tofu in tofu mode (forgetting the
//     least recently seen tofu record beyond Options.MaxPeers; beyond
//     Options.MaxNewPerMinute new keys in a minute, admitted without a
//     record), refused in strict mode.
//
// A new key is never recorded before its HELLO (Observation.BeforeHello):
// it is admitted or refused by the same rules, and nothing is written.
//
// Admitted is not trusted: a tofu key is only known (Record.Trusted).
// An error means the store could not be read (a corrupt file, say): the
// node must refuse the peer and report the error.
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
	var v Verdict
	var ended newKeys
	var tell bool
	err := s.changeNow(func(st *state) []Record {
		ended, tell = s.roll(now)
		var change func(st *state) *Record
		v, change = s.decide(st, obs, binding, now)
		if r := st.byKey[obs.Key]; r != nil && v.Allow {
			st.seen(r)
		}
		if change == nil {
			return nil
		}
		var signer ed25519.PublicKey
		if r := st.byKey[obs.Key]; r != nil {
			signer = r.SigningKey
		}
		r := change(st)
		if r == nil {
			return nil
		}
		if v.New {
			s.evicted(now, st.evict(s.opts.MaxPeers, r))
		}
		if v.KeyChange == nil {
			v.Record = r.clone()
		}
		if k, ok := toSigKey(r.SigningKey); ok && !r.SigningKey.Equal(signer) {
			// A newly learned signing key may make stored revocations count.
			return s.honourSigner(st, k, now)
		}
		return nil
	})
	if tell {
		s.tell(ended)
	}
	if err != nil {
		return Verdict{Reason: "trust store unreadable"}, err
	}
	return v, nil
}

// Seen moves the tofu records of keys to the front of the eviction order
// (the node calls it on its housekeeping tick with the keys of the peers
// connected): a peer that keeps talking on one connection, and so is not
// admitted again, is never the least recently seen one that a flood of
// new keys evicts. A LastSeen older than Options.SeenResolution is
// updated too (written by the store's goroutine, as for Admit), so that
// another process that reads the files evicts by the same order. It may
// be called from any goroutine and never waits for the disk.
func (s *Store) Seen(keys []curve.PublicKey) {
	now := s.opts.Now().UTC()
	var ended newKeys
	var tell bool
	defer func() {
		if tell {
			s.tell(ended)
		}
	}()
	s.changeNow(func(st *state) []Record {
		ended, tell = s.roll(now)
		for _, k := range keys {
			r := st.byKey[k]
			if r == nil {
				continue
			}
			st.seen(r)
			if r.State != StateRevoked && now.Sub(r.LastSeen) >= s.opts.SeenResolution {
				st.change(r, func(r *Record) { r.LastSeen = now })
			}
		}
		return nil
	})
}

type learnedBinding struct {
	key  ed25519.PublicKey
	time time.Time
}

// decide computes the verdict on st, which it does not modify, and the
// change to record (nil when nothing needs recording), which returns the
// record it changed.
func (s *Store) decide(st *state, obs Observation, b *learnedBinding, now time.Time) (Verdict, func(*state) *Record) {
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
	if rec == nil {
		// A revocation that made no record (beyond the cap of revoked
		// records) still stands in its signer's log.
		if by, stmt := standing(st, obs.Key, sigKey{}); by != nil {
			why := "key revoked by " + peerLabel(by)
			if r := stmt.Body.(*Revoke).Reason; r != "" {
				why += ": " + r
			}
			return Verdict{Reason: why}, nil
		}
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
		why := fmt.Sprintf("KEY CHANGED: %s now presents %s", peerLabel(other), kc.NewFingerprint)
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
		return v, func(st *state) *Record {
			r := st.byKey[other.Key]
			if r != nil {
				st.change(r, func(r *Record) { r.KeyChange = kc })
			}
			return r
		}
	}
	var introducer *Record
	if rec == nil || rec.State == StateTOFU {
		introducer = s.introducer(st, obs.Key)
	}
	// Another peer's name: a key nobody vouched for (new, or only tofu)
	// that calls itself like a verified, introduced or revoked record of
	// another key is another device, refused; the notice is about it, and
	// nothing is recorded on the record that holds the name.
	if introducer == nil && (rec == nil || rec.State == StateTOFU) {
		known := nameHolder(st, obs)
		if known == nil && s.opts.SelfName != "" && obs.Name == s.opts.SelfName && obs.Key != s.opts.SelfKey {
			known = &Record{Name: s.opts.SelfName, Key: s.opts.SelfKey, Fingerprint: Fingerprint(s.opts.SelfKey)}
		}
		if known != nil {
			self := known.State == 0 // this device (SelfName), not a record
			nt := &NameTaken{Name: obs.Name, Key: obs.Key, Fingerprint: Fingerprint(obs.Key), Known: known.clone(), Self: self}
			v := Verdict{Reason: nt.Error(), NameTaken: nt}
			if rec == nil {
				return v, nil
			}
			v.Record = rec.clone()
			body := fmt.Sprintf("refused: called itself %s, the name of %s %s (%s)",
				quoteName(obs.Name), known.State, quoteName(known.Name), known.Fingerprint)
			if self {
				body = fmt.Sprintf("refused: called itself %s, the name of this device (%s)", quoteName(obs.Name), known.Fingerprint)
			}
			told := strings.Contains(rec.Notes, body)
			if told && rec.Name != obs.Name {
				return v, nil // told once
			}
			note := now.Format(time.RFC3339) + ": " + body
			return v, func(st *state) *Record {
				r := st.byKey[obs.Key]
				if r != nil {
					st.change(r, func(r *Record) {
						if !told {
							r.Notes = appendNote(r.Notes, note)
						}
						if r.Name == obs.Name {
							// Pinned under that name by an older zyre: the
							// name stands for the known record only.
							r.Name = ""
						}
					})
				}
				return r
			}
		}
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
		return v, func(st *state) *Record {
			r := st.byKey[obs.Key]
			if r == nil {
				return nil
			}
			st.change(r, func(r *Record) {
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
			})
			return r
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
	if n := st.trustedCount(); initial != StateTOFU && n >= s.maxKept() {
		return Verdict{Reason: fmt.Sprintf("trust store full (%d verified and introduced peers)", n)}, nil
	}
	if obs.BeforeHello {
		// Not a peer yet: a connection that never says HELLO records
		// nothing (usertry5 #8: strangers' connections pinned by the
		// hundred).
		s.stats.BeforeHello++
		return Verdict{Allow: true, Reason: "new key, recorded at its HELLO", New: true, Unrecorded: true}, nil
	}
	if initial == StateTOFU && !s.admitNew(now) {
		return Verdict{Allow: true, New: true, Unrecorded: true,
			Reason: fmt.Sprintf("new key admitted, not recorded: %d new keys recorded this minute already", s.opts.MaxNewPerMinute)}, nil
	}
	r := &Record{UUID: obs.UUID, Name: obs.Name, Key: obs.Key, Fingerprint: Fingerprint(obs.Key),
		Bound: bound, State: initial, FirstSeen: now, LastSeen: now, LastAddr: obs.Addr}
	if introducer != nil {
		r.IntroducedBy = introducer.Key
	}
	learn(st, r, b)
	v := Verdict{Allow: true, Reason: why, Record: r.clone(), New: true}
	return v, func(st *state) *Record {
		if o := st.byKey[r.Key]; o != nil {
			return o
		}
		st.add(r) // r is this call's own: no copy
		return r
	}
}

// maxKept caps the records never forgotten (verified, introduced,
// revoked).
func (s *Store) maxKept() int { return 4 * s.opts.MaxPeers }

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
	if old, ok := toSigKey(r.SigningKey); ok && evictable(r) && !st.own[old] {
		// A stranger's old log goes with its old key: a log tied to no
		// record is never dropped to make room (dropLog).
		st.dropLogOf(old)
	}
	r.SigningKey = append(ed25519.PublicKey(nil), b.key...)
	r.BindingTime = b.time
}

// conflicting returns the record whose key obs's key would change: the
// record that holds obs's UUID with another key, or, between unbound
// peers (C zyre nodes, whose UUIDs are random, known by UUID and name),
// the one that holds obs's name. A bound peer's UUID derives from its
// key, so a bound peer with another key is another peer, never a key
// change of a record by its name (nameHolder).
func (s *Store) conflicting(st *state, obs Observation, bound bool) *Record {
	// A revoked record's UUID stays taken: nobody else may claim it.
	if r := st.byUUID[obs.UUID]; r != nil && r.Key != obs.Key {
		return r
	}
	if obs.Name == "" || bound {
		return nil
	}
	var found *Record
	for _, r := range st.byName[obs.Name] {
		if r.Key != obs.Key && r.State != StateRevoked && !r.Bound && (found == nil || r.order < found.order) {
			found = r
		}
	}
	return found
}

// nameHolder returns the record of another key that a person or a
// verified peer acted on (verified, introduced or revoked: in that order
// of preference, then the oldest) and that holds obs's name.
func nameHolder(st *state, obs Observation) *Record {
	if obs.Name == "" {
		return nil
	}
	rank := map[State]int{StateVerified: 3, StateIntroduced: 2, StateRevoked: 1}
	var found *Record
	for _, r := range st.byName[obs.Name] {
		if r.Key == obs.Key || rank[r.State] == 0 {
			continue
		}
		if found == nil || rank[r.State] > rank[found.State] || rank[r.State] == rank[found.State] && r.order < found.order {
			found = r
		}
	}
	return found
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

// honourStored applies the stored revocations that count now (after the
// policy changed) and returns the records it revoked.
func (s *Store) honourStored(st *state, now time.Time) []Record {
	var out []Record
	for _, l := range st.logs {
		out = append(out, s.honourSigner(st, l.signer, now)...)
	}
	return out
}

// honourSigner applies the revocations of signer's log that count now
// (after its signing key was learned or its owner verified) and were not
// withdrawn, and returns the records it revoked. It reads only that log.
func (s *Store) honourSigner(st *state, signer sigKey, now time.Time) []Record {
	l := st.logOf[signer]
	if l == nil {
		return nil
	}
	var out []Record
	for _, stmt := range l.stmts {
		rv, ok := stmt.Body.(*Revoke)
		if !ok || st.lastRev[revKey{rv.Key, signer}] != stmt {
			continue // not a revocation, or withdrawn since
		}
		by, ok := canRevoke(st, signer, rv.Key)
		if !ok {
			continue
		}
		if r := s.revokeKey(st, rv.Key, by.Key, rv.Reason, stmt.Time); r != nil {
			out = append(out, r.clone())
		}
	}
	return out
}

// revokeKey marks key revoked (creating its record if needed) and returns
// the record, or nil if it was revoked already or there is no room.
func (s *Store) revokeKey(st *state, key, by curve.PublicKey, reason string, at time.Time) *Record {
	r := st.byKey[key]
	if r != nil && r.State == StateRevoked {
		if by.IsZero() && !r.RevokedBy.IsZero() && r.RevokedBy != r.Key {
			// Revoked by another signer, and now by us too: ours is the
			// one the record names, so that the other signer's unrevoke
			// does not undo it (only we can, spec/trust.md). A key's own
			// revocation stays: it is final.
			st.change(r, func(r *Record) {
				r.RevokedAt, r.RevokedBy, r.RevokeReason = at.UTC(), curve.PublicKey{}, reason
			})
		}
		return nil
	}
	set := func(r *Record) {
		if r.State != StateRevoked {
			r.RevokedFrom = r.State
		}
		r.State, r.RevokedAt, r.RevokedBy, r.RevokeReason = StateRevoked, at.UTC(), by, reason
		r.KeyChange = nil
	}
	if r == nil {
		if st.nRevoked >= s.maxKept()+s.opts.MaxPeers { // revocations of keys never seen here: capped apart
			return nil
		}
		r = &Record{Key: key, Fingerprint: Fingerprint(key), FirstSeen: at.UTC(), UUID: keyUUID(key), Bound: true}
		if st.byUUID[r.UUID] != nil {
			return nil
		}
		set(r)
		r.RevokedFrom = 0
		st.add(r)
	} else {
		st.change(r, set)
	}
	demoteIntroduced(st, key)
	return r
}

// standing returns a revocation of key that counts and is not withdrawn,
// by a signer other than skip, and its signer's record.
func standing(st *state, key curve.PublicKey, skip sigKey) (*Record, *Statement) {
	for _, signer := range st.revokes[key] {
		last := st.lastRev[revKey{key, signer}]
		if _, ok := last.Body.(*Revoke); !ok || signer == skip {
			continue
		}
		if by, ok := canRevoke(st, signer, key); ok {
			return by, last
		}
	}
	return nil, nil
}

// unrevokeKey withdraws a revocation of r (local, or signed by skip): the
// record stays revoked while another revocation that counts stands, else
// it gets back its state from before.
func (s *Store) unrevokeKey(st *state, r *Record, skip sigKey, reason string, at time.Time) {
	if by, stmt := standing(st, r.Key, skip); by != nil {
		st.change(r, func(r *Record) {
			r.RevokedBy, r.RevokeReason, r.RevokedAt = by.Key, stmt.Body.(*Revoke).Reason, stmt.Time
		})
		return
	}
	st.change(r, func(r *Record) {
		r.State = r.RevokedFrom
		if r.State == 0 || r.State == StateRevoked {
			r.State = StateTOFU
		}
		if r.State == StateIntroduced {
			if i := s.introducer(st, r.Key); i != nil {
				r.IntroducedBy = i.Key
			} else {
				r.State, r.IntroducedBy = StateTOFU, curve.PublicKey{}
			}
		}
		r.RevokedFrom, r.RevokedAt, r.RevokedBy, r.RevokeReason = 0, time.Time{}, curve.PublicKey{}, ""
		note := fmt.Sprintf("%s: revocation withdrawn", at.UTC().Format(time.RFC3339))
		if reason != "" {
			note += ": " + reason
		}
		r.Notes = appendNote(r.Notes, note)
	})
	if k, ok := toSigKey(r.SigningKey); ok && r.State == StateVerified {
		// Verified again: the peers it vouched for, sent back to tofu by
		// its revocation, are introduced again.
		s.introduceVouched(st, k, r)
	}
}

// demoteIntroduced re-examines the peers introduced by the peer with key
// gone (revoked, or no longer verified): each keeps its state if another
// verified peer vouched for it, else falls back to tofu.
func demoteIntroduced(st *state, gone curve.PublicKey) {
	var hit []*Record
	for _, k := range st.vouchedBy(gone) {
		if r := st.byKey[k]; r != nil && r.State == StateIntroduced && r.IntroducedBy == gone {
			hit = append(hit, r)
		}
	}
	for _, r := range hit {
		st.change(r, func(r *Record) {
			r.State, r.IntroducedBy = StateTOFU, curve.PublicKey{}
			if !st.policy.Introductions {
				return
			}
			for _, signer := range st.vouches[r.Key] {
				if v := st.bySigner[signer]; v != nil && v.State == StateVerified && v.Key != gone {
					r.State, r.IntroducedBy = StateIntroduced, v.Key
					break
				}
			}
		})
	}
}

// vouchedBy returns the keys the peer with CURVE key k vouched for (from
// its log, if its signing key is known).
func (st *state) vouchedBy(k curve.PublicKey) []curve.PublicKey {
	r := st.byKey[k]
	if r == nil {
		return nil
	}
	sk, ok := toSigKey(r.SigningKey)
	if !ok || st.logOf[sk] == nil {
		return nil
	}
	var out []curve.PublicKey
	for _, stmt := range st.logOf[sk].stmts {
		if v, ok := stmt.Body.(*Vouch); ok {
			out = append(out, v.Key)
		}
	}
	return out
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
// revoked key gives ErrRevoked at once (a device revoked for a lost key
// comes back only with a new key); a UUID pinned to another key gives
// ErrConflict (resolve it with Accept, Forget or Revoke first).
// Revocations the peer signed earlier and that now count are honoured,
// and the tofu peers it vouched for earlier become introduced
// (Policy.Introductions). It signs nothing: MarkVerifiedVouch also
// vouches for the peer.
func (s *Store) MarkVerified(ctx context.Context, key curve.PublicKey, id uuid.UUID, name, method string, signingKey ed25519.PublicKey) (Record, error) {
	r, _, err := s.markVerified(ctx, nil, key, id, name, method, signingKey)
	return r, err
}

// MarkVerifiedVouch is MarkVerified by a node that can sign, as pairing
// is: in the same change, when Policy.Vouch is on (the default), it signs
// with signer (the node's identity) a vouch for the peer (its key, UUID
// and name) and appends it to our log, which a running node shouts in
// the group zyre-trust. Every node that verified us then trusts the peer
// as introduced (spec/trust.md, "Vouching on pairing"). It signs no
// second vouch for a key our log vouched for already (pairing again). When
// our log is three quarters full (the last quarter is kept for
// revocations) it records the verification without a vouch and logs a
// warning: pairing does not fail for want of a vouch. The statement is
// nil when none was signed. A signer of the wrong size is ErrInvalidKey,
// before any change.
func (s *Store) MarkVerifiedVouch(ctx context.Context, signer Signer, key curve.PublicKey, id uuid.UUID, name, method string, signingKey ed25519.PublicKey) (Record, *Statement, error) {
	if signer == nil {
		return Record{}, nil, fmt.Errorf("%w: no signer to vouch with", ErrInvalidKey)
	}
	priv := signer.Signer()
	if len(priv) != ed25519.PrivateKeySize {
		return Record{}, nil, fmt.Errorf("%w: signing key is %d octets", ErrInvalidKey, len(priv))
	}
	return s.markVerified(ctx, priv, key, id, name, method, signingKey)
}

// markVerified is MarkVerified, and with priv set MarkVerifiedVouch.
func (s *Store) markVerified(ctx context.Context, priv ed25519.PrivateKey, key curve.PublicKey, id uuid.UUID, name, method string, signingKey ed25519.PublicKey) (Record, *Statement, error) {
	if key.IsZero() {
		return Record{}, nil, fmt.Errorf("%w: zero CURVE key", ErrInvalidKey)
	}
	if signingKey != nil && len(signingKey) != ed25519.PublicKeySize {
		return Record{}, nil, fmt.Errorf("%w: signing key is %d octets", ErrInvalidKey, len(signingKey))
	}
	if id == (uuid.UUID{}) {
		return Record{}, nil, fmt.Errorf("%w: zero UUID", ErrInvalidKey)
	}
	now := s.opts.Now().UTC()
	var out Record
	var vouch *Statement
	err := s.mutate(ctx, func(st *state) ([]Record, error) {
		r := st.byKey[key]
		if r != nil && r.State == StateRevoked {
			return nil, fmt.Errorf("%w: %s", ErrRevoked, peerLabel(r))
		}
		if o := st.byUUID[id]; o != nil && o.Key != key {
			return nil, fmt.Errorf("%w: uuid %s is pinned to %s", ErrConflict, id, peerLabel(o))
		}
		if signingKey != nil {
			if k, _ := toSigKey(signingKey); st.bySigner[k] != nil && st.bySigner[k].Key != key {
				return nil, fmt.Errorf("%w: signing key already belongs to %s", ErrConflict, peerLabel(st.bySigner[k]))
			}
		}
		if n := st.trustedCount(); (r == nil || r.State == StateTOFU) && n >= s.maxKept() {
			return nil, fmt.Errorf("%w (%d verified and introduced peers)", ErrStoreFull, n)
		}
		if priv != nil && st.policy.Vouch {
			// Signed first: it is the one step that can fail, and a
			// failure must leave st as it was.
			stmt, err := s.vouchFor(st, priv, key, id, name, r, now)
			if err != nil {
				return nil, err
			}
			vouch = stmt
		}
		set := func(r *Record) {
			r.UUID, r.Bound = id, isBound(id, key)
			if name := cleanText(name); name != "" {
				r.Name = name
			}
			r.State, r.VerifiedMethod, r.VerifiedAt = StateVerified, cleanText(method), now
			r.IntroducedBy = curve.PublicKey{}
			if signingKey != nil {
				r.SigningKey = append(ed25519.PublicKey(nil), signingKey...)
				r.BindingTime = now
			}
		}
		if r == nil {
			r = &Record{Key: key, Fingerprint: Fingerprint(key), FirstSeen: now, LastSeen: now}
			set(r)
			st.add(r)
		} else {
			st.change(r, set)
		}
		out = r.clone()
		if k, ok := toSigKey(r.SigningKey); ok {
			s.introduceVouched(st, k, r)
			return s.honourSigner(st, k, now), nil
		}
		return nil, nil
	})
	if err != nil {
		return Record{}, nil, err
	}
	return out, vouch, nil
}

// vouchFor signs a vouch for key (peer id, name; r its record, if any)
// with priv and appends it to our log, unless our log vouched for key
// already (nil, nil). A log three quarters full (the rest is kept for
// revocations) is logged and gives nil, nil too.
// Called inside mutate; it changes st only when it returns a statement.
func (s *Store) vouchFor(st *state, priv ed25519.PrivateKey, key curve.PublicKey, id uuid.UUID, name string, r *Record, now time.Time) (*Statement, error) {
	signer, _ := toSigKey(priv.Public().(ed25519.PublicKey))
	if l := st.logOf[signer]; l != nil {
		for _, stmt := range l.stmts {
			if v, ok := stmt.Body.(*Vouch); ok && v.Key == key {
				return nil, nil
			}
		}
		if max := s.opts.MaxStatementsPerSigner * 3 / 4; len(l.stmts) >= max {
			// The last quarter of our log is kept for revocations: a
			// device that paired a thousand times must still be able to
			// revoke.
			s.opts.Logger.Warn("trust: peer verified without a vouch: our statement log keeps its last quarter for revocations",
				"peer", Fingerprint(key), "statements", len(l.stmts), "limit", s.opts.MaxStatementsPerSigner)
			return nil, nil
		}
	}
	if name == "" && r != nil {
		name = r.Name
	}
	stmt, err := s.appendOwn(st, priv, signer, now, &Vouch{Key: key, UUID: id, Name: statementText(name)})
	if errors.Is(err, ErrSignerFull) {
		s.opts.Logger.Warn("trust: peer verified without a vouch: our statement log is full", "peer", Fingerprint(key), "err", err)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("trust: vouching for %s: %w", Fingerprint(key), err)
	}
	return stmt, nil
}

// statementText makes s fit a statement's text field: valid UTF-8, no
// control characters (dropped), at most maxTextLen octets (cut at a
// character boundary).
func statementText(s string) string {
	var b strings.Builder
	for _, r := range toValidUTF8(s) {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			continue
		}
		if b.Len()+utf8.RuneLen(r) > maxTextLen {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// introduceVouched makes the tofu peers that signer (the signing key of
// by, just verified) vouched for earlier introduced, as Admit would when
// they connect again. A vouch stored before its signer was verified thus
// counts at once, for peers already connected too.
func (s *Store) introduceVouched(st *state, signer sigKey, by *Record) {
	l := st.logOf[signer]
	if l == nil || !st.policy.Introductions {
		return
	}
	for _, stmt := range l.stmts {
		v, ok := stmt.Body.(*Vouch)
		if !ok {
			continue
		}
		if r := st.byKey[v.Key]; r != nil && r.State == StateTOFU {
			st.change(r, func(r *Record) { r.State, r.IntroducedBy = StateIntroduced, by.Key })
		}
	}
}

// Accept makes the pending key change of the record with key old (see
// Verdict.KeyChange) take effect: the record gets the new key, UUID and
// name, and state tofu (a verification does not carry over to a new key).
// It is the explicit user act behind "zyre trust accept". A tofu record
// of the new key (pinned when it connected, before its name was known)
// merges into this one. It refuses (ErrConflict) a bound UUID presented
// with another key: such a peer is an impostor, since a new key gives a
// new UUID.
func (s *Store) Accept(ctx context.Context, old curve.PublicKey) (Record, error) {
	now := s.opts.Now().UTC()
	var out Record
	err := s.mutate(ctx, func(st *state) ([]Record, error) {
		r := st.byKey[old]
		if r == nil {
			return nil, fmt.Errorf("%w: key %s", ErrNotFound, Fingerprint(old))
		}
		if r.State == StateRevoked {
			return nil, fmt.Errorf("%w: %s", ErrRevoked, peerLabel(r))
		}
		kc := r.KeyChange
		if kc == nil {
			return nil, fmt.Errorf("%w for %s", ErrNoKeyChange, peerLabel(r))
		}
		if r.Bound && kc.UUID == r.UUID {
			return nil, fmt.Errorf("%w: uuid %s is derived from the old key %s, so a peer presenting it with %s is an impostor, not a key change",
				ErrConflict, r.UUID, r.Fingerprint, kc.NewFingerprint)
		}
		if r.Bound || kc.Bound {
			return nil, fmt.Errorf("%w: the key %s that presented itself as %s (uuid %s) is not a new key of %s: our nodes' UUIDs derive from their keys, so another key is another device; pair with it to trust it",
				ErrAnotherDevice, kc.NewFingerprint, quoteName(kc.Name), kc.UUID, peerLabel(r))
		}
		o := st.byKey[kc.New]
		if o != nil && o.State != StateTOFU {
			return nil, fmt.Errorf("%w: the new key already belongs to %s (%s)", ErrConflict, peerLabel(o), o.State)
		}
		if u := st.byUUID[kc.UUID]; u != nil && u != r && u != o {
			return nil, fmt.Errorf("%w: uuid %s belongs to %s", ErrConflict, kc.UUID, peerLabel(u))
		}
		if o != nil {
			// The new key may have been pinned on its own already (admitted
			// by UUID before HELLO told the name): that tofu record merges
			// into this one.
			st.remove(o)
		}
		prev := r.State
		if prev == StateVerified {
			demoteIntroduced(st, r.Key)
		}
		st.change(r, func(r *Record) {
			r.Key, r.Fingerprint, r.UUID, r.Bound = kc.New, kc.NewFingerprint, kc.UUID, kc.Bound
			if kc.Name != "" {
				r.Name = kc.Name
			}
			r.State, r.LastSeen, r.LastAddr = StateTOFU, kc.Seen, kc.Addr
			r.VerifiedMethod, r.VerifiedAt, r.IntroducedBy = "", time.Time{}, curve.PublicKey{}
			r.SigningKey, r.BindingTime = nil, time.Time{}
			note := fmt.Sprintf("%s: accepted key change from %s (was %s)", now.Format(time.RFC3339), kc.OldFingerprint, prev)
			r.Notes = appendNote(r.Notes, note)
			r.KeyChange = nil
		})
		out = r.clone()
		return nil, nil
	})
	return out, err
}

// Reject dismisses the pending key change of the record with key old:
// the key presented stays refused (it is refused at each attempt, and
// recorded again if it comes back: a peer that keeps presenting it is
// shown again), and the record keeps its key and state. It is the user act
// behind "zyre trust reject". ErrNoKeyChange when none is pending.
func (s *Store) Reject(ctx context.Context, old curve.PublicKey) (KeyChange, error) {
	var out KeyChange
	err := s.mutate(ctx, func(st *state) ([]Record, error) {
		r := st.byKey[old]
		if r == nil {
			return nil, fmt.Errorf("%w: key %s", ErrNotFound, Fingerprint(old))
		}
		if r.KeyChange == nil {
			return nil, fmt.Errorf("%w for %s", ErrNoKeyChange, peerLabel(r))
		}
		out = *r.KeyChange
		st.change(r, func(r *Record) { r.KeyChange = nil })
		return nil, nil
	})
	return out, err
}

// Revoke revokes key locally only: it is refused from then on, here. To
// revoke it for the network (what "zyre trust revoke" does), sign a
// Revoke statement with Sign instead, which also revokes it here, in one
// change. Revoking a revoked key is not an error.
func (s *Store) Revoke(ctx context.Context, key curve.PublicKey, reason string) (Record, error) {
	if key.IsZero() {
		return Record{}, fmt.Errorf("%w: zero CURVE key", ErrInvalidKey)
	}
	now := s.opts.Now().UTC()
	var out Record
	err := s.mutate(ctx, func(st *state) ([]Record, error) {
		var revoked []Record
		if r := s.revokeKey(st, key, curve.PublicKey{}, cleanText(reason), now); r != nil {
			revoked = append(revoked, r.clone())
		}
		r := st.byKey[key]
		if r == nil {
			return nil, fmt.Errorf("%w (%d)", ErrStoreFull, s.maxKept())
		}
		out = r.clone()
		return revoked, nil
	})
	if err != nil {
		return Record{}, err
	}
	return out, nil
}

// Unrevoke withdraws a local revocation of key (made by Revoke): the
// record gets back the state it had, unless another revocation that
// counts still stands. A revocation signed by this node is withdrawn for
// the network by signing an Unrevoke statement (Sign) instead, which also
// applies here; a revocation by another signer only that signer can
// withdraw (ErrConflict) — unless that signer no longer counts (its own
// key revoked, no longer verified, or forgotten): then it never can, and
// the user may withdraw it here. A key that revoked itself (lost) stays
// revoked.
func (s *Store) Unrevoke(ctx context.Context, key curve.PublicKey, reason string) (Record, error) {
	now := s.opts.Now().UTC()
	var out Record
	err := s.mutate(ctx, func(st *state) ([]Record, error) {
		r := st.byKey[key]
		if r == nil {
			return nil, fmt.Errorf("%w: key %s", ErrNotFound, Fingerprint(key))
		}
		if r.State != StateRevoked {
			return nil, fmt.Errorf("%w: %s is %s", ErrNotRevoked, peerLabel(r), r.State)
		}
		var skip sigKey
		if !r.RevokedBy.IsZero() {
			counts := r.RevokedBy == r.Key // its own revocation: final
			if by := st.byKey[r.RevokedBy]; by != nil && !counts {
				if k, ok := toSigKey(by.SigningKey); ok {
					_, counts = canRevoke(st, k, r.Key)
					skip = k
				}
			}
			if counts {
				return nil, fmt.Errorf("%w: %s was revoked by %s; only that signer can withdraw it", ErrConflict, peerLabel(r), s.describe(st, r.RevokedBy))
			}
			// Its signer no longer counts (its key revoked, no longer
			// verified, or forgotten), so it can never withdraw it: the
			// user may, here.
		}
		s.unrevokeKey(st, r, skip, cleanText(reason), now)
		out = r.clone()
		return nil, nil
	})
	return out, err
}

// Forget removes the record of key: a passer-by the user does not want
// to keep. Its key is unknown again (pinned anew if it comes back). A
// revoked key cannot be forgotten (ErrRevoked), so that it cannot come
// back that way.
func (s *Store) Forget(ctx context.Context, key curve.PublicKey) (Record, error) {
	var out Record
	err := s.mutate(ctx, func(st *state) ([]Record, error) {
		r := st.byKey[key]
		if r == nil {
			return nil, fmt.Errorf("%w: key %s", ErrNotFound, Fingerprint(key))
		}
		if r.State == StateRevoked {
			return nil, fmt.Errorf("%w: %s: a revoked key is kept so that it stays refused", ErrRevoked, peerLabel(r))
		}
		if r.State == StateVerified {
			demoteIntroduced(st, r.Key)
		}
		out = r.clone()
		st.remove(r)
		if k, ok := toSigKey(r.SigningKey); ok && evictable(r) && !st.own[k] {
			st.dropLogOf(k) // a passer-by's statements go with it
		}
		return nil, nil
	})
	return out, err
}

// SetNotes replaces a record's notes: valid UTF-8 of at most 4096
// octets (longer notes are refused).
func (s *Store) SetNotes(ctx context.Context, key curve.PublicKey, notes string) error {
	notes = toValidUTF8(notes)
	if len(notes) > maxNotesLen {
		return fmt.Errorf("trust: notes of %d octets, at most %d", len(notes), maxNotesLen)
	}
	return s.mutate(ctx, func(st *state) ([]Record, error) {
		r := st.byKey[key]
		if r == nil {
			return nil, fmt.Errorf("%w: key %s", ErrNotFound, Fingerprint(key))
		}
		st.change(r, func(r *Record) { r.Notes = notes })
		return nil, nil
	})
}

// maxNotesLen caps Record.Notes (and the other free texts of a record on
// disk): a longer one makes trust.json corrupt.
const maxNotesLen = 4096

// appendNote appends a line to notes, dropping the oldest lines (then
// octets) so that the result stays within maxNotesLen: the store adds a
// line for every withdrawn revocation and accepted key change, which the
// network can repeat at will.
func appendNote(notes, line string) string {
	if notes != "" {
		notes += "\n"
	}
	notes += line
	for len(notes) > maxNotesLen {
		i := strings.IndexByte(notes, '\n')
		if i < 0 || len(notes)-i-1 > maxNotesLen {
			notes = toValidUTF8(notes[len(notes)-maxNotesLen:])
			for len(notes) > maxNotesLen { // ToValidUTF8 may lengthen a cut rune
				notes = toValidUTF8(notes[1:])
			}
			break
		}
		notes = notes[i+1:]
	}
	return notes
}
