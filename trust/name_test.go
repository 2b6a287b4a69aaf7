package trust

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The trial's story (usertry3 #1, #2): a stranger on the same network
// makes its own key and calls itself like a device the user paired. It is
// another device, whatever the record of that name: refused, told on the
// stranger, and nothing recorded on the genuine record.

// knownName makes s hold a record named "room" in the given state, with
// the introducer (a verified "hub") when introduced.
func knownName(t *testing.T, s *Store, state State) testPeer {
	t.Helper()
	room := newPeer(1, "room")
	switch state {
	case StateVerified:
		mustVerify(t, s, room)
	case StateIntroduced:
		hub := newPeer(9, "hub")
		mustVerify(t, s, hub)
		mustApply(t, s, sign(t, hub, 1, nil, t0, &Vouch{Key: room.key, UUID: room.id, Name: room.name}).Raw)
		if v := mustAdmit(t, s, room.obs(), t0); !v.Allow || v.Record.State != StateIntroduced {
			t.Fatalf("room not introduced: %+v", v)
		}
	case StateRevoked:
		mustAdmit(t, s, room.obs(), t0)
		if _, err := s.Revoke(ctx, room.key, "lost"); err != nil {
			t.Fatal(err)
		}
	}
	return room
}

func TestNameOfKnownPeerRefused(t *testing.T) {
	for _, state := range []State{StateVerified, StateIntroduced, StateRevoked} {
		for _, pinned := range []bool{false, true} {
			name := state.String()
			if pinned {
				name += "/pinned on connection"
			}
			t.Run(name, func(t *testing.T) {
				s := newTestStore(t)
				room := knownName(t, s, state)
				stranger := newPeer(2, "room") // its own key, its own (bound) UUID
				if pinned {
					// The node admits the connection by UUID, before HELLO
					// tells the name: the key is pinned, nameless.
					if v := mustAdmit(t, s, Observation{UUID: stranger.id, Key: stranger.key}, t0); !v.Allow || !v.New {
						t.Fatalf("connection: %+v", v)
					}
				}
				v := mustAdmit(t, s, stranger.obs(), t0.Add(time.Minute))
				if v.Allow || v.KeyChange != nil || v.NameTaken == nil {
					t.Fatalf("stranger named room: %+v", v)
				}
				if !errors.Is(v.NameTaken, ErrNameTaken) || v.NameTaken.Known.Key != room.key || v.NameTaken.Key != stranger.key {
					t.Fatalf("name taken %+v", v.NameTaken)
				}
				for _, want := range []string{"another key", Fingerprint(stranger.key), "calls itself room", Fingerprint(room.key), "pair with it"} {
					if !strings.Contains(v.Reason, want) {
						t.Errorf("reason %q lacks %q", v.Reason, want)
					}
				}
				// The genuine record is untouched: no key change, same state.
				r, _, _ := s.Lookup(room.key)
				if r.KeyChange != nil || r.State != state {
					t.Fatalf("the genuine record changed: %+v", r)
				}
				// Not admitted under another state either, and told once.
				v2 := mustAdmit(t, s, stranger.obs(), t0.Add(time.Hour))
				if v2.Allow || v2.NameTaken == nil {
					t.Fatalf("again: %+v", v2)
				}
				sr, ok, _ := s.Lookup(stranger.key)
				if ok != pinned {
					t.Fatalf("stranger recorded: %v, want %v", ok, pinned)
				}
				if pinned {
					if sr.State != StateTOFU || sr.Name == "room" || strings.Count(sr.Notes, "called itself room") != 1 {
						t.Fatalf("stranger's record: %+v", sr)
					}
				}
				// Find "room" names the genuine record only.
				if f, err := s.Find("room"); err != nil || f.Key != room.key {
					t.Fatalf("Find(room) = %+v, %v", f, err)
				}
			})
		}
	}
}

