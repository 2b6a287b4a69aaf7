package agent

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/trust"
)

// TrustRecordOf is the one JSON form of a trust record (client.TrustRecord).
func TrustRecordOf(r *trust.Record) client.TrustRecord {
	j := client.TrustRecord{Name: r.Name, UUID: r.UUID.String(), Key: r.Key.Z85(), Fingerprint: r.Fingerprint,
		Bound: r.Bound, State: r.State.String(), FirstSeen: r.FirstSeen, LastSeen: r.LastSeen,
		LastAddr: r.LastAddr, VerifiedMethod: r.VerifiedMethod, VerifiedAt: r.VerifiedAt,
		RevokeReason: r.RevokeReason, Notes: r.Notes}
	if !r.IntroducedBy.IsZero() {
		j.IntroducedBy = trust.Fingerprint(r.IntroducedBy)
	}
	if r.SigningKey != nil {
		j.SigningKey, _ = curve.EncodeZ85(r.SigningKey)
	}
	if r.State == trust.StateRevoked {
		j.RevokedAt = r.RevokedAt
		if !r.RevokedBy.IsZero() {
			j.RevokedBy = trust.Fingerprint(r.RevokedBy)
		}
	}
	if kc := r.KeyChange; kc != nil {
		j.KeyChange = &client.KeyChange{UUID: kc.UUID.String(), Name: kc.Name, Key: kc.New.Z85(),
			Fingerprint: kc.NewFingerprint, Seen: kc.Seen, Addr: kc.Addr}
	}
	return j
}

// trustChange makes a trust change ("trust.revoke", "trust.unrevoke",
// "trust.forget", "trust.accept", "trust.policy") in the agent's store,
// signing with the agent's identity where the change is shared. The
// store serialises changes itself (and with other processes).
func (s *Server) trustChange(ctx context.Context, op string, a *client.TrustArgs) (client.TrustChange, error) {
	var out client.TrustChange
	st := s.cfg.Trust
	if st == nil {
		return out, fmt.Errorf("%s: the agent's node is in plain mode: no trust store", op)
	}
	if a == nil {
		a = &client.TrustArgs{}
	}
	if len(a.Reason) > 255 {
		return out, fmt.Errorf("%s: the reason is %d octets, at most 255", op, len(a.Reason))
	}
	if op == "trust.policy" {
		return s.trustPolicy(ctx, a)
	}
	if a.Peer == "" {
		return out, fmt.Errorf("%s: no peer", op)
	}
	r, err := findRecord(st, a.Peer, op == "trust.accept")
	if err != nil {
		return out, err
	}
	rec := func(r trust.Record) *client.TrustRecord { j := TrustRecordOf(&r); return &j }
	switch op {
	case "trust.revoke":
		if a.Local {
			nr, err := st.Revoke(ctx, r.Key, a.Reason)
			if err != nil {
				return out, err
			}
			out.Record = rec(nr)
			return out, nil
		}
		if s.cfg.Identity == nil {
			return out, errors.New("not revoked: the agent has no identity to sign with (nothing was changed; local revokes here only)")
		}
		sm, err := st.Sign(ctx, s.cfg.Identity, &trust.Revoke{Key: r.Key, Reason: a.Reason})
		if err != nil {
			return out, fmt.Errorf("not revoked: %w", err)
		}
		nr, _, _ := st.Lookup(r.Key)
		out.Record, out.Seq = rec(nr), sm.Seq
	case "trust.unrevoke":
		if r.State != trust.StateRevoked {
			return out, fmt.Errorf("%w: %s (%s) is %s", trust.ErrNotRevoked, r.Name, r.Fingerprint, r.State)
		}
		if a.Local {
			nr, err := st.Unrevoke(ctx, r.Key, a.Reason)
			if err != nil {
				return out, err
			}
			out.Record = rec(nr)
			return out, nil
		}
		if !r.RevokedBy.IsZero() {
			return out, fmt.Errorf("%w: %s was revoked by %s; only that node can withdraw its revocation (local withdraws it here if that node's key is revoked or no longer verified)", trust.ErrConflict, r.Name, trust.Fingerprint(r.RevokedBy))
		}
		if s.cfg.Identity == nil {
			return out, errors.New("revocation not withdrawn: the agent has no identity to sign with")
		}
		sm, err := st.Sign(ctx, s.cfg.Identity, &trust.Unrevoke{Key: r.Key, Reason: a.Reason})
		if err != nil {
			return out, fmt.Errorf("revocation not withdrawn: %w", err)
		}
		nr, _, _ := st.Lookup(r.Key)
		out.Record, out.Seq = rec(nr), sm.Seq
	case "trust.forget":
		old, err := st.Forget(ctx, r.Key)
		if err != nil {
			return out, err
		}
		out.Record = rec(old)
	case "trust.accept":
		if r.KeyChange == nil {
			return out, fmt.Errorf("%w: %s (%s) presented no other key", trust.ErrNoKeyChange, r.Name, r.Fingerprint)
		}
		nr, err := st.Accept(ctx, r.Key)
		if err != nil {
			return out, err
		}
		out.Record, out.Previous = rec(nr), rec(r)
	default:
		return out, fmt.Errorf("unknown op %q", op)
	}
	return out, nil
}

// trustPolicy sets the fields of the policy that a gives.
func (s *Server) trustPolicy(ctx context.Context, a *client.TrustArgs) (client.TrustChange, error) {
	st := s.cfg.Trust
	p, err := st.Policy()
	if err != nil {
		return client.TrustChange{}, err
	}
	if a.Mode != "" {
		if p.Mode, err = trust.ParseMode(a.Mode); err != nil {
			return client.TrustChange{}, err
		}
	}
	if a.Introductions != nil {
		p.Introductions = *a.Introductions
	}
	if a.VerifiedRevoke != nil {
		p.VerifiedRevoke = *a.VerifiedRevoke
	}
	if a.Vouch != nil {
		p.Vouch = *a.Vouch
	}
	if err := st.SetPolicy(ctx, p); err != nil {
		return client.TrustChange{}, err
	}
	return client.TrustChange{Policy: &client.TrustPolicy{Mode: p.Mode.String(), Introductions: p.Introductions, VerifiedRevoke: p.VerifiedRevoke, Vouch: p.Vouch}}, nil
}

// findRecord finds the record q names, listing the candidates of an
// ambiguous q. With keyChange, q may also name a pending key change by
// the presented key's fingerprint (trust.Store.FindKeyChange); otherwise
// only a record's own name, UUID or fingerprint names it.
func findRecord(st *trust.Store, q string, keyChange bool) (trust.Record, error) {
	find := st.Find
	if keyChange {
		find = st.FindKeyChange
	}
	r, err := find(q)
	var ae *trust.AmbiguousError
	if !errors.As(err, &ae) {
		return r, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%q is ambiguous; it matches:", q)
	for _, c := range ae.Candidates {
		fmt.Fprintf(&b, "\n  %s  %s  %s  %s", strconv.Quote(c.Name), c.ShortUUID(), c.Fingerprint, c.State)
	}
	b.WriteString("\nuse a longer UUID or fingerprint prefix")
	return r, fmt.Errorf("%w: %s", trust.ErrAmbiguous, b.String())
}
