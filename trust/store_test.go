package trust

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

var ctx = context.Background()

func TestAdmitPinsAndRefusesImpostorBound(t *testing.T) {
	s := newTestStore(t)
	a := newPeer(1, "alice")
	v := mustAdmit(t, s, a.obs(), t0)
	if !v.Allow || !v.New || v.Record.State != StateTOFU || !v.Record.Bound {
		t.Fatalf("first sight: %+v", v)
	}
	// Seen again: admitted, not new.
	v = mustAdmit(t, s, a.obs(), t0.Add(time.Second))
	if !v.Allow || v.New {
		t.Fatalf("second sight: %+v", v)
	}
	// Impostor: alice's UUID with another key.
	imp := newPeer(2, "alice")
	o := imp.obs()
	o.UUID = a.id
	v = mustAdmit(t, s, o, t0.Add(2*time.Second))
	if v.Allow {
		t.Fatal("impostor admitted")
	}
	kc := v.KeyChange
	if kc == nil || kc.Old != a.key || kc.New != imp.key || kc.OldFingerprint != Fingerprint(a.key) || kc.NewFingerprint != Fingerprint(imp.key) {
		t.Fatalf("key change %+v", kc)
	}
	if !strings.Contains(v.Reason, "KEY CHANGED") {
		t.Errorf("reason %q does not shout", v.Reason)
	}
	// The pending change is recorded, but a bound UUID cannot move to
	// another key, even by accepting.
	r, ok, _ := s.Lookup(a.key)
	if !ok || r.KeyChange == nil || r.KeyChange.New != imp.key {
		t.Fatalf("pending change not recorded: %+v", r)
	}
	if _, err := s.Accept(ctx, a.key); !errors.Is(err, ErrConflict) {
		t.Fatalf("Accept of a bound UUID's key change = %v, want ErrConflict", err)
	}
	// Still refused in strict mode, and alice still admitted.
	setMode(t, s, ModeStrict)
	mustVerify(t, s, a)
	if v := mustAdmit(t, s, o, t0.Add(3*time.Second)); v.Allow || v.KeyChange == nil {
		t.Fatalf("strict impostor: %+v", v)
	}
	if v := mustAdmit(t, s, a.obs(), t0.Add(3*time.Second)); !v.Allow {
		t.Fatalf("alice refused: %+v", v)
	}
}

func TestAdmitUnboundPinnedPeer(t *testing.T) {
	s := newTestStore(t)
	c := newPeer(3, "c-node")
	c.id = randomUUID(1) // a C zyre node: random UUID
	v := mustAdmit(t, s, c.obs(), t0)
	if !v.Allow || !v.New || v.Record.Bound {
		t.Fatalf("first sight: %+v", v)
	}
	imp := newPeer(4, "someone")
	for i, tc := range []struct {
		name string
		obs  Observation
	}{
		{"same uuid", Observation{UUID: c.id, Name: "someone", Key: imp.key}},
		{"same name", Observation{UUID: randomUUID(2), Name: "c-node", Key: imp.key}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := mustAdmit(t, s, tc.obs, t0.Add(time.Duration(i+1)*time.Hour))
			if v.Allow || v.KeyChange == nil || v.KeyChange.Old != c.key || v.KeyChange.New != imp.key {
				t.Fatalf("impostor: %+v", v)
			}
		})
	}
	// The user accepts the new key (the last one presented: by name).
	r, err := s.Accept(ctx, c.key)
	if err != nil {
		t.Fatal(err)
	}
	if r.Key != imp.key || r.State != StateTOFU || r.UUID != randomUUID(2) || !strings.Contains(r.Notes, "accepted key change") {
		t.Fatalf("accepted record %+v", r)
	}
	if v := mustAdmit(t, s, Observation{UUID: randomUUID(2), Name: "c-node", Key: imp.key}, t0.Add(3*time.Hour)); !v.Allow || v.New {
		t.Fatalf("after accept: %+v", v)
	}
	// The old key is no longer known under that name.
	if v := mustAdmit(t, s, c.obs(), t0.Add(4*time.Hour)); v.Allow {
		t.Fatalf("old key with the name still admitted: %+v", v)
	}
	// ... it is now the pending key change of the record.
	if r, _, _ := s.Lookup(imp.key); r.KeyChange == nil || r.KeyChange.New != c.key {
		t.Fatalf("old key not flagged as a change: %+v", r.KeyChange)
	}
}

