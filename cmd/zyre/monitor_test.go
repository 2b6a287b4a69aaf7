package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/keystore"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

// syncBuffer is an output buffer that commands write from their goroutine
// while the test waits for lines in it.
type syncBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{} // signalled (without blocking) on every write
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{wrote: make(chan struct{}, 1)} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	select {
	case b.wrote <- struct{}{}:
	default:
	}
	return n, err
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits until the output holds want.
func (b *syncBuffer) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.NewTimer(cmdTimeout)
	defer deadline.Stop()
	for !strings.Contains(b.String(), want) {
		select {
		case <-b.wrote:
		case <-deadline.C:
			t.Fatalf("output lacks %q after %v:\n%s", want, cmdTimeout, b.String())
		}
	}
}

const cmdTimeout = 20 * time.Second

func randomBeaconPort() int { return 20000 + rand.IntN(40000) }

// cmdRun runs a zyre command in the background; wait returns its status.
type cmdRun struct {
	stdout, stderr *syncBuffer
	cancel         context.CancelFunc
	code           chan int
}

func startCmd(t *testing.T, stdin io.Reader, args ...string) *cmdRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &cmdRun{stdout: newSyncBuffer(), stderr: newSyncBuffer(), cancel: cancel, code: make(chan int, 1)}
	env := &cliEnv{stdin: stdin, stdout: r.stdout, stderr: r.stderr, getenv: func(string) string { return "" }}
	go func() { r.code <- run(ctx, env, args) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.code:
		case <-time.After(cmdTimeout):
			t.Errorf("zyre %s did not end", args[0])
		}
	})
	return r
}

func (r *cmdRun) wait(t *testing.T) int {
	t.Helper()
	select {
	case c := <-r.code:
		r.code <- c // for the Cleanup
		return c
	case <-time.After(cmdTimeout):
		t.Fatalf("command did not end; stderr:\n%s", r.stderr.String())
		return -1
	}
}

// testPeer starts a loopback node the commands can meet.
func testPeer(t *testing.T, port int, name string, groups ...string) *zre.Node {
	t.Helper()
	return startTestPeer(t, zre.Config{Name: name, Beacon: zre.BeaconConfig{Port: port, Loopback: true, Interval: 100 * time.Millisecond}}, groups)
}

