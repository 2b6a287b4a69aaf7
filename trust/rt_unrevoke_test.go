package trust

import "testing"

// TestOwnRevokeOutlivesAnotherSignersUnrevoke: alice revokes the phone,
// then this node's user revokes it too (signed, or --local); alice's
// unrevoke must not bring the phone back here: only we can withdraw ours.
func TestOwnRevokeOutlivesAnotherSignersUnrevoke(t *testing.T) {
	for _, local := range []bool{false, true} {
		alice, me, phone := newPeer(1, "alice"), newPeer(2, "me"), newPeer(4, "phone")
		sa, sm := newTestStore(t), newTestStore(t)
		mustVerify(t, sa, phone)
		mustVerify(t, sm, alice)
		mustVerify(t, sm, phone)
		if _, err := sa.Sign(ctx, alice, &Revoke{Key: phone.key, Reason: "alice"}); err != nil {
			t.Fatal(err)
		}
		exchange(t, sa, sm)
		if got := stateOf(t, sm, phone); got != StateRevoked {
			t.Fatalf("phone is %s after alice's revocation", got)
		}
		var err error
		if local {
			_, err = sm.Revoke(ctx, phone.key, "mine")
		} else {
			_, err = sm.Sign(ctx, me, &Revoke{Key: phone.key, Reason: "mine"})
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sa.Sign(ctx, alice, &Unrevoke{Key: phone.key}); err != nil {
			t.Fatal(err)
		}
		exchange(t, sa, sm)
		r, _, _ := sm.Lookup(phone.key)
		if r.State != StateRevoked {
			t.Fatalf("local=%v: our own revocation was undone by alice's unrevoke: phone is %s", local, r.State)
		}
		// We can withdraw ours: then the phone is back.
		if local {
			_, err = sm.Unrevoke(ctx, phone.key, "")
		} else {
			_, err = sm.Sign(ctx, me, &Unrevoke{Key: phone.key})
		}
		if err != nil {
			t.Fatalf("local=%v: withdrawing our own revocation: %v", local, err)
		}
		if got := stateOf(t, sm, phone); got != StateVerified {
			t.Fatalf("local=%v: phone is %s after we withdrew our revocation", local, got)
		}
	}
}
