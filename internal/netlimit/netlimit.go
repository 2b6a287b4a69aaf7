// Package netlimit wraps a net.Listener with limits on the connections it
// hands out: how many may be open per remote address and in total, and how
// fast new ones may come from one address (a token bucket). A connection
// beyond a limit is closed as soon as it is accepted, with a TCP reset,
// before anything is read from it; Accept goes on to the next one.
//
// The address is the remote IP (IPv4-mapped IPv6 addresses count as
// IPv4); the port is ignored. An IPv6 address counts as its /64 prefix:
// one host can take any number of addresses in its /64 for nothing (a
// link-local or SLAAC address per connection), so per address it would
// have MaxConns to itself from a handful of them; a /64 is one site (a
// LAN) as an IPv4 address is one host. Limits per address let honest peers in
// while one address floods; the total bounds the file descriptors and
// goroutines a server spends on connections. A rate per address bounds
// the work a handshake costs (a CURVE handshake's X25519, say) when every
// handshake needs a connection of its own.
package netlimit

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Config is the limits; a field <= 0 means no limit.
type Config struct {
	MaxConns        int     // connections open at once, in total
	MaxConnsPerAddr int     // connections open at once per remote address
	Rate            float64 // new connections per second per remote address
	Burst           int     // new connections at once per address before Rate applies; < 1 means 1
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Stats counts what the listener did since New.
type Stats struct {
	Accepted    uint64 // connections handed out
	Refused     uint64 // closed at once: MaxConns or MaxConnsPerAddr reached
	RateLimited uint64 // closed at once: Rate exceeded for their address
	Open        int    // connections handed out and not closed yet
}

// Listener is a net.Listener with limits; see the package doc. Its
// methods may be called from any goroutine.
type Listener struct {
	net.Listener
	cfg Config

	accepted, refused, limited atomic.Uint64

	mu struct {
		sync.Mutex
		open      int
		srcs      map[netip.Addr]*source
		lastSweep time.Time
	}
}

// source is what the listener knows of one remote address.
type source struct {
	open   int
	tokens float64
	last   time.Time // when tokens was computed
}

// maxIdleSources is the number of addresses kept before the listener
// forgets those with no open connection and a full bucket (at most once a
// second).
const maxIdleSources = 4096

// New wraps ln, which the Listener then owns.
func New(ln net.Listener, cfg Config) *Listener {
	if cfg.Burst < 1 {
		cfg.Burst = 1
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := &Listener{Listener: ln, cfg: cfg}
	l.mu.srcs = make(map[netip.Addr]*source)
	return l
}

// Accept returns the next connection within the limits; the others are
// closed (and counted) without being returned.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := remoteIP(c)
		if !l.admit(addr) {
			reset(c)
			continue
		}
		l.accepted.Add(1)
		return &conn{Conn: c, l: l, addr: addr}, nil
	}
}

// Stats returns the counters.
func (l *Listener) Stats() Stats {
	l.mu.Lock()
	open := l.mu.open
	l.mu.Unlock()
	return Stats{Accepted: l.accepted.Load(), Refused: l.refused.Load(), RateLimited: l.limited.Load(), Open: open}
}

func (l *Listener) admit(addr netip.Addr) bool {
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cfg.MaxConns > 0 && l.mu.open >= l.cfg.MaxConns {
		l.refused.Add(1)
		return false
	}
	s := l.mu.srcs[addr]
	if s == nil {
		l.sweepLocked(now)
		s = &source{tokens: float64(l.cfg.Burst), last: now}
		l.mu.srcs[addr] = s
	}
	if l.cfg.MaxConnsPerAddr > 0 && s.open >= l.cfg.MaxConnsPerAddr {
		l.refused.Add(1)
		return false
	}
	if l.cfg.Rate > 0 {
		s.refill(now, l.cfg.Rate, l.cfg.Burst)
		if s.tokens < 1 {
			l.limited.Add(1)
			return false
		}
		s.tokens--
	}
	s.open++
	l.mu.open++
	return true
}

func (s *source) refill(now time.Time, rate float64, burst int) {
	if d := now.Sub(s.last); d > 0 {
		s.tokens = min(float64(burst), s.tokens+d.Seconds()*rate)
	}
	s.last = now
}

// sweepLocked forgets the addresses with nothing open and a full bucket,
// when there are many and the last sweep was a second ago or more.
func (l *Listener) sweepLocked(now time.Time) {
	if len(l.mu.srcs) < maxIdleSources || now.Sub(l.mu.lastSweep) < time.Second {
		return
	}
	l.mu.lastSweep = now
	for a, s := range l.mu.srcs {
		if s.open > 0 {
			continue
		}
		if l.cfg.Rate > 0 {
			s.refill(now, l.cfg.Rate, l.cfg.Burst)
			if s.tokens < float64(l.cfg.Burst) {
				continue
			}
		}
		delete(l.mu.srcs, a)
	}
}

func (l *Listener) release(addr netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mu.open--
	if s := l.mu.srcs[addr]; s != nil {
		s.open--
		if s.open == 0 && l.cfg.Rate <= 0 {
			delete(l.mu.srcs, addr)
		}
	}
}

// conn gives its place back when closed (once).
type conn struct {
	net.Conn
	l      *Listener
	addr   netip.Addr
	closed atomic.Bool
}

func (c *conn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.l.release(c.addr)
	}
	return c.Conn.Close()
}

// remoteIP is the address c counts against: its remote IPv4 address, or
// the /64 prefix of its IPv6 address (see the package doc).
func remoteIP(c net.Conn) netip.Addr {
	var a netip.Addr
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		a, _ = netip.AddrFromSlice(ta.IP)
	} else if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		a = ap.Addr()
	} else {
		return netip.Addr{} // one bucket for what has no IP (a pipe, a Unix socket)
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.WithZone("").Prefix(64)
		a = p.Addr()
	}
	return a
}

// reset closes c at once; a TCP connection with a reset, so that no
// TIME_WAIT state is left behind for a refused connection.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}