// TestNameOfKnownPeerUnboundPresenter: a C node (random UUID) calling
// itself like a verified bound device is no key change of it either.
func TestNameOfKnownPeerUnboundPresenter(t *testing.T) {
	s := newTestStore(t)
	room := knownName(t, s, StateVerified)
	c := newPeer(3, "room")
	c.id = randomUUID(3)
	v := mustAdmit(t, s, c.obs(), t0)
	if v.Allow || v.KeyChange != nil || v.NameTaken == nil {
		t.Fatalf("unbound stranger named room: %+v", v)
	}
	if r, _, _ := s.Lookup(room.key); r.KeyChange != nil {
		t.Fatalf("key change recorded on the verified room: %+v", r.KeyChange)
	}
}

// TestNameOfKnownPeerVouched: a new key that a verified peer vouched for
// is no stranger: it is admitted as its own record, introduced (a phone
// reset and paired again with the room: the other phones learn it).
func TestNameOfKnownPeerVouched(t *testing.T) {
	for _, state := range []State{StateVerified, StateIntroduced, StateRevoked} {
		t.Run(state.String(), func(t *testing.T) {
			s := newTestStore(t)
			old := knownName(t, s, state)
			hub := newPeer(9, "hub")
			if state != StateIntroduced {
				mustVerify(t, s, hub)
			}
			neu := newPeer(2, "room")
			seq := uint64(1)
			var prev *Statement
			if state == StateIntroduced {
				seq, prev = 2, mustStmt(t, s, hub, 1)
			}
			mustApply(t, s, sign(t, hub, seq, prev, t0, &Vouch{Key: neu.key, UUID: neu.id, Name: neu.name}).Raw)
			v := mustAdmit(t, s, neu.obs(), t0)
			if !v.Allow || v.Record.State != StateIntroduced || v.Record.Key != neu.key || v.NameTaken != nil {
				t.Fatalf("vouched room: %+v", v)
			}
			if r, _, _ := s.Lookup(old.key); r.KeyChange != nil || r.State != state {
				t.Fatalf("old room changed: %+v", r)
			}
		})
	}
}

// TestAcceptRefusesAnotherDevice: a pending change that a bound peer
// presented under another UUID (written by an older zyre, or by one
// beside this one) never moves the record to that key.
func TestAcceptRefusesAnotherDevice(t *testing.T) {
	s := newTestStore(t)
	room := knownName(t, s, StateVerified)
	phone := newPeer(4, "phone1")
	mustApply(t, s, sign(t, room, 1, nil, t0, &Vouch{Key: phone.key, UUID: phone.id, Name: phone.name}).Raw)
	mustAdmit(t, s, phone.obs(), t0)
	stranger := newPeer(2, "room")
	kc := &KeyChange{UUID: stranger.id, Name: "room", Old: room.key, New: stranger.key, OldFingerprint: Fingerprint(room.key),
		NewFingerprint: Fingerprint(stranger.key), Bound: true, Seen: t0}
	s.changeNow(func(st *state) []Record {
		st.change(st.byKey[room.key], func(r *Record) { r.KeyChange = kc })
		return nil
	})
	_, err := s.Accept(ctx, room.key)
	if !errors.Is(err, ErrAnotherDevice) || !strings.Contains(err.Error(), "pair with it") {
		t.Fatalf("Accept = %v, want ErrAnotherDevice", err)
	}
	r, _, _ := s.Lookup(room.key)
	if r.State != StateVerified || r.Key != room.key {
		t.Fatalf("room after the refused accept: %+v", r)
	}
	if p, _, _ := s.Lookup(phone.key); p.State != StateIntroduced {
		t.Fatalf("phone1 lost its introduction: %+v", p)
	}
	// Rejected: dismissed, the record as it was.
	got, err := s.Reject(ctx, room.key)
	if err != nil || got.New != stranger.key {
		t.Fatalf("Reject = %+v, %v", got, err)
	}
	if r, _, _ := s.Lookup(room.key); r.KeyChange != nil || r.State != StateVerified {
		t.Fatalf("after reject: %+v", r)
	}
	if _, err := s.Reject(ctx, room.key); !errors.Is(err, ErrNoKeyChange) {
		t.Fatalf("second Reject = %v", err)
	}
}

