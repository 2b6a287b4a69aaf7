package client

import "context"

// TrustArgs are the arguments of the trust changes ("trust.revoke",
// "trust.unrevoke", "trust.forget", "trust.accept", "trust.policy").
type TrustArgs struct {
	// Peer names the record: a name, a UUID prefix or a fingerprint
	// prefix, as "zyre trust" takes it.
	Peer string `json:"peer,omitempty"`
	// Reason is a revocation's or its withdrawal's reason (at most 255
	// octets; other nodes see it).
	Reason string `json:"reason,omitempty"`
	// Local revokes, or withdraws a local revocation, here only
	// (unsigned); otherwise the agent signs with its identity.
	Local bool `json:"local,omitempty"`
	// Mode (open, tofu, strict), Introductions, VerifiedRevoke and Vouch
	// set the policy ("trust.policy"); the ones not given stay.
	Mode           string `json:"mode,omitempty"`
	Introductions  *bool  `json:"introductions,omitempty"`
	VerifiedRevoke *bool  `json:"verified_revoke,omitempty"`
	Vouch          *bool  `json:"vouch,omitempty"`
}

// TrustPolicy is a trust store's admission policy.
type TrustPolicy struct {
	Mode           string `json:"mode"`
	Introductions  bool   `json:"introductions"`
	VerifiedRevoke bool   `json:"verified_revoke"`
	// Vouch: pairing signs a vouch for the peer it verifies.
	Vouch bool `json:"vouch"`
}

// TrustChange is the result of a trust change.
type TrustChange struct {
	// Record is the record after the change; for "trust.forget" the
	// record that was removed.
	Record *TrustRecord `json:"record,omitempty"`
	// Previous is the record before "trust.accept" (its old key).
	Previous *TrustRecord `json:"previous,omitempty"`
	// Seq is the signed statement's number in the agent's log (0 for a
	// local change).
	Seq uint64 `json:"seq,omitempty"`
	// Policy is the policy after "trust.policy".
	Policy *TrustPolicy `json:"policy,omitempty"`
}

// TrustChange asks the agent for the trust change op ("trust.revoke",
// "trust.unrevoke", "trust.forget", "trust.accept", "trust.policy").
func (c *Client) TrustChange(ctx context.Context, op string, args TrustArgs) (TrustChange, error) {
	var r TrustChange
	err := c.Call(ctx, Request{Op: op, Trust: &args}, &r)
	return r, err
}

// TrustRevoke revokes peer's key: signed with the agent's identity, or
// with local here only.
func (c *Client) TrustRevoke(ctx context.Context, peer, reason string, local bool) (TrustChange, error) {
	return c.TrustChange(ctx, "trust.revoke", TrustArgs{Peer: peer, Reason: reason, Local: local})
}

// TrustUnrevoke withdraws a revocation of peer's key.
func (c *Client) TrustUnrevoke(ctx context.Context, peer, reason string, local bool) (TrustChange, error) {
	return c.TrustChange(ctx, "trust.unrevoke", TrustArgs{Peer: peer, Reason: reason, Local: local})
}

// TrustForget removes peer's record.
func (c *Client) TrustForget(ctx context.Context, peer string) (TrustChange, error) {
	return c.TrustChange(ctx, "trust.forget", TrustArgs{Peer: peer})
}

// TrustAccept accepts the new key peer presented.
func (c *Client) TrustAccept(ctx context.Context, peer string) (TrustChange, error) {
	return c.TrustChange(ctx, "trust.accept", TrustArgs{Peer: peer})
}
