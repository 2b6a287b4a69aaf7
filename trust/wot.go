package trust

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"slices"
	"time"

	"github.com/zyre-go/zyre/curve"
)

// Signer is what Sign needs of a node's identity: its Ed25519 private key.
// *keystore.Identity satisfies it.
type Signer interface {
	Signer() ed25519.PrivateKey
}

// GapError is the error of Apply when statements are missing between the
// signer's head and the statement given. Request the missing ones (the
// node whispers a WANT, see spec/trust.md) and apply them in order; the
// statement itself can be applied afterwards.
type GapError struct {
	Signer ed25519.PublicKey
	// Have is the head sequence number held; Got the one given. Statements
	// Have+1 .. Got-1 are missing.
	Have, Got uint64
}

func (e *GapError) Error() string {
	return fmt.Sprintf("trust: statements missing: signer %s: have #%d, got #%d (missing #%d..#%d)",
		signingKeyText(e.Signer), e.Have, e.Got, e.Have+1, e.Got-1)
}

// Is makes errors.Is(err, ErrGap) true.
func (e *GapError) Is(target error) bool { return target == ErrGap }

// Applied is the result of applying a statement.
type Applied struct {
	// Statement is the parsed statement, now in the signer's log.
	Statement *Statement
	// Honoured reports whether the statement changed what the store
	// admits (a revocation honoured, a vouch by a verified signer).
	Honoured bool
	// Effect says what the statement did, or why it is only stored.
	Effect string
	// Revoked lists the records the statement revoked.
	Revoked []Record
}

