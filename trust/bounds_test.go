package trust

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"time"
)

// strangerVouch makes stranger n known (tofu, with its signing key) to s
// and applies its first statement, as a flood of fresh keys would.
func strangerVouch(t *testing.T, s *Store, n int) {
	t.Helper()
	p := newPeer(n, fmt.Sprintf("stranger%d", n))
	knowWithBinding(t, s, p)
	if _, err := s.Apply(ctx, sign(t, p, 1, nil, t0, &Vouch{Key: newPeer(9, "x").key}).Raw); err != nil {
		t.Fatalf("stranger %d: %v", n, err)
	}
}

// TestOwnLogSurvivesStrangerFlood: when MaxSigners logs are held, a new
// stranger's log makes room by dropping a stranger's, never this node's
// own log (which has no record of its own): dropping it lost our signed
// revocations, and our next statement would fork our log for everyone.
func TestOwnLogSurvivesStrangerFlood(t *testing.T) {
	home := t.TempDir()
	s := openStore(t, home, Options{MaxSigners: 4})
	me, x := newPeer(2, "me"), newPeer(9, "x")
	if _, err := s.Sign(ctx, me, &Revoke{Key: x.key, Reason: "mine"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		strangerVouch(t, s, 100+i)
	}
	if seq, _, _ := s.Head(me.signPub()); seq != 1 {
		t.Fatalf("own log head #%d after a flood of strangers, want #1", seq)
	}
	onDisk(t, s)
	// Another process (it never signed): the same.
	s2 := openStore(t, home, Options{MaxSigners: 4})
	for i := 0; i < 10; i++ {
		strangerVouch(t, s2, 200+i)
	}
	if seq, _, _ := s2.Head(me.signPub()); seq != 1 {
		t.Fatalf("own log head #%d after a flood of strangers (re-read), want #1", seq)
	}
}

// TestStrangerLogBounded: a tofu peer's log holds at most
// maxStrangerStatements (the rest comes by gossip once it is verified), so
// MaxSigners strangers cannot make the store hold MaxSigners x
// MaxStatementsPerSigner statements.
func TestStrangerLogBounded(t *testing.T) {
	s := newTestStore(t)
	p := newPeer(100, "stranger")
	knowWithBinding(t, s, p)
	var prev *Statement
	var err error
	n := 0
	for i := 1; i <= maxStrangerStatements+10; i++ {
		st := sign(t, p, uint64(i), prev, t0, &Vouch{Key: newPeer(9, "x").key})
		if _, err = s.Apply(ctx, st.Raw); err != nil {
			break
		}
		prev, n = st, i
	}
	if n != maxStrangerStatements || !errors.Is(err, ErrSignerFull) {
		t.Fatalf("stranger's log took %d statements (then %v), want %d then ErrSignerFull", n, err, maxStrangerStatements)
	}
	mustVerify(t, s, p)
	if _, err := s.Apply(ctx, sign(t, p, uint64(n+1), prev, t0, &Vouch{Key: newPeer(9, "x").key}).Raw); err != nil {
		t.Fatalf("verified signer's statement #%d: %v", n+1, err)
	}
}

// TestJournalStaysReadable: the journal is compacted before it outgrows
// what a read accepts (maxFileSize), whatever the size of trust.json.
func TestJournalStaysReadable(t *testing.T) {
	const limit = 256 << 10
	home := t.TempDir()
	s := openStore(t, home, Options{MaxPeers: 200})
	s.maxFile = limit
	for i := 0; i < 1500; i++ {
		mustAdmit(t, s, newPeer(1000+i, "").obs(), t0.Add(time.Duration(i)*time.Second))
		if i%100 == 99 {
			onDisk(t, s)
		}
	}
	onDisk(t, s)
	fi, err := os.Stat(s.jpath)
	if err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, home, Options{MaxPeers: 200})
	s2.maxFile = limit
	if _, err := s2.List(); err != nil {
		t.Fatalf("journal of %d octets (read limit %d): %v", fi.Size(), limit, err)
	}
}

