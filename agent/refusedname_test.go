package agent

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

// TestRefusedNamedFromTrust: a peer refused before its HELLO (a revoked
// phone) or refusing us is named for the agent's clients by its record,
// as the one-shot commands name it (user trial 5: the chats said
// "REFUSED unknown f975697e ...: its key is revoked" of the family's
// phone2); a name the node knows is kept, and a key with no record stays
// nameless.
func TestRefusedNamedFromTrust(t *testing.T) {
	st, err := trust.Open(t.TempDir(), trust.Options{})
	if err != nil {
		t.Fatal(err)
	}
	known, _, err := curve.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	stranger, _, err := curve.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	if _, err := st.MarkVerified(context.Background(), known, id, "phone2", "test", nil); err != nil {
		t.Fatal(err)
	}
	s := &Server{cfg: Config{Trust: st}}
	for _, tc := range []struct {
		ev   zre.Event
		want string
	}{
		{&zre.Refused{EventHeader: zre.EventHeader{Peer: id}, Key: known}, "phone2"},
		{&zre.Denied{EventHeader: zre.EventHeader{Peer: id}, Key: known}, "phone2"},
		{&zre.Refused{EventHeader: zre.EventHeader{Peer: id, Name: "room"}, Key: known}, "room"},
		{&zre.Refused{EventHeader: zre.EventHeader{Peer: uuid.New()}, Key: stranger}, ""},
		{&zre.Enter{EventHeader: zre.EventHeader{Peer: id}}, ""},
	} {
		ev := EventOf(tc.ev, time.Now())
		s.nameRefused(tc.ev, &ev)
		if ev.Name != tc.want {
			t.Errorf("%s: name %q, want %q", tc.ev.Type(), ev.Name, tc.want)
		}
	}
}
