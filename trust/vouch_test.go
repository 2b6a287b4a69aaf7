package trust

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
)

// pairBoth pairs a and b both ways, as pairing does: each store records
// the other as verified and vouches for it.
func pairBoth(t *testing.T, as *Store, a testPeer, bs *Store, b testPeer) (ab, ba *Statement) {
	t.Helper()
	_, ab, err := as.MarkVerifiedVouch(ctx, a, b.key, b.id, b.name, "qr", b.signPub())
	if err != nil {
		t.Fatalf("%s pairs %s: %v", a.name, b.name, err)
	}
	_, ba, err = bs.MarkVerifiedVouch(ctx, b, a.key, a.id, a.name, "qr", a.signPub())
	if err != nil {
		t.Fatalf("%s pairs %s: %v", b.name, a.name, err)
	}
	return ab, ba
}

// gossip gives to what from holds of signer's log that to lacks, as the
// node's HEAD and WANT do.
func gossip(t *testing.T, from, to *Store, signer testPeer) []Applied {
	t.Helper()
	have, _, err := to.Head(signer.signPub())
	if err != nil {
		t.Fatal(err)
	}
	raws, err := from.LogSince(signer.signPub(), have, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []Applied
	for _, raw := range raws {
		out = append(out, mustApply(t, to, raw))
	}
	return out
}

func recordOf(t *testing.T, s *Store, p testPeer) Record {
	t.Helper()
	r, ok, err := s.Lookup(p.key)
	if err != nil || !ok {
		t.Fatalf("no record of %s: %v", p.name, err)
	}
	return r
}

// TestVouchOnPairing is the hotel story in the store: the room pairs with
// both phones; its vouches make each phone trust the other as introduced,
// whether the phone met the other before the vouch arrived or after.
func TestVouchOnPairing(t *testing.T) {
	room, ph1, ph2 := newPeer(2, "room"), newPeer(3, "phone1"), newPeer(4, "phone2")
	rs, s1, s2 := newTestStore(t), newTestStore(t), newTestStore(t)
	if p, _ := rs.Policy(); !p.Vouch {
		t.Fatalf("vouching is off by default: %+v", p)
	}
	v1, _ := pairBoth(t, rs, room, s1, ph1)
	v2, _ := pairBoth(t, rs, room, s2, ph2)
	if v1 == nil || v2 == nil || v1.Seq != 1 || v2.Seq != 2 {
		t.Fatalf("room's vouches: %v, %v", v1, v2)
	}
	if b, ok := v1.Body.(*Vouch); !ok || b.Key != ph1.key || b.UUID != ph1.id || b.Name != "phone1" || !v1.Signer.Equal(room.signPub()) {
		t.Fatalf("vouch for phone1: %v", v1)
	}
	// The vouch is in the room's log, on disk, for the node to shout.
	if seq, _, _ := rs.Head(room.signPub()); seq != 2 {
		t.Fatalf("room's head %d", seq)
	}
	// Pairing again signs no second vouch.
	if _, again, err := rs.MarkVerifiedVouch(ctx, room, ph1.key, ph1.id, "phone1", "code", ph1.signPub()); err != nil || again != nil {
		t.Fatalf("pairing again: %v, %v", again, err)
	}

	// phone1 met phone2 before the vouches came: tofu, then introduced.
	if v := mustAdmit(t, s1, ph2.obs(), t0); v.Record.State != StateTOFU {
		t.Fatalf("phone2 at phone1 before the vouch: %+v", v)
	}
	for _, a := range gossip(t, rs, s1, room) {
		if !a.Honoured {
			t.Fatalf("room's vouch at phone1: %+v", a)
		}
	}
	if r := recordOf(t, s1, ph2); r.State != StateIntroduced || r.IntroducedBy != room.key || !s1.Trusted(ph2.id, ph2.key) {
		t.Fatalf("phone2 at phone1: %+v", r)
	}
	// phone2 gets the vouches first, then meets phone1: introduced at once.
	gossip(t, rs, s2, room)
	if v := mustAdmit(t, s2, ph1.obs(), t0); !v.Allow || v.Record.State != StateIntroduced || v.Record.IntroducedBy != room.key {
		t.Fatalf("phone1 at phone2: %+v", v)
	}

	// Written and read back: a fresh process sees the same.
	if err := s2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	s2b := openStore(t, s2.path[:len(s2.path)-len(FileName)-1], Options{})
	if r := recordOf(t, s2b, ph1); r.State != StateIntroduced {
		t.Fatalf("phone1 at phone2 after reopening: %+v", r)
	}

	// phone2 revokes the room: phone1 loses its introduction.
	if _, err := s2.Revoke(ctx, room.key, "checked out"); err != nil {
		t.Fatal(err)
	}
	if r := recordOf(t, s2, ph1); r.State != StateTOFU || !r.IntroducedBy.IsZero() || s2.Trusted(ph1.id, ph1.key) {
		t.Fatalf("phone1 at phone2 after the room's revocation: %+v", r)
	}
	// A mistake: withdrawn, the room is verified again, and phone1
	// introduced again at once.
	if _, err := s2.Unrevoke(ctx, room.key, "found it"); err != nil {
		t.Fatal(err)
	}
	if r := recordOf(t, s2, ph1); r.State != StateIntroduced || r.IntroducedBy != room.key {
		t.Fatalf("phone1 at phone2 after the room's revocation was withdrawn: %+v", r)
	}
	// Checking out: phone2 forgets the room, phone1 is a stranger again.
	if _, err := s2.Forget(ctx, room.key); err != nil {
		t.Fatal(err)
	}
	if r := recordOf(t, s2, ph1); r.State != StateTOFU || s2.Trusted(ph1.id, ph1.key) {
		t.Fatalf("phone1 at phone2 after forgetting the room: %+v", r)
	}
}

// TestVouchPolicyOff: with Policy.Vouch off, pairing verifies and signs
// nothing; the setting survives on disk, and a store written before the
// field existed (no "vouch") vouches.
func TestVouchPolicyOff(t *testing.T) {
	room, ph := newPeer(2, "room"), newPeer(3, "phone")
	home := t.TempDir()
	s := openStore(t, home, Options{})
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	p, _ := s.Policy()
	p.Vouch = false
	if err := s.SetPolicy(ctx, p); err != nil {
		t.Fatal(err)
	}
	r, stmt, err := s.MarkVerifiedVouch(ctx, room, ph.key, ph.id, ph.name, "qr", ph.signPub())
	if err != nil || stmt != nil || r.State != StateVerified {
		t.Fatalf("pairing with vouching off: %+v, %v, %v", r, stmt, err)
	}
	if seq, _, _ := s.Head(room.signPub()); seq != 0 {
		t.Fatalf("a statement was signed: head %d", seq)
	}
	if d := onDisk(t, s); !strings.Contains(d, `"vouch":false`) {
		t.Fatalf("the journal does not say vouch false:\n%s", d)
	}
	if p, _ := openStore(t, home, Options{}).Policy(); p.Vouch {
		t.Fatalf("policy read back: %+v", p)
	}
	// A store without the field (older zyre) means vouching on.
	old := t.TempDir()
	doc := `{"version": 2, "generation": 0, "policy": {"mode": "tofu", "introductions": true, "verified_revoke": true}, "peers": [], "logs": []}`
	if err := os.WriteFile(old+"/"+FileName, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	if p, err := openStore(t, old, Options{}).Policy(); err != nil || !p.Vouch {
		t.Fatalf("policy of a store without the field: %+v, %v", p, err)
	}
}

// TestVouchByTofuPeer: a stranger vouched for by a tofu peer (known, not
// verified) is not introduced; once that peer is verified, its stored
// vouch introduces the stranger at once, without waiting for it to
// connect again.
func TestVouchByTofuPeer(t *testing.T) {
	s := newTestStore(t)
	m, x := newPeer(5, "mallory"), newPeer(6, "stranger")
	knowWithBinding(t, s, m) // tofu, signing key known
	mustAdmit(t, s, x.obs(), t0)
	a := mustApply(t, s, sign(t, m, 1, nil, t0, &Vouch{Key: x.key, UUID: x.id, Name: x.name}).Raw)
	if a.Honoured {
		t.Fatalf("vouch by a tofu peer honoured: %+v", a)
	}
	if r := recordOf(t, s, x); r.State != StateTOFU || s.Trusted(x.id, x.key) {
		t.Fatalf("stranger after a tofu peer's vouch: %+v", r)
	}
	if v := mustAdmit(t, s, x.obs(), t0.Add(2*DefaultSeenResolution)); v.Record.State != StateTOFU {
		t.Fatalf("stranger admitted again: %+v", v)
	}
	mustVerify(t, s, m)
	if r := recordOf(t, s, x); r.State != StateIntroduced || r.IntroducedBy != m.key {
		t.Fatalf("stranger after its voucher was verified: %+v", r)
	}
	// With introductions off, verifying the voucher introduces nobody.
	s2 := newTestStore(t)
	p, _ := s2.Policy()
	p.Introductions = false
	if err := s2.SetPolicy(ctx, p); err != nil {
		t.Fatal(err)
	}
	knowWithBinding(t, s2, m)
	mustAdmit(t, s2, x.obs(), t0)
	mustApply(t, s2, sign(t, m, 1, nil, t0, &Vouch{Key: x.key}).Raw)
	mustVerify(t, s2, m)
	if r := recordOf(t, s2, x); r.State != StateTOFU {
		t.Fatalf("stranger with introductions off: %+v", r)
	}
}

// TestVouchHostile: a forged vouch (signed by another key than the one it
// names, by an unknown signer, replayed, or altered) changes nothing.
func TestVouchHostile(t *testing.T) {
	room, ph, x, y := newPeer(2, "room"), newPeer(3, "phone"), newPeer(6, "stranger"), newPeer(7, "eve")
	roomStore := newTestStore(t)
	if _, _, err := roomStore.MarkVerifiedVouch(ctx, room, x.key, x.id, x.name, "qr", x.signPub()); err != nil {
		t.Fatal(err)
	}
	vouch := mustStmt(t, roomStore, room, 1)
	forgedSigner := append(append(append([]byte(nil), vouch.Raw[:5]...), ph.signPub()...), vouch.Raw[37:]...)
	altered := append([]byte(nil), vouch.Raw...)
	altered[headerSize+1] ^= 1 // another key
	tests := []struct {
		name string
		raw  []byte
		want error
	}{
		{"wrong signer", forgedSigner, ErrBadSignature},
		{"altered key", altered, ErrBadSignature},
		{"unknown signer", sign(t, y, 1, nil, t0, &Vouch{Key: x.key, UUID: x.id}).Raw, ErrUnknownSigner},
		{"signed by the stranger itself", sign(t, x, 1, nil, t0, &Vouch{Key: x.key, UUID: x.id}).Raw, ErrUnknownSigner},
		{"replay", vouch.Raw, ErrReplay},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestStore(t)
			mustVerify(t, s, room)
			mustVerify(t, s, ph)
			mustAdmit(t, s, x.obs(), t0)
			if tc.want == ErrReplay {
				mustApply(t, s, vouch.Raw) // the real one, once
			}
			before, _, _ := s.Head(room.signPub())
			stateBefore := recordOf(t, s, x).State
			if _, err := s.Apply(context.Background(), tc.raw); !errors.Is(err, tc.want) {
				t.Fatalf("Apply = %v, want %v", err, tc.want)
			}
			if after, _, _ := s.Head(room.signPub()); after != before {
				t.Fatalf("head moved from %d to %d", before, after)
			}
			if r := recordOf(t, s, x); r.State != stateBefore {
				t.Fatalf("stranger went from %s to %s", stateBefore, r.State)
			}
			if tc.want != ErrReplay && s.Trusted(x.id, x.key) {
				t.Fatal("stranger trusted")
			}
		})
	}
}

