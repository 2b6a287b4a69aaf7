package agent

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/zyre-go/zyre/agent/client"
)

// Network is where the agent's node runs, and so where its pairings listen
// and announce (spec/agent.md, "Pairing"): set it as the node's
// zre.Config says.
type Network struct {
	// Interface is the node's beacon interface (zre.BeaconConfig.Interface:
	// a name, one of its addresses, "*" for all, "" for that of the
	// default route).
	Interface string
	// Loopback: the node stays on loopback (zre.BeaconConfig.Loopback).
	Loopback bool
	// Bind is the host the node's inbox listens on (zre.Config.Bind
	// without its port); "" for all addresses (127.0.0.1 with Loopback).
	Bind string
	// Port is the node's UDP beacon port (zre.BeaconConfig.Port), said
	// in Info; 0 when not known.
	Port int
}

// errWiderNetwork is a pair request's network beyond the node's.
var errWiderNetwork = errors.New("wider than the agent's node")

// pairNetwork returns where a pairing of request a listens and announces:
// by default where the node does. The request may narrow it (to loopback,
// to one of the interfaces of a node on "*", to one address of a node
// listening on all), never widen it, unless any (the agent was started
// allowing any network): then it is the request's, with the node's
// settings for the fields it leaves out.
func pairNetwork(node Network, any bool, a client.PairArgs) (listen, iface string, loopback bool, err error) {
	given := a.Listen != "" || a.Interface != "" || a.Loopback
	if !given {
		if node.Loopback {
			return loopbackListen(node.Bind), "", true, nil
		}
		return bindListen(node.Bind), node.Interface, false, nil
	}
	if any {
		iface = a.Interface
		if iface == "" && !a.Loopback {
			iface = node.Interface
		}
		return a.Listen, iface, a.Loopback, nil
	}
	var ap netip.AddrPort
	if a.Listen != "" {
		if ap, err = netip.ParseAddrPort(a.Listen); err != nil {
			return "", "", false, fmt.Errorf("pair: listen %q: want IP:port: %w", a.Listen, err)
		}
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if a.Loopback || node.Loopback {
		// Loopback is the narrowest: a request may always ask for it.
		switch {
		case a.Interface != "":
			return "", "", false, fmt.Errorf("pair: interface %q with loopback: %w (lo only)", a.Interface, errWiderNetwork)
		case a.Listen != "" && !ap.Addr().IsLoopback():
			return "", "", false, fmt.Errorf("pair: listen %s: %w (loopback only)", a.Listen, errWiderNetwork)
		case a.Listen != "":
			return ap.String(), "", true, nil
		case node.Loopback:
			return loopbackListen(node.Bind), "", true, nil
		}
		return "", "", true, nil
	}
	iface = node.Interface
	if a.Interface != "" && a.Interface != node.Interface {
		if node.Interface != "*" {
			return "", "", false, fmt.Errorf("pair: interface %q: %w (%s)", a.Interface, errWiderNetwork, describeIface(node.Interface))
		}
		iface = a.Interface // one of all
	}
	listen = bindListen(node.Bind)
	if a.Listen != "" {
		if b, err := netip.ParseAddr(node.Bind); err == nil && !b.IsUnspecified() && b.Unmap() != ap.Addr() {
			return "", "", false, fmt.Errorf("pair: listen %s: %w (it listens on %s)", a.Listen, errWiderNetwork, node.Bind)
		}
		listen = ap.String()
	}
	return listen, iface, false, nil
}

// loopbackListen is where a pairing on loopback listens: the node's bind
// host when it is a loopback address, else the pairing's default
// (127.0.0.1).
func loopbackListen(bind string) string {
	if b, err := netip.ParseAddr(bind); err == nil && b.Unmap().IsLoopback() {
		return netip.AddrPortFrom(b.Unmap(), 0).String()
	}
	return ""
}

// bindListen is where a pairing of a node bound to bind listens: the same
// host on any port, or the pairing's default (all addresses) for none.
func bindListen(bind string) string {
	if b, err := netip.ParseAddr(bind); err == nil && !b.IsUnspecified() {
		return netip.AddrPortFrom(b.Unmap(), 0).String()
	}
	return ""
}

func describeIface(s string) string {
	if s == "" {
		return "it beacons on the default route's interface"
	}
	return "it beacons on " + s
}
