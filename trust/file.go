package trust

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
)

// FileVersion is the version of trust.json this package writes. It reads
// version 1 too (a store without a journal, generation 0).
const FileVersion = 2

// The JSON shapes of trust.json (see spec/trust.md).
type fileDoc struct {
	Version    int          `json:"version"`
	Generation uint64       `json:"generation"`
	Policy     filePolicy   `json:"policy"`
	Peers      []fileRecord `json:"peers"`
	Logs       []fileLog    `json:"logs"`
}

type filePolicy struct {
	Mode           string `json:"mode"`
	Introductions  bool   `json:"introductions"`
	VerifiedRevoke bool   `json:"verified_revoke"`
	// Vouch is absent when true (the default, and what stores written
	// before it existed mean): only "vouch": false is written.
	Vouch *bool `json:"vouch,omitempty"`
}

// filePolicyOf is p as written.
func filePolicyOf(p Policy) filePolicy {
	fp := filePolicy{Mode: p.Mode.String(), Introductions: p.Introductions, VerifiedRevoke: p.VerifiedRevoke}
	if !p.Vouch {
		fp.Vouch = new(bool)
	}
	return fp
}

// policy parses fp.
func (fp *filePolicy) policy() (Policy, error) {
	m, err := ParseMode(fp.Mode)
	if err != nil {
		return Policy{}, err
	}
	return Policy{Mode: m, Introductions: fp.Introductions, VerifiedRevoke: fp.VerifiedRevoke, Vouch: fp.Vouch == nil || *fp.Vouch}, nil
}

type fileRecord struct {
	UUID           string         `json:"uuid"`
	Name           string         `json:"name"`
	Key            string         `json:"key"`
	Fingerprint    string         `json:"fingerprint"`
	Bound          bool           `json:"bound"`
	State          string         `json:"state"`
	FirstSeen      time.Time      `json:"first_seen"`
	LastSeen       *time.Time     `json:"last_seen,omitempty"`
	LastAddr       string         `json:"last_addr,omitempty"`
	IntroducedBy   string         `json:"introduced_by,omitempty"`
	VerifiedMethod string         `json:"verified_method,omitempty"`
	VerifiedAt     *time.Time     `json:"verified_at,omitempty"`
	SigningKey     string         `json:"signing_key,omitempty"`
	BindingTime    *time.Time     `json:"binding_time,omitempty"`
	RevokedAt      *time.Time     `json:"revoked_at,omitempty"`
	RevokedFrom    string         `json:"revoked_from,omitempty"`
	RevokedBy      string         `json:"revoked_by,omitempty"`
	RevokeReason   string         `json:"revoke_reason,omitempty"`
	KeyChange      *fileKeyChange `json:"key_change,omitempty"`
	Notes          string         `json:"notes,omitempty"`
}

type fileKeyChange struct {
	UUID        string    `json:"uuid"`
	Name        string    `json:"name"`
	Key         string    `json:"key"`
	Fingerprint string    `json:"fingerprint"`
	Seen        time.Time `json:"seen"`
	Addr        string    `json:"addr,omitempty"`
}

type fileLog struct {
	Signer     string   `json:"signer"`
	Statements []string `json:"statements"`
}

// parseError is a corrupt-file error at a line.
func parseError(data []byte, off int64, format string, args ...any) error {
	return fmt.Errorf("%w: line %d: %s", ErrCorrupt, lineAt(data, off), fmt.Sprintf(format, args...))
}

// lineAt returns the 1-based line of the first octet at or after off that
// is not white space or JSON punctuation between values.
func lineAt(data []byte, off int64) int {
	if off < 0 {
		off = 0
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	i := int(off)
	for i < len(data) && bytes.IndexByte([]byte(" \t\r\n:,"), data[i]) >= 0 {
		i++
	}
	if i == len(data) {
		i = int(off)
	}
	return 1 + bytes.Count(data[:i], []byte("\n"))
}

// jsonError turns a decoder error into a corrupt-file error with a line.
func jsonError(data []byte, dec *json.Decoder, start int64, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return parseError(data, se.Offset-1, "%v", se)
	case errors.As(err, &te):
		return parseError(data, te.Offset-1, "%v", te)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return parseError(data, int64(len(data)), "unexpected end of file")
	}
	return parseError(data, start, "%v", err)
}