// TestVouchLogFull: pairing stops vouching when our log is three
// quarters full, and still verifies; the last quarter stays for
// revocations. A name the statement cannot carry is cleaned.
func TestVouchLogFull(t *testing.T) {
	room, a, b, c := newPeer(2, "room"), newPeer(3, "a"), newPeer(4, "b"), newPeer(5, "c")
	s := openStore(t, t.TempDir(), Options{MaxStatementsPerSigner: 4})
	if _, err := s.Sign(ctx, room, &Revoke{Key: c.key, Reason: "one"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sign(ctx, room, &Unrevoke{Key: c.key, Reason: "two"}); err != nil {
		t.Fatal(err)
	}
	_, st, err := s.MarkVerifiedVouch(ctx, room, a.key, a.id, "a\x1b[31m"+strings.Repeat("é", 200), "qr", a.signPub())
	if err != nil || st == nil {
		t.Fatalf("first vouch: %v, %v", st, err)
	}
	if n := st.Body.(*Vouch).Name; len(n) > maxTextLen || strings.ContainsRune(n, 0x1b) || !strings.HasPrefix(n, "a[31m") {
		t.Fatalf("vouch name %q", n)
	}
	r, st, err := s.MarkVerifiedVouch(ctx, room, b.key, b.id, b.name, "qr", b.signPub())
	if err != nil || st != nil || r.State != StateVerified {
		t.Fatalf("pairing with a full log: %+v, %v, %v", r, st, err)
	}
	if seq, _, _ := s.Head(room.signPub()); seq != 3 {
		t.Fatalf("head %d, want 3", seq)
	}
	// The quarter kept: a revocation still fits.
	if _, err := s.Sign(ctx, room, &Revoke{Key: c.key, Reason: "three"}); err != nil {
		t.Fatalf("revocation with a log three quarters full: %v", err)
	}
	if _, _, err := s.MarkVerifiedVouch(ctx, nil, b.key, b.id, b.name, "qr", nil); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("no signer: %v", err)
	}
}