// TestOldNameChangeDroppedOnRead: stores written by an older zyre hold
// such a change on the verified record (the trial's phones): it is not
// read back; an unbound peer's genuine key change is.
func TestOldNameChangeDroppedOnRead(t *testing.T) {
	home := filepath.Join(t.TempDir(), "zyre")
	s := openStore(t, home, Options{})
	room := knownName(t, s, StateVerified)
	c := newPeer(5, "printer")
	c.id = randomUUID(5)
	mustAdmit(t, s, c.obs(), t0)
	c2 := newPeer(6, "printer")
	c2.id = randomUUID(6)
	if v := mustAdmit(t, s, c2.obs(), t0); v.KeyChange == nil {
		t.Fatalf("unbound key change: %+v", v)
	}
	stranger := newPeer(2, "room")
	s.changeNow(func(st *state) []Record {
		st.change(st.byKey[room.key], func(r *Record) {
			r.KeyChange = &KeyChange{UUID: stranger.id, Name: "room", Old: room.key, New: stranger.key,
				OldFingerprint: Fingerprint(room.key), NewFingerprint: Fingerprint(stranger.key), Bound: true, Seen: t0}
		})
		return nil
	})
	if err := s.compactNow(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readFile(t, s.Path())), stranger.key.Z85()) {
		t.Fatal("the old change is not on disk: the test tests nothing")
	}
	s2 := openStore(t, home, Options{})
	if r, _, _ := s2.Lookup(room.key); r.KeyChange != nil || r.State != StateVerified {
		t.Fatalf("old name change read back: %+v", r.KeyChange)
	}
	if r, _, _ := s2.Lookup(c.key); r.KeyChange == nil || r.KeyChange.New != c2.key {
		t.Fatalf("the unbound key change was lost: %+v", r)
	}
}

// TestFindNotThroughKeyChange: PEER names a record by its own name, UUID
// or fingerprint, never by the key it was presented with (usertry3 #1:
// "forget JEN7" deleted the verified room); FindKeyChange, for accept and
// reject, names a change by the new key's fingerprint.
func TestFindNotThroughKeyChange(t *testing.T) {
	s := newTestStore(t)
	old := newPeer(1, "printer")
	old.id = randomUUID(1)
	mustAdmit(t, s, old.obs(), t0)
	neu := newPeer(2, "printer")
	neu.id = randomUUID(2)
	if v := mustAdmit(t, s, neu.obs(), t0); v.KeyChange == nil {
		t.Fatalf("no key change: %+v", v)
	}
	fp := strings.ReplaceAll(Fingerprint(neu.key), "-", "")[:6]
	if r, err := s.Find(fp); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Find(new fingerprint) = %+v, %v; want ErrNotFound", r, err)
	}
	if r, err := s.FindKeyChange(fp); err != nil || r.Key != old.key {
		t.Fatalf("FindKeyChange(new fingerprint) = %+v, %v", r, err)
	}
	if r, err := s.FindKeyChange("printer"); err != nil || r.Key != old.key {
		t.Fatalf("FindKeyChange(name) = %+v, %v", r, err)
	}
	// The new key pinned on its own (connection before HELLO): its
	// fingerprint names that record for Find, and the change for
	// FindKeyChange.
	mustAdmit(t, s, Observation{UUID: neu.id, Key: neu.key}, t0)
	if r, err := s.Find(fp); err != nil || r.Key != neu.key {
		t.Fatalf("Find(new fingerprint) = %+v, %v; want the new key's record", r, err)
	}
	if r, err := s.FindKeyChange(fp); err != nil || r.Key != old.key {
		t.Fatalf("FindKeyChange(new fingerprint) = %+v, %v", r, err)
	}
}

