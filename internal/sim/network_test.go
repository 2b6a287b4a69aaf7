package sim

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/testenv"
	"github.com/zyre-go/zyre/zmtp"
	"github.com/zyre-go/zyre/zre"
	"github.com/zyre-go/zyre/zre/zretest"
)

const testTimeout = 20 * time.Second

func attach(t *testing.T, n *Network, beacons bool) zretest.Attachment {
	t.Helper()
	a, err := n.Attach(zretest.TransportNode{UUID: uuid.New(), Beacons: beacons})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func recv(t *testing.T, a zretest.Attachment) zretest.InboxMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	m, err := a.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func beaconFrom(t *testing.T, a zretest.Attachment) zretest.BeaconPacket {
	t.Helper()
	select {
	case p := <-a.Beacons():
		return p
	case <-time.After(testTimeout):
		t.Fatal("no beacon")
		return zretest.BeaconPacket{}
	}
}

// Messages arrive in order with the sender's identity and endpoint; a link
// refuses with zmtp.ErrPeerNotResponding once HWM of its messages wait,
// and takes more once they are read.
func TestLinkOrderAndHWM(t *testing.T) {
	n := NewNetwork(NetworkOptions{HWM: 3})
	defer n.Close()
	a, b := attach(t, n, false), attach(t, n, false)
	if a.Endpoint() == b.Endpoint() {
		t.Fatalf("same endpoint %s", a.Endpoint())
	}
	l, err := a.Dial(b.Endpoint(), []byte("id-a"), curve.PublicKey{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := l.Send([]byte{byte(i)}, []byte("x")); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if err := l.Send([]byte{9}); !errors.Is(err, zmtp.ErrPeerNotResponding) {
		t.Fatalf("send past HWM: %v, want ErrPeerNotResponding", err)
	}
	// Another link to the same inbox has its own HWM.
	l2, _ := a.Dial(b.Endpoint(), []byte("id-a"), curve.PublicKey{})
	if err := l2.Send([]byte{3}); err != nil {
		t.Fatalf("second link: %v", err)
	}
	for i := range 4 {
		m := recv(t, b)
		if string(m.Identity) != "id-a" || m.Remote != a.Endpoint() || m.Frames[0][0] != byte(i) {
			t.Fatalf("message %d: %+v", i, m)
		}
	}
	if err := l.Send([]byte{4}); err != nil {
		t.Fatalf("send after the queue drained: %v", err)
	}
	l.Close()
	if err := l.Send([]byte{5}); !errors.Is(err, zmtp.ErrClosed) {
		t.Fatalf("send on a closed link: %v", err)
	}
	if st := n.Stats(); st.Messages != 5 || st.Refused != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestDialUnknownAndClosed(t *testing.T) {
	n := NewNetwork(NetworkOptions{})
	a, b := attach(t, n, false), attach(t, n, false)
	if _, err := a.Dial("tcp://10.9.9.9:1", nil, curve.PublicKey{}); !errors.Is(err, ErrNoNode) {
		t.Fatalf("dial nowhere: %v", err)
	}
	l, err := a.Dial(b.Endpoint(), []byte("a"), curve.PublicKey{})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	b.Close()
	if _, err := b.Recv(context.Background()); !errors.Is(err, zre.ErrClosed) {
		t.Fatalf("Recv after Close: %v", err)
	}
	// Like a write into the socket of a dead peer: accepted, lost.
	if err := l.Send([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Dial(b.Endpoint(), nil, curve.PublicKey{}); !errors.Is(err, ErrNoNode) {
		t.Fatalf("dial a detached node: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.Recv(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Recv with a cancelled context: %v", err)
	}
	n.Close()
	n.Close()
	if _, err := n.Attach(zretest.TransportNode{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Attach after Close: %v", err)
	}
	if st := n.Stats(); st.Lost != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// A beacon reaches every other node once, and a node attaching later gets
// every beacon published before; our own is not echoed; Beacons is closed
// by Close; a node without discovery gets none.
func TestBeacons(t *testing.T) {
	n := NewNetwork(NetworkOptions{})
	defer n.Close()
	a, b := attach(t, n, true), attach(t, n, true)
	quiet := attach(t, n, false)
	if quiet.Beacons() != nil {
		t.Fatal("a node without discovery has a beacon channel")
	}
	a.Publish([]byte("beacon-a"))
	p := beaconFrom(t, b)
	if string(p.Payload) != "beacon-a" || p.From.Port() != BeaconPort {
		t.Fatalf("b got %q from %v", p.Payload, p.From)
	}
	c := attach(t, n, true)
	if p := beaconFrom(t, c); string(p.Payload) != "beacon-a" {
		t.Fatalf("late node got %q", p.Payload)
	}
	c.Publish([]byte("beacon-c"))
	for _, x := range []zretest.Attachment{a, b} {
		if p := beaconFrom(t, x); string(p.Payload) != "beacon-c" {
			t.Fatalf("got %q", p.Payload)
		}
	}
	select {
	case p := <-c.Beacons():
		t.Fatalf("c heard %q (its own?)", p.Payload)
	default:
	}
	c.Close()
	if _, ok := <-c.Beacons(); ok {
		t.Fatal("Beacons not closed after Close")
	}
}

func TestRepeatedBeaconsAndNoLeak(t *testing.T) {
	testenv.NoLeak(t, testTimeout)
	n := NewNetwork(NetworkOptions{BeaconInterval: 10 * time.Millisecond})
	a, b := attach(t, n, true), attach(t, n, true)
	a.Publish([]byte("a"))
	for range 3 { // the first at once, then repeats
		if p := beaconFrom(t, b); string(p.Payload) != "a" {
			t.Fatalf("got %q", p.Payload)
		}
	}
	n.Close()
}

// TestDialKeys: the network stands in for CURVE: a Dial expecting a key
// reaches only the node with that key, a plain node cannot reach a secure
// one, and messages carry the sender's key.
func TestDialKeys(t *testing.T) {
	n := NewNetwork(NetworkOptions{})
	defer n.Close()
	ka, _, _ := curve.GenerateKeyPair(rand.Reader)
	kb, _, _ := curve.GenerateKeyPair(rand.Reader)
	a, err := n.Attach(zretest.TransportNode{UUID: uuid.New(), Key: ka})
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.Attach(zretest.TransportNode{UUID: uuid.New(), Key: kb})
	if err != nil {
		t.Fatal(err)
	}
	plain := attach(t, n, false)
	if _, err := a.Dial(b.Endpoint(), []byte("a"), ka); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("dial with the wrong key: %v, want ErrKeyMismatch", err)
	}
	if _, err := plain.Dial(b.Endpoint(), []byte("p"), curve.PublicKey{}); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("plain dials secure: %v, want ErrKeyMismatch", err)
	}
	l, err := a.Dial(b.Endpoint(), []byte("a"), kb)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Send([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, b); m.Key != ka {
		t.Fatalf("message key %s, want the sender's %s", m.Key, ka)
	}
	l2, err := plain.Dial(a.Endpoint(), []byte("p"), curve.PublicKey{})
	if err == nil {
		t.Fatalf("plain dials secure a: no error (link %v)", l2)
	}
}
