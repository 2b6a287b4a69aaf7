package zre

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/beacon"
)

// Transport is the network under a Node when Config.Transport is set: how
// its inbox receives, how it reaches its peers' inboxes, and how beacons
// come and go. With Config.Transport nil (the normal case) a node runs on
// the real network: a ZMTP ROUTER on TCP, one ZMTP DEALER per peer and UDP
// beacons.
//
// A Transport carries the same bytes as the real network — encoded ZRE
// frames and 22-octet beacons — so the node's state machine (HELLO,
// sequence numbers, groups, presence) runs unchanged above it. Its purpose
// is simulation: internal/sim runs a thousand nodes in one process over an
// in-memory Transport, which a thousand nodes in full mesh over TCP (a
// million connections) could not do. Secure mode runs on a Transport
// too: the transport stands in for CURVE, telling the node the key each
// inbound message was authenticated with (InboxMessage.Key) and refusing a
// Dial whose peer has not the key the node expects; the node's own checks
// (claims, pins, trust, Authorize at the HELLO stage) then run unchanged.
type Transport interface {
	// Attach puts a node on the network. It is called once, by Start.
	Attach(node TransportNode) (Attachment, error)
}

// TransportNode is what a Transport is told about the node it attaches.
type TransportNode struct {
	UUID    uuid.UUID
	Name    string
	Bind    string // Config.Bind, possibly ""
	Beacons bool   // discovery is on (Config.Beacon.Disabled is false)
	// Key is the node's public key in secure mode (zero in plain mode):
	// what the transport reports as InboxMessage.Key to the peers this
	// node sends to, and what a peer's Dial with a key must find.
	Key curve.PublicKey
}

// Attachment is one node's place on a Transport. The node calls Recv from
// one goroutine, Dial and Publish from its state goroutine, and Close once,
// after which Recv returns an error and Beacons is closed.
type Attachment interface {
	// Endpoint is how peers reach our inbox, "tcp://host:port" with a
	// non-zero port: it goes into our HELLO and our beacon's port, and is
	// what a peer's Dial gets.
	Endpoint() string
	// Recv returns the next message sent to our inbox, blocking until one
	// arrives, ctx ends (ctx.Err()) or the attachment is closed (an error
	// wrapping ErrClosed). Its frames may be shared with other receivers:
	// the node copies them.
	Recv(ctx context.Context) (InboxMessage, error)
	// Beacons returns the beacons other nodes publish, or nil when
	// discovery is off. It is closed after Close.
	Beacons() <-chan BeaconPacket
	// Publish makes payload our beacon: it is sent at once (at least
	// once, even if replaced right after) and then as the transport
	// repeats beacons; nil stops sending.
	Publish(payload []byte)
	// Dial opens our link to the inbox at endpoint; what we send on it
	// arrives with identity as the sender's identity and our
	// TransportNode.Key as its key. A non-zero key is the key the inbox's
	// node must have (as a CURVE client authenticates its server): Dial
	// fails when it has another. Neither Dial nor the
	// link's Send may block: a Send that its queue cannot take returns an
	// error wrapping zmtp.ErrPeerNotResponding. Send may keep the frames
	// (the node never changes them after sending).
	Dial(endpoint string, identity []byte, key curve.PublicKey) (Link, error)
	Close() error
}

// InboxMessage is one message our inbox received: the sender's ZMTP
// identity (0x01 + its UUID for a ZRE peer), the frames, for logs the
// sender's address and, from a secure node, the public key the transport
// authenticated it with (zero from a plain one): a secure node checks it
// on every message as it checks CURVE's.
type InboxMessage struct {
	Identity []byte
	Frames   [][]byte
	Remote   string
	Key      curve.PublicKey
}

// BeaconPacket is one received beacon: the payload (which the node only
// reads, so a transport may give every receiver the same slice) and the
// sender's address, whose host and the beacon's port make the peer's
// endpoint.
type BeaconPacket = beacon.Packet

// Link is a node's outgoing connection to one peer's inbox.
type Link interface {
	Send(frames ...[]byte) error
	Close() error
}

// ErrUnsupported is wrapped by Start for a configuration it cannot run.
var ErrUnsupported = errors.New("zre: unsupported configuration")

// startAttached is Start on Config.Transport; n.mu is held.
func (n *Node) startAttached() error {
	tn := TransportNode{UUID: n.cfg.UUID, Name: n.cfg.Name, Bind: n.cfg.Bind, Beacons: !n.cfg.Beacon.Disabled}
	if n.sec != nil {
		tn.Key = n.sec.pub
	}
	a, err := n.cfg.Transport.Attach(tn)
	if err != nil {
		return fmt.Errorf("zre: failed to attach to transport: %w", err)
	}
	ep := a.Endpoint()
	port, err := endpointPort(ep)
	if err != nil {
		a.Close()
		return fmt.Errorf("zre: transport gave endpoint %q: %w", ep, err)
	}
	n.att = a
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
	go n.readAttached()
	go n.loop()
	n.cfg.Logger.Debug("zre: node started on transport", "node", n.cfg.Name, "uuid", uuidString(n.cfg.UUID), "endpoint", ep)
	return nil
}

// readAttached hands the messages of a Config.Transport to the loop.
func (n *Node) readAttached() {
	defer n.wg.Done()
	for {
		m, err := n.att.Recv(n.ctx)
		if err != nil {
			return
		}
		select {
		// A Transport may give every receiver the same frames (Link.Send
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

// dialAttached is dialKey on Config.Transport.
func (n *Node) dialAttached(endpoint string, key curve.PublicKey) (link, error) {
	l, err := n.att.Dial(endpoint, Identity(n.cfg.UUID), key)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// stopAttached is the end of Stop on Config.Transport: a port-0 beacon
// (the transport sends it at once), then links and attachment closed.
func (n *Node) stopAttached(links []link) {
	if !n.cfg.Beacon.Disabled {
		port0 := n.beaconFor(0)
		n.att.Publish(port0.AppendMarshal(nil))
		n.att.Publish(nil)
	}
	for _, l := range links {
		l.Close()
	}
	n.att.Close()
}

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