// Sign appends a statement with body (a *Vouch, *Revoke or *Unrevoke) to
// the log of id's signing key and returns it; the node shouts its Raw
// octets in the group zyre-trust. A Revoke also revokes the key here, an
// Unrevoke withdraws our revocation here, in the same change: it is
// written whole or not at all. An Unrevoke of a key we did not revoke
// gives ErrNotRevoked; of a key revoked by another signer too,
// ErrConflict.
func (s *Store) Sign(ctx context.Context, id Signer, body Body) (*Statement, error) {
	if body == nil || body.Kind() == KindBinding {
		return nil, fmt.Errorf("%w: only vouches and revocations go in a log (use NewBinding)", ErrMalformed)
	}
	priv := id.Signer()
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: signing key is %d octets", ErrInvalidKey, len(priv))
	}
	signer, _ := toSigKey(priv.Public().(ed25519.PublicKey))
	now := s.opts.Now().UTC()
	var out *Statement
	err := s.mutate(ctx, func(st *state) ([]Record, error) {
		var target *Record
		if u, ok := body.(*Unrevoke); ok {
			target = st.byKey[u.Key]
			switch {
			case target == nil || target.State != StateRevoked:
				return nil, fmt.Errorf("%w: %s", ErrNotRevoked, Fingerprint(u.Key))
			case !target.RevokedBy.IsZero():
				return nil, fmt.Errorf("%w: %s was revoked by %s; only that signer can withdraw it", ErrConflict, peerLabel(target), s.describe(st, target.RevokedBy))
			}
		}
		stmt, err := s.appendOwn(st, priv, signer, now, body)
		if err != nil {
			return nil, err
		}
		out = stmt
		switch b := body.(type) {
		case *Revoke:
			if r := s.revokeKey(st, b.Key, curve.PublicKey{}, b.Reason, stmt.Time); r != nil {
				return []Record{r.clone()}, nil
			}
		case *Unrevoke:
			s.unrevokeKey(st, target, signer, b.Reason, stmt.Time)
		}
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// appendOwn signs body as the next statement of our log (signer is
// priv's public key) and appends it in st; it changes nothing when it
// fails. Called with s.mu held, inside mutate.
func (s *Store) appendOwn(st *state, priv ed25519.PrivateKey, signer sigKey, now time.Time, body Body) (*Statement, error) {
	l := st.logOf[signer]
	var seq uint64
	var prev [32]byte
	t := now
	if l != nil {
		if len(l.stmts) >= s.opts.MaxStatementsPerSigner {
			return nil, fmt.Errorf("%w: own log has %d", ErrSignerFull, len(l.stmts))
		}
		seq, prev = l.head()
		if seq > 0 && t.Before(l.stmts[seq-1].Time) {
			t = l.stmts[seq-1].Time
		}
	}
	stmt, err := signStatement(priv, seq+1, prev, t, body)
	if err != nil {
		return nil, err
	}
	if l == nil {
		l = st.addLog(signer)
	}
	st.own[signer] = true
	st.appendStatement(l, stmt)
	return stmt, nil
}

// Apply verifies a statement received from the network and, if it is the
// next one in its signer's log, stores it and applies its effect:
//   - a revocation is honoured when signed by the revoked key's own
//     signing key, or by a verified peer (Policy.VerifiedRevoke);
//   - an unrevocation withdraws its signer's own earlier revocation (the
//     key gets back its state if no other revocation stands);
//   - a vouch by a verified peer introduces its key (Policy.Introductions);
//   - anything else is stored (it may count later, when its signer is
//     verified) and Applied.Effect says why it does nothing now.
//
// It answers from memory; the store's goroutine writes the statement.
// Statements are taken only from signers tied to a known, unrevoked peer
// (or already tracked). Errors wrap ErrTooLarge, ErrMalformed,
// ErrBadSignature, ErrUnknownSigner, ErrSignerRevoked, ErrReplay, ErrFork,
// ErrGap (a *GapError), ErrBrokenChain, ErrBadTime, ErrSignerFull or
// ErrTooManySigners; a store error is returned as such.
func (s *Store) Apply(ctx context.Context, raw []byte) (Applied, error) {
	stmt, err := ParseStatement(raw)
	if err != nil {
		return Applied{}, err
	}
	if stmt.Kind() == KindBinding {
		return Applied{}, fmt.Errorf("%w: a binding is not a log statement", ErrMalformed)
	}
	signer, _ := toSigKey(stmt.Signer)
	now := s.opts.Now().UTC()
	var out Applied
	var aerr error
	err = s.changeNow(func(st *state) []Record {
		if aerr = s.checkStatement(st, signer, stmt); aerr != nil {
			return nil
		}
		if stmt.Time.After(now.Add(s.opts.MaxClockSkew)) {
			aerr = fmt.Errorf("%w: statement #%d is dated %s, in the future", ErrBadTime, stmt.Seq, stmt.Time.Format(time.RFC3339))
			return nil
		}
		l := st.logOf[signer]
		if l == nil {
			if len(st.logs) >= s.opts.MaxSigners && !st.dropLog() {
				aerr = fmt.Errorf("%w: %d tracked", ErrTooManySigners, len(st.logs))
				return nil
			}
			l = st.addLog(signer)
		}
		st.appendStatement(l, stmt)
		out = s.effect(st, signer, stmt)
		out.Statement = stmt
		return out.Revoked
	})
	if err != nil {
		return Applied{}, err
	}
	if aerr != nil {
		return Applied{}, aerr
	}
	return out, nil
}

// logCap is how many statements signer's log may hold: a stranger's
// (no verified, introduced or revoked peer's, nor this node's own) at
// most maxStrangerStatements.
func (s *Store) logCap(st *state, signer sigKey) int {
	if o := st.bySigner[signer]; o != nil && !evictable(o) || st.own[signer] {
		return s.opts.MaxStatementsPerSigner
	}
	return min(s.opts.MaxStatementsPerSigner, maxStrangerStatements)
}

// dropLog forgets a tofu peer's log to make room for a new signer; it
// reports whether it found one. It never drops a verified, introduced or
// revoked-by-others peer's log, nor one tied to no record: this node's
// own log is such a one (a stranger's log goes with its record when the
// record is evicted or forgotten). Strangers' logs thus never lock out a
// trusted signer's, and never make this node's own log go (which would
// lose its signed revocations and fork its next statement).
func (st *state) dropLog() bool {
	for _, l := range st.logs {
		if o := st.bySigner[l.signer]; o != nil && evictable(o) {
			st.dropLogOf(l.signer)
			return true
		}
	}
	return false
}

// dropLogOf forgets signer's log (and writes that it did).
func (st *state) dropLogOf(signer sigKey) {
	l := st.logOf[signer]
	if l == nil {
		return
	}
	st.logs = slices.DeleteFunc(st.logs, func(x *signerLog) bool { return x == l })
	delete(st.logOf, signer)
	delete(st.written, signer)
	st.dropped[signer] = true
	st.version++
}

// checkStatement checks that stmt can be the next statement of its
// signer's log in st.
func (s *Store) checkStatement(st *state, signer sigKey, stmt *Statement) error {
	owner := st.bySigner[signer]
	l := st.logOf[signer]
	switch {
	case owner != nil && owner.State == StateRevoked:
		// The key's own revocation is the last statement it can make.
		return fmt.Errorf("%w: %s", ErrSignerRevoked, peerLabel(owner))
	case owner == nil && l == nil:
		return fmt.Errorf("%w: %s is not the signing key of a known peer", ErrUnknownSigner, signingKeyText(signer[:]))
	}
	var head uint64
	var hash [32]byte
	if l != nil {
		head, hash = l.head()
	}
	switch {
	case stmt.Seq <= head:
		if bytes.Equal(l.stmts[stmt.Seq-1].Raw, stmt.Raw) {
			return fmt.Errorf("%w: #%d from %s", ErrReplay, stmt.Seq, s.signerLabel(st, signer))
		}
		return fmt.Errorf("%w: #%d from %s differs from the one applied", ErrFork, stmt.Seq, s.signerLabel(st, signer))
	case l != nil && len(l.stmts) >= s.logCap(st, signer):
		// Before the gap: a WANT would bring only more to refuse.
		return fmt.Errorf("%w: %s has %d", ErrSignerFull, s.signerLabel(st, signer), len(l.stmts))
	case stmt.Seq > head+1:
		return &GapError{Signer: append(ed25519.PublicKey(nil), signer[:]...), Have: head, Got: stmt.Seq}
	case stmt.Prev != hash:
		return fmt.Errorf("%w: #%d from %s names a previous statement we do not have", ErrBrokenChain, stmt.Seq, s.signerLabel(st, signer))
	case head > 0 && stmt.Time.Before(l.stmts[head-1].Time):
		return fmt.Errorf("%w: #%d from %s is older than #%d", ErrBadTime, stmt.Seq, s.signerLabel(st, signer), head)
	}
	return nil
}

func (s *Store) signerLabel(st *state, signer sigKey) string {
	if r := st.bySigner[signer]; r != nil {
		return peerLabel(r)
	}
	return "signer " + signingKeyText(signer[:])
}

// effect applies a stored statement's consequences to st.
func (s *Store) effect(st *state, signer sigKey, stmt *Statement) Applied {
	var out Applied
	who := s.signerLabel(st, signer)
	switch b := stmt.Body.(type) {
	case *Revoke:
		by, ok := canRevoke(st, signer, b.Key)
		switch {
		case !ok && by == nil:
			out.Effect = fmt.Sprintf("stored, ignored: %s is not tied to a known peer", who)
		case !ok && !st.policy.VerifiedRevoke:
			out.Effect = fmt.Sprintf("stored, ignored: the policy honours only a key's own revocation, and %s is another key's", who)
		case !ok:
			out.Effect = fmt.Sprintf("stored, ignored: %s is %s; only a key's own signing key or a verified peer can revoke it", who, by.State)
		default:
			out.Honoured = true
			if r := s.revokeKey(st, b.Key, by.Key, b.Reason, stmt.Time); r != nil {
				out.Revoked = append(out.Revoked, r.clone())
				out.Effect = fmt.Sprintf("revoked %s (by %s)", peerLabel(r), who)
			} else {
				out.Effect = fmt.Sprintf("key %s already revoked", Fingerprint(b.Key))
			}
		}
	case *Unrevoke:
		r := st.byKey[b.Key]
		by := st.bySigner[signer]
		switch {
		case r == nil || r.State != StateRevoked:
			out.Effect = "stored: the key is not revoked"
		case by == nil || r.RevokedBy != by.Key:
			out.Effect = fmt.Sprintf("stored: %s withdraws its revocation; the key stays revoked by %s", who, s.describe(st, r.RevokedBy))
		default:
			out.Honoured = true
			s.unrevokeKey(st, r, signer, b.Reason, stmt.Time)
			if r.State == StateRevoked {
				out.Effect = fmt.Sprintf("%s withdraws its revocation of %s; still revoked by %s", who, peerLabel(r), s.describe(st, r.RevokedBy))
			} else {
				out.Effect = fmt.Sprintf("%s withdraws its revocation of %s: now %s", who, peerLabel(r), r.State)
			}
		}
	case *Vouch:
		by := st.bySigner[signer]
		switch {
		case by == nil:
			out.Effect = fmt.Sprintf("stored, ignored: %s is not tied to a known peer", who)
		case !st.policy.Introductions:
			out.Effect = "stored, ignored: the policy does not allow introductions"
		case by.State != StateVerified:
			out.Effect = fmt.Sprintf("stored, ignored for now: %s is %s; only vouches by verified peers introduce (depth 1)", who, by.State)
		default:
			out.Honoured = true
			out.Effect = fmt.Sprintf("%s introduces %s", who, Fingerprint(b.Key))
			if r := st.byKey[b.Key]; r != nil && r.State == StateTOFU {
				st.change(r, func(r *Record) { r.State, r.IntroducedBy = StateIntroduced, by.Key })
			}
		}
	}
	return out
}

// Head returns the sequence number and hash of the last statement of
// signer's log (0 and zeros when there is none). It answers from memory.
func (s *Store) Head(signer ed25519.PublicKey) (uint64, [32]byte, error) {
	k, ok := toSigKey(signer)
	if !ok {
		return 0, [32]byte{}, fmt.Errorf("%w: signing key is %d octets", ErrInvalidKey, len(signer))
	}
	var seq uint64
	var h [32]byte
	err := s.view(func(st *state) {
		if l := st.logOf[k]; l != nil {
			seq, h = l.head()
		}
	})
	return seq, h, err
}

// LogSince returns up to max (all when max <= 0) statements of signer's
// log after sequence number after, oldest first: the answer to a peer's
// request for missing statements. It answers from memory.
func (s *Store) LogSince(signer ed25519.PublicKey, after uint64, max int) ([][]byte, error) {
	k, ok := toSigKey(signer)
	if !ok {
		return nil, fmt.Errorf("%w: signing key is %d octets", ErrInvalidKey, len(signer))
	}
	var out [][]byte
	err := s.view(func(st *state) {
		l := st.logOf[k]
		if l == nil || after >= uint64(len(l.stmts)) {
			return
		}
		for _, stmt := range l.stmts[after:] {
			if max > 0 && len(out) >= max {
				break
			}
			out = append(out, append([]byte(nil), stmt.Raw...))
		}
	})
	return out, err
}

// Log is one signer's log, for people ("zyre trust log").
type Log struct {
	Signer ed25519.PublicKey
	// Owner is the record of the peer the signing key belongs to, if known.
	Owner *Record
	// Statements are the signer's statements, oldest first. They are
	// shared with the store: do not modify them.
	Statements []*Statement
}

// Logs returns every stored log.
func (s *Store) Logs() ([]Log, error) {
	var out []Log
	err := s.view(func(st *state) {
		for _, l := range st.logs {
			lg := Log{Signer: append(ed25519.PublicKey(nil), l.signer[:]...), Statements: append([]*Statement(nil), l.stmts...)}
			if r := st.bySigner[l.signer]; r != nil {
				c := r.clone()
				lg.Owner = &c
			}
			out = append(out, lg)
		}
	})
	return out, err
}
