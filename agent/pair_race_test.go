package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// An answer to a dropped question is not taken: a "yes" the client sent
// for the question about the first device, arriving after a second
// device made the agent ask again, pairs nobody; nor does a yes without
// a question number. Raw protocol lines, loopback only.
func TestPairThroughAgentStaleAnswer(t *testing.T) {
	room, phone, stranger := newDevice(t, "room"), newDevice(t, "phone1"), newDevice(t, "guest")
	sock := filepath.Join(t.TempDir(), "run", client.SocketName)
	startSecureAgent(t, room, sock)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rd := bufio.NewReader(c)
	send := func(r client.Request) {
		t.Helper()
		b, _ := json.Marshal(r)
		if _, err := c.Write(append(b, '\n')); err != nil {
			t.Fatal(err)
		}
	}
	recv := func(what string) client.Response {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(testTimeout))
		line, err := rd.ReadBytes('\n')
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		var r client.Response
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("%s: %v: %s", what, err, line)
		}
		return r
	}
	send(client.Request{ID: 1, Op: "pair", Pair: &client.PairArgs{Loopback: true, Listen: "127.0.0.1:0"}})
	tok := recv("the token")
	if tok.Pair == nil || tok.Pair.Stage != client.PairToken {
		t.Fatalf("token step: %+v", tok)
	}
	strDone := make(chan error, 1)
	go func() {
		_, err := pairing.JoinCode(ctx, tok.Pair.Code, tok.Pair.CodeEndpoint, pairing.Options{Identity: stranger.id, Recorder: stranger.ts, Loopback: true})
		strDone <- err
	}()
	q1 := recv("the first question")
	if q1.Pair == nil || q1.Pair.Stage != client.PairConfirm || q1.Pair.Question == 0 {
		t.Fatalf("first question: %+v", q1)
	}
	if _, err := pairing.JoinCode(ctx, tok.Pair.Code, tok.Pair.CodeEndpoint, pairing.Options{Identity: phone.id, Recorder: phone.ts, Loopback: true}); !errors.Is(err, pairing.ErrCodeUsed) {
		t.Fatalf("phone: %v", err)
	}
	q2 := recv("the second question")
	if q2.Pair == nil || q2.Pair.Question == q1.Pair.Question || len(q2.Pair.Others) != 1 {
		t.Fatalf("second question: %+v", q2)
	}
	send(client.Request{ID: 1, Op: "pair.confirm", Pair: &client.PairArgs{Confirm: true, Question: q1.Pair.Question}}) // stale
	send(client.Request{ID: 1, Op: "pair.confirm", Pair: &client.PairArgs{Confirm: true}})                             // unnumbered
	// The agent reads the client's lines in order: had it taken either
	// yes, the pairing would be over before the no below is read.
	send(client.Request{ID: 1, Op: "pair.confirm", Pair: &client.PairArgs{Confirm: false, Question: q2.Pair.Question}})
	if end := recv("the outcome"); end.OK || !strings.Contains(end.Error, "more than one device tried") {
		t.Fatalf("outcome: %+v", end)
	}
	if err := <-strDone; !errors.Is(err, pairing.ErrExposed) {
		t.Fatalf("stranger: %v, want ErrExposed", err)
	}
	for _, ts := range []*trust.Store{room.ts, phone.ts, stranger.ts} {
		if rs, _ := ts.List(); len(rs) != 0 {
			t.Fatalf("records: %+v", rs)
		}
	}
}
