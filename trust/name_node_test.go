package trust_test

import (
	"context"
	"strings"
	"testing"

	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

// TestNodeStrangerWithPairedName (usertry3 #1): a stranger runs its own
// node (its own key, so its own UUID) named like a device alice paired
// with. Alice refuses it once, with a Refused event that says so in plain
// words (trust.ErrNameTaken); no KeyChanged event, nothing recorded on
// bob's verified record; bob keeps working.
func TestNodeStrangerWithPairedName(t *testing.T) {
	port := nodeBeaconPort()
	a := newNodeIdent(t, "alice")
	b := newNodeIdent(t, "bob")
	if _, err := a.store.MarkVerified(context.Background(), b.pub, b.uuid(), "bob", "qr", b.signPub()); err != nil {
		t.Fatal(err)
	}
	na := a.start(t, port)
	nb := b.start(t, port)
	await(t, na, "ENTER bob", entered(b.uuid()), nil)

	s := newNodeIdent(t, "bob") // the stranger, named bob
	s.start(t, port)
	keyChanged := func(e zre.Event) bool { _, ok := e.(*zre.KeyChanged); return ok }
	e := await(t, na, "REFUSED stranger named bob", refused(s.uuid(), s.pub, zre.StageHello, trust.ErrNameTaken), keyChanged).(*zre.Refused)
	for _, want := range []string{"calls itself bob", trust.Fingerprint(b.pub), trust.Fingerprint(s.pub), "pair with it again"} {
		if !strings.Contains(e.Reason.Error(), want) {
			t.Errorf("reason %q lacks %q", e.Reason, want)
		}
	}
	if err := a.store.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r, _, _ := a.store.Lookup(b.pub); r.KeyChange != nil || r.State != trust.StateVerified {
		t.Fatalf("bob's record after the stranger: %+v", r)
	}
	if err := na.Whisper(b.uuid(), []byte("hi bob")); err != nil {
		t.Fatal(err)
	}
	await(t, nb, "WHISPER from alice", whispered(a.uuid(), "hi bob"), nil)
}
