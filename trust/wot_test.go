package trust

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"
)

// sign makes statement seq of p's log by hand (for crafting bad chains).
func sign(t testing.TB, p testPeer, seq uint64, prev *Statement, at time.Time, body Body) *Statement {
	t.Helper()
	var h [32]byte
	if prev != nil {
		h = prev.Hash()
	}
	s, err := signStatement(p.sign, seq, h, at, body)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// knowWithBinding admits p in s, teaching its signing key by a binding.
func knowWithBinding(t testing.TB, s *Store, p testPeer) {
	t.Helper()
	o := p.obs()
	b, err := NewBinding(p.sign, p.key, t0)
	if err != nil {
		t.Fatal(err)
	}
	o.Binding = b
	if v := mustAdmit(t, s, o, t0); !v.Allow || !v.Record.SigningKey.Equal(p.signPub()) {
		t.Fatalf("admit %s with binding: %+v", p.name, v)
	}
}

func mustApply(t testing.TB, s *Store, raw []byte) Applied {
	t.Helper()
	a, err := s.Apply(ctx, raw)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return a
}

func TestRevocation(t *testing.T) {
	s := newTestStore(t)
	notified := make(revokedCh, 8)
	s.opts.OnRevoked = notified.on
	b, c, e := newPeer(2, "bob"), newPeer(3, "carol"), newPeer(5, "eve")
	d, d2, x := newPeer(4, "dave"), newPeer(6, "dora"), newPeer(7, "xavier")
	mustVerify(t, s, b)
	knowWithBinding(t, s, c) // tofu, signing key known
	knowWithBinding(t, s, e) // tofu, signing key known
	mustAdmit(t, s, d.obs(), t0)
	mustAdmit(t, s, d2.obs(), t0)

	t.Run("own signing key", func(t *testing.T) {
		a := mustApply(t, s, sign(t, c, 1, nil, t0, &Revoke{Key: c.key, Reason: "key compromised"}).Raw)
		if !a.Honoured || len(a.Revoked) != 1 || a.Revoked[0].Key != c.key {
			t.Fatalf("self revocation: %+v", a)
		}
		if v := mustAdmit(t, s, c.obs(), t0); v.Allow || !strings.Contains(v.Reason, "key compromised") {
			t.Fatalf("revoked key admitted: %+v", v)
		}
		if got := notified.next(t); len(got) != 1 || got[0].Key != c.key {
			t.Fatalf("OnRevoked: %v", got)
		}
		// A revoked signer says nothing more.
		_, err := s.Apply(ctx, sign(t, c, 2, nil, t0, &Vouch{Key: x.key}).Raw)
		if !errors.Is(err, ErrSignerRevoked) {
			t.Fatalf("statement by a revoked signer = %v", err)
		}
	})
	t.Run("verified peer", func(t *testing.T) {
		a := mustApply(t, s, sign(t, b, 1, nil, t0, &Revoke{Key: d.key, Reason: "stolen"}).Raw)
		if !a.Honoured || len(a.Revoked) != 1 {
			t.Fatalf("revocation by verified peer: %+v", a)
		}
		notified.next(t)
		r, _, _ := s.Lookup(d.key)
		if r.State != StateRevoked || r.RevokedBy != b.key || r.RevokeReason != "stolen" {
			t.Fatalf("record %+v", r)
		}
		if v := mustAdmit(t, s, d.obs(), t0); v.Allow || !strings.Contains(v.Reason, "bob") {
			t.Fatalf("revoked key admitted: %+v", v)
		}
	})
	t.Run("untrusted signer", func(t *testing.T) {
		a := mustApply(t, s, sign(t, e, 1, nil, t0, &Revoke{Key: d2.key, Reason: "spite"}).Raw)
		if a.Honoured || len(a.Revoked) != 0 || !strings.Contains(a.Effect, "tofu") {
			t.Fatalf("revocation by a tofu peer: %+v", a)
		}
		if v := mustAdmit(t, s, d2.obs(), t0); !v.Allow {
			t.Fatalf("key revoked by an untrusted signer: %+v", v)
		}
		// An unknown signer is not even stored.
		_, err := s.Apply(ctx, sign(t, x, 1, nil, t0, &Revoke{Key: d2.key}).Raw)
		if !errors.Is(err, ErrUnknownSigner) {
			t.Fatalf("unknown signer = %v", err)
		}
		// Once eve is verified, her stored revocation counts.
		notified.none(t)
		mustVerify(t, s, e)
		if v := mustAdmit(t, s, d2.obs(), t0); v.Allow {
			t.Fatalf("revocation by now-verified signer ignored: %+v", v)
		}
		if got := notified.next(t); len(got) != 1 || got[0].Key != d2.key {
			t.Fatalf("OnRevoked after verification: %v", got)
		}
	})
	t.Run("policy without verified revokers", func(t *testing.T) {
		s := newTestStore(t)
		mustVerify(t, s, b)
		mustAdmit(t, s, d.obs(), t0)
		p, _ := s.Policy()
		p.VerifiedRevoke = false
		if err := s.SetPolicy(ctx, p); err != nil {
			t.Fatal(err)
		}
		a := mustApply(t, s, sign(t, b, 1, nil, t0, &Revoke{Key: d.key}).Raw)
		if a.Honoured || !strings.Contains(a.Effect, "policy") {
			t.Fatalf("revocation with VerifiedRevoke off: %+v", a)
		}
	})
}

func TestIntroductionStrict(t *testing.T) {
	s := newTestStore(t)
	setMode(t, s, ModeStrict)
	b, c, d, x, e := newPeer(2, "bob"), newPeer(3, "carol"), newPeer(4, "dave"), newPeer(7, "xavier"), newPeer(8, "erin")
	mustVerify(t, s, b)
	// Carol is unknown: refused in strict mode.
	if v := mustAdmit(t, s, c.obs(), t0); v.Allow {
		t.Fatalf("unknown carol admitted: %+v", v)
	}
	// Bob (verified) vouches for carol: admitted, as introduced.
	a := mustApply(t, s, sign(t, b, 1, nil, t0, &Vouch{Key: c.key, UUID: c.id, Name: c.name}).Raw)
	if !a.Honoured {
		t.Fatalf("vouch by verified bob: %+v", a)
	}
	oc := c.obs()
	oc.Binding, _ = NewBinding(c.sign, c.key, t0)
	v := mustAdmit(t, s, oc, t0)
	if !v.Allow || v.Record.State != StateIntroduced || v.Record.IntroducedBy != b.key || !v.New {
		t.Fatalf("introduced carol: %+v", v)
	}
	// Carol (introduced) vouches for dave: depth 1, dave stays out.
	a = mustApply(t, s, sign(t, c, 1, nil, t0, &Vouch{Key: d.key, UUID: d.id, Name: d.name}).Raw)
	if a.Honoured || !strings.Contains(a.Effect, "introduced") {
		t.Fatalf("vouch by introduced carol: %+v", a)
	}
	if v := mustAdmit(t, s, d.obs(), t0); v.Allow {
		t.Fatalf("dave admitted through carol: %+v", v)
	}
	// A vouch by an unknown signer does nothing.
	if _, err := s.Apply(ctx, sign(t, x, 1, nil, t0, &Vouch{Key: e.key}).Raw); !errors.Is(err, ErrUnknownSigner) {
		t.Fatalf("vouch by unknown signer = %v", err)
	}
	if v := mustAdmit(t, s, e.obs(), t0); v.Allow {
		t.Fatalf("erin admitted by an unknown signer: %+v", v)
	}
	// Without introductions, bob's vouch no longer admits a new key.
	p, _ := s.Policy()
	p.Introductions = false
	if err := s.SetPolicy(ctx, p); err != nil {
		t.Fatal(err)
	}
	f := newPeer(9, "fred")
	mustApply(t, s, sign(t, b, 2, mustStmt(t, s, b, 1), t0, &Vouch{Key: f.key}).Raw)
	if v := mustAdmit(t, s, f.obs(), t0); v.Allow {
		t.Fatalf("fred admitted with introductions off: %+v", v)
	}
}

// mustStmt returns statement seq of p's log in s.
func mustStmt(t testing.TB, s *Store, p testPeer, seq uint64) *Statement {
	t.Helper()
	raws, err := s.LogSince(p.signPub(), seq-1, 1)
	if err != nil || len(raws) != 1 {
		t.Fatalf("LogSince: %v, %v", raws, err)
	}
	st, err := ParseStatement(raws[0])
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestIntroductionByLaterVerifiedPeer(t *testing.T) {
	s := newTestStore(t)
	b, c := newPeer(2, "bob"), newPeer(3, "carol")
	knowWithBinding(t, s, b) // tofu
	mustApply(t, s, sign(t, b, 1, nil, t0, &Vouch{Key: c.key}).Raw)
	mustAdmit(t, s, c.obs(), t0) // tofu
	setMode(t, s, ModeStrict)
	if v := mustAdmit(t, s, c.obs(), t0); v.Allow {
		t.Fatalf("carol admitted on a tofu peer's vouch: %+v", v)
	}
	mustVerify(t, s, b)
	v := mustAdmit(t, s, c.obs(), t0)
	if !v.Allow || v.Record.State != StateIntroduced {
		t.Fatalf("carol after bob verified: %+v", v)
	}
}

func TestChainRules(t *testing.T) {
	b, c := newPeer(2, "bob"), newPeer(3, "carol")
	k := newPeer(10, "k").key
	s1 := sign(t, b, 1, nil, t0, &Vouch{Key: k, Name: "one"})
	s2 := sign(t, b, 2, s1, t0.Add(time.Second), &Vouch{Key: k, Name: "two"})
	s3 := sign(t, b, 3, s2, t0.Add(2*time.Second), &Vouch{Key: k, Name: "three"})
	setup := func(t *testing.T, o Options) *Store {
		s := openStore(t, t.TempDir(), o)
		mustVerify(t, s, b)
		mustVerify(t, s, c)
		return s
	}
	flip := func(raw []byte, i int) []byte {
		out := append([]byte(nil), raw...)
		out[i] ^= 1
		return out
	}
	tests := []struct {
		name  string
		opts  Options
		first []*Statement
		raw   []byte
		want  error
	}{
		{"in order", Options{}, []*Statement{s1, s2}, s3.Raw, nil},
		{"out of order", Options{}, nil, s2.Raw, ErrGap},
		{"gap", Options{}, []*Statement{s1}, s3.Raw, ErrGap},
		{"replay", Options{}, []*Statement{s1, s2}, s1.Raw, ErrReplay},
		{"fork", Options{}, []*Statement{s1, s2}, sign(t, b, 2, s1, t0, &Revoke{Key: k}).Raw, ErrFork},
		{"broken chain", Options{}, []*Statement{s1, s2}, sign(t, b, 3, s1, t0.Add(time.Hour), &Vouch{Key: k}).Raw, ErrBrokenChain},
		{"forged signature", Options{}, []*Statement{s1, s2}, flip(s3.Raw, len(s3.Raw)-1), ErrBadSignature},
		{"forged body", Options{}, []*Statement{s1, s2}, flip(s3.Raw, headerSize+40), ErrBadSignature},
		{"forged signer", Options{}, nil, append(append(append([]byte(nil), s1.Raw[:5]...), c.signPub()...), s1.Raw[37:]...), ErrBadSignature},
		{"back in time", Options{}, []*Statement{s1, s2}, sign(t, b, 3, s2, t0, &Vouch{Key: k}).Raw, ErrBadTime},
		{"from the future", Options{}, []*Statement{s1, s2}, sign(t, b, 3, s2, t0.Add(48*time.Hour), &Vouch{Key: k}).Raw, ErrBadTime},
		{"oversize", Options{}, nil, make([]byte, MaxStatementSize+1), ErrTooLarge},
		{"truncated", Options{}, nil, s1.Raw[:len(s1.Raw)-1], ErrMalformed},
		{"binding in a log", Options{}, nil, mustBinding(t, b), ErrMalformed},
		{"over signer cap", Options{MaxStatementsPerSigner: 2}, []*Statement{s1, s2}, s3.Raw, ErrSignerFull},
		{"over signers cap", Options{MaxSigners: 1}, []*Statement{s1}, sign(t, c, 1, nil, t0, &Vouch{Key: k}).Raw, ErrTooManySigners},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := setup(t, tc.opts)
			for _, st := range tc.first {
				mustApply(t, s, st.Raw)
			}
			before, _, _ := s.Head(b.signPub())
			_, err := s.Apply(ctx, tc.raw)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Apply = %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Apply = %v, want %v", err, tc.want)
			}
			if after, _, _ := s.Head(b.signPub()); after != before {
				t.Fatalf("refused statement moved the head from %d to %d", before, after)
			}
		})
	}
	// A gap says what is missing, and filling it lets the statement in.
	s := setup(t, Options{})
	_, err := s.Apply(ctx, s3.Raw)
	var gap *GapError
	if !errors.As(err, &gap) || gap.Have != 0 || gap.Got != 3 || !gap.Signer.Equal(b.signPub()) {
		t.Fatalf("gap error %#v", err)
	}
	for _, st := range []*Statement{s1, s2, s3} {
		mustApply(t, s, st.Raw)
	}
	seq, h, _ := s.Head(b.signPub())
	if seq != 3 || h != s3.Hash() {
		t.Fatalf("head %d %x", seq, h)
	}
}

