package trust

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/atomicfile"
)

// The store on disk (spec/trust.md, "The store on disk"): trust.json, a
// snapshot written whole, and trust.journal, the changes since, appended.
// All file work happens here, on the goroutine of the Store's writer or on
// the caller's goroutine for the changes that wait for the disk (Sign,
// Revoke, MarkVerified, ...), never under Store.mu.

// fileID identifies a version of a file: each snapshot and each new
// journal is renamed into place, so it is a new file (os.SameFile); size
// and modification time catch edits in place.
type fileID struct {
	fi fs.FileInfo // nil: missing
}

func (a fileID) same(b fileID) bool {
	if a.fi == nil || b.fi == nil {
		return a.fi == nil && b.fi == nil
	}
	return os.SameFile(a.fi, b.fi)
}

func (a fileID) sameVersion(b fileID) bool {
	return a.same(b) && (a.fi == nil || a.fi.Size() == b.fi.Size() && a.fi.ModTime().Equal(b.fi.ModTime()))
}

// diskState is what this process knows of the files; guarded by
// Store.wmu.
type diskState struct {
	snap  fileID // trust.json as read
	gen   uint64 // its generation
	jrnl  fileID // the journal as read (nil: missing)
	jOff  int64  // octets of the journal applied
	jTorn bool   // octets after jOff that are no whole entry
	// jSeen is the journal's identity when last read: a torn tail that
	// has not changed since is not read again by every look.
	jSeen fileID
	// jStale: the journal is of an older generation than trust.json (a
	// compaction was cut short): the next write starts a new one.
	jStale bool
}

// stat returns the identity of path, checking that it is a regular file
// that group and others can neither read nor write.
func statFile(path string) (fileID, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fileID{}, nil
	}
	if err != nil {
		return fileID{}, fmt.Errorf("trust: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fileID{}, fmt.Errorf("%w: %s: not a regular file", ErrCorrupt, path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fileID{}, fmt.Errorf("%w: %s has mode %04o; run: chmod 600 %s", ErrInsecure, path, fi.Mode().Perm(), path)
	}
	return fileID{fi: fi}, nil
}

// maxFileSize caps what a read of trust.json or of the journal accepts
// (Store.maxFile, which tests may lower).
const maxFileSize = 64 << 20

// maxStrangerStatements caps the log of a signer that is no verified,
// introduced or revoked peer's (a tofu peer, or one not known any more):
// such statements count only once their signer is verified, and the rest
// of the log comes by gossip then. MaxSigners strangers thus hold at most
// MaxSigners x maxStrangerStatements statements.
const maxStrangerStatements = 32

