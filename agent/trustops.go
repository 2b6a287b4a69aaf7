package agent

import (
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