func mustBinding(t testing.TB, p testPeer) []byte {
	t.Helper()
	b, err := NewBinding(p.sign, p.key, t0)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSignAndExchange(t *testing.T) {
	// Bob signs in his own store; alice learns his statements by asking
	// for what she misses, as a node does over zyre-trust.
	bobStore, aliceStore := newTestStore(t), newTestStore(t)
	b, c, d := newPeer(2, "bob"), newPeer(3, "carol"), newPeer(4, "dave")
	var sent [][]byte
	for _, body := range []Body{&Vouch{Key: c.key, UUID: c.id, Name: "carol"}, &Vouch{Key: d.key, UUID: d.id, Name: "dave"}, &Revoke{Key: d.key, Reason: "left"}} {
		st, err := bobStore.Sign(ctx, b, body)
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, st.Raw)
	}
	// Bob's own revocation took effect in his store.
	if r, ok, _ := bobStore.Lookup(d.key); !ok || r.State != StateRevoked {
		t.Fatalf("own revocation not applied: %+v", r)
	}
	seq, h, err := bobStore.Head(b.signPub())
	if err != nil || seq != 3 {
		t.Fatalf("bob's head %d, %v", seq, err)
	}
	mustVerify(t, aliceStore, b)
	// Alice hears only the last one: a gap; she asks for the rest.
	_, err = aliceStore.Apply(ctx, sent[2])
	var gap *GapError
	if !errors.As(err, &gap) {
		t.Fatalf("Apply(#3) = %v", err)
	}
	missing, err := bobStore.LogSince(gap.Signer, gap.Have, 0)
	if err != nil || len(missing) != 3 {
		t.Fatalf("LogSince = %d, %v", len(missing), err)
	}
	for _, raw := range missing {
		mustApply(t, aliceStore, raw)
	}
	aseq, ah, _ := aliceStore.Head(b.signPub())
	if aseq != seq || ah != h {
		t.Fatalf("alice's copy of bob's head %d, want %d", aseq, seq)
	}
	if v := mustAdmit(t, aliceStore, d.obs(), t0); v.Allow {
		t.Fatal("dave admitted after bob's revocation")
	}
	if part, _ := bobStore.LogSince(b.signPub(), 1, 1); len(part) != 1 || string(part[0]) != string(sent[1]) {
		t.Fatal("LogSince(1, max 1) is not statement #2")
	}
	logs, err := aliceStore.Logs()
	if err != nil || len(logs) != 1 || logs[0].Owner == nil || logs[0].Owner.Name != "bob" || len(logs[0].Statements) != 3 {
		t.Fatalf("Logs() = %+v, %v", logs, err)
	}
	if _, err := bobStore.Sign(ctx, b, &Binding{Key: b.key}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Sign(binding) = %v", err)
	}
	if _, _, err := bobStore.Head(ed25519.PublicKey{1}); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("Head(short key) = %v", err)
	}
}