// TestRotatingStrangerLeavesNoLogs: a tofu peer that presents a new
// signing key (a newer binding) again and again, with a statement from
// each, leaves no log tied to no record behind (such logs are never
// dropped): the signers' slots stay free for a verified peer's log.
func TestRotatingStrangerLeavesNoLogs(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{MaxSigners: 4})
	alice := newPeer(1, "alice")
	mustVerify(t, s, alice)
	stranger := newPeer(100, "stranger")
	for i := 0; i < 10; i++ {
		signerOf := newPeer(200+i, "")
		o := stranger.obs()
		b, err := NewBinding(signerOf.sign, stranger.key, t0.Add(time.Duration(i)*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		o.Binding = b
		mustAdmit(t, s, o, t0.Add(time.Duration(i)*time.Minute))
		if _, err := s.Apply(ctx, sign(t, signerOf, 1, nil, t0, &Vouch{Key: newPeer(9, "x").key}).Raw); err != nil {
			t.Fatalf("rotation %d: %v", i, err)
		}
	}
	if _, err := s.Apply(ctx, sign(t, alice, 1, nil, t0, &Vouch{Key: newPeer(9, "x").key}).Raw); err != nil {
		t.Fatalf("verified signer's statement after the rotations: %v", err)
	}
}

// TestNoWantBeyondCap: a HEAD of a stranger whose log is at its cap gets
// no WANT (the answer would be refused: 64 statements for nothing, on
// every HEAD).
func TestNoWantBeyondCap(t *testing.T) {
	s := newTestStore(t)
	p := newPeer(100, "stranger")
	knowWithBinding(t, s, p)
	var prev *Statement
	for i := 1; i <= maxStrangerStatements+1; i++ {
		prev = sign(t, p, uint64(i), prev, t0, &Vouch{Key: newPeer(9, "x").key})
		if i <= maxStrangerStatements {
			mustApply(t, s, prev.Raw)
		}
	}
	head := (&Message{Type: MsgHead, Signer: p.signPub(), Seq: prev.Seq, Hash: prev.Hash()}).AppendMarshal(nil)
	replies, _, err := s.Handle(ctx, head)
	if err != nil || len(replies) != 0 {
		t.Fatalf("HEAD beyond the cap: %d replies, %v", len(replies), err)
	}
	// Nor a statement beyond it that leaves a gap.
	later := sign(t, p, prev.Seq+5, prev, t0, &Vouch{Key: newPeer(9, "x").key})
	if replies, _, err := s.Handle(ctx, StatementMessage(later.Raw)); !errors.Is(err, ErrSignerFull) || len(replies) != 0 {
		t.Fatalf("statement beyond the cap: %d replies, %v", len(replies), err)
	}
	mustVerify(t, s, p)
	if replies, _, err := s.Handle(ctx, head); err != nil || len(replies) != 1 {
		t.Fatalf("HEAD of a verified signer: %d replies, %v; want a WANT", len(replies), err)
	}
}

// TestRevocationsDoNotBlockPairing: a verified peer (compromised, say)
// revokes thousands of keys never seen here; the records this creates
// are capped, and never make pairing a new device fail (ErrStoreFull).
func TestRevocationsDoNotBlockPairing(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{MaxPeers: 4}) // 16 trusted, 20 revoked
	alice, phone := newPeer(1, "alice"), newPeer(4, "phone")
	mustVerify(t, s, alice)
	var prev *Statement
	for i := 0; i < 30; i++ {
		prev = sign(t, alice, uint64(i+1), prev, t0, &Revoke{Key: newPeer(1000+i, "").key})
		mustApply(t, s, prev.Raw)
	}
	if _, err := s.MarkVerified(ctx, phone.key, phone.id, "phone", "qr", nil); err != nil {
		t.Fatalf("pairing after a flood of revocations: %v", err)
	}
	recs, _ := s.List()
	if len(recs) > 2+4*4+4 { // alice, the phone, 20 revocations

		t.Fatalf("%d records", len(recs))
	}
}

// TestRevokedBeyondCapStillRefused: a key whose revocation came beyond
// the cap of revoked records (no record made) is still refused when it
// connects: its revocation stands in its signer's log.
func TestRevokedBeyondCapStillRefused(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{MaxPeers: 1}) // 5 revoked records
	alice := newPeer(1, "alice")
	mustVerify(t, s, alice)
	var prev *Statement
	for i := 0; i < 10; i++ {
		prev = sign(t, alice, uint64(i+1), prev, t0, &Revoke{Key: newPeer(1000+i, "").key})
		mustApply(t, s, prev.Raw)
	}
	late := newPeer(1009, "")
	if _, ok, _ := s.Lookup(late.key); ok {
		t.Fatal("a record beyond the cap")
	}
	if v := mustAdmit(t, s, late.obs(), t0); v.Allow {
		t.Fatalf("a key revoked by a verified peer was admitted: %s", v.Reason)
	}
}
