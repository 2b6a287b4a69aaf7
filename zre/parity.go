package zre

import (
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/zyre-go/zyre/zre/zremsg"
)

// Parity with the rest of the C reference's API (zyre.h):
//
//   - zyre_set_beacon_peer_port (the TCP port of the inbox, instead of an
//     ephemeral one): Config.Bind with a port ("0.0.0.0:5671").
//   - zyre_set_advertised_endpoint (a whole endpoint, for a node behind a
//     NAT or a port forward): Config.Advertise as tcp://host:port. The
//     endpoint goes into our HELLO and our gossip tuple; beacons still
//     announce the bound port, as the C reference's do.
//   - zyre_version: LibraryVersion. zyre_print: Node.Print.
//   - zyre_event_header: Enter.Header.

// advertisedEndpoint returns Config.Advertise when it is a whole endpoint.
func (c *Config) advertisedEndpoint() string {
	if strings.HasPrefix(c.Advertise, "tcp://") {
		return c.Advertise
	}
	return ""
}

// checkAdvertise checks a whole advertised endpoint (New).
func (c *Config) checkAdvertise() error {
	if ep := c.advertisedEndpoint(); ep != "" {
		if err := checkEndpoint(ep); err != nil {
			return fmt.Errorf("zre: Advertise: %w", err)
		}
	}
	return nil
}

// LibraryVersion returns this module's version as the Go build knows it
// ("v1.2.3", or "(devel)" in a build from a work tree) and the protocol
// versions it speaks.
func LibraryVersion() string {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Path == "github.com/zyre-go/zyre" && bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, d := range bi.Deps {
			if d.Path == "github.com/zyre-go/zyre" {
				v = d.Version
			}
		}
	}
	return fmt.Sprintf("zyre-go %s (ZRE message v%d, beacon v%d/v%d, ZMTP 3.1)", v, zremsg.Version, BeaconV1, BeaconV3)
}

// Header returns the value of a header of the peer's HELLO (the C
// reference's zyre_event_header).
func (e *Enter) Header(key string) (string, bool) {
	for _, h := range e.Headers {
		if h.Key == key {
			return h.Value, true
		}
	}
	return "", false
}

// Print writes a readable dump of the node (the C reference's zyre_print):
// who it is, how it discovers, its headers, peers and groups.
func (n *Node) Print(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "node: %s %s\n", n.Name(), uuidString(n.UUID()))
	fmt.Fprintf(&b, " - endpoint=%s\n", n.Endpoint())
	if n.sec != nil {
		fmt.Fprintf(&b, " - secure, key=%s\n", n.sec.pub)
	}
	switch {
	case n.cfg.Gossip != nil:
		fmt.Fprintf(&b, " - discovery=gossip")
		if a := n.GossipAddr(); a != "" {
			fmt.Fprintf(&b, " bind=tcp://%s", a)
		}
		for _, s := range n.cfg.Gossip.Connect {
			fmt.Fprintf(&b, " connect=%s", s.Endpoint)
		}
		if n.cfg.Gossip.Beacons {
			fmt.Fprintf(&b, " +beacon port=%d", n.cfg.Beacon.Port)
		}
		b.WriteString("\n")
	case !n.cfg.Beacon.Disabled:
		fmt.Fprintf(&b, " - discovery=beacon port=%d interval=%v\n", n.cfg.Beacon.Port, n.cfg.Beacon.Interval)
	default:
		b.WriteString(" - discovery=none\n")
	}
	var hdrs []Header
	var infos []PeerInfo
	var own []string
	groups := map[string][]string{}
	if err := n.do(func(st *state) {
		hdrs = st.helloHeaders()
		own = st.own.list()
		for _, p := range st.sortedPeers() {
			if p.ready {
				infos = append(infos, st.peerInfo(p))
			}
		}
		for name, g := range st.groups {
			for _, p := range st.sortedPeers() {
				if p.ready && g.peers[p.id] != nil {
					groups[name] = append(groups[name], p.label())
				}
			}
		}
	}); err != nil {
		return err
	}
	fmt.Fprintf(&b, " - headers=%d:\n", len(hdrs))
	for _, h := range hdrs {
		fmt.Fprintf(&b, "   - %s: %s\n", h.Key, h.Value)
	}
	fmt.Fprintf(&b, " - peers=%d:\n", len(infos))
	for _, p := range infos {
		fmt.Fprintf(&b, "   - %s %s %s\n", p.Name, uuidString(p.UUID), p.Endpoint)
	}
	fmt.Fprintf(&b, " - own groups=%d:\n", len(own))
	for _, g := range own {
		fmt.Fprintf(&b, "   - %s\n", g)
	}
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	slices.Sort(names)
	fmt.Fprintf(&b, " - peer groups=%d:\n", len(names))
	for _, g := range names {
		fmt.Fprintf(&b, "   - %s: %s\n", g, strings.Join(groups[g], " "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
