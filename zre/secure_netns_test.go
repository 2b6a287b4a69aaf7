package zre

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/beacon"
	"github.com/zyre-go/zyre/internal/netns"
	"github.com/zyre-go/zyre/zmtp"
	"github.com/zyre-go/zyre/zre/zremsg"
)

// seededReader is a deterministic byte stream (SHA-256 in counter mode)
// so that every helper process derives the same keys for host i.
type seededReader struct {
	seed string
	ctr  uint64
	buf  []byte
}

func (r *seededReader) Read(p []byte) (int, error) {
	for len(r.buf) < len(p) {
		var c [8]byte
		binary.BigEndian.PutUint64(c[:], r.ctr)
		r.ctr++
		h := sha256.Sum256(append([]byte(r.seed), c[:]...))
		r.buf = append(r.buf, h[:]...)
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// netnsKeys returns host i's keypair in the secure netns test (host 3 is
// the forger).
func netnsKeys(i int) (curve.PublicKey, curve.SecretKey) {
	pub, sec, err := curve.GenerateKeyPair(&seededReader{seed: fmt.Sprintf("zyre secure netns host %d", i)})
	if err != nil {
		panic(err) // cannot happen: the reader never fails
	}
	return pub, sec
}

// TestNetnsSecureHosts runs three secure nodes in three network namespaces
// on one bridge, and a forger in a fourth. The nodes find each other by v3
// beacons on their lab interface and whisper and shout over CURVE. The
// forger broadcasts v3 beacons claiming host 1's UUID with its own key and
// connects to host 0 under host 1's UUID: every host refuses and reports
// its beacon, host 0 its connection, and nobody admits it.
func TestNetnsSecureHosts(t *testing.T) {
	if i, ok := netns.HelperIndex(); ok {
		if i == 3 {
			netnsForger(t)
		} else {
			netnsSecureNode(t, i)
		}
		return
	}
	const hosts = 4
	lab := netns.New(t, hosts) // skips unless root
	var hs []*netns.Helper
	for i := range hosts {
		hs = append(hs, lab.StartHelper(t, i, "TestNetnsSecureHosts", "ZRE-"))
	}
	for i := range hosts - 1 {
		hs[i].Expect(t, fmt.Sprintf("host %d", i), "ZRE-READY", 90*time.Second)
	}
	for i := range hosts - 1 {
		t.Logf("host %d:\n%s", i, hs[i].Output())
	}
}

// netnsSecureNode is a helper's secure node in namespace i (0..2).
func netnsSecureNode(t *testing.T, i int) {
	_, sec := netnsKeys(i)
	n, err := New(Config{
		Name:   fmt.Sprintf("host%d", i),
		Beacon: BeaconConfig{Interface: netns.IfName, Interval: 200 * time.Millisecond},
		Secure: &SecureConfig{Secret: sec},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	n.Join("lab")
	others := map[uuid.UUID]curve.PublicKey{}
	for j := range 3 {
		if j != i {
			pub, _ := netnsKeys(j)
			others[UUIDFromKey(pub)] = pub
		}
	}
	forgerKey, _ := netnsKeys(3)
	host1, _ := netnsKeys(1)
	victim := UUIDFromKey(host1)
	// What this host must see of the forger: its beacon refused (host 1
	// sees a beacon claiming its own UUID), and on host 0 its connection.
	wantBeacon, wantConn := true, i == 0
	joined, whispers, shouts := map[uuid.UUID]bool{}, map[uuid.UUID]bool{}, map[uuid.UUID]bool{}
	sent := false
	for {
		select {
		case e, ok := <-n.Events():
			if !ok {
				t.Fatal("events closed")
			}
			switch e := e.(type) {
			case *Enter:
				if _, ok := others[e.Peer]; !ok {
					t.Fatalf("ENTER of %s %s: not one of the real hosts", e.Name, e.Peer)
				}
				if v, _ := headerValue(e.Headers, HeaderPublicKey); v != others[e.Peer].Z85() {
					t.Fatalf("ENTER %s with X-PUBLICKEY %q", e.Name, v)
				}
			case *Join:
				if e.Group == "lab" {
					joined[e.Peer] = true
				}
			case *Whisper:
				if string(e.Content[0]) == "whisper to "+n.Name() {
					whispers[e.Peer] = true
				}
			case *Shout:
				if e.Group == "lab" && string(e.Content[0]) == "shout from "+e.Name {
					shouts[e.Peer] = true
				}
			case *Refused:
				fmt.Printf("refused: %s %s key %s: %v\n", e.Stage, e.Peer, e.Key, e.Reason)
				if e.Peer != victim || e.Key != forgerKey {
					t.Fatalf("unexpected refusal %+v", e)
				}
				switch e.Stage {
				case StageBeacon:
					wantBeacon = false
				case StageConnection:
					wantConn = false
				}
			case *Exit:
				t.Fatalf("EXIT of %s", e.Name)
			}
		case <-ctx.Done():
			t.Fatalf("timeout: joined %v whispers %v shouts %v refusals pending %v/%v stats %+v",
				joined, whispers, shouts, wantBeacon, wantConn, n.Stats())
		}
		if !sent && len(joined) == 2 {
			sent = true
			for id := range others {
				if err := n.Whisper(id, []byte("whisper to "+n.PeerName(id))); err != nil {
					t.Fatal(err)
				}
			}
			if err := n.Shout("lab", []byte("shout from "+n.Name())); err != nil {
				t.Fatal(err)
			}
		}
		if len(whispers) == 2 && len(shouts) == 2 && !wantBeacon && !wantConn {
			for _, pi := range n.PeerInfos() {
				if pi.Key != others[pi.UUID] || !pi.Bound || !strings.HasPrefix(pi.Endpoint, "tcp://10.") {
					t.Fatalf("peer %+v", pi)
				}
			}
			fmt.Println("ZRE-READY")
			<-ctx.Done() // until killed
			return
		}
	}
}

// netnsForger is the fourth host: v3 beacons with host 1's UUID and its
// own key, and a CURVE connection to host 0 (found by its beacon) under
// host 1's UUID, saying HELLO as host 1.
func netnsForger(t *testing.T) {
	pub, sec := netnsKeys(3)
	h0, _ := netnsKeys(0)
	h1, _ := netnsKeys(1)
	victim := UUIDFromKey(h1)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	r, err := zmtp.ListenRouter("tcp", "0.0.0.0:0", zmtp.Options{
		Mechanism: zmtp.CurveServer(zmtp.CurveServerConfig{Secret: sec}),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	port := uint16(r.Addr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port())
	b, err := beacon.New(beacon.Config{Interface: netns.IfName, Interval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.Publish(Beacon{Version: BeaconV3, UUID: victim, Port: port, PublicKey: pub}.AppendMarshal(nil))
	endpoint := "tcp://" + netip.AddrPortFrom(b.Addr(), port).String()
	for {
		select {
		case pkt := <-b.Packets():
			bc, err := ParseBeacon(pkt.Payload)
			if err != nil || bc.UUID != UUIDFromKey(h0) || bc.Port == 0 {
				continue
			}
			addr := netip.AddrPortFrom(pkt.From.Addr(), bc.Port).String()
			d, err := zmtp.DialDealer("tcp", addr, zmtp.Options{
				Identity:  Identity(victim),
				Mechanism: zmtp.CurveClient(zmtp.CurveClientConfig{Secret: sec, ServerKey: bc.PublicKey}),
			})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			hello := &zremsg.Msg{ID: zremsg.MsgHello, Sequence: 1, Endpoint: endpoint, Name: "host1",
				Headers: []Header{{Key: HeaderPublicKey, Value: pub.Z85()}}}
			frames, _ := hello.Frames()
			d.Send(frames...)
			fmt.Println("forger: connecting to host 0 at", addr)
			<-ctx.Done() // until killed
			return
		case <-ctx.Done():
			t.Fatal("no beacon from host 0")
		}
	}
}
