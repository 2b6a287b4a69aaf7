package agent

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

// TestFindTarget: a name shared by records resolves among those a command
// that acts on trusted peers could act on (usertry3 #7).
func TestFindTarget(t *testing.T) {
	ctx := context.Background()
	st, err := trust.Open(t.TempDir(), trust.Options{})
	if err != nil {
		t.Fatal(err)
	}
	seed := byte(0)
	key := func() (curve.PublicKey, uuid.UUID) {
		seed++
		pub, _, err := curve.GenerateKeyPair(rand.NewChaCha8([32]byte{seed}))
		if err != nil {
			t.Fatal(err)
		}
		return pub, zre.UUIDFromKey(pub)
	}
	now := time.Now()
	// tofu records first: a stranger named like a verified peer, and two
	// strangers sharing a name
	tofu := func(name string) uuid.UUID {
		k, id := key()
		if _, err := st.Admit(ctx, trust.Observation{UUID: id, Name: name, Key: k, Addr: "127.0.0.1:1"}, now); err != nil {
			t.Fatal(err)
		}
		return id
	}
	verified := func(name string) uuid.UUID {
		k, id := key()
		if _, err := st.MarkVerified(ctx, k, id, name, "test", nil); err != nil {
			t.Fatal(err)
		}
		return id
	}
	roomStranger := tofu("room")
	tofu("guest")
	tofu("guest")
	room := verified("room")
	lostKey, lost := key()
	if _, err := st.MarkVerified(ctx, lostKey, lost, "phone2", "test", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Revoke(ctx, lostKey, "lost"); err != nil {
		t.Fatal(err)
	}
	phone2 := verified("phone2")
	tw1, tw2 := verified("twin"), verified("twin")
	// wait for the tofu records (written by the store's goroutine)
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := st.Find(roomStranger.String()); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the tofu records were not written in a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}

	for _, tc := range []struct {
		q    string
		tofu bool
		want uuid.UUID
		err  string // substring of the error; "" wants want
	}{
		{q: "phone2", want: phone2},             // the revoked one is never a target
		{q: "phone2", tofu: true, want: phone2}, // nor with tofu
		{q: "room", want: room},                 // the stranger does not make it ambiguous
		{q: "room", tofu: true, err: `"room" names 2 trusted peers`},
		{q: "twin", err: "name one by its UUID (" + tw1.String()[:8] + " or " + tw2.String()[:8] + ")"},
		{q: "guest", err: "ambiguous peer \"guest\" matches 2 peers"}, // none trusted: the store's error
		{q: lost.String()[:8], want: lost},                            // one match: given, the caller refuses it
		{q: "nobody", err: "no known name"},
	} {
		r, err := FindTarget(st, tc.q, tc.tofu)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("FindTarget(%q, tofu %v) = %s, %v; want an error with %q", tc.q, tc.tofu, r.UUID, err, tc.err)
			}
			if strings.Contains(tc.err, "trusted peers") && !errors.Is(err, trust.ErrAmbiguous) {
				t.Errorf("FindTarget(%q): %v is not ErrAmbiguous", tc.q, err)
			}
			continue
		}
		if err != nil || r.UUID != tc.want {
			t.Errorf("FindTarget(%q, tofu %v) = %s, %v; want %s", tc.q, tc.tofu, r.UUID, err, tc.want)
		}
	}
}
