// Package beacon owns the UDP sockets of LAN discovery, like czmq's zbeacon:
// a Service broadcasts one payload at an interval on one IPv4 interface and
// delivers the datagrams it receives. It knows nothing of ZRE; package zre
// builds and parses the payloads.
//
// Addressing. On an interface, a Service binds to the interface's IPv4
// broadcast address (10.77.0.255:5670, as zbeacon does on Linux) and sends
// to it, so it hears only broadcasts and sees nothing sent to the host's
// unicast addresses. In Loopback mode it binds and sends to
// 127.255.255.255: Linux delivers a broadcast on lo to every socket bound to
// that address with SO_REUSEADDR/SO_REUSEPORT, so many services on one host
// and one port all hear each other. Unicast to 127.0.0.1 would reach only
// one of them (SO_REUSEPORT balances unicast), which is why Loopback mode
// does not use it. With Config.Interface = All it binds to 0.0.0.0 and
// sends to the broadcast address of every chosen interface. Every socket
// sets SO_REUSEADDR, SO_REUSEPORT and SO_BROADCAST, so several nodes on a
// host share the port.
//
// Which interface: Choose, as the C reference picks it (the default
// route's, else the first up broadcast interface, or all of them).
//
// A Service discards datagrams equal to its own current payload (the kernel
// loops broadcasts back to the sender), as zbeacon's noecho does.
package beacon

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Defaults for the zero Config fields.
const (
	DefaultPort     = 5670
	DefaultInterval = time.Second
	DefaultQueue    = 64
)

// ErrClosed is returned by Start after Close.
var ErrClosed = errors.New("beacon: service closed")

// loopbackBroadcast is where a Service in Loopback mode binds and sends.
var loopbackBroadcast = netip.AddrFrom4([4]byte{127, 255, 255, 255})

// Config configures a Service. New copies it and never changes it.
type Config struct {
	Port     int           // UDP port; 0 means DefaultPort (5670)
	Interval time.Duration // time between broadcasts; 0 means DefaultInterval
	// Interface is an interface name ("eth0") or one of its IPv4
	// addresses; All ("*") means every broadcast interface; "" means the
	// interface of the default IPv4 route, or without one the first
	// broadcast interface (see Choose).
	Interface string
	// Loopback confines the service to lo (127.255.255.255), for tests and
	// demos on one host; it overrides Interface.
	Loopback bool
	// Queue is the capacity of the Packets channel; 0 means DefaultQueue.
	Queue  int
	Logger *slog.Logger // nil: no logs
}

// Packet is one received datagram.
type Packet struct {
	Payload []byte         // owned by the receiver
	From    netip.AddrPort // the sender's IPv4 address and UDP port
}

// Stats counts a Service's datagrams since Start.
type Stats struct {
	// Sent counts datagrams written, after the write returns: a caller
	// that sees it grow knows the datagram left (zre.Node.Stop relies on
	// it). The kernel may loop a broadcast back before WriteTo returns, so
	// Echoes may briefly count an echo whose send Sent does not count yet.
	Sent       uint64
	SendErrors uint64 // sends that failed (logged)
	Received   uint64 // datagrams read from the socket, echoes included
	Echoes     uint64 // received datagrams equal to our own payload, discarded
	Dropped    uint64 // datagrams discarded because Packets was full (oldest first)
}

// Service broadcasts a payload and receives datagrams on one UDP port.
type Service struct {
	cfg     Config
	log     *slog.Logger
	local   netip.Addr     // our IPv4 address on the (first) interface
	bcast   netip.AddrPort // where we bind and send (the first target)
	bind    netip.AddrPort // where we bind: bcast, or 0.0.0.0 for several
	targets []netip.AddrPort
	iface   string
	choices []Choice
	packet  chan Packet

	payload atomic.Pointer[[]byte] // nil: silent
	wake    chan struct{}          // capacity 1: send now
	done    chan struct{}
	wg      sync.WaitGroup

	state struct {
		sync.Mutex
		conn    *net.UDPConn
		started bool
		closed  bool
	}
	closeOnce sync.Once

	sent, sendErrors, received, echoes, dropped atomic.Uint64
}

