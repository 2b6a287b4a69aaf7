package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zyre-go/zyre/trust"
)

// usertry3 #1 and #2: a stranger on the same network makes its own key
// and calls itself like a paired device.

// pairedRoom makes a verified "room", as on the trial's phones.
func (c *trustCLI) pairedRoom() trustPeer {
	c.t.Helper()
	room := newTrustPeer(10, "room")
	if _, err := c.st.MarkVerified(context.Background(), room.key, room.id, room.name, "qr", nil); err != nil {
		c.t.Fatal(err)
	}
	return room
}

func TestTrustStrangerNamedLikePairedDevice(t *testing.T) {
	c := newTrustCLI(t)
	room := c.pairedRoom()
	stranger := newTrustPeer(12, "room") // its own key, so its own UUID
	// The node admits the connection (by UUID: pinned, nameless), then
	// refuses the HELLO that names it room.
	if v, _ := c.st.Admit(context.Background(), trust.Observation{UUID: stranger.id, Key: stranger.key}, trustT0); !v.Allow {
		t.Fatalf("connection: %+v", v)
	}
	if v := c.admit(stranger, trustT0.Add(time.Second)); v.Allow || v.KeyChange != nil {
		t.Fatalf("stranger named room: %+v", v)
	}
	fp := trust.Fingerprint(stranger.key)
	list := c.mustRun("list")
	if strings.Contains(list, "KEY CHANGED") || strings.Contains(list, "KEY-CHANGED") {
		t.Fatalf("the verified room shows a key change:\n%s", list)
	}
	show := c.mustRun("show", "room")
	if strings.Contains(show, "KEY CHANGED") || !strings.Contains(show, room.key.Z85()) {
		t.Fatalf("show room:\n%s", show)
	}
	// The stranger's own record says what happened, once.
	if show := c.mustRun("show", fp); !strings.Contains(show, "called itself room, the name of verified room ("+trust.Fingerprint(room.key)+")") {
		t.Fatalf("show stranger:\n%s", show)
	}
	// accept has nothing to accept: the room keeps its key.
	if code, _, errs := c.run("accept", fp); code != 1 || !strings.Contains(errs, "no key change") {
		t.Fatalf("accept of the stranger: %d %s", code, errs)
	}
	// The stranger's fingerprint names the stranger only: forget it, and
	// the same fingerprint names nothing (on main, it then named the room).
	out := c.mustRun("forget", fp[:4])
	if !strings.Contains(out, "forgot - ("+fp) {
		t.Fatalf("forget %s: %s", fp[:4], out)
	}
	if code, out, errs := c.run("forget", fp[:4]); code != 1 || !strings.Contains(errs, "no such peer") {
		t.Fatalf("second forget %s: %d %s %s", fp[:4], code, out, errs)
	}
	if r, ok, _ := c.st.Lookup(room.key); !ok || r.State != trust.StateVerified || r.KeyChange != nil {
		t.Fatalf("room after all that: %+v %v", r, ok)
	}
}

// TestTrustOldStoreNameChange: the trial's stores already hold a pending
// change from a stranger on the verified room. It is not shown, and
// accept cannot give the room's record to the stranger.
func TestTrustOldStoreNameChange(t *testing.T) {
	c := newTrustCLI(t)
	room, phone1 := newTrustPeer(10, "room"), newTrustPeer(11, "phone1")
	stranger := newTrustPeer(12, "room")
	at := trustT0.Format(time.RFC3339)
	rec := func(p trustPeer, state string, extra map[string]any) map[string]any {
		m := map[string]any{"uuid": p.id.String(), "name": p.name, "key": p.key.Z85(), "fingerprint": trust.Fingerprint(p.key),
			"bound": true, "state": state, "first_seen": at, "last_seen": at}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	file := map[string]any{"version": 2, "generation": 0,
		"policy": map[string]any{"mode": "tofu", "introductions": true, "verified_revoke": true},
		"peers": []any{
			rec(room, "verified", map[string]any{"verified_method": "qr", "verified_at": at, "key_change": map[string]any{
				"uuid": stranger.id.String(), "name": "room", "key": stranger.key.Z85(), "fingerprint": trust.Fingerprint(stranger.key),
				"seen": at, "addr": "tcp://10.79.0.4:5670"}}),
			rec(phone1, "introduced", map[string]any{"introduced_by": room.key.Z85()}),
		},
		"logs": []any{}}
	b, err := json.MarshalIndent(file, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(t.TempDir(), "zyre")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "trust.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	c.home = home
	list := c.mustRun("list")
	if strings.Contains(list, "KEY") || !strings.Contains(list, "introduced by room") {
		t.Fatalf("list of the old store:\n%s", list)
	}
	if code, _, errs := c.run("accept", trust.Fingerprint(stranger.key)); code != 1 {
		t.Fatalf("accept of the stranger's key succeeded: %s", errs)
	}
	st, err := trust.Open(home, trust.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r, _, _ := st.Lookup(room.key); r.State != trust.StateVerified {
		t.Fatalf("room: %+v", r)
	}
	if r, _, _ := st.Lookup(phone1.key); r.State != trust.StateIntroduced {
		t.Fatalf("phone1: %+v", r)
	}
}

// TestTrustReject: a key change of an unbound peer (a C zyre node) can be
// dismissed: the warning goes, the record keeps its key.
func TestTrustReject(t *testing.T) {
	c := newTrustCLI(t)
	_, _, carol, carol2 := c.populate()
	list := c.mustRun("list")
	if !strings.Contains(list, "zyre trust reject "+trust.Fingerprint(carol2.key)) {
		t.Fatalf("the warning does not say how to dismiss it:\n%s", list)
	}
	out := c.mustRun("reject", trust.Fingerprint(carol2.key)[:9])
	if !strings.Contains(out, "rejected the key "+trust.Fingerprint(carol2.key)) || !strings.Contains(out, "carol keeps its key "+trust.Fingerprint(carol.key)) {
		t.Fatalf("reject: %s", out)
	}
	if list := c.mustRun("list"); strings.Contains(list, "KEY") {
		t.Fatalf("the warning stays after reject:\n%s", list)
	}
	if code, _, errs := c.run("reject", "carol"); code != 1 || !strings.Contains(errs, "no key change") {
		t.Fatalf("second reject: %d %s", code, errs)
	}
	if r, _, _ := c.st.Lookup(carol.key); r.KeyChange != nil || r.State != trust.StateTOFU {
		t.Fatalf("carol: %+v", r)
	}
	if v := c.admit(carol2, trustT0.Add(time.Hour)); v.Allow {
		t.Fatalf("the rejected key was admitted: %+v", v)
	}
}

// TestTrustAcceptAnotherDevice: a bound UUID presented with another key
// (an impostor of alice's UUID) cannot be accepted; the error says what
// to do.
func TestTrustAcceptAnotherDevice(t *testing.T) {
	c := newTrustCLI(t)
	alice := newTrustPeer(1, "alice")
	c.admit(alice, trustT0)
	imp := newTrustPeer(2, "alice")
	imp.id = alice.id
	if v := c.admit(imp, trustT0); v.KeyChange == nil {
		t.Fatalf("impostor: %+v", v)
	}
	code, _, errs := c.run("accept", trust.Fingerprint(imp.key))
	if code != 1 || !strings.Contains(errs, "another device") || !strings.Contains(errs, "pair with it") || !strings.Contains(errs, "zyre trust reject") {
		t.Fatalf("accept of a bound UUID's other key: %d %s", code, errs)
	}
	if r, _, _ := c.st.Lookup(alice.key); r.Key != alice.key {
		t.Fatal("alice's record moved")
	}
}