func TestAdmitOpenRecordsNothing(t *testing.T) {
	s := newTestStore(t)
	setMode(t, s, ModeOpen)
	before := onDisk(t, s)
	a := newPeer(1, "alice")
	v := mustAdmit(t, s, a.obs(), t0)
	imp := newPeer(2, "alice")
	o := imp.obs()
	o.UUID = a.id
	v2 := mustAdmit(t, s, o, t0)
	if !v.Allow || !v2.Allow || v.New || v2.KeyChange != nil {
		t.Fatalf("open: %+v %+v", v, v2)
	}
	if recs, _ := s.List(); len(recs) != 0 {
		t.Fatalf("open mode recorded %d peers", len(recs))
	}
	if before != onDisk(t, s) {
		t.Fatal("open mode wrote the store")
	}
	// A revoked key is refused even in open mode.
	if _, err := s.Revoke(ctx, imp.key, "stolen"); err != nil {
		t.Fatal(err)
	}
	if v := mustAdmit(t, s, o, t0); v.Allow {
		t.Fatal("revoked key admitted in open mode")
	}
}

func TestVerifiedKeyChangeFailsHard(t *testing.T) {
	s := newTestStore(t)
	b := newPeer(5, "bob")
	mustVerify(t, s, b)
	// Bob reinstalled: new key, new (bound) UUID, same name. Refused, but
	// it is another device (a bound UUID derives from its key), never a
	// key change of bob's record: nothing is recorded there, and pairing
	// with it again is the way (usertry3 #1; this asserted a KeyChange
	// before, which "accept" then moved onto bob's record).
	nb := newPeer(6, "bob")
	v := mustAdmit(t, s, nb.obs(), t0)
	if v.Allow || v.KeyChange != nil || v.NameTaken == nil || !strings.Contains(v.Reason, "verified") {
		t.Fatalf("verified peer's new key: %+v", v)
	}
	if r, _, _ := s.Lookup(b.key); r.KeyChange != nil {
		t.Fatalf("a key change recorded on bob: %+v", r.KeyChange)
	}
	// A tofu peer's bound successor with the same name is a different peer.
	s2 := newTestStore(t)
	mustAdmit(t, s2, b.obs(), t0)
	if v := mustAdmit(t, s2, nb.obs(), t0); !v.Allow || !v.New {
		t.Fatalf("bound peer sharing a tofu name: %+v", v)
	}
}

func TestStrictPolicy(t *testing.T) {
	s := newTestStore(t)
	a, b := newPeer(1, "alice"), newPeer(2, "bob")
	mustAdmit(t, s, a.obs(), t0) // tofu
	setMode(t, s, ModeStrict)
	if v := mustAdmit(t, s, a.obs(), t0); v.Allow {
		t.Fatalf("tofu peer admitted in strict mode: %+v", v)
	}
	if v := mustAdmit(t, s, b.obs(), t0); v.Allow || v.New {
		t.Fatalf("unknown peer admitted in strict mode: %+v", v)
	}
	if recs, _ := s.List(); len(recs) != 1 {
		t.Fatalf("strict mode recorded a refused peer: %d records", len(recs))
	}
	mustVerify(t, s, b)
	if v := mustAdmit(t, s, b.obs(), t0); !v.Allow {
		t.Fatalf("verified peer refused: %+v", v)
	}
}

func TestPolicyModes(t *testing.T) {
	s := newTestStore(t)
	p, err := s.Policy()
	if err != nil || p != DefaultPolicy() {
		t.Fatalf("default policy %+v, %v", p, err)
	}
	for _, m := range []string{"open", "tofu", "strict"} {
		mode, err := ParseMode(m)
		if err != nil || mode.String() != m {
			t.Fatalf("ParseMode(%q) = %v, %v", m, mode, err)
		}
	}
	if _, err := ParseMode("yes"); !errors.Is(err, ErrInvalidPolicy) {
		t.Fatalf("ParseMode(yes) = %v", err)
	}
	if err := s.SetPolicy(ctx, Policy{Mode: 9}); !errors.Is(err, ErrInvalidPolicy) {
		t.Fatalf("SetPolicy(9) = %v", err)
	}
}

