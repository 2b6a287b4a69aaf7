// Package zretest holds what only tests and simulations of zre nodes need,
// apart from zre's API (as wireguard-go keeps conn/bindtest apart from
// conn): running a node on another network than TCP and UDP, such as
// internal/sim's in-memory one.
package zretest

import (
	"github.com/zyre-go/zyre/internal/seam"
	"github.com/zyre-go/zyre/zre"
)

// The network seam of a node; see internal/seam.
type (
	// Transport puts nodes on a network.
	Transport = seam.Transport
	// TransportNode is what a Transport is told about a node.
	TransportNode = seam.Node
	// Attachment is one node's place on a Transport.
	Attachment = seam.Attachment
	// InboxMessage is one message an inbox received, with the key the
	// transport authenticated its sender with.
	InboxMessage = seam.InboxMessage
	// BeaconPacket is one received beacon.
	BeaconPacket = seam.BeaconPacket
	// Link is a node's outgoing connection to one peer's inbox.
	Link = seam.Link
)

// WithTransport returns cfg set to run the node on t instead of the real
// network (TCP inbox, DEALERs, UDP beacons): Start attaches it. Beacon
// settings other than Disabled, Bind and Advertise are then unused;
// secure mode runs on it (the transport stands in for CURVE's
// authentication), gossip discovery does not (New refuses it).
func WithTransport(cfg zre.Config, t Transport) zre.Config {
	seam.Set(&cfg, t)
	return cfg
}
