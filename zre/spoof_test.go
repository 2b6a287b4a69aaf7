package zre

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sys/unix"
)

// beaconSender broadcasts hand-made beacons on lo to 127.255.255.255:port
// from the local address from.
type beaconSender struct {
	pc  net.PacketConn
	dst *net.UDPAddr
}

func newBeaconSender(t testing.TB, port int, from string) *beaconSender {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1) })
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp4", net.JoinHostPort(from, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	dst, err := net.ResolveUDPAddr("udp4", net.JoinHostPort("127.255.255.255", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	return &beaconSender{pc: pc, dst: dst}
}

func (s *beaconSender) send(b Beacon) error {
	_, err := s.pc.WriteTo(b.AppendMarshal(nil), s.dst)
	return err
}

// inboxPort returns the port of a node's inbox.
func inboxPort(t testing.TB, n *Node) uint16 {
	t.Helper()
	ap, err := netip.ParseAddrPort(n.Endpoint()[len("tcp://"):])
	if err != nil {
		t.Fatal(err)
	}
	return ap.Port()
}

// watcher reads a node's events for the whole test: it counts Enter
// events by peer and hands whispers to a callback.
type watcher struct {
	mu      sync.Mutex
	enters  map[uuid.UUID][]time.Time
	exits   map[uuid.UUID]int
	done    chan struct{}
	whisper func(*Whisper)
	nWhisp  atomic.Int64 // whispers seen
}

func watch(n *Node, whisper func(*Whisper)) *watcher {
	w := &watcher{enters: map[uuid.UUID][]time.Time{}, exits: map[uuid.UUID]int{}, done: make(chan struct{}), whisper: whisper}
	go func() {
		defer close(w.done)
		for e := range n.Events() {
			switch e := e.(type) {
			case *Enter:
				w.mu.Lock()
				w.enters[e.Peer] = append(w.enters[e.Peer], time.Now())
				w.mu.Unlock()
			case *Exit:
				w.mu.Lock()
				w.exits[e.Peer]++
				w.mu.Unlock()
			case *Whisper:
				w.nWhisp.Add(1)
				if w.whisper != nil {
					w.whisper(e)
				}
			}
		}
	}()
	return w
}

func (w *watcher) entersOf(id uuid.UUID) []time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Time(nil), w.enters[id]...)
}

// waitEnter waits until w saw id enter.
func (w *watcher) waitEnter(t testing.TB, id uuid.UUID, what string) {
	t.Helper()
	waitForTB(t, what, func() bool { return len(w.entersOf(id)) > 0 })
}

// talker whispers from one node to another every interval and checks
// what arrives: in order, nothing lost.
type talker struct {
	sent, got, errs atomic.Int64
	outOfOrder      atomic.Int64
	stop            chan struct{}
	done            chan struct{}
	lat             latencies
}

type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) { l.mu.Lock(); l.d = append(l.d, d); l.mu.Unlock() }

// p returns the q-th quantile.
func (l *latencies) p(q float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	d := append([]time.Duration(nil), l.d...)
	slicesSortDurations(d)
	return d[min(len(d)-1, int(q*float64(len(d))))]
}

// receive is the receiver's side: a whisper carrying [seq, sent-at].
func (tk *talker) receive(w *Whisper) {
	if len(w.Content) != 1 || len(w.Content[0]) != 16 {
		return
	}
	seq := int64(binary.BigEndian.Uint64(w.Content[0]))
	at := time.Unix(0, int64(binary.BigEndian.Uint64(w.Content[0][8:])))
	tk.lat.add(time.Since(at))
	if seq != tk.got.Load()+1 {
		tk.outOfOrder.Add(1)
	}
	tk.got.Store(seq)
}

func startTalker(from *Node, to uuid.UUID, every time.Duration) *talker {
	tk := &talker{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(tk.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-tk.stop:
				return
			case <-tick.C:
			}
			b := make([]byte, 16)
			binary.BigEndian.PutUint64(b, uint64(tk.sent.Load()+1))
			binary.BigEndian.PutUint64(b[8:], uint64(time.Now().UnixNano()))
			if err := from.Whisper(to, b); err != nil {
				tk.errs.Add(1)
				continue
			}
			tk.sent.Add(1)
		}
	}()
	return tk
}

// finish stops sending and waits (bounded) until all that was sent arrived.
func (tk *talker) finish(t testing.TB, what string) {
	t.Helper()
	close(tk.stop)
	<-tk.done
	waitForTB(t, what+" delivered", func() bool { return tk.got.Load() >= tk.sent.Load() })
	if tk.errs.Load() != 0 || tk.outOfOrder.Load() != 0 || tk.sent.Load() == 0 {
		t.Fatalf("%s: sent %d, got %d, send errors %d, out of order %d", what, tk.sent.Load(), tk.got.Load(), tk.errs.Load(), tk.outOfOrder.Load())
	}
}