// parseFile decodes trust.json. Every error wraps ErrCorrupt or
// ErrUnsupportedVersion and names a line; it never panics. Statements in
// logs are checked for form and chaining, not re-verified: they were
// verified when applied, and the file is local state.
func parseFile(data []byte) (*state, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%w: line 1: empty file", ErrCorrupt)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonError(data, dec, 0, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, parseError(data, 0, "want a JSON object")
	}
	st := &state{}
	var recs []*Record
	var doc fileDoc
	seen := map[string]bool{}
	for dec.More() {
		off := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonError(data, dec, off, err)
		}
		name, _ := tok.(string)
		if seen[name] {
			return nil, parseError(data, off, "duplicate field %q", name)
		}
		seen[name] = true
		start := dec.InputOffset()
		switch name {
		case "version":
			if err := dec.Decode(&doc.Version); err != nil {
				return nil, jsonError(data, dec, start, err)
			}
			if doc.Version != 1 && doc.Version != FileVersion {
				return nil, fmt.Errorf("%w: line %d: version %d (this zyre reads versions 1 and %d)", ErrUnsupportedVersion, lineAt(data, start), doc.Version, FileVersion)
			}
		case "generation":
			if err := dec.Decode(&doc.Generation); err != nil {
				return nil, jsonError(data, dec, start, err)
			}
			st.gen = doc.Generation
		case "policy":
			if err := dec.Decode(&doc.Policy); err != nil {
				return nil, jsonError(data, dec, start, err)
			}
			p, err := doc.Policy.policy()
			if err != nil {
				return nil, parseError(data, start, "policy: %v", err)
			}
			st.policy = p
		case "peers":
			if err := decodeArray(data, dec, func(i int, at int64) error {
				var fr fileRecord
				if err := dec.Decode(&fr); err != nil {
					return jsonError(data, dec, at, err)
				}
				r, err := fr.record()
				if err != nil {
					return parseError(data, at, "peer %d: %v", i+1, err)
				}
				r.order = uint64(len(recs))
				recs = append(recs, r)
				return nil
			}); err != nil {
				return nil, err
			}
		case "logs":
			if err := decodeArray(data, dec, func(i int, at int64) error {
				var fl fileLog
				if err := dec.Decode(&fl); err != nil {
					return jsonError(data, dec, at, err)
				}
				l, err := fl.log()
				if err != nil {
					return parseError(data, at, "log %d: %v", i+1, err)
				}
				st.logs = append(st.logs, l)
				return nil
			}); err != nil {
				return nil, err
			}
		default:
			return nil, parseError(data, off, "unknown field %q", name)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, jsonError(data, dec, dec.InputOffset(), err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, parseError(data, dec.InputOffset(), "data after the end of the object")
	}
	if !seen["version"] {
		return nil, parseError(data, 0, "no version")
	}
	if !seen["policy"] {
		return nil, parseError(data, 0, "no policy")
	}
	if seen["generation"] != (doc.Version >= 2) {
		return nil, parseError(data, 0, "version %d with%s generation", doc.Version, map[bool]string{true: "", false: "out"}[seen["generation"]])
	}
	// Uniqueness: one record per key, per UUID, per signing key; one log
	// per signer.
	keys := map[curve.PublicKey]bool{}
	uuids := map[uuid.UUID]bool{}
	signers := map[sigKey]bool{}
	for i, r := range recs {
		switch {
		case keys[r.Key]:
			return nil, fmt.Errorf("%w: peer %d: key %s appears twice", ErrCorrupt, i+1, r.Key.Z85())
		case uuids[r.UUID]:
			return nil, fmt.Errorf("%w: peer %d: uuid %s appears twice", ErrCorrupt, i+1, r.UUID)
		}
		keys[r.Key], uuids[r.UUID] = true, true
		if k, ok := toSigKey(r.SigningKey); ok {
			if signers[k] {
				return nil, fmt.Errorf("%w: peer %d: signing key appears twice", ErrCorrupt, i+1)
			}
			signers[k] = true
		}
	}
	logs := map[sigKey]bool{}
	for i, l := range st.logs {
		if logs[l.signer] {
			return nil, fmt.Errorf("%w: log %d: signer appears twice", ErrCorrupt, i+1)
		}
		logs[l.signer] = true
	}
	st.loaded(recs)
	return st, nil
}

// decodeArray walks a JSON array, calling fn for each element with its
// index and offset.
func decodeArray(data []byte, dec *json.Decoder, fn func(i int, at int64) error) error {
	at := dec.InputOffset()
	tok, err := dec.Token()
	if err != nil {
		return jsonError(data, dec, at, err)
	}
	if tok == nil { // null
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return parseError(data, at, "want an array")
	}
	for i := 0; dec.More(); i++ {
		if err := fn(i, dec.InputOffset()); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return jsonError(data, dec, dec.InputOffset(), err)
	}
	return nil
}

