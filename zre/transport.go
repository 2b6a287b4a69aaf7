package zre

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/beacon"
	"github.com/zyre-go/zyre/internal/seam"
	"github.com/zyre-go/zyre/zmtp"
)

// network is what a started node runs on: the real network (tcpNet: the
// inbox ROUTER, one DEALER per peer, the UDP beacon) or a transport of
// internal/seam (attachedNet: internal/sim's in-memory network). Either
// way an inbound message reaches the state with the key that
// authenticated its sender (inboxMsg.publicKey), so secure mode runs on
// both. Start picks one; the rest of the node does not branch on which.
type network interface {
	// dial opens our link to the inbox at endpoint; a non-zero key is
	// the key its node must prove (CURVE's server key).
	dial(endpoint string, key curve.PublicKey) (link, error)
	// beacons are the beacons heard, nil without discovery.
	beacons() <-chan beacon.Packet
	// disconnect closes the inbound connection of identity, if any, and
	// reports whether there was one.
	disconnect(identity []byte) bool
	// stop is the end of Stop: a port-0 beacon, the links flushed (at
	// most linger, never past ctx) and closed, the inbox closed.
	stop(ctx context.Context, linger time.Duration, links []link)
	// close closes what is left, at once.
	close()
}

// tcpNet is the real network; Start (node.go) sets n.router and n.beacon.
type tcpNet struct{ n *Node }

func (t tcpNet) dial(endpoint string, key curve.PublicKey) (link, error) {
	addr := strings.TrimPrefix(endpoint, "tcp://")
	opts := t.n.dealerOptions(key)
	if t.n.sec != nil {
		// On the DEALER's goroutine: hands the outcome to the loop.
		opts.OnHandshake = func(err error) { t.n.onHandshake(endpoint, key, err) } // denied.go
	}
	d, err := zmtp.DialDealer("tcp", addr, opts)
	if err != nil {
		return nil, err
	}
	return newGiveUpLink(d, giveUpAfter), nil
}

func (t tcpNet) beacons() <-chan beacon.Packet {
	if t.n.beacon == nil {
		return nil
	}
	return t.n.beacon.Packets()
}

func (t tcpNet) disconnect(identity []byte) bool {
	return t.n.router.Disconnect(identity) == nil
}

func (t tcpNet) stop(ctx context.Context, linger time.Duration, links []link) {
	n := t.n
	if b := n.beacon; b != nil {
		port0 := n.beaconFor(0)
		before := b.Stats().Sent
		b.Publish(port0.AppendMarshal(nil))
		waitUntil(ctx, 2*n.cfg.Beacon.Interval+time.Second, func() bool { return b.Stats().Sent > before })
		b.Silence()
		b.Close()
	}
	flushLinks(ctx, linger, links)
	for _, l := range links {
		l.Close()
	}
	n.router.Close()
	n.stopGossip() // gossip.go
}

func (t tcpNet) close() {
	n := t.n
	n.router.Close()
	if n.beacon != nil {
		n.beacon.Close()
	}
	n.stopGossip() // gossip.go
}

// attachedNet is a node on a transport of internal/seam (zretest).
type attachedNet struct {
	n   *Node
	att seam.Attachment
}

// startAttached is Start on a transport; n.mu is held.
func (n *Node) startAttached() error {
	tn := seam.Node{UUID: n.cfg.UUID, Name: n.cfg.Name, Bind: n.cfg.Bind, Beacons: !n.cfg.Beacon.Disabled}
	if n.sec != nil {
		tn.Key = n.sec.pub
	}
	a, err := n.cfg.transport().Attach(tn)
	if err != nil {
		return fmt.Errorf("zre: failed to attach to transport: %w", err)
	}
	ep := a.Endpoint()
	port, err := endpointPort(ep)
	if err != nil {
		a.Close()
		return fmt.Errorf("zre: transport gave endpoint %q: %w", ep, err)
	}
	an := attachedNet{n: n, att: a}
	n.net = an
	n.endpoint = ep
	n.st.endpoint = ep
	if n.sec != nil && n.sec.trust != nil {
		n.st.trustTick() // the store's pins, before the first beacon
	}
	if !n.cfg.Beacon.Disabled {
		bc := n.beaconFor(port)
		a.Publish(bc.AppendMarshal(nil))
	}
	n.mu.started = true
	n.wg.Add(2)
	go an.read()
	go n.loop()
	n.cfg.Logger.Debug("zre: node started on transport", "node", n.cfg.Name, "uuid", uuidString(n.cfg.UUID), "endpoint", ep)
	return nil
}

// read hands the transport's messages to the loop.
func (t attachedNet) read() {
	n := t.n
	defer n.wg.Done()
	for {
		m, err := t.att.Recv(n.ctx)
		if err != nil {
			return
		}
		select {
		// A transport may give every receiver the same frames (Link.Send
		// may keep them); events hand content to the application, which
		// owns it, so take a copy here.
		case n.inbox <- inboxMsg{identity: m.Identity, frames: cloneFrames(m.Frames), remote: m.Remote, publicKey: keyBytes(m.Key)}:
		case <-n.quit:
			return
		}
	}
}

// keyBytes is k as inboxMsg.publicKey takes it: nil for the zero key.
func keyBytes(k curve.PublicKey) []byte {
	if k.IsZero() {
		return nil
	}
	return k.Bytes()
}

func (t attachedNet) dial(endpoint string, key curve.PublicKey) (link, error) {
	l, err := t.att.Dial(endpoint, Identity(t.n.cfg.UUID), key)
	if err != nil {
		return nil, err
	}
	return l, nil
}

func (t attachedNet) beacons() <-chan beacon.Packet { return t.att.Beacons() }

// disconnect: a transport has no connections to close; the state drops
// the peer's messages by its key.
func (t attachedNet) disconnect([]byte) bool { return false }

// stop: a port-0 beacon (the transport sends it at once), then links and
// attachment closed. A transport's links do not flush: what was sent is
// in the peer's inbox already.
func (t attachedNet) stop(_ context.Context, _ time.Duration, links []link) {
	if !t.n.cfg.Beacon.Disabled {
		port0 := t.n.beaconFor(0)
		t.att.Publish(port0.AppendMarshal(nil))
		t.att.Publish(nil)
	}
	for _, l := range links {
		l.Close()
	}
	t.att.Close()
}

func (t attachedNet) close() { t.att.Close() }

// endpointPort returns the port of a valid tcp://host:port endpoint.
func endpointPort(ep string) (uint16, error) {
	if err := checkEndpoint(ep); err != nil {
		return 0, err
	}
	// checkEndpoint checked that the port is 1 to 65535 in decimal digits.
	var port uint16
	for _, c := range ep[strings.LastIndexByte(ep, ':')+1:] {
		port = port*10 + uint16(c-'0')
	}
	return port, nil
}