func TestAdmitKnownPeerWritesNothing(t *testing.T) {
	s := newTestStore(t)
	a := newPeer(1, "alice")
	mustAdmit(t, s, a.obs(), t0)
	disk := onDisk(t, s)
	// Seen again within SeenResolution: nothing to write.
	mustAdmit(t, s, a.obs(), t0.Add(30*time.Second))
	if onDisk(t, s) != disk {
		t.Fatal("Admit of a known peer wrote")
	}
	// After SeenResolution, LastSeen is updated (one entry).
	v := mustAdmit(t, s, a.obs(), t0.Add(2*time.Minute))
	if !v.Record.LastSeen.Equal(t0.Add(2 * time.Minute)) {
		t.Fatalf("LastSeen %v", v.Record.LastSeen)
	}
	if onDisk(t, s) == disk {
		t.Fatal("LastSeen not written")
	}
	if r, _, _ := openStore(t, s.path[:len(s.path)-len(FileName)], Options{}).Lookup(a.key); !r.LastSeen.Equal(t0.Add(2 * time.Minute)) {
		t.Fatalf("LastSeen on disk %v", r.LastSeen)
	}
}

// TestDamagedStoreNeverOverwritten damages the files under a running
// store: it goes on answering from memory, refuses to write, and never
// overwrites what it cannot read.
func TestDamagedStoreNeverOverwritten(t *testing.T) {
	s := newTestStore(t)
	a, b := newPeer(1, "alice"), newPeer(2, "bob")
	mustAdmit(t, s, a.obs(), t0)
	if err := s.compactNow(ctx); err != nil {
		t.Fatal(err)
	}
	junk := bytes.Repeat([]byte("x"), 100)
	if err := os.WriteFile(s.Path(), junk, 0o600); err != nil {
		t.Fatal(err)
	}
	if v := mustAdmit(t, s, a.obs(), t0.Add(time.Second)); !v.Allow {
		t.Fatalf("admit from memory: %+v", v)
	}
	mustAdmit(t, s, b.obs(), t0)
	if err := s.Flush(ctx); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Flush over a damaged file = %v, want ErrCorrupt", err)
	}
	if _, err := s.Revoke(ctx, a.key, "x"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Revoke over a damaged file = %v, want ErrCorrupt", err)
	}
	if got := readFile(t, s.Path()); !bytes.Equal(got, junk) {
		t.Fatal("corrupt file was overwritten")
	}
	// A new process refuses to start on it.
	if _, err := openStore(t, s.path[:len(s.path)-len(FileName)], Options{}).List(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("List = %v", err)
	}
}

func TestBindingTeachesSigningKey(t *testing.T) {
	s := newTestStore(t)
	a := newPeer(1, "alice")
	o := a.obs()
	var err error
	if o.Binding, err = NewBinding(a.sign, a.key, t0); err != nil {
		t.Fatal(err)
	}
	v := mustAdmit(t, s, o, t0)
	if !v.Record.SigningKey.Equal(a.signPub()) {
		t.Fatalf("signing key not learned: %+v", v.Record)
	}
	// A binding for another key (relayed from elsewhere) teaches nothing.
	b := newPeer(2, "bob")
	ob := b.obs()
	ob.Binding = o.Binding
	v = mustAdmit(t, s, ob, t0)
	if !v.Allow || v.Record.SigningKey != nil {
		t.Fatalf("mismatched binding: %+v", v.Record)
	}
	if _, _, err := VerifyBinding(o.Binding, b.key); !errors.Is(err, ErrBindingMismatch) {
		t.Fatalf("VerifyBinding(other key) = %v", err)
	}
}

