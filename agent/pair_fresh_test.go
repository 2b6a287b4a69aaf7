package agent

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/keystore"
	"github.com/zyre-go/zyre/pairing"
)

// Through the agent, a wrong short code spends that code only: the
// client is told who spent it and the fresh code (stage "code"), and the
// fresh code pairs (user trial 5 #2).
func TestPairThroughAgentFreshCode(t *testing.T) {
	alice, bob := newDevice(t, "alice"), newDevice(t, "bob")
	sock := filepath.Join(t.TempDir(), "run", client.SocketName)
	startSecureAgent(t, alice, sock)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	codes := make(chan client.PairProgress, 4)
	p, shown := showPair(t, ctx, sock, client.PairArgs{Loopback: true, Listen: "127.0.0.1:0"},
		client.PairHandler{Code: func(p client.PairProgress) { codes <- p }, Confirm: func(context.Context, string) error { return nil }})
	wrong := []byte(p.Code)
	wrong[0] = '0' + (wrong[0]-'0'+1)%10
	bo := pairing.Options{Identity: bob.id, Recorder: bob.ts, Loopback: true}
	if _, err := pairing.JoinCode(ctx, string(wrong), p.CodeEndpoint, bo); !errors.Is(err, pairing.ErrWrongCode) {
		t.Fatalf("wrong code: %v", err)
	}
	var c client.PairProgress
	select {
	case c = <-codes:
	case o := <-shown:
		t.Fatalf("the pairing ended after a wrong code: %+v", o)
	}
	bobPub := bob.id.Public()
	if c.Stage != client.PairCode || c.Code == "" || c.Code == p.Code || c.CodeEndpoint != p.CodeEndpoint || c.Spent == nil ||
		c.Spent.UUID != bobPub.UUID.String() || c.Spent.Fingerprint != keystore.Fingerprint(bobPub.CurveKey) ||
		c.SpentWhy != "tried a wrong code" || c.CodesSpent != 1 || c.CodesLeft != pairing.DefaultMaxCodes-2 {
		t.Fatalf("code step %+v (spent %+v)", c, c.Spent)
	}
	bo.Confirm = func(context.Context, pairing.Result) error { return nil }
	if _, err := pairing.JoinCode(ctx, c.Code, c.CodeEndpoint, bo); err != nil {
		t.Fatalf("the fresh code: %v", err)
	}
	o := <-shown
	if o.err != nil {
		t.Fatal(o.err)
	}
	verified(t, alice.ts, keystore.Fingerprint(bobPub.CurveKey), "code")
}
