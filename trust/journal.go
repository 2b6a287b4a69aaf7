package trust

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"slices"

	"github.com/zyre-go/zyre/curve"
)

// JournalName is the store's journal beside trust.json: the changes made
// since trust.json was last written, one per line (spec/trust.md, "The
// journal").
const JournalName = "trust.journal"

// journalEntry is one line of the journal; exactly one field is set. The
// first line is the header: the generation of the trust.json it follows.
type journalEntry struct {
	Generation *uint64     `json:"generation,omitempty"`
	Put        *fileRecord `json:"put,omitempty"`
	Del        string      `json:"del,omitempty"`
	Statement  string      `json:"statement,omitempty"`
	DropLog    string      `json:"drop_log,omitempty"`
	Policy     *filePolicy `json:"policy,omitempty"`
	// Commit ends each append: the number of entries before it since the
	// previous commit (or the header). Entries not followed by their
	// commit were cut short by a crash (or are being appended): they do
	// not count, so one change is on disk whole or not at all.
	Commit *uint64 `json:"commit,omitempty"`
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// appendEntry appends one journal line: the CRC-32C of the JSON in 8 hex
// digits, a space, the JSON, a newline.
func appendEntry(dst []byte, e *journalEntry) []byte {
	if e.Put != nil {
		// The hot path, without reflection (jsonenc.go).
		start := len(dst)
		dst = append(dst, "00000000 {\"put\":"...)
		dst = appendRecordJSON(dst, e.Put)
		dst = append(dst, '}')
		js := dst[start+9:]
		sum := crc32.Checksum(js, crcTable)
		for i := 7; i >= 0; i-- {
			dst[start+i] = hexDigits[sum&0xf]
			sum >>= 4
		}
		return append(dst, '\n')
	}
	return appendEntryJSON(dst, e)
}

// appendEntryJSON is appendEntry by encoding/json.
func appendEntryJSON(dst []byte, e *journalEntry) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		panic("trust: journal entry does not encode: " + err.Error()) // only our own types
	}
	js := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	dst = fmt.Appendf(dst, "%08x ", crc32.Checksum(js, crcTable))
	dst = append(dst, js...)
	return append(dst, '\n')
}

func headerEntry(gen uint64) []byte { return appendEntry(nil, &journalEntry{Generation: &gen}) }

func appendCommit(dst []byte, n uint64) []byte { return appendEntry(dst, &journalEntry{Commit: &n}) }

// parsedJournal is what parseJournal read.
type parsedJournal struct {
	gen     uint64         // from the header (when header is set)
	header  bool           // the data started at offset 0 and held the header
	entries []journalEntry // the committed ones
	used    int            // octets of the header and of committed entries
	torn    bool           // octets after used: a write cut short (or one under way)
}

// parseJournal reads journal lines from data, which starts at a line
// boundary (offset 0 when first is true: the header comes first). Lines
// that are cut short or fail their checksum at the end of data, and
// entries not followed by their commit, are a torn tail (a crash during
// an append, or an append under way), not an error; a bad line followed
// by a good one is corruption. Every error wraps ErrCorrupt and names the
// line (counted from the start of data).
func parseJournal(data []byte, first bool) (parsedJournal, error) {
	var pj parsedJournal
	var batch []journalEntry
	line := 0
	for off := 0; off < len(data); {
		line++
		nl := bytes.IndexByte(data[off:], '\n')
		if nl < 0 {
			pj.torn = true
			return pj, nil
		}
		raw := data[off : off+nl]
		e, err := parseEntry(raw)
		if err != nil {
			if rest := data[off+nl+1:]; !hasLine(rest) {
				pj.torn = true // the last line: torn
				return pj, nil
			}
			return pj, fmt.Errorf("%w: journal line %d: %v", ErrCorrupt, line, err)
		}
		off += nl + 1
		switch {
		case first && line == 1:
			if e.Generation == nil {
				return pj, fmt.Errorf("%w: journal line 1: no header", ErrCorrupt)
			}
			pj.gen, pj.header = *e.Generation, true
			pj.used = off
		case e.Generation != nil:
			return pj, fmt.Errorf("%w: journal line %d: a second header", ErrCorrupt, line)
		case e.Commit != nil:
			if *e.Commit == 0 || *e.Commit != uint64(len(batch)) {
				return pj, fmt.Errorf("%w: journal line %d: commit of %d entries after %d", ErrCorrupt, line, *e.Commit, len(batch))
			}
			pj.entries = append(pj.entries, batch...)
			batch = nil
			pj.used = off
		default:
			batch = append(batch, e)
		}
	}
	if len(batch) > 0 {
		pj.torn = true // entries without their commit
	}
	return pj, nil
}

// hasLine reports whether b holds a whole line that is a valid entry.
func hasLine(b []byte) bool {
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			return false
		}
		if _, err := parseEntry(b[:nl]); err == nil {
			return true
		}
		b = b[nl+1:]
	}
	return false
}

const maxEntrySize = 64 << 10

