// Package sim runs many zre nodes in one process over an in-memory network
// and measures them: the time until every node has seen every other (full
// mesh), CPU and memory per node, and shout fan-out.
//
// Network is a zretest.Transport: beacons travel over an in-memory bus and a
// message is delivered by appending its encoded frames to the target
// node's inbox queue — no socket, no goroutine per link — so the real node
// state machine (HELLO, sequence numbers, groups, presence) runs unchanged.
// A thousand nodes in full mesh over TCP would need about a million
// connections; here a link is one small struct.
//
// Secure nodes run too: the network stands in for CURVE. It tells a node
// the key of the node each message came from (zretest.InboxMessage.Key, the
// sender's zretest.TransportNode.Key) and refuses a Dial whose target has
// not the key the dialler expects (ErrKeyMismatch), as a CURVE client refuses
// a server; there is no encryption (nothing leaves the process).
package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/zmtp"
	"github.com/zyre-go/zyre/zre"
	"github.com/zyre-go/zyre/zre/zretest"
)

// Errors of the in-memory network.
var (
	ErrClosed = errors.New("sim: closed")
	ErrNoNode = errors.New("sim: no node at endpoint")
	// ErrKeyMismatch: a Dial expected another key than the target node's.
	ErrKeyMismatch = errors.New("sim: key mismatch")
)

// Addresses the network hands out: node i (from 0) is 10.0.0.0 + i + 1,
// its inbox on InboxPort, its beacons from BeaconPort.
const (
	InboxPort  = 49152
	BeaconPort = zre.DefaultBeaconPort
)

// DefaultHWM is the messages a link queues before Send refuses with
// zmtp.ErrPeerNotResponding: the zmtp default SendHWM.
const DefaultHWM = 1000

// NetworkOptions configures a Network.
type NetworkOptions struct {
	// HWM is the number of messages queued per link (not yet read by the
	// receiving node); 0 means DefaultHWM.
	HWM int
	// BeaconInterval repeats every published beacon to every node at this
	// period. 0 means beacons are delivered once: when published, and to
	// a node that attaches later, every beacon published before. Repeating
	// costs nodes² deliveries per interval.
	BeaconInterval time.Duration
}

// NetworkStats counts what a Network carried.
type NetworkStats struct {
	Messages uint64 // messages queued to an inbox
	Refused  uint64 // sends refused: the link's queue was full
	Lost     uint64 // messages to a node that had detached
	Beacons  uint64 // beacons delivered
}

// Network is an in-memory network of zre nodes; give it to
// zretest.WithTransport. Its methods may be called from any goroutine.
// Close it when done.
type Network struct {
	hwm int

	mu struct {
		sync.Mutex
		byEndpoint map[string]*attachment
		nodes      []*attachment
		count      uint32 // addresses handed out
		closed     bool
	}
	done chan struct{}
	wg   sync.WaitGroup

	messages, refused, lost, beacons atomic.Uint64
}

var _ zretest.Transport = (*Network)(nil)

// NewNetwork makes an empty network.
func NewNetwork(opts NetworkOptions) *Network {
	n := &Network{hwm: opts.HWM, done: make(chan struct{})}
	if n.hwm <= 0 {
		n.hwm = DefaultHWM
	}
	n.mu.byEndpoint = make(map[string]*attachment)
	if opts.BeaconInterval > 0 {
		n.wg.Add(1)
		go n.repeatBeacons(opts.BeaconInterval)
	}
	return n
}

// Stats returns the network's counters.
func (n *Network) Stats() NetworkStats {
	return NetworkStats{Messages: n.messages.Load(), Refused: n.refused.Load(), Lost: n.lost.Load(), Beacons: n.beacons.Load()}
}

// Close detaches every node and stops the network; it is safe to call
// more than once.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.mu.closed {
		n.mu.Unlock()
		return nil
	}
	n.mu.closed = true
	nodes := slices.Clone(n.mu.nodes)
	n.mu.Unlock()
	close(n.done)
	for _, a := range nodes {
		a.Close()
	}
	n.wg.Wait()
	return nil
}

