package zre

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zmtp"
	"github.com/zyre-go/zyre/zre/zremsg"
)

// trustNode starts a loopback secure node (no beacons) with a trust store
// in home.
func trustNode(t *testing.T, home, name string) (*Node, *trust.Store) {
	t.Helper()
	st, err := trust.Open(home, trust.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, Config{Name: name, Beacon: BeaconConfig{Disabled: true}, Bind: "127.0.0.1",
		Secure: &SecureConfig{Secret: mustSecret(t), Trust: &TrustConfig{Store: st}}})
	return n, st
}

// dialHandshake connects a CURVE DEALER with identity id and key sec to n's
// inbox and returns it once its handshake completed (the node's
// connection stage admitted it).
func dialHandshake(t *testing.T, n *Node, p *rawPeer) *zmtp.Dealer {
	t.Helper()
	done := make(chan error, 1)
	d, err := zmtp.DialDealer("tcp", n.Endpoint()[len("tcp://"):], zmtp.Options{
		Identity:  Identity(p.id),
		Mechanism: zmtp.CurveClient(zmtp.CurveClientConfig{Secret: p.sec, ServerKey: n.PublicKey()}),
		OnHandshake: func(err error) {
			select {
			case done <- err:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("handshake of %s: %v", p.id, err)
		}
	case <-ctx.Done():
		t.Fatalf("no handshake of %s", p.id)
	}
	p.dealer = d
	return d
}

// storeRecords returns the records of st, and of a store opened anew on
// the files of home after st wrote everything.
func storeRecords(t *testing.T, st *trust.Store, home string) (mem, disk []trust.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	mem, err := st.List()
	if err != nil {
		t.Fatal(err)
	}
	again, err := trust.Open(home, trust.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	disk, err = again.List()
	if err != nil {
		t.Fatal(err)
	}
	return mem, disk
}

// TestStrangersWithoutHelloNotPinned: usertry5 #8. CURVE DEALERs, each
// with a fresh key and a ZRE identity (a random UUID: unbound), each send
// one 2-octet frame and no HELLO. Such a connection is not a peer: the
// trust store records none of their keys, in memory or on disk (on main
// the connection stage pinned each one as a nameless tofu record).
func TestStrangersWithoutHelloNotPinned(t *testing.T) {
	home := t.TempDir()
	n, st := trustNode(t, home, "cam")
	const conns = 24 // under the inbox's per-address limits
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	for range conns {
		p := newRawPeer(t, uuid.New())
		d := dialHandshake(t, n, p)
		if err := d.Send([]byte("hi")); err != nil {
			t.Fatal(err)
		}
		if err := d.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// An honest peer after them is pinned: the store works.
	honest := newRawPeer(t, uuid.New())
	dialHandshake(t, n, honest)
	honest.hello("honest", honest.pub.Z85())
	waitEvent(t, n, eventTimeout, "ENTER honest", isEnter(honest.id))
	mem, disk := storeRecords(t, st, home)
	for what, recs := range map[string][]trust.Record{"in memory": mem, "on disk": disk} {
		if len(recs) != 1 || recs[0].Key != honest.pub {
			t.Errorf("%s: %d records after %d connections without HELLO and one honest peer, want the honest one only:", what, len(recs), conns)
			for _, r := range recs {
				t.Logf("  %s %s %q %s", r.UUID, r.Fingerprint, r.Name, r.State)
			}
		}
	}
}

// TestHonestTofuPinnedAtHello: a peer that completes the CURVE handshake
// is not recorded until its HELLO is admitted; then it is pinned as tofu
// with its name, in memory and on disk.
func TestHonestTofuPinnedAtHello(t *testing.T) {
	home := t.TempDir()
	n, st := trustNode(t, home, "cam")
	p := newRawPeer(t, uuid.New()) // a C-zyre-like peer: unbound
	dialHandshake(t, n, p)
	if _, ok, err := st.Lookup(p.pub); err != nil || ok {
		t.Fatalf("key recorded before its HELLO (ok %v, err %v)", ok, err)
	}
	p.hello("c-node", p.pub.Z85())
	waitEvent(t, n, eventTimeout, "ENTER c-node", isEnter(p.id))
	mem, disk := storeRecords(t, st, home)
	for what, recs := range map[string][]trust.Record{"in memory": mem, "on disk": disk} {
		if len(recs) != 1 {
			t.Fatalf("%s: %d records, want 1", what, len(recs))
		}
		r := recs[0]
		if r.Key != p.pub || r.UUID != p.id || r.Name != "c-node" || r.State != trust.StateTOFU || r.Bound {
			t.Fatalf("%s: record %+v", what, r)
		}
	}
	// Pinned: another key under its UUID is refused.
	q := newRawPeer(t, p.id)
	q.dial(n)
	waitEvent(t, n, eventTimeout, "REFUSED impostor", isRefused(p.id, q.pub, StageConnection, ErrKeyMismatch))
}

// TestBeaconsRecordNothing: beacons are not authenticated and never reach
// the trust store: forged v3 beacons with fresh keys (unbound UUIDs and
// key-derived ones) record nothing, and neither does a peer whose beacon
// we followed and whose inbox completed our CURVE handshake but which
// never said HELLO to us.
func TestBeaconsRecordNothing(t *testing.T) {
	port := testBeaconPort()
	home := t.TempDir()
	st, err := trust.Open(home, trust.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	cfg := secureConfig(t, "cam", port)
	cfg.Beacon.Interval = 100 * time.Millisecond
	cfg.Secure.Trust = &TrustConfig{Store: st}
	n := startNode(t, cfg)
	bs := newBeaconSender(t, port, "127.0.0.1")
	const forged = 40
	for i := range forged {
		pub, _ := genKeys(t)
		id := uuid.New()
		if i%2 == 1 {
			id = UUIDFromKey(pub)
		}
		// Port 1 on loopback: nobody listens there.
		if err := bs.send(Beacon{Version: BeaconV3, UUID: id, Port: 1, PublicKey: pub}); err != nil {
			t.Fatal(err)
		}
	}
	silent := newRawPeer(t, uuid.New())
	sport, _ := strconv.Atoi(silent.endpoint[len("tcp://127.0.0.1:"):])
	if err := bs.send(Beacon{Version: BeaconV3, UUID: silent.id, Port: uint16(sport), PublicKey: silent.pub}); err != nil {
		t.Fatal(err)
	}
	// The node followed the last beacon: its HELLO reached the silent
	// peer over CURVE (so the beacons before it were read too).
	silent.recv("the node's HELLO", func(m *zremsg.Msg) bool { return m.ID == zremsg.MsgHello })
	if got := n.Stats().BeaconsReceived; got < forged+1 {
		t.Fatalf("%d beacons read, want at least %d", got, forged+1)
	}
	mem, disk := storeRecords(t, st, home)
	if len(mem) != 0 || len(disk) != 0 {
		t.Fatalf("%d records in memory, %d on disk after beacons only, want none", len(mem), len(disk))
	}
}
