package beacon

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/zyre-go/zyre/internal/testenv"
)

// deadline is how long a test waits for an event on a loaded machine.
const deadline = 20 * time.Second

// freePort returns a UDP port that is free on loopback now, so tests do not
// collide with a real ZRE node on 5670 or with each other.
func freePort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func startLoopback(t *testing.T, port int, cfg Config) *Service {
	t.Helper()
	cfg.Port, cfg.Loopback = port, true
	if cfg.Interval == 0 {
		cfg.Interval = 50 * time.Millisecond
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// noServiceGoroutines fails if a goroutine of this package is still running.
func noServiceGoroutines(t *testing.T) {
	t.Helper()
	testenv.NoGoroutines(t, deadline, func(g string) bool { return strings.Contains(g, "internal/beacon.(*Service)") })
}

func TestThreeServicesOnOnePort(t *testing.T) {
	port := freePort(t)
	var svcs []*Service
	for i := range 3 {
		s := startLoopback(t, port, Config{})
		s.Publish([]byte(fmt.Sprintf("node-%d", i)))
		svcs = append(svcs, s)
	}
	for i, s := range svcs {
		if s.Addr() != netip.MustParseAddr("127.0.0.1") || s.Broadcast() != netip.AddrPortFrom(loopbackBroadcast, uint16(port)) {
			t.Fatalf("service %d: addr %v broadcast %v", i, s.Addr(), s.Broadcast())
		}
		// Wait for both other payloads and for Stats to show our own sends
		// and their discarded echoes. Sent grows after the write returns
		// and Echoes when recvLoop reads the echo; neither is ordered with
		// the other services' packets, so Stats is checked again at every
		// packet: the others repeat every interval, so one arrives after
		// our echo has been counted.
		seen := map[string]bool{}
		var st Stats
		timeout := time.After(deadline)
		for len(seen) < 2 || st.Sent == 0 || st.Echoes == 0 {
			select {
			case p := <-s.Packets():
				if string(p.Payload) == fmt.Sprintf("node-%d", i) {
					t.Fatalf("service %d got its own payload", i)
				}
				if !p.From.Addr().IsLoopback() || p.From.Port() != uint16(port) {
					t.Errorf("service %d: packet from %v", i, p.From)
				}
				seen[string(p.Payload)] = true
				st = s.Stats()
			case <-timeout:
				t.Fatalf("service %d after %v: saw %v, stats %+v; want both others, sends and echoes", i, deadline, seen, st)
			}
		}
	}
}

func TestSilence(t *testing.T) {
	port := freePort(t)
	talker := startLoopback(t, port, Config{Interval: 20 * time.Millisecond})
	listener := startLoopback(t, port, Config{})
	talker.Publish([]byte("hello"))
	waitPayload(t, listener, "hello")

	talker.Silence()
	// Sent stops growing: once Silence is in effect, a whole run of ticks
	// passes without a send. Wait for that on events, not on a fixed sleep.
	stopAt := time.Now().Add(deadline)
	for {
		before := talker.Stats().Sent
		waitTicks(t, 5, 20*time.Millisecond)
		if talker.Stats().Sent == before {
			break
		}
		if time.Now().After(stopAt) {
			t.Fatalf("still sending after Silence: %+v", talker.Stats())
		}
	}
	// Over 10 more intervals nothing is sent. (A datagram that arrives now
	// was sent before Silence took effect, so only Sent is checked.)
	sent := talker.Stats().Sent
	waitTicks(t, 10, 20*time.Millisecond)
	if got := talker.Stats().Sent; got != sent {
		t.Fatalf("silenced talker sent %d more datagrams", got-sent)
	}
	// Publish again resumes at once.
	talker.Publish([]byte("again"))
	waitPayload(t, listener, "again")
}

// waitTicks waits n intervals; used only to let a ticker fire, never as
// the sole condition of a test.
func waitTicks(t *testing.T, n int, d time.Duration) {
	t.Helper()
	tm := time.NewTimer(time.Duration(n) * d)
	defer tm.Stop()
	<-tm.C
}

func waitPayload(t *testing.T, s *Service, want string) Packet {
	t.Helper()
	timeout := time.After(deadline)
	for {
		select {
		case p, ok := <-s.Packets():
			if !ok {
				t.Fatalf("Packets closed while waiting for %q", want)
			}
			if string(p.Payload) == want {
				return p
			}
		case <-timeout:
			t.Fatalf("no %q after %v (stats %+v)", want, deadline, s.Stats())
		}
	}
}

func TestCloseLeaksNothing(t *testing.T) {
	port := freePort(t)
	s := startLoopback(t, port, Config{})
	s.Publish([]byte("x"))
	other := startLoopback(t, port, Config{})
	other.Publish([]byte("y"))
	waitPayload(t, s, "y")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	if _, ok := <-s.Packets(); ok {
		// Packets may hold queued datagrams; drain to the close.
		for range s.Packets() {
		}
	}
	noServiceGoroutines(t)
	if err := s.Start(context.Background()); err != ErrClosed {
		t.Errorf("Start after Close: %v", err)
	}

	// Close without Start, and a cancelled context, also end cleanly.
	n, err := New(Config{Loopback: true, Port: port})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-n.Packets(); ok {
		t.Error("Packets open after Close")
	}
	ctx, cancel := context.WithCancel(context.Background())
	c, err := New(Config{Loopback: true, Port: port})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-drained(c.Packets()):
	case <-time.After(deadline):
		t.Fatal("service did not stop when its context was cancelled")
	}
	c.Close()
	noServiceGoroutines(t)
}

func drained(ch <-chan Packet) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		for range ch {
		}
		close(done)
	}()
	return done
}

