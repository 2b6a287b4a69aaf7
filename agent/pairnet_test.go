package agent

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/pairing"
)

func TestPairNetwork(t *testing.T) {
	lo := Network{Loopback: true}
	eth := Network{Interface: "192.0.2.7"}
	all := Network{Interface: "*"}
	bound := Network{Interface: "192.0.2.7", Bind: "192.0.2.7"}
	for _, tc := range []struct {
		name     string
		node     Network
		any      bool
		req      client.PairArgs
		listen   string
		iface    string
		loopback bool
		wider    bool // refused as wider than the node's
		bad      bool // refused as malformed
	}{
		{name: "loopback node, no fields", node: lo, loopback: true},
		{name: "loopback node, loopback asked", node: lo, req: client.PairArgs{Loopback: true}, loopback: true},
		{name: "loopback node, loopback listen", node: lo, req: client.PairArgs{Listen: "127.0.0.1:0"}, listen: "127.0.0.1:0", loopback: true},
		{name: "loopback node, bound to 127.0.0.2", node: Network{Loopback: true, Bind: "127.0.0.2"}, listen: "127.0.0.2:0", loopback: true},
		{name: "loopback node, an interface", node: lo, req: client.PairArgs{Interface: "eth0"}, wider: true},
		{name: "loopback node, all interfaces", node: lo, req: client.PairArgs{Interface: "*"}, wider: true},
		{name: "loopback node, all addresses", node: lo, req: client.PairArgs{Listen: "0.0.0.0:0"}, wider: true},
		{name: "loopback node, another address", node: lo, req: client.PairArgs{Listen: "192.0.2.7:0", Loopback: true}, wider: true},
		{name: "loopback node, a host name", node: lo, req: client.PairArgs{Listen: "localhost:0"}, bad: true},
		{name: "loopback node, any network allowed", node: lo, any: true, req: client.PairArgs{Interface: "eth0"}, iface: "eth0"},
		{name: "any network allowed, no fields", node: lo, any: true, loopback: true},
		{name: "interface node, no fields", node: eth, iface: "192.0.2.7"},
		{name: "interface node, the same", node: eth, req: client.PairArgs{Interface: "192.0.2.7"}, iface: "192.0.2.7"},
		{name: "interface node, narrowed to loopback", node: eth, req: client.PairArgs{Loopback: true}, loopback: true},
		{name: "interface node, another", node: eth, req: client.PairArgs{Interface: "eth1"}, wider: true},
		{name: "interface node, all", node: eth, req: client.PairArgs{Interface: "*"}, wider: true},
		{name: "interface node, one address", node: eth, req: client.PairArgs{Listen: "192.0.2.7:7000"}, listen: "192.0.2.7:7000", iface: "192.0.2.7"},
		{name: "default route node, another", node: Network{}, req: client.PairArgs{Interface: "eth1"}, wider: true},
		{name: "all node, one", node: all, req: client.PairArgs{Interface: "eth1"}, iface: "eth1"},
		{name: "bound node, no fields", node: bound, listen: "192.0.2.7:0", iface: "192.0.2.7"},
		{name: "bound node, its address", node: bound, req: client.PairArgs{Listen: "192.0.2.7:0"}, listen: "192.0.2.7:0", iface: "192.0.2.7"},
		{name: "bound node, all addresses", node: bound, req: client.PairArgs{Listen: "0.0.0.0:0"}, wider: true},
		{name: "bound node, any network allowed", node: bound, any: true, req: client.PairArgs{Listen: "0.0.0.0:0"}, listen: "0.0.0.0:0", iface: "192.0.2.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			listen, iface, loopback, err := pairNetwork(tc.node, tc.any, tc.req)
			switch {
			case tc.wider || tc.bad:
				if err == nil || errors.Is(err, errWiderNetwork) != tc.wider {
					t.Fatalf("got %q %q %v, %v; want refused (wider: %v)", listen, iface, loopback, err, tc.wider)
				}
			case err != nil:
				t.Fatal(err)
			case listen != tc.listen || iface != tc.iface || loopback != tc.loopback:
				t.Fatalf("got listen %q, interface %q, loopback %v; want %q, %q, %v", listen, iface, loopback, tc.listen, tc.iface, tc.loopback)
			}
		})
	}
}

// An agent whose node runs on loopback shows a token on loopback when the
// request names no network: the incident of a test's pairing announced on
// eth0 by an agent on lo.
func TestPairShowStaysOnAgentsLoopback(t *testing.T) {
	alice := newDevice(t, "alice")
	sock := filepath.Join(t.TempDir(), "run", client.SocketName)
	startSecureAgent(t, alice, sock) // Network{Loopback: true}, as "zyre agent --loopback"
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cctx, ccancel := context.WithCancel(ctx)
	p, done := showPair(t, cctx, sock, client.PairArgs{}, client.PairHandler{})
	ccancel()
	<-done
	if p.Interface != "lo (loopback)" {
		t.Errorf("announced on %q, want lo", p.Interface)
	}
	ap, err := netip.ParseAddrPort(p.CodeEndpoint)
	if err != nil || !ap.Addr().IsLoopback() {
		t.Errorf("code endpoint %q (%v), want a loopback address", p.CodeEndpoint, err)
	}
	tok, err := pairing.ParseToken(p.Token)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok.Hints) == 0 {
		t.Fatal("the token has no hints")
	}
	for _, h := range tok.Hints {
		if !h.Addr().IsLoopback() {
			t.Errorf("the token's hint %s is not a loopback address", h)
		}
	}
}