// readFileLimited reads a whole file of at most limit octets.
func readFileLimited(path string, limit int64) ([]byte, fileID, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fileID{}, nil
	}
	if err != nil {
		return nil, fileID{}, fmt.Errorf("trust: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fileID{}, fmt.Errorf("trust: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fileID{}, fmt.Errorf("%w: %s: not a regular file", ErrCorrupt, path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fileID{}, fmt.Errorf("%w: %s has mode %04o; run: chmod 600 %s", ErrInsecure, path, fi.Mode().Perm(), path)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fileID{}, fmt.Errorf("trust: read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fileID{}, fmt.Errorf("%w: %s: larger than %d octets", ErrCorrupt, path, limit)
	}
	return data, fileID{fi: fi}, nil
}

// readAll reads trust.json and its journal into a new state. It takes no
// lock: a compaction by another process between the two reads shows as a
// journal of a newer generation, and the read is tried again.
func (s *Store) readAll() (*state, diskState, error) {
	for try := 0; ; try++ {
		st, ds, err := s.readOnce()
		if err == nil {
			st.evict(s.opts.MaxPeers, nil)
		}
		if errors.Is(err, errRetry) && try < 20 {
			time.Sleep(time.Duration(try+1) * time.Millisecond)
			continue
		}
		if errors.Is(err, errRetry) {
			err = fmt.Errorf("%w: %s: the journal is of a newer generation than trust.json", ErrCorrupt, s.jpath)
		}
		return st, ds, err
	}
}

var errRetry = errors.New("retry")

func (s *Store) readOnce() (*state, diskState, error) {
	var ds diskState
	s.readHook(s.path)
	data, id, err := readFileLimited(s.path, s.maxFile)
	if err != nil {
		return nil, ds, err
	}
	st := newState()
	if id.fi != nil {
		if st, err = parseFile(data); err != nil {
			return nil, ds, fmt.Errorf("%s: %w", s.path, err)
		}
	}
	ds.snap, ds.gen = id, st.gen
	s.readHook(s.jpath)
	jdata, jid, err := readFileLimited(s.jpath, s.maxFile)
	if err != nil || jid.fi == nil {
		return st, ds, err
	}
	pj, err := parseJournal(jdata, true)
	if err != nil {
		return nil, ds, fmt.Errorf("%s: %w", s.jpath, err)
	}
	ds.jrnl = jid
	if !pj.header {
		// Empty, or a header cut short: nothing in it counts, and the next
		// write starts it again.
		ds.jStale = true
		return st, ds, nil
	}
	switch {
	case pj.gen < st.gen:
		// Left over from before the last compaction: trust.json holds it.
		ds.jOff, ds.jStale = int64(len(jdata)), true
		return st, ds, nil
	case pj.gen > st.gen:
		return nil, ds, errRetry
	}
	for i := range pj.entries {
		if _, err := st.applyEntry(&pj.entries[i]); err != nil {
			return nil, ds, fmt.Errorf("%s: %w: entry %d: %v", s.jpath, ErrCorrupt, i+1, err)
		}
	}
	ds.jOff, ds.jTorn, ds.jSeen = int64(pj.used), pj.torn, jid
	return st, ds, nil
}

// catchUp brings the state in memory up to date with the files, which
// another process (the CLI) may have changed. Most often it costs two
// stat(2); when the journal grew it reads and applies the new entries
// only; when trust.json was replaced (compacted) it reads both again and
// keeps what this process has not written yet. Called with s.wmu held.
func (s *Store) catchUp() error {
	snap, err := statFile(s.path)
	if err != nil {
		return err
	}
	jr, err := statFile(s.jpath)
	if err != nil {
		return err
	}
	ds := &s.disk
	if !snap.sameVersion(ds.snap) || (jr.fi != nil && ds.jrnl.fi != nil && !jr.same(ds.jrnl)) || (jr.fi == nil) != (ds.jrnl.fi == nil) {
		return s.reload()
	}
	if jr.fi == nil || jr.fi.Size() <= ds.jOff || ds.jTorn && jr.sameVersion(ds.jSeen) {
		return nil
	}
	s.readHook(s.jpath)
	f, err := os.Open(s.jpath)
	if err != nil {
		return fmt.Errorf("trust: %w", err)
	}
	defer f.Close()
	n := jr.fi.Size() - ds.jOff
	if n > s.maxFile {
		return fmt.Errorf("%w: %s: larger than %d octets", ErrCorrupt, s.jpath, s.maxFile)
	}
	data := make([]byte, n)
	if _, err := f.ReadAt(data, ds.jOff); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("trust: read %s: %w", s.jpath, err)
	}
	pj, err := parseJournal(data, ds.jOff == 0)
	if err != nil {
		return fmt.Errorf("%s: %w", s.jpath, err)
	}
	if ds.jOff == 0 && pj.header && pj.gen != ds.gen {
		return s.reload()
	}
	var revoked []Record
	s.mu.Lock()
	for i := range pj.entries {
		r, err := s.st.applyEntry(&pj.entries[i])
		if err != nil {
			s.mu.Unlock()
			return fmt.Errorf("%s: %w: %v", s.jpath, ErrCorrupt, err)
		}
		if r != nil {
			revoked = append(revoked, r.clone())
		}
	}
	s.st.evict(s.opts.MaxPeers, nil)
	s.mu.Unlock()
	ds.jOff += int64(pj.used)
	ds.jTorn, ds.jSeen = pj.torn, jr
	s.notify(revoked)
	return nil
}

// reload reads both files again and makes them the state, keeping the
// changes of this process not written yet (a record another process
// wrote meanwhile wins over ours). Called with s.wmu held.
func (s *Store) reload() error {
	st, ds, err := s.readAll()
	if err != nil {
		return err
	}
	s.mu.Lock()
	old := s.st
	if old != nil {
		for k, base := range old.dirty {
			mine, theirs := old.byKey[k], st.byKey[k]
			switch {
			case mine == nil:
				if base != nil && theirs != nil && !evictable(base) && !trustChanged(base, theirs) {
					// We deleted it (evicted after a demotion, see
					// evict) and the disk still holds it as it was: the
					// deletion stands.
					st.remove(theirs)
				}
				continue // else whatever the disk says stands
			case theirs == nil && base != nil && !keepOverDelete(base, mine):
				continue // another process forgot it
			case theirs == nil:
				if st.byUUID[mine.UUID] != nil {
					continue
				}
				if sk, ok := toSigKey(mine.SigningKey); ok && st.bySigner[sk] != nil {
					continue
				}
				c := mine.clone()
				st.add(&c) // dirty, with base nil: written as new
			default:
				m := mergeRecord(base, mine, theirs)
				st.change(theirs, func(r *Record) {
					order := r.order
					*r = *m
					r.order, r.elem = order, nil
				})
			}
		}
		for _, l := range old.logs {
			w := old.written[l.signer]
			nl := st.logOf[l.signer]
			for _, stmt := range l.stmts[w:] {
				if nl == nil {
					nl = st.addLog(l.signer)
				}
				seq, h := nl.head()
				if stmt.Seq == seq+1 && stmt.Prev == h {
					st.appendStatement(nl, stmt)
				}
			}
		}
		if old.dirtyPolicy {
			st.policy, st.dirtyPolicy = old.policy, true
		}
		st.version = old.version + 1
	}
	s.st = st
	s.mu.Unlock()
	s.disk = ds
	return nil
}

// pendingWrite is what write takes from the state: the entries and what
// to mark dirty again if the write fails.
type pendingWrite struct {
	keys    map[curve.PublicKey]*Record // the dirty keys and their bases
	recs    map[curve.PublicKey]*Record // copies to write; nil: delete
	stmts   []*Statement
	dropped []sigKey
	policy  *Policy
	logs    map[sigKey]int // statements written per log after success
}

// collect takes the changes not written yet and clears their marks;
// encode turns them into journal lines. collect runs with s.mu held and
// only copies; encode runs without it.
func (st *state) collect() *pendingWrite {
	pw := &pendingWrite{logs: map[sigKey]int{}, keys: map[curve.PublicKey]*Record{}, recs: map[curve.PublicKey]*Record{}}
	for k := range st.dropped {
		pw.dropped = append(pw.dropped, k)
	}
	st.dropped = map[sigKey]bool{}
	for _, l := range st.logs {
		w := st.written[l.signer]
		pw.stmts = append(pw.stmts, l.stmts[w:]...)
		if len(l.stmts) > w {
			pw.logs[l.signer] = len(l.stmts)
		}
	}
	if st.dirtyPolicy {
		p := st.policy
		pw.policy = &p
		st.dirtyPolicy = false
	}
	for k, base := range st.dirty {
		pw.keys[k] = base
		if r := st.byKey[k]; r != nil {
			c := r.clone()
			pw.recs[k] = &c
		} else {
			pw.recs[k] = nil
		}
	}
	st.dirty = map[curve.PublicKey]*Record{} // not clear: a cleared map keeps its size, and ranging over it costs that
	return pw
}

// encode returns the journal lines of the changes, ended by their commit
// (nothing when there is no change).
func (pw *pendingWrite) encode() []byte {
	data := pw.encodeEntries()
	if len(data) == 0 {
		return nil
	}
	return appendCommit(data, uint64(bytes.Count(data, []byte{'\n'})))
}

func (pw *pendingWrite) encodeEntries() []byte {
	var data []byte
	for _, k := range pw.dropped {
		data = appendEntry(data, &journalEntry{DropLog: signingKeyText(k[:])})
	}
	for _, stmt := range pw.stmts {
		data = appendEntry(data, &journalEntry{Statement: base64.StdEncoding.EncodeToString(stmt.Raw)})
	}
	if p := pw.policy; p != nil {
		data = appendEntry(data, &journalEntry{Policy: policyEntry(*p)})
	}
	for k, r := range pw.recs {
		if r != nil {
			fr := fromRecord(r)
			data = appendEntry(data, &journalEntry{Put: &fr})
		} else {
			data = appendEntry(data, &journalEntry{Del: k.Z85()})
		}
	}
	return data
}

// restore marks the changes of a failed write dirty again.
func (st *state) restore(pw *pendingWrite) {
	for k, base := range pw.keys {
		st.dirty[k] = base // what the disk holds, whatever changed since
	}
	for _, k := range pw.dropped {
		// Also when the log was started again since: the disk may hold
		// the old one, which the new one's statements must not follow.
		st.dropped[k] = true
	}
	if pw.policy != nil {
		st.dirtyPolicy = true
	}
}

func (st *state) pending() bool {
	if len(st.dirty) > 0 || st.dirtyPolicy || len(st.dropped) > 0 {
		return true
	}
	for _, l := range st.logs {
		if len(l.stmts) > st.written[l.signer] {
			return true
		}
	}
	return false
}

// lockFiles takes the file lock (creating the directory if needed) and
// catches up with the files. Called with s.wmu held.
func (s *Store) lockFiles(ctx context.Context) (unlock func() error, err error) {
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return nil, fmt.Errorf("trust: failed to create %s: %w", filepath.Dir(s.path), err)
	}
	unlock, err = atomicfile.Lock(ctx, s.path)
	if err != nil {
		return nil, fmt.Errorf("trust: %w", err)
	}
	if err := s.catchUp(); err != nil {
		unlock()
		return nil, err
	}
	return unlock, nil
}