// TestGarbageFlood sends 5000 datagrams that nobody reads: the service
// keeps the newest, counts the rest as dropped, and still works.
func TestGarbageFlood(t *testing.T) {
	port := freePort(t)
	s := startLoopback(t, port, Config{Queue: 16})
	flood, err := (&net.ListenConfig{Control: setSockopts}).ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer flood.Close()
	to := net.UDPAddrFromAddrPort(s.Broadcast())
	const n = 5000
	start := time.Now()
	for i := range n {
		if _, err := flood.WriteTo([]byte(fmt.Sprintf("garbage %05d \xff\x00", i)), to); err != nil {
			t.Fatalf("flood send %d: %v", i, err)
		}
	}
	t.Logf("sent %d datagrams in %v", n, time.Since(start))
	timeout := time.After(deadline)
	for s.Stats().Dropped == 0 {
		select {
		case <-timeout:
			t.Fatalf("nothing dropped after a flood: %+v", s.Stats())
		case <-time.After(10 * time.Millisecond):
		}
	}
	// What waits is in arrival order (the oldest were the ones dropped).
	last := -1
	for len(s.Packets()) > 0 {
		p := <-s.Packets()
		var i int
		if _, err := fmt.Sscanf(string(p.Payload), "garbage %05d", &i); err != nil {
			continue
		}
		if i <= last {
			t.Fatalf("packet %d after %d", i, last)
		}
		last = i
	}
	// And the service still hears a real peer.
	peer := startLoopback(t, port, Config{})
	peer.Publish([]byte("still alive"))
	waitPayload(t, s, "still alive")
	st := s.Stats()
	t.Logf("stats after flood: %+v", st)
	if st.Received < st.Dropped {
		t.Errorf("received %d < dropped %d", st.Received, st.Dropped)
	}
}

func TestDeliverDropsOldest(t *testing.T) {
	s, err := New(Config{Loopback: true, Queue: 4})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		s.deliver(Packet{Payload: []byte{byte(i)}})
	}
	if got := s.Stats().Dropped; got != 6 {
		t.Errorf("dropped %d, want 6", got)
	}
	for want := 6; want < 10; want++ {
		if p := <-s.Packets(); p.Payload[0] != byte(want) {
			t.Errorf("got packet %d, want %d", p.Payload[0], want)
		}
	}
}

