package trust

import (
	"errors"
	"testing"
)

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

// TestUnrevokeWhenRevokerNoLongerCounts: alice revoked the phone, then
// alice's own key is revoked (a thief could have signed that revocation).
// Alice can no longer withdraw it (her statements are refused), so the
// user can, locally; a revocation by a signer that still counts cannot
// be withdrawn that way.
func TestUnrevokeWhenRevokerNoLongerCounts(t *testing.T) {
	alice, bob, phone := newPeer(1, "alice"), newPeer(2, "bob"), newPeer(4, "phone")
	s := newTestStore(t)
	mustVerify(t, s, alice)
	mustVerify(t, s, bob)
	mustVerify(t, s, phone)
	sa := newTestStore(t)
	mustApply(t, s, signed(t, sa, alice, &Revoke{Key: phone.key, Reason: "by a thief?"}))
	if _, err := s.Unrevoke(ctx, phone.key, ""); !errors.Is(err, ErrConflict) {
		t.Fatalf("local unrevoke of a standing revocation by a verified peer = %v, want ErrConflict", err)
	}
	if _, err := s.Revoke(ctx, alice.key, "stolen"); err != nil {
		t.Fatal(err)
	}
	r, err := s.Unrevoke(ctx, phone.key, "alice's key was stolen")
	if err != nil {
		t.Fatalf("local unrevoke after the revoker was revoked: %v", err)
	}
	if r.State != StateVerified {
		t.Fatalf("phone is %s", r.State)
	}
}
