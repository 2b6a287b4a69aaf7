package zre

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
)

// freePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestParity: a fixed inbox port (zyre_set_beacon_peer_port), a whole
// advertised endpoint in HELLO (zyre_set_advertised_endpoint), a header
// looked up on the ENTER event, Print and LibraryVersion.
func TestParity(t *testing.T) {
	port := freePort(t)
	adv := fmt.Sprintf("tcp://localhost:%d", port)
	a := startNode(t, Config{Name: "a", Bind: fmt.Sprintf("127.0.0.1:%d", port), Advertise: adv,
		Headers: []Header{{Key: "X-COLOR", Value: "blue"}}, Beacon: BeaconConfig{Disabled: true}})
	if a.Endpoint() != adv {
		t.Fatalf("endpoint %s, want %s", a.Endpoint(), adv)
	}
	b := startNode(t, Config{Name: "b", Bind: "127.0.0.1", Beacon: BeaconConfig{Disabled: true}})
	if err := b.Join("g"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	if err := b.ConnectPeer(ctx, fmt.Sprintf("tcp://127.0.0.1:%d", port), a.UUID()); err != nil {
		t.Fatal(err)
	}
	e := waitEvent(t, b, eventTimeout, "ENTER a", isEnter(a.UUID())).(*Enter)
	if e.Addr != adv {
		t.Fatalf("HELLO endpoint %s, want %s", e.Addr, adv)
	}
	if v, ok := e.Header("X-COLOR"); !ok || v != "blue" {
		t.Fatalf("header %q %v", v, ok)
	}
	if _, ok := e.Header("X-NONE"); ok {
		t.Fatal("a header that is not there")
	}
	waitEvent(t, a, eventTimeout, "JOIN b g", isJoin(b.UUID(), "g"))
	var sb strings.Builder
	if err := a.Print(&sb); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"node: a " + uuidString(a.UUID()), "endpoint=" + adv, "discovery=none",
		"X-COLOR: blue", "peers=1:", "b " + uuidString(b.UUID()), "peer groups=1:", "g: b"} {
		if !strings.Contains(sb.String(), want) {
			t.Fatalf("Print lacks %q:\n%s", want, sb.String())
		}
	}
	if v := LibraryVersion(); !strings.Contains(v, "ZRE message v2") {
		t.Fatalf("LibraryVersion %q", v)
	}
	if _, err := New(Config{Advertise: "tcp://nohost"}); err == nil {
		t.Fatal("a bad advertised endpoint was accepted")
	}
}