// TestFindUsable (usertry3 #6): phone2's old key revoked ("lost"), the
// re-created phone2 paired: "phone2" names the paired one for commands
// that take trusted peers only; a stranger's tofu record of a paired
// name does not make it ambiguous; two trusted ones still are.
func TestFindUsable(t *testing.T) {
	s := newTestStore(t)
	old := newPeer(1, "phone2")
	mustAdmit(t, s, old.obs(), t0)
	if _, err := s.Revoke(ctx, old.key, "lost"); err != nil {
		t.Fatal(err)
	}
	neu := newPeer(2, "phone2")
	mustVerify(t, s, neu)
	trusted := func(r *Record) bool { return r.Trusted() }
	if _, err := s.Find("phone2"); !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("Find(phone2) = %v, want ambiguous", err)
	}
	if r, err := s.FindUsable("phone2", trusted); err != nil || r.Key != neu.key {
		t.Fatalf("FindUsable(phone2) = %+v, %v", r, err)
	}
	// A tofu record named like it (pinned by an older zyre, say).
	str := newPeer(3, "other")
	mustAdmit(t, s, str.obs(), t0)
	s.changeNow(func(st *state) []Record {
		r := st.byKey[str.key]
		st.change(r, func(r *Record) { r.Name = "phone2" })
		return nil
	})
	if r, err := s.FindUsable("phone2", trusted); err != nil || r.Key != neu.key {
		t.Fatalf("FindUsable(phone2) with a tofu namesake = %+v, %v", r, err)
	}
	// None usable: Find's answer.
	if _, err := s.FindUsable("phone2", func(*Record) bool { return false }); !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("none usable: %v", err)
	}
	// Two usable: still ambiguous, listing those two.
	twin := newPeer(4, "phone2")
	mustVerify(t, s, twin)
	var ae *AmbiguousError
	if _, err := s.FindUsable("phone2", trusted); !errors.As(err, &ae) || len(ae.Candidates) != 2 {
		t.Fatalf("two trusted phone2: %v", err)
	}
}

// TestKeyChangeReasonOnce (usertry3 #10): the refusal of a key change
// names the old and the new fingerprint once each (chat prints it).
func TestKeyChangeReasonOnce(t *testing.T) {
	s := newTestStore(t)
	c := newPeer(1, "printer")
	c.id = randomUUID(1)
	mustAdmit(t, s, c.obs(), t0)
	c2 := newPeer(2, "printer")
	c2.id = randomUUID(1)
	v := mustAdmit(t, s, c2.obs(), t0)
	if v.KeyChange == nil || strings.Count(v.Reason, Fingerprint(c.key)) != 1 || strings.Count(v.Reason, Fingerprint(c2.key)) != 1 || !strings.Contains(v.Reason, "KEY CHANGED") {
		t.Fatalf("reason %q", v.Reason)
	}
}

// TestNameOfKnownPeerOldNamesake: a stranger pinned as tofu under an
// introduced phone's name by an older zyre (usertry3 #2: two "phone1")
// loses the name when it comes back, so that the name stands for the
// introduced phone alone.
func TestNameOfKnownPeerOldNamesake(t *testing.T) {
	s := newTestStore(t)
	room := knownName(t, s, StateVerified)
	phone1 := newPeer(11, "phone1")
	mustApply(t, s, sign(t, room, 1, nil, t0, &Vouch{Key: phone1.key, UUID: phone1.id, Name: phone1.name}).Raw)
	mustAdmit(t, s, phone1.obs(), t0)
	str := newPeer(12, "phone1")
	mustAdmit(t, s, Observation{UUID: str.id, Key: str.key}, t0)
	s.changeNow(func(st *state) []Record {
		st.change(st.byKey[str.key], func(r *Record) { r.Name = "phone1" })
		return nil
	})
	if _, err := s.Find("phone1"); !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("the old namesake is not there: %v", err)
	}
	if v := mustAdmit(t, s, str.obs(), t0.Add(time.Minute)); v.Allow || v.NameTaken == nil {
		t.Fatalf("the namesake again: %+v", v)
	}
	if r, err := s.Find("phone1"); err != nil || r.Key != phone1.key {
		t.Fatalf("Find(phone1) = %+v, %v", r, err)
	}
	if r, _, _ := s.Lookup(str.key); r.Name != "" || strings.Count(r.Notes, "called itself phone1") != 1 {
		t.Fatalf("the namesake's record: %+v", r)
	}
}

