package beacon

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
)

// All is the Config.Interface value that selects every candidate interface
// (czmq's ZSYS_INTERFACE=*): the Service binds to 0.0.0.0 and sends to the
// broadcast address of each.
const All = "*"

// errNoDefaultRoute is parseDefaultRoute's answer for a table without one.
var errNoDefaultRoute = errors.New("beacon: no default IPv4 route")

// Choice is one interface a Service beacons on.
type Choice struct {
	Name      string       // interface name ("eth0")
	Addr      netip.Addr   // our IPv4 address on it
	Broadcast netip.Addr   // its IPv4 broadcast address
	Prefix    netip.Prefix // Addr's subnet (masked): who is on-link with us
	// Addrs are all the interface's addresses, IPv4 first (Addr among
	// them), then IPv6 ones other than link-local: where a TCP listener
	// bound to all addresses is reachable through this interface.
	Addrs []netip.Addr
	// Why says how it was chosen: "named", "default route", "first
	// broadcast interface" or "all".
	Why string
}

// String is "eth0 10.0.0.2 (broadcast 10.0.0.255, default route)".
func (c Choice) String() string {
	return fmt.Sprintf("%s %v (broadcast %v, %s)", c.Name, c.Addr, c.Broadcast, c.Why)
}

// ifaceInfo is what choose needs to know of one interface.
type ifaceInfo struct {
	name  string
	flags net.Flags
	addrs []netip.Prefix
}

// candidate reports whether an interface qualifies as czmq's ziflist has
// it: up, broadcast-capable, neither loopback nor point-to-point. (ziflist
// also skips bonding slaves; Go's net.Flags do not say, and a slave has no
// address of its own, so it fails the address test anyway.)
func (i ifaceInfo) candidate() bool {
	return i.flags&net.FlagUp != 0 && i.flags&net.FlagBroadcast != 0 &&
		i.flags&net.FlagLoopback == 0 && i.flags&net.FlagPointToPoint == 0
}

// choice returns the interface's first IPv4 address that has a broadcast
// address (a prefix shorter than /31), or, when want is valid, that address.
func (i ifaceInfo) choice(want netip.Addr, why string) (Choice, bool) {
	c := Choice{Name: i.name, Why: why}
	var v6 []netip.Addr
	for _, p := range i.addrs {
		a := p.Addr()
		switch {
		case a.Is4():
			c.Addrs = append(c.Addrs, a)
			if !c.Addr.IsValid() && p.Bits() < 31 && (!want.IsValid() || a == want) {
				c.Addr, c.Broadcast, c.Prefix = a, broadcastOf(p), p.Masked()
			}
		case !a.IsLinkLocalUnicast() && !a.IsLoopback():
			v6 = append(v6, a)
		}
	}
	c.Addrs = append(c.Addrs, v6...)
	return c, c.Addr.IsValid()
}