// One spoofed beacon — a new random UUID with an honest peer's address and
// inbox port — once made the victim and the peer ENTER and EXIT each other
// hundreds of times a second, forever. Now: at most one extra ENTER within
// 15 s and none after, and the two keep talking without a loss.
func TestHostileSpoofedBeaconSettles(t *testing.T) {
	t.Parallel() // tens of seconds of watching, little CPU
	for _, secure := range []bool{false, true} {
		name := "plain"
		if secure {
			name = "secure"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			port := testBeaconPort()
			cfg := func(name string) Config {
				if secure {
					return secureConfig(t, name, port)
				}
				return Config{Name: name, Beacon: BeaconConfig{Port: port}}
			}
			victim := startNode(t, cfg("victim"))
			honest := startNode(t, cfg("honest"))
			var tkHV, tkVH *talker
			var ready atomic.Bool
			wv := watch(victim, func(w *Whisper) {
				if ready.Load() {
					tkHV.receive(w)
				}
			})
			wh := watch(honest, func(w *Whisper) {
				if ready.Load() {
					tkVH.receive(w)
				}
			})
			wv.waitEnter(t, honest.UUID(), "ENTER honest")
			wh.waitEnter(t, victim.UUID(), "ENTER victim")
			tkHV = startTalker(honest, victim.UUID(), 20*time.Millisecond)
			tkVH = startTalker(victim, honest.UUID(), 20*time.Millisecond)
			ready.Store(true)

			spoof := Beacon{Version: BeaconV1, UUID: uuid.New(), Port: inboxPort(t, honest)}
			if secure {
				pub, _ := genKeys(t)
				spoof = Beacon{Version: BeaconV3, UUID: uuid.New(), Port: spoof.Port, PublicKey: pub}
			}
			if err := newBeaconSender(t, port, "127.0.0.1").send(spoof); err != nil {
				t.Fatal(err)
			}
			sentAt := time.Now()
			settle := 15 * time.Second
			waitFor(t, "the spoof to be read", func() bool {
				return victim.Stats().BeaconsReceived > 0 && time.Since(sentAt) > settle
			})
			before := [2]int{len(wv.entersOf(honest.UUID())), len(wh.entersOf(victim.UUID()))}
			after := 5 * time.Second
			time.Sleep(after) // a quiet period: what would happen in it is the assertion
			tkHV.finish(t, "honest to victim")
			tkVH.finish(t, "victim to honest")
			end := [2]int{len(wv.entersOf(honest.UUID())), len(wh.entersOf(victim.UUID()))}
			t.Logf("ENTERs: victim saw honest %d, honest saw victim %d (1 = no re-entry); whispers %d+%d; victim %+v",
				end[0], end[1], tkHV.got.Load(), tkVH.got.Load(), victim.Stats())
			for i, who := range []string{"victim saw honest", "honest saw victim"} {
				if before[i] > 2 {
					t.Errorf("%s ENTER %d times within %v of the spoof, want at most 2", who, before[i], settle)
				}
				if end[i] != before[i] {
					t.Errorf("%s ENTER %d more times after %v", who, end[i]-before[i], settle)
				}
			}
			if len(wv.entersOf(spoof.UUID)) != 0 {
				t.Errorf("the spoofed UUID entered")
			}
		})
	}
}

// A spoofed beacon pointing at an endpoint that never completes a
// handshake (a closed port, a port that accepts and hangs up) costs at most
// two connection attempts from each node, and the honest peers keep
// talking.
func TestHostileBeaconToDeadEndpoint(t *testing.T) {
	t.Parallel() // tens of seconds of watching, little CPU
	port := testBeaconPort()
	var nodes []*Node
	for _, name := range []string{"a", "b", "c"} {
		nodes = append(nodes, startNode(t, Config{Name: name, Beacon: BeaconConfig{Port: port}}))
	}
	w := watch(nodes[0], nil)
	for _, n := range nodes[1:] {
		w.waitEnter(t, n.UUID(), "ENTER")
	}
	// An endpoint that accepts and hangs up at once: each accept is one
	// connection attempt of a node.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var attempts atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			attempts.Add(1)
			c.Close()
		}
	}()
	// A closed port: a listener closed again.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := uint16(closed.Addr().(*net.TCPAddr).Port)
	closed.Close()

	bs := newBeaconSender(t, port, "127.0.0.1")
	for _, p := range []uint16{uint16(ln.Addr().(*net.TCPAddr).Port), closedPort} {
		if err := bs.send(Beacon{Version: BeaconV1, UUID: uuid.New(), Port: p}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every node to give up both", func() bool {
		for _, n := range nodes {
			if n.Stats().DialsGivenUp < 2 {
				return false
			}
		}
		return true
	})
	// Past the third try the DEALER's backoff would have made (1 s + 2 s
	// after the first), and the fourth (+4 s).
	time.Sleep(giveUpAfter + 5*dialRetry)
	t.Logf("connection attempts on the hang-up endpoint: %d from %d nodes", attempts.Load(), len(nodes))
	if got := attempts.Load(); got > 2*int64(len(nodes)) || got < int64(len(nodes)) {
		t.Fatalf("%d connection attempts from %d nodes, want 1 to 2 each", got, len(nodes))
	}
	for _, n := range nodes {
		if st := n.Stats(); st.DialsGivenUp != 2 || len(n.Peers()) != 2 {
			t.Fatalf("%s: %d given up, peers %v", n.Name(), st.DialsGivenUp, n.Peers())
		}
	}
	tk := startTalker(nodes[1], nodes[0].UUID(), 10*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	close(tk.stop)
	<-tk.done
	if tk.errs.Load() != 0 {
		t.Fatalf("%d send errors to an honest peer", tk.errs.Load())
	}
}

