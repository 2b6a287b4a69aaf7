package trust

import (
	"errors"
	"fmt"
	"strings"
)

// AmbiguousError is the error of Find when several records match.
type AmbiguousError struct {
	Query      string
	Candidates []Record
}

func (e *AmbiguousError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "trust: ambiguous peer %q matches %d peers:", e.Query, len(e.Candidates))
	for _, r := range e.Candidates {
		fmt.Fprintf(&b, " %q %s %s;", r.Name, r.ShortUUID(), r.Fingerprint)
	}
	return strings.TrimSuffix(b.String(), ";")
}

// Is makes errors.Is(err, ErrAmbiguous) true.
func (e *AmbiguousError) Is(target error) bool { return target == ErrAmbiguous }

// Find returns the one record that q names: an exact name, else a prefix of
// the UUID (hex, with or without dashes, any case), of the fingerprint (with
// or without dashes, any case) or the full Z85 key: a record's own, never
// a pending key change's (the key of another peer: FindKeyChange). Several
// matches give an *AmbiguousError listing them; none gives ErrNotFound.
func (s *Store) Find(q string) (Record, error) {
	if q == "" {
		return Record{}, fmt.Errorf("%w: empty name", ErrNotFound)
	}
	var found []Record
	err := s.view(func(st *state) { found = find(st, q) })
	if err != nil {
		return Record{}, err
	}
	switch len(found) {
	case 0:
		return Record{}, fmt.Errorf("%w: %q is no known name, UUID prefix or fingerprint prefix", ErrNotFound, q)
	case 1:
		return found[0], nil
	}
	return Record{}, &AmbiguousError{Query: q, Candidates: found}
}

func find(st *state, q string) []Record {
	var found []Record
	for _, r := range st.sorted() {
		if r.Name == q {
			found = append(found, r.clone())
		}
	}
	if len(found) == 0 {
		norm := strings.ReplaceAll(q, "-", "")
		lower, upper := strings.ToLower(norm), strings.ToUpper(norm)
		hex := strings.Trim(lower, "0123456789abcdef") == ""
		b32 := strings.Trim(upper, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") == ""
		for _, r := range st.sorted() {
			switch {
			case r.Key.Z85() == q:
			case hex && strings.HasPrefix(strings.ReplaceAll(r.UUID.String(), "-", ""), lower):
			case b32 && strings.HasPrefix(strings.ReplaceAll(r.Fingerprint, "-", ""), upper):
			default:
				continue
			}
			found = append(found, r.clone())
		}
	}
	return found
}

// FindKeyChange returns the record whose pending key change q names: q is
// a prefix of the new key's fingerprint (with or without dashes, any
// case) or the full new key (Z85), which the KEY CHANGED warning prints;
// else (and first when q is a record's exact name) q names the record
// itself (Find). The caller checks that the
// record has a KeyChange. It is for "zyre trust accept" and "reject" only:
// other commands never resolve a record through its pending change.
func (s *Store) FindKeyChange(q string) (Record, error) {
	var found []Record
	named := false
	err := s.view(func(st *state) {
		if len(st.byName[q]) > 0 {
			named = true // a record's exact name comes first, as for Find
			return
		}
		norm := strings.ToUpper(strings.ReplaceAll(q, "-", ""))
		b32 := norm != "" && strings.Trim(norm, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") == ""
		for _, r := range st.sorted() {
			kc := r.KeyChange
			if kc != nil && (kc.New.Z85() == q || b32 && strings.HasPrefix(strings.ReplaceAll(kc.NewFingerprint, "-", ""), norm)) {
				found = append(found, r.clone())
			}
		}
	})
	if err != nil {
		return Record{}, err
	}
	switch {
	case named || len(found) == 0:
		return s.Find(q)
	case len(found) == 1:
		return found[0], nil
	}
	return Record{}, &AmbiguousError{Query: q, Candidates: found}
}

// FindUsable is Find for a command that takes only some records (send,
// receive: not revoked, and trusted unless the user allows tofu peers):
// when q matches several records and exactly one of them is usable, it
// is the answer (a device re-created and paired again after its old key
// was revoked keeps its name; a stranger named like a paired device does
// not make the name ambiguous). Several usable matches give an
// *AmbiguousError listing those; when none is usable, the answer is
// Find's (its error, or the one unusable record, for the caller to refuse
// with its own words).
func (s *Store) FindUsable(q string, usable func(*Record) bool) (Record, error) {
	r, err := s.Find(q)
	var ae *AmbiguousError
	if !errors.As(err, &ae) {
		return r, err
	}
	var ok []Record
	for i := range ae.Candidates {
		if usable(&ae.Candidates[i]) {
			ok = append(ok, ae.Candidates[i])
		}
	}
	switch len(ok) {
	case 0:
		return r, err
	case 1:
		return ok[0], nil
	}
	return Record{}, &AmbiguousError{Query: q, Candidates: ok}
}