// Attach implements zretest.Transport: it gives the node the next address.
func (n *Network) Attach(node zretest.TransportNode) (zretest.Attachment, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.closed {
		return nil, ErrClosed
	}
	n.mu.count++
	i := n.mu.count
	if i >= 1<<24-1 {
		return nil, fmt.Errorf("sim: %w: out of addresses", ErrClosed)
	}
	addr := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
	a := &attachment{
		net:      n,
		id:       node.UUID,
		key:      node.Key,
		endpoint: "tcp://" + netip.AddrPortFrom(addr, InboxPort).String(),
		from:     netip.AddrPortFrom(addr, BeaconPort),
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	if node.Beacons {
		a.beaconCh = make(chan zretest.BeaconPacket, 16)
		a.bwake = make(chan struct{}, 1)
		// Every beacon published so far, as if heard at once.
		for _, o := range n.mu.nodes {
			if p := o.currentBeacon(); p != nil {
				a.pending = append(a.pending, zretest.BeaconPacket{Payload: p, From: o.from})
			}
		}
		a.wg.Add(1)
		go a.pumpBeacons()
		if len(a.pending) > 0 {
			a.bwake <- struct{}{}
		}
	}
	n.mu.byEndpoint[a.endpoint] = a
	n.mu.nodes = append(n.mu.nodes, a)
	return a, nil
}

// broadcast delivers a beacon from a to every other attached node.
func (n *Network) broadcast(from *attachment, payload []byte) {
	n.mu.Lock()
	nodes := slices.Clone(n.mu.nodes)
	n.mu.Unlock()
	for _, o := range nodes {
		if o != from {
			o.pushBeacon(zretest.BeaconPacket{Payload: payload, From: from.from})
		}
	}
}

func (n *Network) repeatBeacons(every time.Duration) {
	defer n.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-n.done:
			return
		case <-t.C:
		}
		n.mu.Lock()
		nodes := slices.Clone(n.mu.nodes)
		n.mu.Unlock()
		for _, a := range nodes {
			if p := a.currentBeacon(); p != nil {
				n.broadcast(a, p)
			}
		}
	}
}

func (n *Network) detach(a *attachment) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.byEndpoint[a.endpoint] == a {
		delete(n.mu.byEndpoint, a.endpoint)
	}
	if i := slices.Index(n.mu.nodes, a); i >= 0 {
		n.mu.nodes = slices.Delete(n.mu.nodes, i, i+1)
	}
}

// attachment is one node on the network: its inbox queue and its beacons.
type attachment struct {
	net      *Network
	id       uuid.UUID
	key      curve.PublicKey // the node's key (zero for a plain node)
	endpoint string
	from     netip.AddrPort // where our beacons come from

	mu struct {
		sync.Mutex
		queue   []item // inbox, oldest at head
		head    int
		payload []byte // our beacon; nil: silent
		closed  bool
	}
	idMu      sync.Mutex
	identity  []byte // the identity of our last Dial, shared by our links
	pendingMu sync.Mutex
	pending   []zretest.BeaconPacket // beacons not yet handed to beaconCh
	wake      chan struct{}          // capacity 1: the inbox has messages
	bwake     chan struct{}          // capacity 1: pending has beacons
	beaconCh  chan zretest.BeaconPacket
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// item is one queued message and the link it came by.
type item struct {
	l      *link
	frames [][]byte
}

func (a *attachment) Endpoint() string { return a.endpoint }

func (a *attachment) Beacons() <-chan zretest.BeaconPacket {
	if a.beaconCh == nil {
		return nil
	}
	return a.beaconCh
}

// Recv implements zretest.Attachment.
func (a *attachment) Recv(ctx context.Context) (zretest.InboxMessage, error) {
	for {
		a.mu.Lock()
		if a.mu.closed {
			a.mu.Unlock()
			return zretest.InboxMessage{}, fmt.Errorf("sim: %s: %w", a.endpoint, zre.ErrClosed)
		}
		if a.mu.head < len(a.mu.queue) {
			it := a.mu.queue[a.mu.head]
			a.mu.queue[a.mu.head] = item{}
			a.mu.head++
			if a.mu.head == len(a.mu.queue) {
				// Empty: keep a small array, let a burst's big one go.
				if cap(a.mu.queue) > 64 {
					a.mu.queue = nil
				} else {
					a.mu.queue = a.mu.queue[:0]
				}
				a.mu.head = 0
			}
			a.mu.Unlock()
			it.l.queued.Add(-1)
			return zretest.InboxMessage{Identity: it.l.identity, Frames: it.frames, Remote: it.l.from.endpoint, Key: it.l.from.key}, nil
		}
		a.mu.Unlock()
		select {
		case <-a.wake:
		case <-a.done:
		case <-ctx.Done():
			return zretest.InboxMessage{}, ctx.Err()
		}
	}
}

// Publish implements zretest.Attachment: the beacon is delivered at once.
func (a *attachment) Publish(payload []byte) {
	var p []byte
	if payload != nil {
		p = slices.Clone(payload)
	}
	a.mu.Lock()
	closed := a.mu.closed
	a.mu.payload = p
	a.mu.Unlock()
	if p != nil && !closed {
		a.net.broadcast(a, p)
	}
}

func (a *attachment) currentBeacon() []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.mu.payload
}