func TestFindPeer(t *testing.T) {
	s := newTestStore(t)
	a, b, c := newPeer(1, "alice"), newPeer(2, "bob"), newPeer(3, "bob")
	c.id = randomUUID(9)
	for _, p := range []testPeer{a, b} {
		mustAdmit(t, s, p.obs(), t0)
	}
	mustVerify(t, s, c) // a second "bob"
	tests := []struct {
		q    string
		want *testPeer
		err  error
	}{
		{"alice", &a, nil},
		{a.id.String()[:6], &a, nil},
		{strings.ToUpper(a.id.String()), &a, nil},
		{strings.ReplaceAll(a.id.String(), "-", "")[:12], &a, nil},
		{Fingerprint(b.key)[:7], &b, nil},
		{strings.ToLower(strings.ReplaceAll(Fingerprint(b.key), "-", "")), &b, nil},
		{"bob", nil, ErrAmbiguous},
		{"nobody", nil, ErrNotFound},
		{"", nil, ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.q, func(t *testing.T) {
			r, err := s.Find(tc.q)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Find(%q) = %v, want %v", tc.q, err, tc.err)
				}
				if tc.err == ErrAmbiguous {
					var ae *AmbiguousError
					if !errors.As(err, &ae) || len(ae.Candidates) != 2 || !strings.Contains(err.Error(), Fingerprint(b.key)) {
						t.Fatalf("ambiguity error %v does not list the candidates", err)
					}
				}
				return
			}
			if err != nil || r.Key != tc.want.key {
				t.Fatalf("Find(%q) = %s, %v; want %s", tc.q, r.Name, err, tc.want.name)
			}
		})
	}
}

func TestRevokeAndAcceptErrors(t *testing.T) {
	s := newTestStore(t)
	a := newPeer(1, "alice")
	mustAdmit(t, s, a.obs(), t0)
	if _, err := s.Accept(ctx, a.key); !errors.Is(err, ErrNoKeyChange) {
		t.Fatalf("Accept without change = %v", err)
	}
	if _, err := s.Accept(ctx, newPeer(9, "x").key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Accept unknown = %v", err)
	}
	ch := make(revokedCh, 4)
	s.opts.OnRevoked = ch.on
	r, err := s.Revoke(ctx, a.key, "lost laptop")
	if err != nil || r.State != StateRevoked || r.RevokeReason != "lost laptop" {
		t.Fatalf("Revoke = %+v, %v", r, err)
	}
	if got := ch.next(t); len(got) != 1 || got[0].Key != a.key {
		t.Fatalf("OnRevoked got %v", got)
	}
	if _, err := s.MarkVerified(ctx, newPeer(8, "x").key, uuid.UUID{}, "x", "qr", nil); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("MarkVerified(zero UUID) = %v", err)
	}
	if _, err := s.MarkVerified(ctx, a.key, a.id, "alice", "qr", nil); !errors.Is(err, ErrRevoked) {
		t.Fatalf("MarkVerified revoked = %v", err)
	}
	v := mustAdmit(t, s, a.obs(), t0)
	if v.Allow || !strings.Contains(v.Reason, "lost laptop") {
		t.Fatalf("revoked admitted: %+v", v)
	}
	rs, err := s.Revoked()
	if err != nil || len(rs) != 1 {
		t.Fatalf("Revoked() = %v, %v", rs, err)
	}
	// A UUID pinned to another key blocks MarkVerified.
	b := newPeer(2, "bob")
	mustAdmit(t, s, b.obs(), t0)
	if _, err := s.MarkVerified(ctx, newPeer(3, "x").key, b.id, "bob", "qr", nil); !errors.Is(err, ErrConflict) {
		t.Fatalf("MarkVerified conflicting UUID = %v", err)
	}
}

// TestTofuEviction: beyond MaxPeers tofu records, the least recently
// seen is forgotten; verified and revoked records never are.
func TestTofuEviction(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{MaxPeers: 2})
	v, r := newPeer(10, "verified"), newPeer(11, "revoked")
	mustVerify(t, s, v)
	if _, err := s.Revoke(ctx, r.key, "x"); err != nil {
		t.Fatal(err)
	}
	a, b, c := newPeer(1, "a"), newPeer(2, "b"), newPeer(3, "c")
	mustAdmit(t, s, a.obs(), t0)
	mustAdmit(t, s, b.obs(), t0)
	mustAdmit(t, s, a.obs(), t0) // a seen again: b is now the oldest
	if v := mustAdmit(t, s, c.obs(), t0); !v.Allow || !v.New {
		t.Fatalf("third peer: %+v", v)
	}
	for _, tc := range []struct {
		p    testPeer
		kept bool
	}{{a, true}, {b, false}, {c, true}, {v, true}, {r, true}} {
		if _, ok, _ := s.Lookup(tc.p.key); ok != tc.kept {
			t.Errorf("%s kept = %v, want %v", tc.p.name, ok, tc.kept)
		}
	}
	// The same on disk, read by another process.
	s2 := openStore(t, s.path[:len(s.path)-len(FileName)], Options{MaxPeers: 2})
	onDisk(t, s)
	if recs, _ := s2.List(); len(recs) != 4 {
		t.Fatalf("%d records on disk, want 4", len(recs))
	}
	if rv := mustAdmit(t, s, r.obs(), t0); rv.Allow {
		t.Fatal("revoked key admitted after eviction")
	}
}

