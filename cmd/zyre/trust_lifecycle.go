package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/trust"
)

// "zyre trust unrevoke" and "zyre trust forget": the end of a record's
// life (spec/trust.md, "Undoing a revocation", "Forgetting a peer").

func trustUnrevoke(ctx context.Context, env *cliEnv, args []string) error {
	f := newTrustFlags(env, "unrevoke")
	sf := f.signedFlags("why the revocation is withdrawn (at most 255 octets; other nodes see it)", "withdraw a local (unsigned) revocation, here only")
	peer, err := sf.parse(f, args)
	if err != nil {
		return err
	}
	if ok, err := sf.viaAgent(ctx, f, "trust.unrevoke", peer); ok {
		return err
	}
	st, r, err := f.recordOf(env, peer)
	if err != nil {
		return err
	}
	if r.State != trust.StateRevoked {
		return fmt.Errorf("%w: %s (%s) is %s", trust.ErrNotRevoked, safe(r.Name), r.Fingerprint, r.State)
	}
	var nr trust.Record
	if *sf.local {
		// The store refuses (ErrConflict) a revocation whose signer still
		// counts; one whose signer no longer does can be withdrawn here.
		if nr, err = st.Unrevoke(ctx, r.Key, *sf.reason); err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "withdrew the revocation of %s (%s) here only: now %s\n", safe(nr.Name), nr.Fingerprint, stateLabel(&nr))
		return nil
	}
	if !r.RevokedBy.IsZero() {
		return fmt.Errorf("%w: %s was revoked by %s; only that node can withdraw its revocation (--local withdraws it here if that node's key is revoked or no longer verified)", trust.ErrConflict, safe(r.Name), trust.Fingerprint(r.RevokedBy))
	}
	s, err := sf.sign(ctx, f, st, &trust.Unrevoke{Key: r.Key, Reason: *sf.reason}, "revocation not withdrawn", "--local withdraws a local revocation here only")
	if err != nil {
		return err
	}
	nr, _, _ = st.Lookup(r.Key)
	fmt.Fprintf(env.stdout, "withdrew the revocation of %s (%s): signed statement #%d, shared by a node running on this store; now %s\n",
		safe(nr.Name), nr.Fingerprint, s.Seq, stateLabel(&nr))
	if nr.State == trust.StateRevoked {
		fmt.Fprintf(env.stderr, "zyre: %s stays revoked by another node's revocation\n", safe(nr.Name))
	}
	return nil
}

func trustForget(ctx context.Context, env *cliEnv, args []string) error {
	f := newTrustFlags(env, "forget")
	var a agentFlags
	a.register(f.fs)
	yes := f.fs.Bool("yes", false, "forget a verified or introduced peer without asking (on a terminal, zyre asks first)")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	// A paired device is not forgotten by a slip: on a terminal, say
	// exactly which and ask. (The store is read here, also when the agent
	// makes the change.)
	if _, r, err := f.recordOf(env, pos[0]); err == nil && r.Trusted() {
		q := fmt.Sprintf("%s is %s: forget it? It becomes a stranger, to pair again.", recordText(&r), r.State)
		if err := confirm(ctx, env, *yes, q, "not forgotten"); err != nil {
			return err
		}
	}
	if ok, err := f.changeViaAgent(ctx, env, &a, "trust.forget", client.TrustArgs{Peer: pos[0]}); ok {
		return err
	}
	st, r, err := f.recordOf(env, pos[0])
	if err != nil {
		return err
	}
	old, err := st.Forget(ctx, r.Key)
	if errors.Is(err, trust.ErrRevoked) {
		return fmt.Errorf("%w (zyre trust unrevoke withdraws a mistaken revocation)", err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "forgot %s (%s, uuid %s, was %s)\n", safe(old.Name), old.Fingerprint, old.ShortUUID(), old.State)
	if old.Trusted() {
		fmt.Fprintf(env.stderr, "zyre: %s was %s: it is a stranger now; pair again to trust it\n", safe(old.Name), old.State)
	}
	return nil
}
