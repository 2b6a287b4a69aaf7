package agent

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/internal/testenv"
	"github.com/zyre-go/zyre/keystore"
	"github.com/zyre-go/zyre/pairing"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

// device is an identity with its trust store in a home of its own.
type device struct {
	home string
	id   *keystore.Identity
	ts   *trust.Store
}

func newDevice(t testing.TB, name string) device {
	t.Helper()
	home := t.TempDir()
	ks, err := keystore.Open(home, keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := ks.Init(context.Background(), keystore.InitOptions{Name: name, Protection: keystore.Protection{Plaintext: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(id.Wipe)
	ts, err := trust.Open(home, trust.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return device{home: home, id: id, ts: ts}
}

// startSecureAgent runs an agent for d: a secure loopback node with d's
// identity and trust store, and the Server with both, as "zyre agent"
// does once it has unlocked the identity.
func startSecureAgent(t testing.TB, d device, sock string) {
	t.Helper()
	pub, sec := d.id.CurveKeyPair()
	n, err := zre.New(zre.Config{Name: d.id.Name, Beacon: zre.BeaconConfig{Port: 20000 + rand.IntN(40000), Loopback: true},
		Secure: &zre.SecureConfig{Public: pub, Secret: sec,
			Trust: &zre.TrustConfig{Store: d.ts, Signer: append(ed25519.PrivateKey(nil), d.id.Signer()...)}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv, err := Listen(Config{Node: n, Trust: d.ts, Identity: d.id, Socket: sock, Home: d.home, Version: "test", Network: Network{Loopback: true}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// pairOutcome is how a client's Pair through the agent ended.
type pairOutcome struct {
	r   client.PairResult
	err error
}

// showPair runs a client's Pair through the agent at sock, with ctx,
// args and h, on a goroutine of its own, and waits for the token the
// agent shows (h.Show, if set, sees it too). The channel gives the
// Pair's outcome.
func showPair(t *testing.T, ctx context.Context, sock string, args client.PairArgs, h client.PairHandler) (client.PairProgress, <-chan pairOutcome) {
	t.Helper()
	tokens := make(chan client.PairProgress, 1)
	show := h.Show
	h.Show = func(p client.PairProgress) {
		if show != nil {
			show(p)
		}
		select {
		case tokens <- p:
		default:
		}
	}
	out := make(chan pairOutcome, 1)
	go func() {
		c, err := client.Dial(ctx, sock)
		if err != nil {
			out <- pairOutcome{err: err}
			return
		}
		r, err := c.Pair(ctx, args, h)
		out <- pairOutcome{r, err}
	}()
	select {
	case p := <-tokens:
		return p, out
	case o := <-out:
		t.Fatalf("no token: %v", o.err)
		return client.PairProgress{}, nil
	}
}

func verified(t *testing.T, ts *trust.Store, key string, method string) trust.Record {
	t.Helper()
	r, err := ts.Find(key)
	if err != nil {
		t.Fatalf("no record for %s: %v", key, err)
	}
	if r.State != trust.StateVerified || r.VerifiedMethod != method {
		t.Fatalf("record %s: %s by %q, want verified by %s", r.Name, r.State, r.VerifiedMethod, method)
	}
	return r
}

// The agent pairs with its identity and trust store over the socket,
// both as the displayer of a token and as the joiner of a short code;
// the client shows the token and answers the comparison.
func TestPairThroughAgent(t *testing.T) {
	alice, bob, carol := newDevice(t, "alice"), newDevice(t, "bob"), newDevice(t, "carol")
	sock := filepath.Join(t.TempDir(), "run", client.SocketName)
	startSecureAgent(t, alice, sock)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	// Displayer: the agent shows, bob scans the token it gave the client.
	p, shown := showPair(t, ctx, sock, client.PairArgs{Loopback: true, Listen: "127.0.0.1:0"}, client.PairHandler{})
	if p.Stage != client.PairToken || !strings.HasPrefix(p.Token, "ZYRE:") || len(p.Code) < pairing.CodeDigits || p.CodeEndpoint == "" {
		t.Fatalf("token step %+v", p)
	}
	res, err := pairing.Join(ctx, p.Token, pairing.Options{Identity: bob.id, Recorder: bob.ts, Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	o := <-shown
	if o.err != nil {
		t.Fatal(o.err)
	}
	bobPub := bob.id.Public()
	if o.r.Name != "bob" || o.r.UUID != bobPub.UUID.String() || o.r.Method != "qr" || o.r.Fingerprint != keystore.Fingerprint(bobPub.CurveKey) {
		t.Errorf("agent's result %+v", o.r)
	}
	if res.PeerName != "alice" {
		t.Errorf("bob paired with %q", res.PeerName)
	}
	verified(t, alice.ts, o.r.Fingerprint, "qr")

	// Joiner by short code: carol shows, the agent joins, the client
	// confirms the number; carol's Confirm sees the same number.
	var mu sync.Mutex
	var asked, carolSaw string
	d, tok, err := pairing.NewDisplayer(pairing.Options{Identity: carol.id, Recorder: carol.ts, Loopback: true,
		Listen: "127.0.0.1:0", DisableDiscovery: true, EndOnCodeFailure: true,
		Confirm: func(_ context.Context, r pairing.Result) error {
			mu.Lock()
			carolSaw = r.Comparison
			mu.Unlock()
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c := dial(t, sock)
	r, err := c.Pair(ctx, client.PairArgs{Code: tok.ShortCode(), Endpoint: d.CodeAddr(), Loopback: true}, client.PairHandler{
		Confirm: func(_ context.Context, n string) error {
			mu.Lock()
			asked = n
			mu.Unlock()
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if asked == "" || asked != carolSaw || r.Comparison != asked || r.Method != "code" || r.Name != "carol" {
		t.Errorf("asked %q, carol saw %q, result %+v", asked, carolSaw, r)
	}
	mu.Unlock()
	verified(t, alice.ts, r.Fingerprint, "code")
	if _, err := c.Info(ctx); err == nil {
		t.Error("the client's connection still answers after Pair")
	}
}

// The client's "no" to the comparison refuses the pairing on both sides,
// and nothing is recorded.
func TestPairThroughAgentRefused(t *testing.T) {
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
	_, err = dial(t, sock).Pair(ctx, client.PairArgs{Code: tok.ShortCode(), Endpoint: d.CodeAddr(), Loopback: true}, client.PairHandler{
		Confirm: func(context.Context, string) error { return errors.New("no") },
	})
	if err == nil || !strings.Contains(err.Error(), "not confirmed") {
		t.Fatalf("refused comparison: %v", err)
	}
	if _, err := d.Wait(ctx); !errors.Is(err, pairing.ErrRefused) {
		t.Fatalf("displayer: %v, want ErrRefused", err)
	}
	for _, ts := range []*trust.Store{alice.ts, carol.ts} {
		if rs, _ := ts.List(); len(rs) != 0 {
			t.Errorf("records after a refused pairing: %+v", rs)
		}
	}

	// Bad arguments are refused before anything listens.
	for _, a := range []client.PairArgs{{Token: "ZYRE:x", Code: "123456789012"}, {Endpoint: "127.0.0.1:1"}, {Code: "12"}, {TimeoutMS: -1},
		// Loopback, in case a bad timeout were let through.
		{TimeoutMS: MaxPairTimeout.Milliseconds() + 1, Loopback: true, Listen: "127.0.0.1:0"},
		{TimeoutMS: 18446744073710, Loopback: true, Listen: "127.0.0.1:0"}, // times 1e6 wraps around to 448 µs
		{TimeoutMS: 1 << 62, Loopback: true, Listen: "127.0.0.1:0"}} {      // wraps around to 0: the default

		qctx, qcancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := dial(t, sock).Pair(qctx, a, client.PairHandler{})
		qcancel()
		want := "agent: pair"
		if a.TimeoutMS != 0 {
			want = "timeout_ms"
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want the agent's refusal of the arguments (%q)", a, err, want)
		}
	}
}

// Trust changes through the socket: the agent signs with the identity it
// unlocked at its start (no passphrase here), and the records change in
// the store on disk.
func TestTrustChangesThroughAgent(t *testing.T) {
	alice, bob, carol := newDevice(t, "alice"), newDevice(t, "bob"), newDevice(t, "carol")
	for _, o := range []device{bob, carol} {
		p := o.id.Public()
		if _, err := alice.ts.MarkVerified(context.Background(), p.CurveKey, p.UUID, p.Name, "test", p.SigningKey); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(t.TempDir(), "run", client.SocketName)
	startSecureAgent(t, alice, sock)
	ctx := context.Background()
	c := dial(t, sock)

	ch, err := c.TrustRevoke(ctx, "bob", "lost phone", false)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Record == nil || ch.Record.State != "revoked" || ch.Record.RevokeReason != "lost phone" || ch.Seq == 0 {
		t.Fatalf("revoke: %+v", ch)
	}
	// A store opened afresh (another process) sees the signed revocation.
	other, err := trust.Open(alice.home, trust.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := other.Find("bob"); r.State != trust.StateRevoked {
		t.Fatalf("bob on disk: %s", r.State)
	}
	logs, _ := other.Logs()
	if len(logs) != 1 || len(logs[0].Statements) != int(ch.Seq) {
		t.Fatalf("the agent's log: %+v", logs)
	}

	if ch, err = c.TrustUnrevoke(ctx, "bob", "found it", false); err != nil || ch.Record.State != "verified" {
		t.Fatalf("unrevoke: %+v, %v", ch, err)
	}
	if ch, err = c.TrustRevoke(ctx, "carol", "", true); err != nil || ch.Record.State != "revoked" || ch.Seq != 0 {
		t.Fatalf("local revoke: %+v, %v", ch, err)
	}
	if _, err = c.TrustForget(ctx, "carol"); err == nil {
		t.Fatal("forgot a revoked key")
	}
	if ch, err = c.TrustUnrevoke(ctx, "carol", "", true); err != nil {
		t.Fatal(err)
	}
	if ch, err = c.TrustForget(ctx, "carol"); err != nil || ch.Record.Name != "carol" {
		t.Fatalf("forget: %+v, %v", ch, err)
	}
	if _, err := alice.ts.Find("carol"); !errors.Is(err, trust.ErrNotFound) {
		t.Fatalf("carol after forget: %v", err)
	}
	if _, err = c.TrustAccept(ctx, "bob"); !errorsHas(err, "presented no other key") {
		t.Fatalf("accept without a key change: %v", err)
	}
	f := false
	if ch, err = c.TrustChange(ctx, "trust.policy", client.TrustArgs{Mode: "strict", Introductions: &f}); err != nil ||
		ch.Policy == nil || ch.Policy.Mode != "strict" || ch.Policy.Introductions || !ch.Policy.VerifiedRevoke {
		t.Fatalf("policy: %+v, %v", ch, err)
	}
	for _, tc := range []struct {
		op   string
		args client.TrustArgs
		want string
	}{
		{"trust.revoke", client.TrustArgs{}, "no peer"},
		{"trust.revoke", client.TrustArgs{Peer: "nobody"}, "no such peer"},
		{"trust.revoke", client.TrustArgs{Peer: "bob", Reason: strings.Repeat("x", 256)}, "at most 255"},
		{"trust.policy", client.TrustArgs{Mode: "frob"}, "frob"},
		{"trust.unrevoke", client.TrustArgs{Peer: "bob"}, "not revoked"},
	} {
		if _, err := c.TrustChange(ctx, tc.op, tc.args); !errorsHas(err, tc.want) {
			t.Errorf("%s %+v: %v, want %q", tc.op, tc.args, err, tc.want)
		}
	}
	// The connection still answers after the errors.
	if _, err := c.TrustList(ctx); err != nil {
		t.Fatal(err)
	}
}

func errorsHas(err error, s string) bool { return err != nil && strings.Contains(err.Error(), s) }

// A process of another user gets neither a trust change nor a pairing
// from the agent: refused at the socket, the record stays as it was.
func TestOtherUserRefusedTrustAndPair(t *testing.T) {
	dir, exe := testenv.OtherUserExe(t, "agent", 0o755)
	sockDir := filepath.Join(dir, "run")
	if err := os.Mkdir(sockDir, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(sockDir, client.SocketName)
	alice, bob := newDevice(t, "alice"), newDevice(t, "bob")
	p := bob.id.Public()
	if _, err := alice.ts.MarkVerified(context.Background(), p.CurveKey, p.UUID, p.Name, "test", p.SigningKey); err != nil {
		t.Fatal(err)
	}
	startSecureAgent(t, alice, sock)
	// Opened up, so that only the peer credentials stand in the way.
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	for _, req := range []string{
		`{"id":1,"op":"trust.revoke","change":{"peer":"bob","local":true}}`,
		`{"id":1,"op":"pair","pair":{"loopback":true,"listen":"127.0.0.1:0"}}`,
	} {
		cmd := exec.Command(exe)
		cmd.Env = []string{"AGENT_TEST_DIAL=" + sock, "AGENT_TEST_REQUEST=" + req}
		testenv.AsOtherUser(cmd)
		out, _ := cmd.Output()
		if !strings.Contains(string(out), "uid 65534 is not the agent's user") {
			t.Errorf("%s as uid 65534: %q", req, out)
		}
	}
	if r, _ := alice.ts.Find("bob"); r.State != trust.StateVerified {
		t.Errorf("bob after another user's revoke: %s", r.State)
	}
}

// FuzzTrustRequest: any trust change request to an agent with a trust
// store gets one JSON response, never a panic or a hang. Pairing
// requests are left out: a pairing listens and announces on the network
// its arguments name (TestPairThroughAgent covers it on loopback).
func FuzzTrustRequest(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"op":"trust.revoke","change":{"peer":"bob","local":true}}`,
		`{"id":2,"op":"trust.revoke","change":{"peer":"bob","reason":"lost"}}`,
		`{"id":3,"op":"trust.unrevoke","change":{"peer":"bob","local":true}}`,
		`{"id":4,"op":"trust.forget","change":{"peer":"b"}}`,
		`{"id":5,"op":"trust.accept","change":{"peer":"bob"}}`,
		`{"id":6,"op":"trust.policy","change":{"mode":"strict","introductions":false}}`,
		`{"id":7,"op":"trust.policy","trust":null}`, `{"id":8,"op":"trust.revoke"}`,
		`{"id":9,"op":"pair.confirm","pair":{"confirm":true}}`,
	} {
		f.Add(s)
	}
	alice, bob := newDevice(f, "alice"), newDevice(f, "bob")
	p := bob.id.Public()
	if _, err := alice.ts.MarkVerified(context.Background(), p.CurveKey, p.UUID, p.Name, "test", p.SigningKey); err != nil {
		f.Fatal(err)
	}
	sock := filepath.Join(f.TempDir(), client.SocketName)
	startSecureAgent(f, alice, sock)
	f.Fuzz(func(t *testing.T, line string) {
		var req client.Request
		if json.Unmarshal([]byte(line), &req) == nil && req.Op == "pair" {
			t.Skip("pairing listens on the network")
		}
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		go c.Write([]byte(line + "\n"))
		resp, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatalf("%q: no response: %v", line, err)
		}
		var r client.Response
		if err := json.Unmarshal([]byte(resp), &r); err != nil {
			t.Fatalf("%q: response %q: %v", line, resp, err)
		}
	})
}

// A pairing that fails through the agent is said in one sentence with a
// hint, as the one-shot "zyre pair" says it (pairing.Explain), not as the
// layers' chain of "pairing: ...".
func TestPairFailureExplained(t *testing.T) {
	alice := newDevice(t, "alice")
	sock := filepath.Join(t.TempDir(), "run", client.SocketName)
	startSecureAgent(t, alice, sock)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	p, done := showPair(t, ctx, sock, client.PairArgs{Loopback: true, Listen: "127.0.0.1:0"}, client.PairHandler{})
	typo := []byte(p.Token)
	if typo[30] == 'A' { // still base32: a checksum error
		typo[30] = 'B'
	} else {
		typo[30] = 'A'
	}
	_, err := dial(t, sock).Pair(ctx, client.PairArgs{Token: string(typo), Loopback: true}, client.PairHandler{})
	var ae *client.Error
	if !errors.As(err, &ae) || ae.Text != "pair: the token is mistyped or damaged (its checksum does not match)" || ae.Hint == "" {
		t.Fatalf("a mistyped token through the agent: %#v (%v), want one sentence with a hint", ae, err)
	}
	cancel() // the token shown meanwhile is not used
	<-done
}