func TestImpostorChurnWritesOnce(t *testing.T) {
	s := newTestStore(t)
	a := newPeer(1, "alice")
	mustAdmit(t, s, a.obs(), t0)
	var first string
	for i := range 10 {
		o := newPeer(100+i, "alice").obs()
		o.UUID = a.id
		if v := mustAdmit(t, s, o, t0.Add(time.Second)); v.Allow || v.KeyChange == nil {
			t.Fatalf("impostor %d: %+v", i, v)
		}
		disk := onDisk(t, s)
		if i == 0 {
			first = disk
		} else if disk != first {
			t.Fatalf("impostor %d wrote", i)
		}
	}
}

func TestRevokedUUIDStaysTaken(t *testing.T) {
	s := newTestStore(t)
	a := newPeer(1, "alice")
	mustAdmit(t, s, a.obs(), t0)
	if _, err := s.Revoke(ctx, a.key, "gone"); err != nil {
		t.Fatal(err)
	}
	o := newPeer(2, "mallory").obs()
	o.UUID = a.id
	if v := mustAdmit(t, s, o, t0); v.Allow {
		t.Fatalf("revoked peer's UUID claimed by another key: %+v", v)
	}
	if err := s.compactNow(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := parseFile(readFile(t, s.Path())); err != nil {
		t.Fatal(err)
	}
}

// TestAcceptAfterAuthorizerPinnedNewKey follows a C node that was
// reinstalled: its new key connects (the authorizer pins it by UUID, no
// name yet), its HELLO names it like the old one (key change), and the
// user accepts.
func TestAcceptAfterAuthorizerPinnedNewKey(t *testing.T) {
	s := newTestStore(t)
	old := newPeer(1, "printer")
	old.id = randomUUID(1)
	mustAdmit(t, s, old.obs(), t0)
	neu := newPeer(2, "printer")
	neu.id = randomUUID(2)
	if v := mustAdmit(t, s, Observation{UUID: neu.id, Key: neu.key}, t0); !v.Allow || !v.New {
		t.Fatalf("connection: %+v", v)
	}
	if v := mustAdmit(t, s, neu.obs(), t0); v.Allow || v.KeyChange == nil || v.KeyChange.Old != old.key {
		t.Fatalf("HELLO: %+v", v)
	}
	r, err := s.Accept(ctx, old.key)
	if err != nil {
		t.Fatal(err)
	}
	if r.Key != neu.key || r.UUID != neu.id || r.Name != "printer" {
		t.Fatalf("accepted %+v", r)
	}
	if recs, _ := s.List(); len(recs) != 1 {
		t.Fatalf("%d records after the merge", len(recs))
	}
	if v := mustAdmit(t, s, neu.obs(), t0); !v.Allow {
		t.Fatalf("after accept: %+v", v)
	}
}

func TestAdmitRefusesMissingIdentity(t *testing.T) {
	s := newTestStore(t)
	a := newPeer(1, "alice")
	for _, o := range []Observation{{UUID: a.id}, {Key: a.key}} {
		if v := mustAdmit(t, s, o, t0); v.Allow {
			t.Fatalf("Admit(%+v) allowed", o)
		}
	}
	if recs, _ := s.List(); len(recs) != 0 {
		t.Fatal("recorded an incomplete observation")
	}
}

func TestBindingFromTheFutureIgnored(t *testing.T) {
	s := newTestStore(t)
	a := newPeer(1, "alice")
	o := a.obs()
	var err error
	if o.Binding, err = NewBinding(a.sign, a.key, t0.Add(1000*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if v := mustAdmit(t, s, o, t0); !v.Allow || v.Record.SigningKey != nil {
		t.Fatalf("future binding learned: %+v", v.Record)
	}
}
