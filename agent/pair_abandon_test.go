package agent

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/pairing"
	"github.com/zyre-go/zyre/trust"
)

// closedSoon waits (up to testTimeout) until nothing accepts at addr.
func closedSoon(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts %s after the client went away", addr, testTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A client that goes away (Ctrl-C) while the agent shows a token ends
// the pairing: the agent's displayer stops listening, the token is dead.
func TestPairAbandonedWhileShowing(t *testing.T) {
	alice, bob := newDevice(t, "alice"), newDevice(t, "bob")
	sock := filepath.Join(t.TempDir(), "run", client.SocketName)
	startSecureAgent(t, alice, sock)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cctx, ccancel := context.WithCancel(ctx)
	p, done := showPair(t, cctx, sock, client.PairArgs{Loopback: true, Listen: "127.0.0.1:0"}, client.PairHandler{})
	ccancel()
	if o := <-done; !errors.Is(o.err, context.Canceled) {
		t.Fatalf("abandoned Pair: %v, want context.Canceled", o.err)
	}
	tok, err := pairing.ParseToken(p.Token)
	if err != nil {
		t.Fatal(err)
	}
	closedSoon(t, p.CodeEndpoint)
	for _, h := range tok.Hints {
		closedSoon(t, h.String())
	}
	jctx, jcancel := context.WithTimeout(ctx, 5*time.Second)
	defer jcancel()
	if _, err := pairing.Join(jctx, p.Token, pairing.Options{Identity: bob.id, Recorder: bob.ts, Loopback: true, Timeout: 2 * time.Second}); err == nil {
		t.Fatal("joined a pairing its client abandoned")
	}
	if rs, _ := alice.ts.List(); len(rs) != 0 {
		t.Fatalf("records after an abandoned pairing: %+v", rs)
	}
}

// A client that goes away while its user is asked to compare the number
// ends the pairing: the other side is not left waiting for the rest of
// its timeout, and nothing is recorded on either side.
func TestPairAbandonedAtComparison(t *testing.T) {
	alice, carol := newDevice(t, "alice"), newDevice(t, "carol")
	sock := filepath.Join(t.TempDir(), "run", client.SocketName)
	startSecureAgent(t, alice, sock)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	d, tok, err := pairing.NewDisplayer(pairing.Options{Identity: carol.id, Recorder: carol.ts, Loopback: true,
		Listen: "127.0.0.1:0", DisableDiscovery: true, EndOnCodeFailure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cctx, ccancel := context.WithCancel(ctx)
	_, err = dial(t, sock).Pair(cctx, client.PairArgs{Code: tok.ShortCode(), Endpoint: d.CodeAddr(), Loopback: true}, client.PairHandler{
		Confirm: func(qctx context.Context, _ string) error {
			ccancel() // Ctrl-C while the question is up
			<-qctx.Done()
			return qctx.Err()
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned Pair: %v, want context.Canceled", err)
	}
	// Told at once (a refusal), not left waiting until its token expires.
	if _, err := d.Wait(ctx); !errors.Is(err, pairing.ErrRefused) {
		t.Fatalf("displayer after the joiner's client went away: %v, want ErrRefused", err)
	}
	for _, ts := range []*trust.Store{alice.ts, carol.ts} {
		if rs, _ := ts.List(); len(rs) != 0 {
			t.Errorf("records after an abandoned pairing: %+v", rs)
		}
	}
}

// Two pairings at once through one agent are independent: each client
// gets its own token, and each device that joins is recorded.
func TestPairConcurrent(t *testing.T) {
	alice, bob, carol := newDevice(t, "alice"), newDevice(t, "bob"), newDevice(t, "carol")
	sock := filepath.Join(t.TempDir(), "run", client.SocketName)
	startSecureAgent(t, alice, sock)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var ps []client.PairProgress
	var results []<-chan pairOutcome
	for range 2 { // the first shows its token and waits while the second starts
		p, out := showPair(t, ctx, sock, client.PairArgs{Loopback: true, Listen: "127.0.0.1:0"}, client.PairHandler{})
		ps, results = append(ps, p), append(results, out)
	}
	if ps[0].Token == ps[1].Token || ps[0].CodeEndpoint == ps[1].CodeEndpoint {
		t.Fatalf("two pairings share a token or an endpoint: %+v", ps)
	}
	joined := make(chan error, 2)
	for i, d := range []device{bob, carol} {
		go func() {
			_, err := pairing.Join(ctx, ps[i].Token, pairing.Options{Identity: d.id, Recorder: d.ts, Loopback: true})
			joined <- err
		}()
	}
	names := map[string]bool{}
	for i := range 2 {
		if err := <-joined; err != nil {
			t.Fatal(err)
		}
		o := <-results[i]
		if o.err != nil {
			t.Fatal(o.err)
		}
		names[o.r.Name] = true
		verified(t, alice.ts, o.r.Fingerprint, "qr")
	}
	if !names["bob"] || !names["carol"] {
		t.Fatalf("paired with %v, want bob and carol", names)
	}
}

// The agent shows and the other device joins by the short code: the
// agent's client is asked the comparison number, the same as the joiner.
func TestPairShowJoinedByCode(t *testing.T) {
	alice, carol := newDevice(t, "alice"), newDevice(t, "carol")
	sock := filepath.Join(t.TempDir(), "run", client.SocketName)
	startSecureAgent(t, alice, sock)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	asked := make(chan string, 1)
	p, shown := showPair(t, ctx, sock, client.PairArgs{Loopback: true, Listen: "127.0.0.1:0"}, client.PairHandler{
		Confirm: func(_ context.Context, n string) error { asked <- n; return nil },
	})
	var carolSaw string
	res, err := pairing.JoinCode(ctx, p.Code, p.CodeEndpoint, pairing.Options{Identity: carol.id, Recorder: carol.ts, Loopback: true,
		Confirm: func(_ context.Context, r pairing.Result) error { carolSaw = r.Comparison; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	o := <-shown
	if o.err != nil {
		t.Fatal(o.err)
	}
	n := <-asked
	if n == "" || n != carolSaw || o.r.Comparison != n || o.r.Method != "code" || o.r.Name != "carol" || res.PeerName != "alice" {
		t.Fatalf("asked %q, carol saw %q, agent's result %+v, carol's %+v", n, carolSaw, o.r, res)
	}
	verified(t, alice.ts, o.r.Fingerprint, "code")
}

// The agent shows, the other device joins by code, and the client goes
// while its user is asked: the joiner is told (a refusal) at once.
func TestPairShowAbandonedAtComparison(t *testing.T) {
	alice, carol := newDevice(t, "alice"), newDevice(t, "carol")
	sock := filepath.Join(t.TempDir(), "run", client.SocketName)
	startSecureAgent(t, alice, sock)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cctx, ccancel := context.WithCancel(ctx)
	p, done := showPair(t, cctx, sock, client.PairArgs{Loopback: true, Listen: "127.0.0.1:0"}, client.PairHandler{
		Confirm: func(qctx context.Context, _ string) error {
			ccancel() // Ctrl-C while the question is up
			<-qctx.Done()
			return qctx.Err()
		},
	})
	// carol says yes and waits for the agent's side.
	_, err := pairing.JoinCode(ctx, p.Code, p.CodeEndpoint, pairing.Options{Identity: carol.id, Recorder: carol.ts, Loopback: true})
	if !errors.Is(err, pairing.ErrRefused) {
		t.Fatalf("joiner after the showing side's client went away: %v, want ErrRefused", err)
	}
	if o := <-done; !errors.Is(o.err, context.Canceled) {
		t.Fatalf("abandoned Pair: %v, want context.Canceled", o.err)
	}
	for _, ts := range []*trust.Store{alice.ts, carol.ts} {
		if rs, _ := ts.List(); len(rs) != 0 {
			t.Errorf("records after an abandoned pairing: %+v", rs)
		}
	}
}
