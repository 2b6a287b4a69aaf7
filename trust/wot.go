package trust

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
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

// Sign appends a statement with body (a *Vouch or a *Revoke) to the log
// of id's signing key and returns it; the node shouts its Raw octets in
// the group zyre-trust. A Revoke also revokes the key locally.
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
	var revoked []Record
	err := s.mutate(ctx, func(st *state) error {
		l := st.logOf[signer]
		if l == nil {
			l = &signerLog{signer: signer}
			st.logs = append(st.logs, l)
			st.logOf[signer] = l
		}
		if len(l.stmts) >= s.opts.MaxStatementsPerSigner {
			return fmt.Errorf("%w: own log has %d", ErrSignerFull, len(l.stmts))
		}
		seq, prev := l.head()
		t := now
		if seq > 0 && t.Before(l.stmts[seq-1].Time) {
			t = l.stmts[seq-1].Time
		}
		stmt, err := signStatement(priv, seq+1, prev, t, body)
		if err != nil {
			return err
		}
		l.stmts = append(l.stmts, stmt)
		if rv, ok := body.(*Revoke); ok {
			if r := revokeKey(st, rv.Key, curve.PublicKey{}, rv.Reason, t, s.opts.MaxPeers); r != nil {
				revoked = append(revoked, r.clone())
			}
		}
		out = stmt
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.notifyRevoked(revoked)
	return out, nil
}

// Apply verifies a statement received from the network and, if it is the
// next one in its signer's log, stores it and applies its effect:
//   - a revocation is honoured when signed by the revoked key's own
//     signing key, or by a verified peer (Policy.VerifiedRevoke);
//   - a vouch by a verified peer introduces its key (Policy.Introductions);
//   - anything else is stored (it may count later, when its signer is
//     verified) and Applied.Effect says why it does nothing now.
//
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
	// Duplicates are common (gossip): refuse them without the file lock.
	st, err := s.load()
	if err != nil {
		return Applied{}, err
	}
	if err := s.checkStatement(st, signer, stmt); err != nil && !errors.Is(err, ErrGap) {
		return Applied{}, err
	}
	now := s.opts.Now().UTC()
	var out Applied
	err = s.mutate(ctx, func(st *state) error {
		if err := s.checkStatement(st, signer, stmt); err != nil {
			return err
		}
		if stmt.Time.After(now.Add(s.opts.MaxClockSkew)) {
			return fmt.Errorf("%w: statement #%d is dated %s, in the future", ErrBadTime, stmt.Seq, stmt.Time.Format(time.RFC3339))
		}
		l := st.logOf[signer]
		if l == nil {
			if len(st.logs) >= s.opts.MaxSigners {
				return fmt.Errorf("%w: %d tracked", ErrTooManySigners, len(st.logs))
			}
			l = &signerLog{signer: signer}
			st.logs = append(st.logs, l)
			st.logOf[signer] = l
		}
		l.stmts = append(l.stmts, stmt)
		st.indexStatement(stmt)
		out = s.effect(st, signer, stmt)
		out.Statement = stmt
		return nil
	})
	if err != nil {
		return Applied{}, err
	}
	s.notifyRevoked(out.Revoked)
	return out, nil
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
	case stmt.Seq > head+1:
		return &GapError{Signer: append(ed25519.PublicKey(nil), signer[:]...), Have: head, Got: stmt.Seq}
	case stmt.Prev != hash:
		return fmt.Errorf("%w: #%d from %s names a previous statement we do not have", ErrBrokenChain, stmt.Seq, s.signerLabel(st, signer))
	case head > 0 && stmt.Time.Before(l.stmts[head-1].Time):
		return fmt.Errorf("%w: #%d from %s is older than #%d", ErrBadTime, stmt.Seq, s.signerLabel(st, signer), head)
	case l != nil && len(l.stmts) >= s.opts.MaxStatementsPerSigner:
		return fmt.Errorf("%w: %s has %d", ErrSignerFull, s.signerLabel(st, signer), len(l.stmts))
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
			if r := revokeKey(st, b.Key, by.Key, b.Reason, stmt.Time, s.opts.MaxPeers); r != nil {
				out.Revoked = append(out.Revoked, r.clone())
				out.Effect = fmt.Sprintf("revoked %s (by %s)", peerLabel(r), who)
			} else {
				out.Effect = fmt.Sprintf("key %s already revoked", Fingerprint(b.Key))
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
				r.State, r.IntroducedBy = StateIntroduced, by.Key
			}
		}
	}
	return out
}

// Head returns the sequence number and hash of the last statement of
// signer's log (0 and zeros when there is none).
func (s *Store) Head(signer ed25519.PublicKey) (uint64, [32]byte, error) {
	st, err := s.load()
	if err != nil {
		return 0, [32]byte{}, err
	}
	k, ok := toSigKey(signer)
	if !ok {
		return 0, [32]byte{}, fmt.Errorf("%w: signing key is %d octets", ErrInvalidKey, len(signer))
	}
	if l := st.logOf[k]; l != nil {
		seq, h := l.head()
		return seq, h, nil
	}
	return 0, [32]byte{}, nil
}

// LogSince returns up to max (all when max <= 0) statements of signer's
// log after sequence number after, oldest first: the answer to a peer's
// request for missing statements.
func (s *Store) LogSince(signer ed25519.PublicKey, after uint64, max int) ([][]byte, error) {
	st, err := s.load()
	if err != nil {
		return nil, err
	}
	k, ok := toSigKey(signer)
	if !ok {
		return nil, fmt.Errorf("%w: signing key is %d octets", ErrInvalidKey, len(signer))
	}
	l := st.logOf[k]
	if l == nil || after >= uint64(len(l.stmts)) {
		return nil, nil
	}
	var out [][]byte
	for _, stmt := range l.stmts[after:] {
		if max > 0 && len(out) >= max {
			break
		}
		out = append(out, append([]byte(nil), stmt.Raw...))
	}
	return out, nil
}

// Log is one signer's log, for people ("zyre trust log").
type Log struct {
	Signer ed25519.PublicKey
	// Owner is the record of the peer the signing key belongs to, if known.
	Owner *Record
	// Statements are the signer's statements, oldest first. They are
	// shared with the store's cache: do not modify them.
	Statements []*Statement
}

// Logs returns every stored log.
func (s *Store) Logs() ([]Log, error) {
	st, err := s.load()
	if err != nil {
		return nil, err
	}
	var out []Log
	for _, l := range st.logs {
		lg := Log{Signer: append(ed25519.PublicKey(nil), l.signer[:]...), Statements: append([]*Statement(nil), l.stmts...)}
		if r := st.bySigner[l.signer]; r != nil {
			c := r.clone()
			lg.Owner = &c
		}
		out = append(out, lg)
	}
	return out, nil
}
