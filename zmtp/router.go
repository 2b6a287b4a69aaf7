package zmtp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Router is a ZMTP ROUTER: it accepts connections, gives each peer a routing
// identity and receives whole messages from all of them.
type Router struct {
	pool bufPool // large received frames' buffers (Message.Release)
	opts Options
	ln   net.Listener
	recv chan Message
	done chan struct{}
	wg   sync.WaitGroup

	ctx    context.Context // cancelled by Close; bounds handshakes
	cancel context.CancelFunc

	closeOnce sync.Once

	mu      sync.Mutex // guards the fields below
	closed  bool
	peers   map[string]*routerConn
	pending map[net.Conn]struct{} // connections still in their handshake
	nextID  uint32

	unadmitted atomic.Uint64 // connections closed for PreAdmit (Unadmitted)
}

type routerConn struct {
	*conn
	sendq *sendQueue
}

// ListenRouter binds now and serves in the background.
func ListenRouter(network, address string, opts Options) (*Router, error) {
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, fmt.Errorf("zmtp: router listen on %s: %w", address, err)
	}
	return NewRouter(ln, opts), nil
}

// NewRouter serves on an existing listener, which the Router then owns.
func NewRouter(ln net.Listener, opts Options) *Router {
	opts = opts.withDefaults()
	r := &Router{
		opts:    opts,
		ln:      ln,
		recv:    make(chan Message, opts.RecvHWM),
		done:    make(chan struct{}),
		peers:   make(map[string]*routerConn),
		pending: make(map[net.Conn]struct{}),
		nextID:  rand.Uint32(),
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.wg.Add(1)
	go r.acceptLoop()
	return r
}

// Addr returns the address the Router listens on.
func (r *Router) Addr() net.Addr { return r.ln.Addr() }

func (r *Router) acceptLoop() {
	defer r.wg.Done()
	delay := 5 * time.Millisecond
	for {
		nc, err := r.ln.Accept()
		if err != nil {
			select {
			case <-r.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait a little and retry.
			r.opts.Logger.Warn("zmtp: router accept", "err", err)
			t := time.NewTimer(delay)
			select {
			case <-r.done:
				t.Stop()
				return
			case <-t.C:
			}
			delay = min(2*delay, time.Second)
			continue
		}
		delay = 5 * time.Millisecond
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			nc.Close()
			return
		}
		r.pending[nc] = struct{}{}
		r.wg.Add(1)
		r.mu.Unlock()
		go r.serve(nc)
	}
}

func (r *Router) serve(nc net.Conn) {
	defer r.wg.Done()
	c, err := handshake(r.ctx, nc, &r.opts, true, "ROUTER")
	r.mu.Lock()
	delete(r.pending, nc)
	r.mu.Unlock()
	if err != nil {
		r.opts.Logger.Info("zmtp: router handshake failed", "remote", addrString(nc.RemoteAddr()), "err", err)
		nc.Close()
		return
	}
	rc := &routerConn{conn: c, sendq: newSendQueueBound(r.opts.SendHWM, r.opts.SendBound)}
	if r.opts.PreAdmit > 0 {
		c.adm = newAdmission(&r.unadmitted)
	}
	if !r.register(rc) {
		c.close()
		c.release()
		return
	}
	peer := c.peer
	// Asked once registered: an Admit from now on finds this connection,
	// and one made before it saw the receiver know the peer already.
	if c.adm != nil && r.opts.Admitted != nil && r.opts.Admitted(peer) {
		c.adm.admit()
	}
	c.pool = &r.pool
	err = c.run(rc.sendq, func(frames [][]byte, bufs *msgBufs) bool {
		m := newMessage(frames, peer, bufs, &r.pool)
		select {
		case r.recv <- m:
			return true
		default:
		}
		select {
		case r.recv <- m:
			return true
		case <-c.done:
			return false
		case <-r.done:
			return false
		}
	})
	r.mu.Lock()
	if r.peers[string(peer.Identity)] == rc {
		delete(r.peers, string(peer.Identity))
	}
	r.mu.Unlock()
	if err != nil {
		r.opts.Logger.Info("zmtp: router connection closed", "remote", addrString(nc.RemoteAddr()), "identity", fmt.Sprintf("%x", peer.Identity), "err", err)
	}
	if f := r.opts.OnDisconnect; f != nil {
		f(peer)
	}
}

// register gives rc its identity and applies the collision rule: a new
// connection with the same identity and the same authenticated key (both nil
// for NULL) takes over; with a different key it is refused.
func (r *Router) register(rc *routerConn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	p := rc.peer
	if len(p.Identity) == 0 {
		for {
			r.nextID++
			id := binary.BigEndian.AppendUint32([]byte{0}, r.nextID)
			if _, taken := r.peers[string(id)]; !taken {
				p.Identity = id
				break
			}
		}
	}
	if old, ok := r.peers[string(p.Identity)]; ok {
		if !bytes.Equal(old.peer.PublicKey, p.PublicKey) {
			r.opts.Logger.Warn("zmtp: router refused a connection: identity in use by another key",
				"remote", addrString(p.RemoteAddr), "identity", fmt.Sprintf("%x", p.Identity))
			return false
		}
		r.opts.Logger.Info("zmtp: router: identity reconnected, closing the old connection",
			"remote", addrString(p.RemoteAddr), "identity", fmt.Sprintf("%x", p.Identity))
		old.close()
		if rc.adm != nil && (old.adm == nil || old.adm.ok.Load()) {
			rc.adm.admit() // the same key, admitted already
		}
	}
	r.peers[string(p.Identity)] = rc
	return true
}

// Messages returns the channel that Recv reads, for a caller that waits
// for messages in a select beside other channels (one goroutine hand-off
// less per message than a goroutine calling Recv). Each value is one whole
// message; messages of one connection arrive in order. It is never closed:
// after Close nothing more arrives on it.
func (r *Router) Messages() <-chan Message { return r.recv }

// Recv returns the next whole message from any peer. Messages of one
// connection arrive in order.
func (r *Router) Recv(ctx context.Context) (Message, error) {
	select {
	case m := <-r.recv:
		return m, nil
	default:
	}
	select {
	case m := <-r.recv:
		return m, nil
	case <-r.done:
		return Message{}, ErrClosed
	case <-ctx.Done():
		return Message{}, ctx.Err()
	}
}

// Send queues a message for the peer with the given identity without
// blocking. It returns ErrUnknownPeer when no connection has that identity
// and ErrPeerNotResponding when its queue is full (SendHWM, or
// Options.SendBound). The frames must
// not be modified afterwards.
func (r *Router) Send(identity []byte, frames ...[]byte) error {
	if err := checkSend(frames, r.opts.MaxMsgSize); err != nil {
		return err
	}
	r.mu.Lock()
	rc, ok := r.peers[string(identity)]
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if !ok {
		return fmt.Errorf("zmtp: router send to %x: %w", identity, ErrUnknownPeer)
	}
	select {
	case <-rc.done:
		return fmt.Errorf("zmtp: router send to %x: connection closed: %w", identity, ErrUnknownPeer)
	default:
	}
	if !rc.sendq.push(outMsg{frames: frames}) {
		return fmt.Errorf("zmtp: router send to %x: %w", identity, ErrPeerNotResponding)
	}
	return nil
}

// lookup returns the connection with the given identity.
func (r *Router) lookup(what string, identity []byte) (*routerConn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	rc, ok := r.peers[string(identity)]
	if !ok {
		return nil, fmt.Errorf("zmtp: router %s %x: %w", what, identity, ErrUnknownPeer)
	}
	return rc, nil
}

// Flush returns when every message queued for the peer with the given
// identity before the call has been written to its socket (not
// necessarily read by the peer), or with ctx's error when ctx ends first.
// It waits for room when the peer's queue is full. It returns an error
// wrapping ErrUnknownPeer when no connection has that identity, and one
// wrapping ErrDisconnected when the connection ends first.
func (r *Router) Flush(ctx context.Context, identity []byte) error {
	rc, err := r.lookup("flush", identity)
	if err != nil {
		return err
	}
	ch := make(chan error, 1)
	if err := rc.sendq.pushWait(ctx, outMsg{flushed: ch}, rc.wdone, ErrDisconnected); err != nil {
		return fmt.Errorf("zmtp: router flush to %x: %w", identity, err)
	}
	if err := waitFlushed(ctx, ch, rc.wdone); err != nil {
		return fmt.Errorf("zmtp: router flush to %x: %w", identity, err)
	}
	return nil
}

// waitFlushed waits for a Flush marker's answer. gone is closed when no
// writer will ever answer it (the writer answers the markers it took
// before it closes gone).
func waitFlushed(ctx context.Context, ch <-chan error, gone <-chan struct{}) error {
	select {
	case err := <-ch:
		return err
	case <-gone:
		select {
		case err := <-ch:
			return err
		default:
			return ErrDisconnected
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Disconnect closes the connection of the peer with the given identity at
// once (what is still queued for it is dropped) and forgets it: Send then
// returns ErrUnknownPeer until it connects again. It returns an error
// wrapping ErrUnknownPeer when no connection has that identity.
// OnDisconnect is called for it as for any other closed connection.
func (r *Router) Disconnect(identity []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	rc, ok := r.peers[string(identity)]
	if !ok {
		return fmt.Errorf("zmtp: router disconnect %x: %w", identity, ErrUnknownPeer)
	}
	delete(r.peers, string(identity))
	rc.close()
	r.opts.Logger.Info("zmtp: router: disconnected a peer", "remote", addrString(rc.peer.RemoteAddr), "identity", fmt.Sprintf("%x", identity))
	return nil
}

// Admit lifts Options.PreAdmit for the connection of the peer with the
// given identity: from now on MaxMsgSize alone bounds what it sends, and
// a reader waiting for the decision goes on. It returns an error wrapping
// ErrUnknownPeer when no connection has that identity. Without PreAdmit
// every connection is admitted already.
func (r *Router) Admit(identity []byte) error {
	rc, err := r.lookup("admit", identity)
	if err != nil {
		return err
	}
	if rc.adm != nil {
		rc.adm.admit()
	}
	return nil
}

// Unadmitted returns how many connections were closed for sending more
// than Options.PreAdmit before their admission.
func (r *Router) Unadmitted() uint64 { return r.unadmitted.Load() }

// Peers returns the identities of the connected peers.
func (r *Router) Peers() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([][]byte, 0, len(r.peers))
	for id := range r.peers {
		ids = append(ids, []byte(id))
	}
	return ids
}

// Close stops listening and closes every connection. It is idempotent and
// returns when every goroutine of the Router has exited.
func (r *Router) Close() error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		close(r.done)
		r.cancel()
		r.ln.Close()
		for _, rc := range r.peers {
			rc.close()
		}
		for nc := range r.pending {
			nc.Close()
		}
		r.mu.Unlock()
	})
	r.wg.Wait()
	return nil
}