// Choose returns the interfaces a Service with Config.Interface = spec
// uses, as the C reference chooses them:
//
//   - "" : the interface of the default IPv4 route when it qualifies,
//     otherwise (no default route, as on a car's hotspot or a travel
//     router without uplink) the first interface that is up,
//     broadcast-capable, not loopback and not point-to-point, with an IPv4
//     address that has a broadcast address, in the system's order;
//   - All ("*"): every such interface;
//   - an interface name, or one of an interface's IPv4 addresses: that one.
func Choose(spec string) ([]Choice, error) {
	ifs, err := systemInterfaces()
	if err != nil {
		return nil, err
	}
	def := ""
	if spec == "" {
		f, err := os.Open("/proc/net/route")
		if err == nil {
			def, err = parseDefaultRoute(f)
			f.Close()
		}
		if err != nil && !errors.Is(err, errNoDefaultRoute) && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	return choose(spec, ifs, def)
}

// choose is Choose on a given interface list and default-route interface
// ("" for none).
func choose(spec string, ifs []ifaceInfo, defaultRoute string) ([]Choice, error) {
	switch spec {
	case "":
		if defaultRoute != "" {
			for _, i := range ifs {
				if i.name == defaultRoute && i.candidate() {
					if c, ok := i.choice(netip.Addr{}, "default route"); ok {
						return []Choice{c}, nil
					}
				}
			}
		}
		for _, i := range ifs {
			if !i.candidate() {
				continue
			}
			if c, ok := i.choice(netip.Addr{}, "first broadcast interface"); ok {
				return []Choice{c}, nil
			}
		}
		return nil, fmt.Errorf("beacon: no interface is up and broadcast-capable with an IPv4 broadcast address (%s); set Config.Interface", describe(ifs))
	case All:
		var all []Choice
		for _, i := range ifs {
			if !i.candidate() {
				continue
			}
			if c, ok := i.choice(netip.Addr{}, "all"); ok {
				all = append(all, c)
			}
		}
		if len(all) == 0 {
			return nil, fmt.Errorf("beacon: interface %q: no interface is up and broadcast-capable with an IPv4 broadcast address (%s)", spec, describe(ifs))
		}
		return all, nil
	}
	var want netip.Addr
	if a, err := netip.ParseAddr(spec); err == nil {
		want = a.Unmap()
	}
	for _, i := range ifs {
		if want.IsValid() {
			if !hasAddr(i, want) {
				continue
			}
		} else if i.name != spec {
			continue
		}
		switch {
		case i.flags&net.FlagUp == 0:
			return nil, fmt.Errorf("beacon: interface %s is down", i.name)
		case i.flags&net.FlagBroadcast == 0:
			return nil, fmt.Errorf("beacon: interface %s cannot broadcast (use Loopback mode for lo)", i.name)
		}
		c, ok := i.choice(want, "named")
		if !ok {
			return nil, fmt.Errorf("beacon: interface %s has no IPv4 address with a broadcast address", i.name)
		}
		return []Choice{c}, nil
	}
	if want.IsValid() {
		return nil, fmt.Errorf("beacon: interface %q: no interface has address %v", spec, want)
	}
	return nil, fmt.Errorf("beacon: interface %q: no such interface", spec)
}

func hasAddr(i ifaceInfo, a netip.Addr) bool {
	for _, p := range i.addrs {
		if p.Addr() == a {
			return true
		}
	}
	return false
}

// describe lists interfaces for an error message: "lo (loopback), eth0 (down)".
func describe(ifs []ifaceInfo) string {
	var parts []string
	for _, i := range ifs {
		why := "no IPv4 broadcast address"
		switch {
		case i.flags&net.FlagLoopback != 0:
			why = "loopback"
		case i.flags&net.FlagUp == 0:
			why = "down"
		case i.flags&net.FlagPointToPoint != 0:
			why = "point-to-point"
		case i.flags&net.FlagBroadcast == 0:
			why = "no broadcast"
		}
		parts = append(parts, i.name+" ("+why+")")
	}
	if len(parts) == 0 {
		return "no interfaces"
	}
	return "have: " + strings.Join(parts, ", ")
}

// systemInterfaces lists this host's interfaces in the system's order.
func systemInterfaces() ([]ifaceInfo, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("beacon: listing interfaces: %w", err)
	}
	out := make([]ifaceInfo, 0, len(ifs))
	for _, ifi := range ifs {
		info := ifaceInfo{name: ifi.Name, flags: ifi.Flags}
		addrs, err := ifi.Addrs()
		if err != nil {
			return nil, fmt.Errorf("beacon: interface %s: %w", ifi.Name, err)
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if p, ok := netipPrefix(ipn); ok {
				info.addrs = append(info.addrs, p)
				continue
			}
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok && ip.Is6() {
				ones, _ := ipn.Mask.Size()
				info.addrs = append(info.addrs, netip.PrefixFrom(ip, ones))
			}
		}
		out = append(out, info)
	}
	return out, nil
}
