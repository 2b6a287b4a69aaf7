package trust

import (
	"strings"
	"testing"
)

// TestNotesStayReadable: every withdrawn revocation appends a line to the
// record's notes; however many revoke/unrevoke rounds there are, the
// store stays readable (notes over 4096 octets used to make every later
// read fail with ErrCorrupt: the node refused everyone).
func TestNotesStayReadable(t *testing.T) {
	s := newTestStore(t)
	phone := newPeer(4, "phone")
	mustVerify(t, s, phone)
	reason := strings.Repeat("r", 255)
	for i := 0; i < 40; i++ {
		if _, err := s.Revoke(ctx, phone.key, reason); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Unrevoke(ctx, phone.key, reason); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
	}
	onDisk(t, s)
	s2 := openStore(t, s.path[:len(s.path)-len(FileName)], Options{})
	r, ok, err := s2.Lookup(phone.key)
	if err != nil || !ok {
		t.Fatalf("store unreadable after 40 rounds: %v", err)
	}
	if len(r.Notes) > maxNotesLen || !strings.HasSuffix(r.Notes, reason) {
		t.Fatalf("notes of %d octets, ending %q", len(r.Notes), r.Notes[max(0, len(r.Notes)-20):])
	}
	// A user's notes too long are refused, not written.
	if err := s2.SetNotes(ctx, phone.key, strings.Repeat("n", maxNotesLen+1)); err == nil {
		t.Fatal("SetNotes of too long notes accepted")
	}
	if err := s2.SetNotes(ctx, phone.key, "short"); err != nil {
		t.Fatal(err)
	}
}