func slicesSortDurations(d []time.Duration) { slices.Sort(d) }

// A peer that restarts with the same UUID on the same port (no goodbye)
// re-enters once, both sides talk again at once, and nothing more happens:
// its second HELLO is answered once and the answer is not.
func TestHostileRestartSameUUID(t *testing.T) {
	t.Parallel() // tens of seconds of watching, little CPU
	for _, secure := range []bool{false, true} {
		name := "plain"
		if secure {
			name = "secure"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			port := testBeaconPort()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			bind := ln.Addr().String()
			ln.Close()
			cfg := func(name string) Config {
				if secure {
					return secureConfig(t, name, port)
				}
				return Config{Name: name, Beacon: BeaconConfig{Port: port}}
			}
			a := startNode(t, cfg("a"))
			bcfg := cfg("b")
			bcfg.Bind = bind
			if !secure {
				bcfg.UUID = uuid.New()
			}
			b := startNode(t, bcfg)
			wa := watch(a, nil)
			wa.waitEnter(t, b.UUID(), "ENTER b")
			waitFor(t, "b to see a", func() bool { return len(b.Peers()) == 1 })
			b.Close()
			b2 := startNode(t, bcfg)
			if b2.UUID() != b.UUID() || b2.Endpoint() != b.Endpoint() {
				t.Fatalf("restarted as %s at %s", b2.UUID(), b2.Endpoint())
			}
			wb := watch(b2, nil)
			wb.waitEnter(t, a.UUID(), "ENTER a at the restarted b")
			waitFor(t, "a to see b again", func() bool { return len(wa.entersOf(b.UUID())) == 2 })
			if err := a.Whisper(b.UUID(), []byte("again")); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "a's whisper at the restarted b", func() bool { return wb.nWhisp.Load() == 1 })
			time.Sleep(3 * time.Second) // what would happen in it is the assertion
			if n := len(wa.entersOf(b.UUID())); n != 2 {
				t.Errorf("a saw b ENTER %d times, want 2", n)
			}
			if n := len(wb.entersOf(a.UUID())); n != 1 {
				t.Errorf("the restarted b saw a ENTER %d times, want 1", n)
			}
		})
	}
}

// Port-0 beacons spoofed for a live peer (5 a second for 6 s) never make
// it exit: it is probed and answers, and keeps talking without a loss.
func TestHostileSpoofedPortZero(t *testing.T) {
	t.Parallel() // tens of seconds of watching, little CPU
	for _, secure := range []bool{false, true} {
		name := "plain"
		if secure {
			name = "secure"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			port := testBeaconPort()
			cfg := func(name string) Config {
				if secure {
					return secureConfig(t, name, port)
				}
				return Config{Name: name, Beacon: BeaconConfig{Port: port}}
			}
			victim := startNode(t, cfg("victim"))
			honest := startNode(t, cfg("honest"))
			var tk *talker
			var ready atomic.Bool
			wv := watch(victim, func(w *Whisper) {
				if ready.Load() {
					tk.receive(w)
				}
			})
			wv.waitEnter(t, honest.UUID(), "ENTER honest")
			waitFor(t, "honest to see the victim", func() bool { return len(honest.Peers()) == 1 })
			tk = startTalker(honest, victim.UUID(), 20*time.Millisecond)
			ready.Store(true)
			spoof := Beacon{Version: BeaconV1, UUID: honest.UUID()}
			if secure {
				spoof = Beacon{Version: BeaconV3, UUID: honest.UUID(), PublicKey: honest.PublicKey()}
			}
			bs := newBeaconSender(t, port, "127.0.0.1")
			for range 30 {
				if err := bs.send(spoof); err != nil {
					t.Fatal(err)
				}
				time.Sleep(200 * time.Millisecond)
			}
			tk.finish(t, "honest to victim")
			wv.mu.Lock()
			exits := wv.exits[honest.UUID()]
			wv.mu.Unlock()
			if n := len(wv.entersOf(honest.UUID())); n != 1 || exits != 0 {
				t.Fatalf("honest entered %d times and exited %d times under spoofed port-0 beacons", n, exits)
			}
		})
	}
}