// pushBeacon queues a beacon for the node; receivers share the payload
// (the node only reads it).
func (a *attachment) pushBeacon(p zretest.BeaconPacket) {
	if a.beaconCh == nil {
		return
	}
	a.pendingMu.Lock()
	a.pending = append(a.pending, p)
	a.pendingMu.Unlock()
	a.net.beacons.Add(1)
	select {
	case a.bwake <- struct{}{}:
	default:
	}
}

// pumpBeacons hands queued beacons to the node, in order, until Close.
func (a *attachment) pumpBeacons() {
	defer a.wg.Done()
	defer close(a.beaconCh)
	var batch []zretest.BeaconPacket
	for {
		select {
		case <-a.bwake:
		case <-a.done:
			return
		}
		a.pendingMu.Lock()
		batch, a.pending = a.pending, batch[:0]
		a.pendingMu.Unlock()
		for i, p := range batch {
			select {
			case a.beaconCh <- p:
			case <-a.done:
				return
			}
			batch[i] = zretest.BeaconPacket{}
		}
		if cap(batch) > 64 {
			batch = nil
		}
	}
}

// Dial implements zretest.Attachment.
func (a *attachment) Dial(endpoint string, identity []byte, key curve.PublicKey) (zretest.Link, error) {
	a.net.mu.Lock()
	to := a.net.mu.byEndpoint[endpoint]
	a.net.mu.Unlock()
	if to == nil {
		return nil, fmt.Errorf("sim: dial %s: %w", endpoint, ErrNoNode)
	}
	if !to.key.IsZero() && a.key.IsZero() {
		// A plain client to a CURVE server: the handshake fails.
		return nil, fmt.Errorf("sim: dial %s: the node there is secure, we are not: %w", endpoint, ErrKeyMismatch)
	}
	if !key.IsZero() && key != to.key {
		return nil, fmt.Errorf("sim: dial %s: want key %s, the node there has %s: %w", endpoint, key, to.key, ErrKeyMismatch)
	}
	// A node dials with the same identity every time: keep one copy.
	a.idMu.Lock()
	if !bytes.Equal(a.identity, identity) {
		a.identity = slices.Clone(identity)
	}
	id := a.identity
	a.idMu.Unlock()
	return &link{to: to, from: a, identity: id}, nil
}

// Close implements zretest.Attachment; it is safe to call more than once.
func (a *attachment) Close() error {
	a.closeOnce.Do(func() {
		a.net.detach(a)
		a.mu.Lock()
		a.mu.closed = true
		for _, it := range a.mu.queue[a.mu.head:] {
			it.l.queued.Add(-1)
		}
		a.mu.queue, a.mu.head = nil, 0
		a.mu.Unlock()
		close(a.done)
	})
	a.wg.Wait()
	return nil
}

// link is a node's connection to one peer's inbox: two pointers, the
// (shared) identity and a counter — 48 octets.
type link struct {
	to, from *attachment
	identity []byte
	queued   atomic.Int32 // messages in to's queue from this link
	closed   atomic.Bool
}

// Send implements zretest.Link: it queues the frames in the peer's inbox, or
// refuses when HWM messages of this link wait there.
func (l *link) Send(frames ...[]byte) error {
	if l.closed.Load() {
		return fmt.Errorf("sim: send to %s: %w", l.to.endpoint, zmtp.ErrClosed)
	}
	n := l.to.net
	if int(l.queued.Load()) >= n.hwm {
		n.refused.Add(1)
		return fmt.Errorf("sim: send to %s: %w", l.to.endpoint, zmtp.ErrPeerNotResponding)
	}
	to := l.to
	to.mu.Lock()
	if to.mu.closed {
		to.mu.Unlock()
		n.lost.Add(1) // as written into the socket of a dead peer
		return nil
	}
	to.mu.queue = append(to.mu.queue, item{l: l, frames: frames})
	l.queued.Add(1)
	to.mu.Unlock()
	n.messages.Add(1)
	select {
	case to.wake <- struct{}{}:
	default:
	}
	return nil
}

func (l *link) Close() error {
	l.closed.Store(true)
	return nil
}