// startTestPeer starts a node with cfg in groups; it is closed when the
// test ends.
func startTestPeer(t *testing.T, cfg zre.Config, groups []string) *zre.Node {
	t.Helper()
	n, err := zre.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	for _, g := range groups {
		n.Join(g)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return n
}

// awaitEvent reads n's events until match holds.
func awaitEvent(t *testing.T, n *zre.Node, what string, match func(zre.Event) bool) zre.Event {
	t.Helper()
	deadline := time.NewTimer(cmdTimeout)
	defer deadline.Stop()
	for {
		select {
		case e, ok := <-n.Events():
			if !ok {
				t.Fatalf("events closed waiting for %s", what)
			}
			if match(e) {
				return e
			}
		case <-deadline.C:
			t.Fatalf("no %s within %v", what, cmdTimeout)
		}
	}
}

func enterNamed(name string) func(zre.Event) bool {
	return func(e zre.Event) bool { _, ok := e.(*zre.Enter); return ok && e.PeerName() == name }
}

func exitOf(id uuid.UUID) func(zre.Event) bool {
	return func(e zre.Event) bool { _, ok := e.(*zre.Exit); return ok && e.PeerUUID() == id }
}

func TestMonitor(t *testing.T) {
	port := randomBeaconPort()
	peer := testPeer(t, port, "tester", "g")
	mon := startCmd(t, strings.NewReader(""), "monitor", "--loopback", "--port", fmt.Sprint(port), "--name", "mon", "--header", "X-A=1", "--group", "g")
	e := awaitEvent(t, peer, "ENTER mon", enterNamed("mon")).(*zre.Enter)
	if len(e.Headers) != 2 || e.Headers[0] != (zre.Header{Key: "X-A", Value: "1"}) || e.Headers[1] != (zre.Header{Key: zre.HeaderGoodbye, Value: "1"}) {
		t.Fatalf("monitor's headers %+v", e.Headers)
	}
	id := uuidText(peer.UUID())
	mon.stdout.waitFor(t, "ENTER tester "+id+" "+peer.Endpoint())
	mon.stdout.waitFor(t, "JOIN tester "+id+" g\n")
	if err := peer.Whisper(e.Peer, []byte("ping"), []byte{0, 1}); err != nil {
		t.Fatal(err)
	}
	mon.stdout.waitFor(t, "WHISPER tester "+id+" ping \"\\x00\\x01\"\n")
	// The monitor is in g (--group): it gets the shout.
	awaitEvent(t, peer, "JOIN mon g", func(ev zre.Event) bool { j, ok := ev.(*zre.Join); return ok && j.Peer == e.Peer && j.Group == "g" })
	if err := peer.Shout("g", []byte("to all")); err != nil {
		t.Fatal(err)
	}
	mon.stdout.waitFor(t, "SHOUT tester "+id+" g to all\n")
	if err := peer.Leave("g"); err != nil {
		t.Fatal(err)
	}
	mon.stdout.waitFor(t, "LEAVE tester "+id+" g\n")
	// SIGINT/SIGTERM cancel the context: the monitor says goodbye, exit 0.
	mon.cancel()
	if code := mon.wait(t); code != 0 {
		t.Fatalf("exit %d: %s", code, mon.stderr.String())
	}
	awaitEvent(t, peer, "EXIT mon", exitOf(e.Peer))
	for _, l := range strings.Split(strings.TrimSpace(mon.stdout.String()), "\n") {
		if typ, _, _ := strings.Cut(l, " "); typ != strings.ToUpper(typ) || typ == "" {
			t.Errorf("line does not start with the event type: %q", l)
		}
	}
}

func TestMonitorUsage(t *testing.T) {
	var out, errb bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	for _, args := range [][]string{
		{"monitor", "extra"},
		{"monitor", "--port", "0"},
		{"monitor", "--header", "novalue", "--loopback"},
		{"chat", "--bogus"},
		{"peers", "--wait", "-1s"},
	} {
		if code := run(context.Background(), env, args); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}

// testSecurePeer starts a loopback secure node with an ephemeral key.
func testSecurePeer(t *testing.T, port int, name string, groups ...string) *zre.Node {
	t.Helper()
	_, sec, err := curve.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	return startTestPeer(t, zre.Config{Name: name, Beacon: zre.BeaconConfig{Port: port, Loopback: true, Interval: 100 * time.Millisecond},
		Secure: &zre.SecureConfig{Secret: sec}}, groups)
}

// TestMonitorSecure: monitor --secure runs with the keystore's identity (a
// plaintext store: no passphrase), meets a secure node and not a plain one.
func TestMonitorSecure(t *testing.T) {
	home := t.TempDir()
	var out, errb bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	if code := run(context.Background(), env, []string{"keys", "init", "--home", home, "--name", "monsec", "--insecure-plaintext"}); code != 0 {
		t.Fatalf("keys init: exit %d: %s", code, errb.String())
	}
	st, err := keystore.Open(home, keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pubID, err := st.Public()
	if err != nil {
		t.Fatal(err)
	}
	port := randomBeaconPort()
	peer := testSecurePeer(t, port, "secure-peer", "g")
	plain := testPeer(t, port, "plain-peer")
	mon := startCmd(t, strings.NewReader(""), "monitor", "--secure", "--home", home, "--loopback", "--port", fmt.Sprint(port), "--group", "g")
	mon.stderr.waitFor(t, "secure mode with the identity in "+home+": fingerprint "+trust.Fingerprint(pubID.CurveKey))
	e := awaitEvent(t, peer, "ENTER monsec", enterNamed("monsec")).(*zre.Enter)
	if e.Peer != zre.UUIDFromKey(pubID.CurveKey) || e.Peer != pubID.UUID {
		t.Fatalf("monitor's UUID %s, want %s from its key", e.Peer, pubID.UUID)
	}
	if v := e.Headers[len(e.Headers)-1]; v != (zre.Header{Key: zre.HeaderPublicKey, Value: pubID.CurveKey.Z85()}) {
		t.Fatalf("monitor's headers %+v", e.Headers)
	}
	id := uuidText(peer.UUID())
	mon.stdout.waitFor(t, "ENTER secure-peer "+id+" "+peer.Endpoint())
	if err := peer.Whisper(e.Peer, []byte("secret")); err != nil {
		t.Fatal(err)
	}
	mon.stdout.waitFor(t, "WHISPER secure-peer "+id+" secret\n")
	mon.cancel()
	if code := mon.wait(t); code != 0 {
		t.Fatalf("exit %d: %s", code, mon.stderr.String())
	}
	if strings.Contains(mon.stdout.String(), "plain-peer") || len(plain.Peers()) != 0 {
		t.Fatalf("plain and secure nodes met:\n%s", mon.stdout.String())
	}
}

// TestMonitorSecureTrustRevoke: "zyre trust revoke" edits the trust store
// of a monitor that runs on it: the monitor drops the peer (EXIT) and
// refuses its beacons from then on.
func TestMonitorSecureTrustRevoke(t *testing.T) {
	home := t.TempDir()
	var out, errb bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	if code := run(context.Background(), env, []string{"keys", "init", "--home", home, "--name", "mon", "--insecure-plaintext"}); code != 0 {
		t.Fatalf("keys init: exit %d: %s", code, errb.String())
	}
	port := randomBeaconPort()
	peer := testSecurePeer(t, port, "doomed")
	mon := startCmd(t, strings.NewReader(""), "monitor", "--secure", "--home", home, "--loopback", "--port", fmt.Sprint(port))
	mon.stderr.waitFor(t, "trust store ")
	id := uuidText(peer.UUID())
	mon.stdout.waitFor(t, "ENTER doomed "+id)
	// The monitor's store writes its pins on its own goroutine, just after
	// the ENTER: wait until the pin is on disk, as another process sees it.
	for deadline := time.Now().Add(10 * time.Second); ; {
		st, err := trust.Open(home, trust.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := st.Lookup(peer.PublicKey()); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the monitor's pin of doomed never reached the disk")
		}
		time.Sleep(10 * time.Millisecond)
	}
	out.Reset()
	errb.Reset()
	if code := run(context.Background(), env, []string{"trust", "revoke", "doomed", "--home", home, "--reason", "test"}); code != 0 {
		t.Fatalf("trust revoke: exit %d: %s", code, errb.String())
	}
	mon.stdout.waitFor(t, "EXIT doomed "+id)
	// Its beacons are refused from then on (it is still running).
	mon.stdout.waitFor(t, "REFUSED doomed "+id+" beacon key="+peer.PublicKey().Z85())
	mon.stdout.waitFor(t, "key revoked")
}

func TestKeyChangedLine(t *testing.T) {
	old, _, _ := curve.GenerateKeyPair(nil)
	nw, _, _ := curve.GenerateKeyPair(nil)
	e := &zre.KeyChanged{EventHeader: zre.EventHeader{Peer: uuid.New(), Name: "carol"}, Old: old, New: nw,
		OldFingerprint: "OLD-FP", NewFingerprint: "NEW-FP", Addr: "127.0.0.1:5"}
	l := eventLine(e)
	for _, want := range []string{"KEY-CHANGED carol ", "WARNING: KEY CHANGED for carol", "OLD-FP", "NEW-FP", "REFUSED", "zyre trust accept NEW-FP"} {
		if !strings.Contains(l, want) {
			t.Errorf("line %q lacks %q", l, want)
		}
	}
}

// TestMonitorLeader: with --contest, the monitor takes part in the
// group's leader election with a node that contests it too, and prints
// the LEADER event that both report.
func TestMonitorLeader(t *testing.T) {
	port := randomBeaconPort()
	peer, err := zre.New(zre.Config{Name: "tester", Beacon: zre.BeaconConfig{Port: port, Loopback: true, Interval: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	if err := peer.SetContest("g"); err != nil {
		t.Fatal(err)
	}
	peer.Join("g")
	if err := peer.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	mon := startCmd(t, strings.NewReader(""), "monitor", "--loopback", "--port", fmt.Sprint(port), "--name", "mon", "--contest", "g", "--group", "g")
	e := awaitEvent(t, peer, "LEADER", func(e zre.Event) bool { _, ok := e.(*zre.Leader); return ok }).(*zre.Leader)
	if e.Group != "g" {
		t.Fatalf("leader event %+v", e)
	}
	mon.stdout.waitFor(t, "LEADER "+e.Name+" "+uuidText(e.Peer)+" g\n")
}

// TestMonitorGossip: a monitor that serves gossip on loopback meets a node
// that connects to it, without beacons.
func TestMonitorGossip(t *testing.T) {
	mon := startCmd(t, strings.NewReader(""), "monitor", "--loopback", "--name", "mon", "--gossip-bind", "tcp://127.0.0.1:*")
	mon.stderr.waitFor(t, "zyre: serving gossip on ")
	out := mon.stderr.String()
	ep := strings.Fields(out[strings.Index(out, "zyre: serving gossip on ")+len("zyre: serving gossip on "):])[0]
	peer := startTestPeer(t, zre.Config{Name: "leaf", Bind: "127.0.0.1", Gossip: &zre.GossipConfig{Connect: []zre.GossipServer{{Endpoint: ep}}}}, nil)
	awaitEvent(t, peer, "ENTER mon", enterNamed("mon"))
	mon.stdout.waitFor(t, "ENTER leaf "+uuidText(peer.UUID()))
}