// write appends the changes not written yet to the journal, under the
// file lock, after catching up with the files. Called with s.wmu held.
func (s *Store) write(ctx context.Context) error {
	unlock, err := s.lockFiles(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return s.flushLocked()
}

// flushLocked appends the changes not written yet to the journal and
// compacts the journal into trust.json when it has grown as large as
// trust.json (so each change costs O(1) disk work, amortized). Called with
// s.wmu and the file lock held. On failure the changes stay to be written.
func (s *Store) flushLocked() error {
	s.mu.Lock()
	pw := s.st.collect()
	s.mu.Unlock()
	data := pw.encode()
	if len(data) == 0 {
		return nil
	}
	if err := s.appendJournal(data); err != nil {
		s.mu.Lock()
		s.st.restore(pw)
		s.mu.Unlock()
		return err
	}
	s.mu.Lock()
	for k, n := range pw.logs {
		s.st.written[k] = max(s.st.written[k], n)
	}
	s.mu.Unlock()
	if s.disk.jOff > min(max(compactMin, compactRatio*s.snapSize()), s.maxFile/2) {
		if err := s.compact(); err != nil {
			// The journal holds everything: a failed compaction loses nothing.
			s.opts.Logger.Warn("trust: failed to compact the journal", "path", s.jpath, "err", err)
		}
	}
	return nil
}

// compactMin is the journal size below which it is never compacted.
// Beyond it the journal is compacted when it holds compactRatio times the
// octets of trust.json: each compaction rewrites S octets after at least
// compactRatio x S were appended, so a change costs O(1) disk work,
// amortized, whatever the size of the store; the files stay under
// (1 + compactRatio) x S. The journal is compacted at maxFileSize/2 at
// the latest, so that it never outgrows what a read accepts.
const (
	compactMin   = 1 << 20
	compactRatio = 8
)

func (s *Store) snapSize() int64 {
	if s.disk.snap.fi == nil {
		return 0
	}
	return s.disk.snap.fi.Size()
}

// appendJournal appends data to the journal (creating it with its header
// if needed, cutting a torn tail first) and syncs it.
func (s *Store) appendJournal(data []byte) error {
	ds := &s.disk
	if ds.jrnl.fi == nil || ds.jStale {
		hdr := headerEntry(ds.gen)
		if err := s.fs.writeFile(s.jpath, hdr); err != nil {
			return fmt.Errorf("trust: %w", err)
		}
		id, err := statFile(s.jpath)
		if err != nil {
			return err
		}
		ds.jrnl, ds.jOff, ds.jTorn, ds.jStale = id, int64(len(hdr)), false, false
	}
	if err := s.fs.append(s.jpath, ds.jOff, data); err != nil {
		return fmt.Errorf("trust: append to %s: %w", s.jpath, err)
	}
	ds.jOff += int64(len(data))
	ds.jTorn = false
	id, err := statFile(s.jpath)
	if err != nil {
		return err
	}
	ds.jrnl = id
	return nil
}

// compact writes the whole state as trust.json of the next generation,
// then starts an empty journal of that generation. A crash between the
// two leaves a journal of an older generation, which readers ignore.
func (s *Store) compact() error {
	ds := &s.disk
	s.mu.Lock()
	// Changes not written yet go into the snapshot too; they stay marked
	// and go to the new journal as well (replaying them changes nothing).
	sn := s.st.snapshot(ds.gen + 1)
	s.mu.Unlock()
	data, err := sn.marshal()
	if err != nil {
		return err
	}
	if int64(len(data)) > s.maxFile {
		return fmt.Errorf("trust: refusing to write %s of %d octets, more than a read accepts (%d)", s.path, len(data), s.maxFile)
	}
	if _, err := parseFile(data); err != nil {
		return fmt.Errorf("trust: internal error, refusing to write %s: %w", s.path, err)
	}
	if err := s.fs.writeFile(s.path, data); err != nil {
		return fmt.Errorf("trust: %w", err)
	}
	snap, err := statFile(s.path)
	if err != nil {
		return err
	}
	ds.snap, ds.gen = snap, sn.gen
	s.mu.Lock()
	s.st.gen = sn.gen
	s.mu.Unlock()
	hdr := headerEntry(sn.gen)
	if err := s.fs.writeFile(s.jpath, hdr); err != nil {
		// The old journal is of an older generation now: ignored.
		return fmt.Errorf("trust: %w", err)
	}
	jr, err := statFile(s.jpath)
	if err != nil {
		return err
	}
	ds.jrnl, ds.jOff, ds.jTorn, ds.jStale = jr, int64(len(hdr)), false, false
	return nil
}

// fileOps is the file system work of the store; tests replace it to
// inject crashes.
type fileOps interface {
	// writeFile replaces path atomically.
	writeFile(path string, data []byte) error
	// append cuts path to size off, appends data and syncs.
	append(path string, off int64, data []byte) error
}

type osFileOps struct{ fs atomicfile.FS }

func (o osFileOps) writeFile(path string, data []byte) error {
	return atomicfile.WriteWith(path, data, 0o600, atomicfile.Options{FS: o.fs})
}

func (osFileOps) append(path string, off int64, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if err := f.Truncate(off); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteAt(data, off); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// compactNow writes everything and compacts the journal into trust.json
// at once (tests; the CLI's "zyre trust list" never needs it).
func (s *Store) compactNow(ctx context.Context) error {
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
	if err := s.flushLocked(); err != nil {
		return err
	}
	return s.compact()
}

// readHook calls Store.onRead, if set, for a read of a file.
func (s *Store) readHook(path string) {
	if s.onRead != nil {
		s.onRead(path)
	}
}

// policyEntry is the journal's form of p.
func policyEntry(p Policy) *filePolicy {
	fp := filePolicyOf(p)
	return &fp
}