// New checks cfg and finds the interface's address and broadcast address.
// It opens no socket; Start does.
func New(cfg Config) (*Service, error) {
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("beacon: bad port %d", cfg.Port)
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Interval < 0 {
		return nil, fmt.Errorf("beacon: bad interval %v", cfg.Interval)
	}
	if cfg.Queue == 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.Queue < 0 {
		return nil, fmt.Errorf("beacon: bad queue size %d", cfg.Queue)
	}
	s := &Service{
		cfg:    cfg,
		log:    cfg.Logger,
		packet: make(chan Packet, cfg.Queue),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	port := uint16(cfg.Port)
	if cfg.Loopback {
		s.iface = "lo"
		s.local = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		s.bcast = netip.AddrPortFrom(loopbackBroadcast, port)
		s.bind, s.targets = s.bcast, []netip.AddrPort{s.bcast}
		s.choices = []Choice{{Name: "lo", Addr: s.local, Broadcast: loopbackBroadcast, Prefix: netip.MustParsePrefix("127.0.0.0/8"), Addrs: []netip.Addr{s.local}, Why: "loopback"}}
		return s, nil
	}
	choices, err := Choose(cfg.Interface)
	if err != nil {
		return nil, err
	}
	s.choices = choices
	var names []string
	for _, c := range choices {
		names = append(names, c.Name)
		s.targets = append(s.targets, netip.AddrPortFrom(c.Broadcast, port))
	}
	s.iface, s.local, s.bcast = strings.Join(names, ","), choices[0].Addr, s.targets[0]
	s.bind = s.bcast
	if len(choices) > 1 {
		// One socket hears the broadcasts of every interface.
		s.bind = netip.AddrPortFrom(netip.IPv4Unspecified(), port)
	}
	return s, nil
}

// Choices returns the interfaces in use, as Choose returned them (one "lo"
// in Loopback mode).
func (s *Service) Choices() []Choice { return append([]Choice(nil), s.choices...) }

// Addr returns our IPv4 address on the interface (127.0.0.1 in Loopback
// mode; on the first interface with All): the host part of the endpoint a
// node advertises.
func (s *Service) Addr() netip.Addr { return s.local }

// Broadcast returns the address the service sends to (the first of them
// with All, where it binds to 0.0.0.0; otherwise it binds to this one).
func (s *Service) Broadcast() netip.AddrPort { return s.bcast }

// Interface returns the name of the interface in use ("lo" in Loopback
// mode; the names joined by commas with All).
func (s *Service) Interface() string { return s.iface }

// Start opens the socket and starts the sending and receiving goroutines.
// The service stops by itself when ctx is done, as if Close were called.
func (s *Service) Start(ctx context.Context) error {
	s.state.Lock()
	defer s.state.Unlock()
	if s.state.closed {
		return ErrClosed
	}
	if s.state.started {
		return errors.New("beacon: already started")
	}
	lc := net.ListenConfig{Control: setSockopts}
	pc, err := lc.ListenPacket(ctx, "udp4", s.bind.String())
	if err != nil {
		return fmt.Errorf("beacon: failed to bind %v on %s: %w", s.bind, s.iface, err)
	}
	conn := pc.(*net.UDPConn)
	s.state.conn = conn
	s.state.started = true
	s.log.Debug("beacon: started", "interface", s.iface, "addr", s.local, "broadcast", s.bcast)
	s.wg.Add(3)
	go s.sendLoop(conn)
	go s.recvLoop(conn)
	go func() {
		defer s.wg.Done()
		select {
		case <-ctx.Done():
			s.shutdown()
		case <-s.done:
		}
	}()
	return nil
}

func setSockopts(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		for _, opt := range []struct {
			name string
			opt  int
		}{{"SO_REUSEADDR", unix.SO_REUSEADDR}, {"SO_REUSEPORT", unix.SO_REUSEPORT}, {"SO_BROADCAST", unix.SO_BROADCAST}} {
			if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt.opt, 1); err != nil {
				serr = fmt.Errorf("setsockopt %s: %w", opt.name, err)
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// Publish sets (or replaces) the payload: it is sent at once and then every
// Interval. The service keeps its own copy.
func (s *Service) Publish(payload []byte) {
	p := bytes.Clone(payload)
	if p == nil {
		p = []byte{}
	}
	s.payload.Store(&p)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Silence stops sending until the next Publish.
func (s *Service) Silence() { s.payload.Store(nil) }

// Packets returns the received datagrams, our own echoes excepted. When
// the consumer falls behind and the channel is full, the OLDEST waiting
// datagram is discarded to make room (counted in Stats.Dropped): beacons
// are repeated, so the newest are the ones worth keeping. The channel is
// closed after Close.
func (s *Service) Packets() <-chan Packet { return s.packet }

// Stats returns the counters.
func (s *Service) Stats() Stats {
	return Stats{
		Sent:       s.sent.Load(),
		SendErrors: s.sendErrors.Load(),
		Received:   s.received.Load(),
		Echoes:     s.echoes.Load(),
		Dropped:    s.dropped.Load(),
	}
}

// Close stops the service, closes the socket and returns when every
// goroutine has exited. It is safe to call more than once.
func (s *Service) Close() error {
	err := s.shutdown()
	s.wg.Wait()
	return err
}

// shutdown stops the goroutines without waiting for them.
func (s *Service) shutdown() error {
	var err error
	s.closeOnce.Do(func() {
		s.state.Lock()
		s.state.closed = true
		conn, started := s.state.conn, s.state.started
		s.state.Unlock()
		close(s.done)
		if conn != nil {
			err = conn.Close()
		}
		if !started {
			close(s.packet)
		}
	})
	return err
}

func (s *Service) sendLoop(conn *net.UDPConn) {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-s.wake:
			t.Reset(s.cfg.Interval)
		case <-t.C:
		}
		p := s.payload.Load()
		if p == nil {
			continue
		}
		for _, to := range s.targets {
			if _, err := conn.WriteToUDPAddrPort(*p, to); err != nil {
				select {
				case <-s.done:
					return
				default:
				}
				s.sendErrors.Add(1)
				s.log.Warn("beacon: send failed", "to", to, "err", err)
				continue
			}
			s.sent.Add(1)
		}
	}
}

func (s *Service) recvLoop(conn *net.UDPConn) {
	defer s.wg.Done()
	defer close(s.packet)
	buf := make([]byte, 65536)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("beacon: receive failed", "err", err)
			// Do not spin on a persistent error.
			select {
			case <-s.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		s.received.Add(1)
		if p := s.payload.Load(); p != nil && bytes.Equal(*p, buf[:n]) {
			s.echoes.Add(1)
			continue
		}
		s.deliver(Packet{Payload: bytes.Clone(buf[:n]), From: netip.AddrPortFrom(from.Addr().Unmap(), from.Port())})
	}
}

// deliver queues pkt, discarding the oldest queued packet when the queue is
// full. recvLoop is the only sender, so the loop ends within two rounds.
func (s *Service) deliver(pkt Packet) {
	for {
		select {
		case s.packet <- pkt:
			return
		default:
		}
		select {
		case <-s.packet:
			s.dropped.Add(1)
		default:
		}
	}
}

func netipPrefix(ipn *net.IPNet) (netip.Prefix, bool) {
	ip4 := ipn.IP.To4()
	if ip4 == nil {
		return netip.Prefix{}, false
	}
	ones, bits := ipn.Mask.Size()
	if bits != 32 {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(netip.AddrFrom4([4]byte(ip4)), ones), true
}

// broadcastOf returns the IPv4 broadcast address of a prefix: the address
// with every host bit set.
func broadcastOf(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := (uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// parseDefaultRoute returns the interface of the first default route
// (destination 0.0.0.0/0) in the /proc/net/route format.
func parseDefaultRoute(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	first := true
	for sc.Scan() {
		if first { // header line
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		// Iface Destination Gateway Flags RefCnt Use Metric Mask ...
		if len(f) >= 8 && f[1] == "00000000" && f[7] == "00000000" {
			return f[0], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("beacon: failed to read routes: %w", err)
	}
	return "", errNoDefaultRoute
}