func TestIntroducedFallsBackWhenIntroducerRevoked(t *testing.T) {
	s := newTestStore(t)
	b, e, c, f := newPeer(2, "bob"), newPeer(5, "eve"), newPeer(3, "carol"), newPeer(6, "fay")
	mustVerify(t, s, b)
	mustVerify(t, s, e)
	mustApply(t, s, sign(t, b, 1, nil, t0, &Vouch{Key: c.key}).Raw)
	mustApply(t, s, sign(t, b, 2, mustStmt(t, s, b, 1), t0, &Vouch{Key: f.key}).Raw)
	mustApply(t, s, sign(t, e, 1, nil, t0, &Vouch{Key: f.key}).Raw)
	setMode(t, s, ModeStrict)
	for _, p := range []testPeer{c, f} {
		if v := mustAdmit(t, s, p.obs(), t0); !v.Allow || v.Record.IntroducedBy != b.key {
			t.Fatalf("%s: %+v", p.name, v)
		}
	}
	if _, err := s.Revoke(ctx, b.key, "compromised"); err != nil {
		t.Fatal(err)
	}
	// Carol had only bob's vouch: back to tofu, refused in strict mode.
	if v := mustAdmit(t, s, c.obs(), t0); v.Allow || v.Record.State != StateTOFU {
		t.Fatalf("carol after bob's revocation: %+v", v)
	}
	// Fay is still introduced, now by eve.
	if v := mustAdmit(t, s, f.obs(), t0); !v.Allow || v.Record.State != StateIntroduced || v.Record.IntroducedBy != e.key {
		t.Fatalf("fay after bob's revocation: %+v", v)
	}
}