func parseSigningKey(s string) (ed25519.PublicKey, error) {
	b, err := curve.DecodeZ85(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("bad signing key %q", s)
	}
	return ed25519.PublicKey(b), nil
}

func signingKeyText(k ed25519.PublicKey) string {
	s, _ := curve.EncodeZ85(k)
	return s
}

func optKey(s string) (curve.PublicKey, error) {
	if s == "" {
		return curve.PublicKey{}, nil
	}
	return curve.ParsePublicKey(s)
}

func optTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func keyText(k curve.PublicKey) string {
	if k.IsZero() {
		return ""
	}
	return k.Z85()
}

func (fr *fileRecord) record() (*Record, error) {
	r := &Record{Name: fr.Name, LastAddr: fr.LastAddr, VerifiedMethod: fr.VerifiedMethod,
		RevokeReason: fr.RevokeReason, Notes: fr.Notes, Bound: fr.Bound,
		FirstSeen: fr.FirstSeen, LastSeen: optTime(fr.LastSeen),
		VerifiedAt: optTime(fr.VerifiedAt), BindingTime: optTime(fr.BindingTime), RevokedAt: optTime(fr.RevokedAt)}
	var err error
	if r.UUID, err = uuid.Parse(fr.UUID); err != nil {
		return nil, fmt.Errorf("bad uuid %q", fr.UUID)
	}
	if r.Key, err = curve.ParsePublicKey(fr.Key); err != nil || r.Key.IsZero() {
		return nil, fmt.Errorf("bad key %q", fr.Key)
	}
	r.Fingerprint = Fingerprint(r.Key)
	if fr.Fingerprint != r.Fingerprint {
		return nil, fmt.Errorf("fingerprint %q does not match the key (want %s)", fr.Fingerprint, r.Fingerprint)
	}
	if r.Bound != isBound(r.UUID, r.Key) {
		return nil, fmt.Errorf("bound is %v but uuid %s is %sderived from the key", r.Bound, r.UUID, map[bool]string{true: "", false: "not "}[!r.Bound])
	}
	if r.State, err = ParseState(fr.State); err != nil {
		return nil, err
	}
	if fr.RevokedFrom != "" {
		if r.RevokedFrom, err = ParseState(fr.RevokedFrom); err != nil || r.RevokedFrom == StateRevoked {
			return nil, fmt.Errorf("bad revoked_from %q", fr.RevokedFrom)
		}
	}
	if r.IntroducedBy, err = optKey(fr.IntroducedBy); err != nil {
		return nil, fmt.Errorf("bad introduced_by: %v", err)
	}
	if r.RevokedBy, err = optKey(fr.RevokedBy); err != nil {
		return nil, fmt.Errorf("bad revoked_by: %v", err)
	}
	if fr.SigningKey != "" {
		if r.SigningKey, err = parseSigningKey(fr.SigningKey); err != nil {
			return nil, err
		}
	}
	if fc := fr.KeyChange; fc != nil {
		kc := &KeyChange{Name: fc.Name, Seen: fc.Seen, Addr: fc.Addr, Old: r.Key, OldFingerprint: r.Fingerprint}
		if kc.UUID, err = uuid.Parse(fc.UUID); err != nil {
			return nil, fmt.Errorf("key_change: bad uuid %q", fc.UUID)
		}
		if kc.New, err = curve.ParsePublicKey(fc.Key); err != nil || kc.New.IsZero() {
			return nil, fmt.Errorf("key_change: bad key %q", fc.Key)
		}
		kc.NewFingerprint = Fingerprint(kc.New)
		if fc.Fingerprint != kc.NewFingerprint {
			return nil, fmt.Errorf("key_change: fingerprint %q does not match the key", fc.Fingerprint)
		}
		kc.Bound = isBound(kc.UUID, kc.New)
		// Older zyre recorded a bound peer presenting a known name as a
		// key change of that record; it is another device (spec/trust.md,
		// "Another peer's name"), so such a change is dropped on reading.
		if !nameChange(r, kc) {
			r.KeyChange = kc
		}
	}
	for what, s := range map[string]string{"name": r.Name, "notes": r.Notes, "revoke_reason": r.RevokeReason, "last_addr": r.LastAddr, "verified_method": r.VerifiedMethod} {
		if len(s) > maxNotesLen {
			return nil, fmt.Errorf("%s too long", what)
		}
	}
	return r, nil
}