// parseEntry checks and decodes one line (without its newline).
func parseEntry(raw []byte) (journalEntry, error) {
	var e journalEntry
	if len(raw) > maxEntrySize {
		return e, fmt.Errorf("entry of %d octets", len(raw))
	}
	if len(raw) < 10 || raw[8] != ' ' {
		return e, fmt.Errorf("no checksum")
	}
	var sum [4]byte
	if _, err := hex.Decode(sum[:], raw[:8]); err != nil {
		return e, fmt.Errorf("bad checksum digits")
	}
	js := raw[9:]
	if crc32.Checksum(js, crcTable) != uint32(sum[0])<<24|uint32(sum[1])<<16|uint32(sum[2])<<8|uint32(sum[3]) {
		return e, fmt.Errorf("checksum mismatch")
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return e, fmt.Errorf("bad entry: %v", err)
	}
	if dec.More() {
		return e, fmt.Errorf("data after the entry")
	}
	n := 0
	for _, set := range []bool{e.Generation != nil, e.Put != nil, e.Del != "", e.Statement != "", e.DropLog != "", e.Policy != nil, e.Commit != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return e, fmt.Errorf("entry with %d parts, want 1", n)
	}
	return e, nil
}

// applyEntry replays one journal entry on st: puts and deletes replace a
// record whole (a record holding the same UUID or signing key under
// another key goes: the later write wins), statements extend their
// signer's log. What it applies is on disk: it is not dirty. It returns
// the record a put revoked (nil otherwise).
func (st *state) applyEntry(e *journalEntry) (*Record, error) {
	switch {
	case e.Put != nil:
		r, err := e.Put.record()
		if err != nil {
			return nil, err
		}
		var was State
		old := st.byKey[r.Key]
		if base, ok := st.dirty[r.Key]; ok {
			// We changed this record too, not written yet: our change goes
			// on top of theirs, and is written after it.
			disk := r.clone()
			r = mergeRecord(base, old, r)
			st.dirty[r.Key] = &disk
		}
		if old != nil {
			was = old.State
			r.order = old.order
			st.unindex(old)
		} else {
			r.order = st.order
			st.order++
		}
		if o := st.byUUID[r.UUID]; o != nil {
			st.unindex(o)
			delete(st.dirty, o.Key)
		}
		if k, ok := toSigKey(r.SigningKey); ok {
			if o := st.bySigner[k]; o != nil {
				st.unindex(o)
				delete(st.dirty, o.Key)
			}
		}
		st.index(r)
		st.version++
		if r.State == StateRevoked && was != StateRevoked {
			return r, nil
		}
	case e.Del != "":
		k, err := curve.ParsePublicKey(e.Del)
		if err != nil {
			return nil, fmt.Errorf("bad key %q", e.Del)
		}
		if r := st.byKey[k]; r != nil {
			if base, ok := st.dirty[k]; ok && keepOverDelete(base, r) {
				// We revoked it meanwhile (not written yet): another
				// process forgot what it saw as a passer-by, but a
				// revocation is never lost. Ours is written as new.
				st.dirty[k] = nil
				return nil, nil
			}
			st.unindex(r)
		}
		delete(st.dirty, k)
		st.version++
	case e.Statement != "":
		raw, err := base64.StdEncoding.DecodeString(e.Statement)
		if err != nil {
			return nil, fmt.Errorf("statement: bad base64")
		}
		s, err := parseUnverified(raw)
		if err != nil {
			return nil, err
		}
		if s.Kind() == KindBinding {
			return nil, fmt.Errorf("statement: a binding")
		}
		k, _ := toSigKey(s.Signer)
		l := st.logOf[k]
		if l == nil {
			l = st.addLog(k)
		}
		w := st.written[k]
		switch {
		case s.Seq <= uint64(w):
			if !bytes.Equal(l.stmts[s.Seq-1].Raw, s.Raw) {
				return nil, fmt.Errorf("statement #%d forks the log on disk", s.Seq)
			}
			return nil, nil
		case s.Seq != uint64(w)+1:
			return nil, fmt.Errorf("statement #%d after #%d", s.Seq, w)
		}
		var prev [32]byte
		if w > 0 {
			prev = l.stmts[w-1].Hash()
		}
		if s.Prev != prev {
			return nil, fmt.Errorf("statement #%d breaks the chain", s.Seq)
		}
		st.written[k] = w + 1
		if len(l.stmts) > w {
			if bytes.Equal(l.stmts[w].Raw, s.Raw) {
				return nil, nil // ours, written by another process first
			}
			// Another process wrote a different #w+1: the disk wins, our
			// unwritten statements of this log are dropped.
			l.stmts = l.stmts[:w]
		}
		st.appendStatement(l, s)
	case e.DropLog != "":
		pk, err := parseSigningKey(e.DropLog)
		if err != nil {
			return nil, err
		}
		k, _ := toSigKey(pk)
		if l := st.logOf[k]; l != nil {
			st.logs = slices.DeleteFunc(st.logs, func(x *signerLog) bool { return x == l })
			delete(st.logOf, k)
		}
		delete(st.written, k)
		delete(st.dropped, k)
		st.version++
	case e.Policy != nil:
		p, err := e.Policy.policy()
		if err != nil {
			return nil, err
		}
		st.policy = p
		st.dirtyPolicy = false
		st.version++
	}
	return nil, nil
}

// keepOverDelete reports whether our unwritten change of a record (base
// to mine) outweighs another process's deletion of it: a revocation (a
// record is never forgotten out from under it).
func keepOverDelete(base, mine *Record) bool {
	return mine != nil && mine.State == StateRevoked && (base == nil || base.State != StateRevoked)
}
