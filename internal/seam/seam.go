// Package seam is the network under a zre.Node when it does not run on
// the real network (a ZMTP ROUTER on TCP, one DEALER per peer, UDP
// beacons): how its inbox receives, how it reaches its peers' inboxes,
// how beacons come and go, and which key authenticated each message.
// internal/sim implements it in memory; tests reach it through package
// zre/zretest. It is internal so that zre's public API has no test seam.
//
// A Transport carries the same bytes as the real network — encoded ZRE
// frames and 22- or 54-octet beacons — so the node's state machine (HELLO,
// sequence numbers, groups, presence) runs unchanged above it. Secure
// mode runs on it too: the transport stands in for CURVE, telling the
// node the key each inbound message was authenticated with
// (InboxMessage.Key) and refusing a Dial whose target has not the key the
// node expects; the node's own checks (claims, pins, trust, Authorize at
// the HELLO stage) then run as on TCP.
package seam

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/beacon"
)

// Transport puts nodes on a network.
type Transport interface {
	// Attach puts a node on the network. It is called once, by Start.
	Attach(node Node) (Attachment, error)
}

// Node is what a Transport is told about the node it attaches.
type Node struct {
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
	// arrives, ctx ends (ctx.Err()) or the attachment is closed (an
	// error). Its frames may be shared with other receivers: the node
	// copies them.
	Recv(ctx context.Context) (InboxMessage, error)
	// Beacons returns the beacons other nodes publish, or nil when
	// discovery is off. It is closed after Close.
	Beacons() <-chan BeaconPacket
	// Publish makes payload our beacon: it is sent at once (at least
	// once, even if replaced right after) and then as the transport
	// repeats beacons; nil stops sending.
	Publish(payload []byte)
	// Dial opens our link to the inbox at endpoint; what we send on it
	// arrives with identity as the sender's identity and our Node.Key as
	// its key. A non-zero key is the key the inbox's node must have (as a
	// CURVE client authenticates its server): Dial fails when it has
	// another. Neither Dial nor the link's Send may block: a Send that its
	// queue cannot take returns an error wrapping
	// zmtp.ErrPeerNotResponding. Send may keep the frames (the node never
	// changes them after sending).
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

// Slot is where a config of package zre keeps its Transport: zre.Config
// embeds it as an unexported field (through an unexported alias), so zre's
// API shows no seam, and Set fills it from outside package zre without any
// package-level variable. The zero Slot means the real network.
type Slot struct{ t Transport }

func (s *Slot) setTransport(t Transport) { s.t = t }

// TransportOf returns the transport in s, nil for the real network.
func TransportOf(s Slot) Transport { return s.t }

// slotted is a pointer to a config that embeds a Slot: only a type of this
// package has the method, so only a Slot's promoted method satisfies it.
type slotted interface{ setTransport(Transport) }

// Set makes cfg, a pointer to a config embedding a Slot (*zre.Config),
// run on t. It panics if cfg has no Slot: a programming error of package
// zre/zretest, its only caller.
func Set(cfg any, t Transport) {
	s, ok := cfg.(slotted)
	if !ok {
		panic(fmt.Sprintf("seam: %T embeds no seam.Slot", cfg))
	}
	s.setTransport(t)
}