func fromRecord(r *Record) fileRecord {
	fr := fileRecord{
		UUID: r.UUID.String(), Name: r.Name, Key: r.Key.Z85(), Fingerprint: r.Fingerprint,
		Bound: r.Bound, State: r.State.String(), FirstSeen: r.FirstSeen, LastSeen: timePtr(r.LastSeen),
		LastAddr: r.LastAddr, IntroducedBy: keyText(r.IntroducedBy), VerifiedMethod: r.VerifiedMethod,
		VerifiedAt: timePtr(r.VerifiedAt), BindingTime: timePtr(r.BindingTime),
		RevokedAt: timePtr(r.RevokedAt), RevokedBy: keyText(r.RevokedBy), RevokeReason: r.RevokeReason,
		Notes: r.Notes,
	}
	if r.RevokedFrom != 0 {
		fr.RevokedFrom = r.RevokedFrom.String()
	}
	if r.SigningKey != nil {
		fr.SigningKey = signingKeyText(r.SigningKey)
	}
	if kc := r.KeyChange; kc != nil {
		fr.KeyChange = &fileKeyChange{UUID: kc.UUID.String(), Name: kc.Name, Key: kc.New.Z85(),
			Fingerprint: kc.NewFingerprint, Seen: kc.Seen, Addr: kc.Addr}
	}
	return fr
}

func (fl *fileLog) log() (*signerLog, error) {
	k, err := parseSigningKey(fl.Signer)
	if err != nil {
		return nil, err
	}
	l := &signerLog{}
	l.signer, _ = toSigKey(k)
	var prev [32]byte
	for i, s := range fl.Statements {
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("statement %d: bad base64", i+1)
		}
		st, err := parseUnverified(raw)
		if err != nil {
			return nil, fmt.Errorf("statement %d: %v", i+1, err)
		}
		if !bytes.Equal(st.Signer, k) {
			return nil, fmt.Errorf("statement %d: signed by another key", i+1)
		}
		if st.Seq != uint64(i+1) || st.Prev != prev {
			return nil, fmt.Errorf("statement %d: breaks the chain (seq %d)", i+1, st.Seq)
		}
		prev = st.Hash()
		l.stmts = append(l.stmts, st)
	}
	return l, nil
}

// snapshot is a copy of the state to write as trust.json, taken under
// the store's lock and encoded outside it.
type snapshot struct {
	gen    uint64
	policy Policy
	recs   []Record
	logs   []signerLog
}

// snapshot copies st (records in order, logs as they are: statements are
// never modified, so sharing them is safe).
func (st *state) snapshot(gen uint64) *snapshot {
	sn := &snapshot{gen: gen, policy: st.policy, recs: make([]Record, 0, len(st.byKey)), logs: make([]signerLog, 0, len(st.logs))}
	for _, r := range st.sorted() {
		sn.recs = append(sn.recs, r.clone())
	}
	for _, l := range st.logs {
		sn.logs = append(sn.logs, signerLog{signer: l.signer, stmts: l.stmts[:len(l.stmts):len(l.stmts)]})
	}
	return sn
}

// marshal encodes st as trust.json (tests, and the fuzz target).
func (st *state) marshal() ([]byte, error) { return st.snapshot(st.gen).marshal() }

// marshal encodes the snapshot as trust.json: indented, one field per
// line, records and logs in a stable order.
func (sn *snapshot) marshal() ([]byte, error) {
	doc := fileDoc{
		Version:    FileVersion,
		Generation: sn.gen,
		Policy:     filePolicyOf(sn.policy),
		Peers:      make([]fileRecord, 0, len(sn.recs)),
		Logs:       make([]fileLog, 0, len(sn.logs)),
	}
	for i := range sn.recs {
		doc.Peers = append(doc.Peers, fromRecord(&sn.recs[i]))
	}
	for _, l := range sn.logs {
		fl := fileLog{Signer: signingKeyText(l.signer[:]), Statements: make([]string, 0, len(l.stmts))}
		for _, s := range l.stmts {
			fl.Statements = append(fl.Statements, base64.StdEncoding.EncodeToString(s.Raw))
		}
		doc.Logs = append(doc.Logs, fl)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // Z85 keys hold < > &: keep them readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("trust: failed to encode: %w", err)
	}
	return b.Bytes(), nil
}

// nameChange reports whether kc, pending on r, came from a name shared by
// a bound peer or with a bound record: never a key change (a bound UUID
// derives from its key, so another key is another device).
func nameChange(r *Record, kc *KeyChange) bool {
	return kc.UUID != r.UUID && (r.Bound || kc.Bound)
}