// TestOwnNameRefused: a new key presenting this device's own name
// (Options.SelfName) is another device calling itself like this one
// (usertry3 #4: a second "phone1" on phone1 itself): refused as a known
// name is, with a notice that says so; this device's own key, another
// name, and a key a verified peer vouched for are admitted as before.
func TestOwnNameRefused(t *testing.T) {
	self := newPeer(1, "phone1")
	for _, pinned := range []bool{false, true} {
		t.Run(map[bool]string{false: "new", true: "pinned on connection"}[pinned], func(t *testing.T) {
			s := openStore(t, filepath.Join(t.TempDir(), "zyre"), Options{SelfName: self.name, SelfKey: self.key})
			stranger := newPeer(2, "phone1")
			if pinned {
				if v := mustAdmit(t, s, Observation{UUID: stranger.id, Key: stranger.key}, t0); !v.Allow || !v.New {
					t.Fatalf("connection: %+v", v)
				}
			}
			v := mustAdmit(t, s, stranger.obs(), t0.Add(time.Minute))
			if v.Allow || v.KeyChange != nil || v.NameTaken == nil || !errors.Is(v.NameTaken, ErrNameTaken) || !v.NameTaken.Self {
				t.Fatalf("stranger named like this device: %+v", v)
			}
			want := "a device with another key (" + Fingerprint(stranger.key) + ") calls itself phone1, the name of this device (" + Fingerprint(self.key) + "); refused"
			if !strings.HasPrefix(v.Reason, want) || strings.Contains(v.Reason, "pair with it") {
				t.Errorf("reason %q, want %q...", v.Reason, want)
			}
			if r, ok, _ := s.Lookup(stranger.key); ok != pinned || ok && (r.Name == "phone1" || !strings.Contains(r.Notes, "the name of this device")) {
				t.Fatalf("stranger recorded %v: %+v", ok, r)
			}
			// Another name, or no name yet, is admitted (tofu).
			other := newPeer(3, "phone2")
			if v := mustAdmit(t, s, other.obs(), t0); !v.Allow {
				t.Fatalf("another name: %+v", v)
			}
		})
	}
	// Vouched for by a verified peer: introduced, whatever the name, as
	// for a known record's name (rule 6).
	s := openStore(t, filepath.Join(t.TempDir(), "zyre"), Options{SelfName: self.name, SelfKey: self.key})
	hub := newPeer(9, "hub")
	mustVerify(t, s, hub)
	twin := newPeer(4, "phone1")
	mustApply(t, s, sign(t, hub, 1, nil, t0, &Vouch{Key: twin.key, UUID: twin.id, Name: twin.name}).Raw)
	if v := mustAdmit(t, s, twin.obs(), t0); !v.Allow || v.Record.State != StateIntroduced {
		t.Fatalf("vouched-for key named phone1: %+v", v)
	}
	// Without SelfName (a store opened by a command with no node), no
	// such rule.
	s = newTestStore(t)
	if v := mustAdmit(t, s, newPeer(2, "phone1").obs(), t0); !v.Allow {
		t.Fatalf("without SelfName: %+v", v)
	}
}