func TestNewErrors(t *testing.T) {
	for _, cfg := range []Config{
		{Port: -1, Loopback: true},
		{Port: 70000, Loopback: true},
		{Interval: -time.Second, Loopback: true},
		{Queue: -1, Loopback: true},
		{Interface: "no-such-if0"},
		{Interface: "192.0.2.77"}, // TEST-NET-1: on no interface here
		{Interface: "lo"},         // lo cannot broadcast: Loopback mode is the way
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
	s, err := New(Config{Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	if s.Broadcast().Port() != DefaultPort || s.cfg.Interval != DefaultInterval || cap(s.Packets()) != DefaultQueue {
		t.Errorf("defaults not applied: %+v", s.cfg)
	}
}

func TestParseDefaultRoute(t *testing.T) {
	const table = `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth1	0000A8C0	00000000	0001	0	0	0	00FFFFFF	0	0	0
eth0	00000000	0100A8C0	0003	0	0	0	00000000	0	0	0
`
	if dev, err := parseDefaultRoute(strings.NewReader(table)); err != nil || dev != "eth0" {
		t.Errorf("got %q, %v", dev, err)
	}
	if _, err := parseDefaultRoute(strings.NewReader(strings.Split(table, "eth0")[0])); err == nil {
		t.Error("no default route: no error")
	}
}

func TestBroadcastOf(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"10.77.0.1/24", "10.77.0.255"},
		{"192.168.1.10/16", "192.168.255.255"},
		{"172.16.5.4/30", "172.16.5.7"},
		{"10.0.0.1/8", "10.255.255.255"},
	} {
		if got := broadcastOf(netip.MustParsePrefix(tt.in)); got.String() != tt.want {
			t.Errorf("broadcastOf(%s) = %v, want %s", tt.in, got, tt.want)
		}
	}
}

func TestChoose(t *testing.T) {
	up := net.FlagUp | net.FlagBroadcast | net.FlagRunning
	lo := ifaceInfo{"lo", net.FlagUp | net.FlagLoopback, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}}
	down := ifaceInfo{"eth0", net.FlagBroadcast, []netip.Prefix{netip.MustParsePrefix("192.168.1.2/24")}}
	tun := ifaceInfo{"tun0", net.FlagUp | net.FlagPointToPoint, []netip.Prefix{netip.MustParsePrefix("10.8.0.2/24")}}
	host32 := ifaceInfo{"eth1", up, []netip.Prefix{netip.MustParsePrefix("10.1.0.5/32")}}
	wlan := ifaceInfo{"wlan0", up, []netip.Prefix{netip.MustParsePrefix("fe80::1/64"), netip.MustParsePrefix("2001:db8::5/64"), netip.MustParsePrefix("10.77.0.2/24")}}
	eth2 := ifaceInfo{"eth2", up, []netip.Prefix{netip.MustParsePrefix("172.16.0.9/16"), netip.MustParsePrefix("172.17.0.9/16")}}
	ifs := []ifaceInfo{lo, down, tun, host32, wlan, eth2}
	tests := []struct {
		spec, def string
		want      []string // "name addr broadcast why"
		err       string
	}{
		{"", "", []string{"wlan0 10.77.0.2 10.77.0.255 first broadcast interface"}, ""},
		{"", "eth2", []string{"eth2 172.16.0.9 172.16.255.255 default route"}, ""},
		{"", "tun0", []string{"wlan0 10.77.0.2 10.77.0.255 first broadcast interface"}, ""},
		{All, "", []string{"wlan0 10.77.0.2 10.77.0.255 all", "eth2 172.16.0.9 172.16.255.255 all"}, ""},
		{"eth2", "", []string{"eth2 172.16.0.9 172.16.255.255 named"}, ""},
		{"172.17.0.9", "", []string{"eth2 172.17.0.9 172.17.255.255 named"}, ""},
		{"eth0", "", nil, "eth0 is down"},
		{"tun0", "", nil, "tun0 cannot broadcast"},
		{"eth1", "", nil, "no IPv4 address with a broadcast address"},
		{"eth9", "", nil, "no such interface"},
		{"10.9.9.9", "", nil, "no interface has address 10.9.9.9"},
	}
	for _, tt := range tests {
		got, err := choose(tt.spec, ifs, tt.def)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("choose(%q, def %q) = %v, %v; want error with %q", tt.spec, tt.def, got, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("choose(%q, def %q): %v", tt.spec, tt.def, err)
			continue
		}
		var g []string
		for _, c := range got {
			g = append(g, fmt.Sprintf("%s %v %v %s", c.Name, c.Addr, c.Broadcast, c.Why))
		}
		if strings.Join(g, "|") != strings.Join(tt.want, "|") {
			t.Errorf("choose(%q, def %q) = %q, want %q", tt.spec, tt.def, g, tt.want)
		}
	}
	// wlan0's addresses: IPv4 first, then IPv6 without the link-local one.
	got, _ := choose("wlan0", ifs, "")
	if got[0].Prefix != netip.MustParsePrefix("10.77.0.0/24") {
		t.Errorf("wlan0 prefix %v, want 10.77.0.0/24", got[0].Prefix)
	}
	if fmt.Sprint(got[0].Addrs) != "[10.77.0.2 2001:db8::5]" {
		t.Errorf("wlan0 addrs %v", got[0].Addrs)
	}
	// Nothing usable: the error lists what there is.
	_, err := choose("", []ifaceInfo{lo, down, tun}, "")
	if err == nil || !strings.Contains(err.Error(), "lo (loopback), eth0 (down), tun0 (point-to-point)") {
		t.Errorf("no candidates: %v", err)
	}
	if _, err := choose(All, []ifaceInfo{lo}, ""); err == nil {
		t.Error("All with no candidates: no error")
	}
}
