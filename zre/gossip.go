package zre

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/zgossip"
)

// Gossip discovery, as the C reference's zyre_gossip_bind and
// zyre_gossip_connect: instead of (or beside) UDP beacons, the node runs a
// ZGOSSIP service (package zgossip) that serves other nodes, connects to
// gossip servers, or both, and publishes one tuple: our UUID as the C
// reference prints it (32 upper-case hex digits) and our inbox endpoint,
// followed in secure mode by "|" and our public key in Z85. Every tuple
// that arrives is a peer to connect to, as a beacon is. A node that stops
// sends GOODBYE to every peer (it has no port-0 beacon to say it) and
// forgets its tuple; a peer that is removed has its tuple forgotten too,
// so that it is connected to again when its tuple comes again. ZGOSSIP
// cannot withdraw a tuple from other servers: the tuples of nodes that
// stopped stay there, and who tries them finds nobody (and drops them
// after Config.Expired). See spec/gossip.md for what a server learns.

// GossipConfig turns on discovery by gossip.
type GossipConfig struct {
	// Bind serves gossip on this endpoint (tcp://host:port; port * or 0
	// for an ephemeral one): other nodes connect to it. "" serves none.
	Bind string
	// Connect are the gossip servers to connect to.
	Connect []GossipServer
	// Beacons keeps UDP beacons on beside gossip. The C reference turns
	// them off in gossip mode; so does a node without it.
	Beacons bool
}

// GossipServer is a gossip server to connect to: its endpoint
// (tcp://host:port) and, for a CURVE server, its public key.
type GossipServer struct {
	Endpoint string
	Key      curve.PublicKey
}

// gossipMode reports whether the node discovers by gossip.
func (s *state) gossipMode() bool { return s.gossip != nil }

// gossipNew prepares the configuration for gossip: beacons off unless
// kept. Called by New.
func (c *Config) gossipNew() error {
	g := c.Gossip
	if g == nil {
		return nil
	}
	gc := *g
	gc.Connect = slices.Clone(g.Connect)
	c.Gossip, g = &gc, &gc
	if g.Bind == "" && len(g.Connect) == 0 {
		return fmt.Errorf("zre: gossip: neither Bind nor Connect given")
	}
	for _, sv := range g.Connect {
		if err := checkEndpoint(sv.Endpoint); err != nil {
			return fmt.Errorf("zre: gossip server: %w", err)
		}
	}
	if c.transport() != nil {
		return fmt.Errorf("zre: gossip needs the real network, not a transport (zretest.WithTransport)")
	}
	if !g.Beacons {
		c.Beacon.Disabled = true
	}
	return nil
}

// hostWithoutBeacon is the host of our endpoint when we are bound to every
// interface and have no beacon to tell which one: in gossip mode, the
// address the system would use to reach the first gossip server (found
// without sending anything), else 127.0.0.1.
func (n *Node) hostWithoutBeacon() string {
	if g := n.cfg.Gossip; g != nil && len(g.Connect) > 0 {
		addr := strings.TrimPrefix(g.Connect[0].Endpoint, "tcp://")
		if c, err := net.Dial("udp", addr); err == nil { // a UDP "connection" sends nothing
			defer c.Close()
			if ua, ok := c.LocalAddr().(*net.UDPAddr); ok {
				if ip, ok := netip.AddrFromSlice(ua.IP); ok && !ip.Unmap().IsUnspecified() {
					return ip.Unmap().String()
				}
			}
		}
	}
	return "127.0.0.1"
}

// startGossip starts the gossip service, once the endpoint is known.
func (n *Node) startGossip() error {
	g := n.cfg.Gossip
	if g == nil {
		return nil
	}
	cfg := zgossip.Config{Logger: n.cfg.Logger}
	value := n.endpoint
	if n.sec != nil {
		cfg.Public, cfg.Secret = n.sec.pub, n.sec.sec
		value += "|" + n.sec.pub.Z85()
	}
	svc := zgossip.New(cfg)
	if g.Bind != "" {
		addr, err := svc.Bind(g.Bind)
		if err != nil {
			svc.Close()
			return fmt.Errorf("zre: %w", err)
		}
		n.gossipAddr = addr.String()
	}
	for _, sv := range g.Connect {
		if err := svc.Connect(sv.Endpoint, sv.Key); err != nil {
			svc.Close()
			return fmt.Errorf("zre: %w", err)
		}
	}
	if err := svc.Publish(uuidString(n.cfg.UUID), value); err != nil {
		svc.Close()
		return fmt.Errorf("zre: gossip: %w", err)
	}
	n.gossip = svc
	n.st.gossip = svc
	return nil
}

// gossipDeliveries is the loop's channel of tuples (nil without gossip).
func (n *Node) gossipDeliveries() <-chan zgossip.Tuple {
	if n.gossip == nil {
		return nil
	}
	return n.gossip.Deliveries()
}

// stopGossip forgets our tuple and closes the service.
func (n *Node) stopGossip() {
	if n.gossip != nil {
		n.gossip.Unpublish(uuidString(n.cfg.UUID))
		n.gossip.Close()
	}
}

// GossipAddr returns the address the gossip server is bound to
// (host:port), or "" when the node serves no gossip.
func (n *Node) GossipAddr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.gossipAddr
}

// onGossip handles a tuple from the gossip service: a peer to connect to,
// as a beacon (zyre_node_recv_gossip).
func (s *state) onGossip(t zgossip.Tuple, now time.Time) {
	if s.stopped {
		return
	}
	id, err := uuid.Parse(t.Key)
	endpoint, keyText, hasKey := strings.Cut(t.Value, "|")
	switch {
	case err != nil:
		err = fmt.Errorf("key %q is not a UUID", t.Key)
	case id == s.self || endpoint == s.endpoint:
		return // ours
	default:
		err = checkEndpoint(endpoint)
	}
	var key curve.PublicKey
	if err == nil && s.sec != nil {
		if !hasKey {
			err = fmt.Errorf("no public key in secure mode")
		} else if key, err = curve.ParsePublicKey(keyText); err == nil && !s.secureBeacon(Beacon{Version: BeaconV3, UUID: id, PublicKey: key}, "gossip "+endpoint) {
			return
		}
	}
	if err != nil {
		s.log.Debug("zre: gossip tuple dropped", "key", t.Key, "value", t.Value, "err", err)
		return
	}
	// A tuple is as unauthenticated as a beacon (the hub or anyone who
	// publishes to it chose it): it goes through the same caps on pending
	// peers, counted against the address it names.
	_, known := s.peers[id]
	if !known {
		ap, perr := netip.ParseAddrPort(strings.TrimPrefix(endpoint, "tcp://"))
		if perr != nil || !s.admitPending(ap.Addr().Unmap(), endpoint) {
			return
		}
	}
	p := s.requirePeer(id, endpoint, key, viaBeacon)
	if p == nil {
		return
	}
	if !known {
		ap, _ := netip.ParseAddrPort(strings.TrimPrefix(endpoint, "tcp://"))
		s.countPending(p, ap.Addr().Unmap())
	}
	p.heard(now, s.cfg, false)
}

// gossipForget forgets a removed peer's tuple, so that it is delivered
// (and the peer connected to) again when it comes again.
func (s *state) gossipForget(p *peer) {
	if s.gossip != nil {
		s.gossip.Unpublish(uuidString(p.id))
	}
}
