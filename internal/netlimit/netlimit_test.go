package netlimit

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// setup listens on 127.0.0.1 with cfg and accepts in the background.
func setup(t *testing.T, cfg Config) (*Listener, chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := New(ln, cfg)
	t.Cleanup(func() { l.Close() })
	got := make(chan net.Conn, 100)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(got)
				return
			}
			got <- c
		}
	}()
	return l, got
}

// dial connects from the local address from (127.0.0.x) and waits until
// the listener took or refused the connection; it returns whether the
// connection was accepted.
func dial(t *testing.T, l *Listener, got chan net.Conn, from string) (net.Conn, bool) {
	t.Helper()
	before := l.Stats()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", l.Addr().String())
	if err == nil { // (it may see the reset of a refused connection)
		t.Cleanup(func() { c.Close() })
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		s := l.Stats()
		if s.Accepted > before.Accepted {
			srv := <-got
			t.Cleanup(func() { srv.Close() })
			return srv, true
		}
		if s.Refused+s.RateLimited > before.Refused+before.RateLimited {
			return nil, false
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("connection neither accepted nor refused")
	return nil, false
}

func TestLimits(t *testing.T) {
	type step struct {
		from    string
		advance time.Duration
		close   int // close the n-th accepted connection (1-based) before dialling
		want    bool
	}
	for _, tc := range []struct {
		name  string
		cfg   Config
		steps []step
		stats Stats
	}{
		{"per address", Config{MaxConnsPerAddr: 2}, []step{
			{from: "127.0.0.1", want: true}, {from: "127.0.0.1", want: true}, {from: "127.0.0.1", want: false},
			{from: "127.0.0.2", want: true}, {from: "127.0.0.1", close: 1, want: true},
		}, Stats{Accepted: 4, Refused: 1, Open: 3}},
		{"total", Config{MaxConns: 3, MaxConnsPerAddr: 2}, []step{
			{from: "127.0.0.1", want: true}, {from: "127.0.0.2", want: true}, {from: "127.0.0.3", want: true},
			{from: "127.0.0.4", want: false}, {from: "127.0.0.4", close: 2, want: true},
		}, Stats{Accepted: 4, Refused: 1, Open: 3}},
		{"rate", Config{Rate: 1, Burst: 2}, []step{
			{from: "127.0.0.1", want: true}, {from: "127.0.0.1", want: true}, {from: "127.0.0.1", want: false},
			{from: "127.0.0.2", want: true},
			{from: "127.0.0.1", advance: 500 * time.Millisecond, want: false},
			{from: "127.0.0.1", advance: 500 * time.Millisecond, want: true},
			{from: "127.0.0.1", want: false},
		}, Stats{Accepted: 4, RateLimited: 3, Open: 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fakeClock{t: time.Unix(1000, 0)}
			tc.cfg.Now = clk.now
			l, got := setup(t, tc.cfg)
			var accepted []net.Conn
			for i, s := range tc.steps {
				clk.add(s.advance)
				if s.close > 0 {
					accepted[s.close-1].Close()
					accepted[s.close-1].Close() // twice: counted once
				}
				c, ok := dial(t, l, got, s.from)
				if ok != s.want {
					t.Fatalf("step %d (%s): accepted %v, want %v; %+v", i, s.from, ok, s.want, l.Stats())
				}
				if ok {
					accepted = append(accepted, c)
				}
			}
			if s := l.Stats(); s != tc.stats {
				t.Fatalf("stats %+v, want %+v", s, tc.stats)
			}
		})
	}
}

// A refused connection is reset: the client reads an error at once, not
// after a timeout.
func TestRefusedIsReset(t *testing.T) {
	l, got := setup(t, Config{MaxConns: 1})
	dial(t, l, got, "127.0.0.1")
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		return // reset before connect returned
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read from a refused connection")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("refused connection left open")
	}
}

// Addresses with nothing open and a full bucket are forgotten.
func TestSweep(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := New(nil, Config{Rate: 10, Burst: 1, Now: clk.now})
	for i := range maxIdleSources + 10 {
		a := [4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}
		addr := netipFrom4(a)
		if !l.admit(addr) {
			t.Fatal("refused")
		}
		l.release(addr)
	}
	clk.add(time.Second)
	l.admit(netipFrom4([4]byte{11, 0, 0, 1}))
	l.mu.Lock()
	n := len(l.mu.srcs)
	l.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d addresses kept", n)
	}
}

func netipFrom4(a [4]byte) netip.Addr { return netip.AddrFrom4(a) }

type addrConn struct {
	net.Conn
	remote net.Addr
}

func (c addrConn) RemoteAddr() net.Addr { return c.remote }

// One address, one bucket: an IPv4 address counts the same whether the
// socket reports it in 4 or 16 octets (an IPv4-mapped IPv6 address from a
// dual-stack listener); IPv6 addresses count by /64, zone or not.
func TestRemoteIPNormalised(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.IPv4(192, 0, 2, 1).To4(), Port: 1}, "192.0.2.1"},
		{&net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 2}, "192.0.2.1"}, // 16 octets
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.1"), Port: 3}, "192.0.2.1"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 4}, "2001:db8::"}, // its /64
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:0:0:abcd::99"), Port: 4}, "2001:db8::"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:0:1::1"), Port: 4}, "2001:db8:0:1::"},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 5, Zone: "eth0"}, "fe80::"},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 5}, "::"},
		{&net.UDPAddr{IP: net.ParseIP("::ffff:192.0.2.1"), Port: 6}, "192.0.2.1"}, // not TCP: parsed
		{&net.UnixAddr{Name: "/tmp/x", Net: "unix"}, "invalid IP"},
	} {
		if got := remoteIP(addrConn{remote: tc.addr}).String(); got != tc.want {
			t.Errorf("remoteIP(%v) = %s, want %s", tc.addr, got, tc.want)
		}
	}
}

// fakeListener hands out connections from the addresses the test gives.
type fakeListener struct {
	conns  chan net.Conn
	closed chan struct{}
}

func (l *fakeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}
func (l *fakeListener) Close() error   { close(l.closed); return nil }
func (l *fakeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv6loopback} }

type closeConn struct {
	addrConn
}

func (closeConn) Close() error { return nil }

// A host with many IPv6 addresses in one /64 (an address per connection)
// gets MaxConnsPerAddr, not MaxConns: others still get in.
func TestIPv6AddressesOfOnePrefixShareALimit(t *testing.T) {
	fl := &fakeListener{conns: make(chan net.Conn, 32), closed: make(chan struct{})}
	l := New(fl, Config{MaxConns: 8, MaxConnsPerAddr: 2})
	defer l.Close()
	accepted := make(chan net.Conn, 32)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	from := func(ip string) net.Conn {
		return closeConn{addrConn{remote: &net.TCPAddr{IP: net.ParseIP(ip), Port: 1}}}
	}
	for i := range 20 {
		fl.conns <- from(fmt.Sprintf("fe80::%x", i+1))
	}
	fl.conns <- from("fe80:0:0:1::1") // another /64
	var got []net.Conn
	for len(got) < 3 {
		select {
		case c := <-accepted:
			got = append(got, c)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d accepted, stats %+v", len(got), l.Stats())
		}
	}
	if s := l.Stats(); s.Refused != 18 || s.Open != 3 {
		t.Fatalf("stats %+v: want 18 refused from one /64, 3 open", s)
	}
	for _, c := range got {
		c.Close()
	}
	if s := l.Stats(); s.Open != 0 {
		t.Fatalf("stats %+v after closing all", s)
	}
}
