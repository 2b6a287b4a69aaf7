package agent

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/keystore"
	"github.com/zyre-go/zyre/pairing"
	"github.com/zyre-go/zyre/trust"
)

// clientAsk is a question the agent sent the client.
type clientAsk struct {
	q      client.PairProgress
	ctx    context.Context
	answer chan error
}

// The agent shows a code; a stranger takes it first, the phone second.
// The client's question names the stranger (name, uuid, fingerprint,
// address); the phone's attempt drops it and a second, numbered
// question names both; the client's no pairs nobody, and the stranger
// is told it was not picked. Loopback only.
func TestPairThroughAgentExposed(t *testing.T) {
	room, phone, stranger := newDevice(t, "room"), newDevice(t, "phone1"), newDevice(t, "guest")
	sock := filepath.Join(t.TempDir(), "run", client.SocketName)
	startSecureAgent(t, room, sock)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	asks := make(chan clientAsk)
	p, outcome := showPair(t, ctx, sock, client.PairArgs{Loopback: true, Listen: "127.0.0.1:0"}, client.PairHandler{
		ConfirmPeer: func(ctx context.Context, q client.PairProgress) error {
			a := clientAsk{q: q, ctx: ctx, answer: make(chan error, 1)}
			select {
			case asks <- a:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case err := <-a.answer:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		},
	})
	next := func(what string) clientAsk {
		t.Helper()
		select {
		case a := <-asks:
			return a
		case o := <-outcome:
			t.Fatalf("the pairing ended (%v) before the client was asked %s", o.err, what)
		case <-ctx.Done():
			t.Fatalf("the client was never asked %s", what)
		}
		return clientAsk{}
	}
	strDone := make(chan error, 1)
	go func() {
		_, err := pairing.JoinCode(ctx, p.Code, p.CodeEndpoint, pairing.Options{Identity: stranger.id, Recorder: stranger.ts, Loopback: true,
			Confirm: func(context.Context, pairing.Result) error { return nil }})
		strDone <- err
	}()
	first := next("about the stranger")
	sp := stranger.id.Public()
	if first.q.Stage != client.PairConfirm || first.q.Question == 0 || first.q.Method != "code" || !first.q.AsDisplayer || first.q.Peer == nil ||
		first.q.Peer.Name != "guest" || first.q.Peer.UUID != sp.UUID.String() || first.q.Peer.Fingerprint != keystore.Fingerprint(sp.CurveKey) ||
		!strings.HasPrefix(first.q.Peer.Addr, "127.0.0.1:") || len(first.q.Others) != 0 || first.q.Comparison == "" {
		t.Fatalf("first question %+v (peer %+v)", first.q, first.q.Peer)
	}
	_, err := pairing.JoinCode(ctx, p.Code, p.CodeEndpoint, pairing.Options{Identity: phone.id, Recorder: phone.ts, Loopback: true})
	if !errors.Is(err, pairing.ErrCodeUsed) {
		t.Fatalf("phone: %v, want ErrCodeUsed", err)
	}
	again := next("again, naming both")
	if first.ctx.Err() == nil {
		t.Fatal("the client's first question is still up")
	}
	pp := phone.id.Public()
	if again.q.Question == first.q.Question || len(again.q.Others) != 1 || again.q.Others[0].UUID != pp.UUID.String() || again.q.Peer.Name != "guest" {
		t.Fatalf("second question %+v", again.q)
	}
	for _, ts := range []*trust.Store{room.ts, phone.ts, stranger.ts} {
		if rs, _ := ts.List(); len(rs) != 0 {
			t.Fatalf("records before the pick: %+v", rs)
		}
	}
	again.answer <- errors.New("neither is my phone")
	o := <-outcome
	if o.err == nil || !strings.Contains(o.err.Error(), "more than one device tried") {
		t.Fatalf("client: %+v %v", o.r, o.err)
	}
	if err := <-strDone; !errors.Is(err, pairing.ErrExposed) {
		t.Fatalf("stranger: %v, want ErrExposed", err)
	}
	for _, ts := range []*trust.Store{room.ts, phone.ts, stranger.ts} {
		if rs, _ := ts.List(); len(rs) != 0 {
			t.Fatalf("records after an exposed pairing: %+v", rs)
		}
	}
}
