package zmtp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Dealer is a ZMTP DEALER connected to one address. It connects in the
// background, reconnects with exponential backoff, and keeps its send queue
// across reconnections.
type Dealer struct {
	pool    bufPool // large received frames' buffers (Message.Release)
	opts    Options
	network string
	address string
	sendq   *sendQueue
	recv    chan Message
	done    chan struct{}
	wg      sync.WaitGroup
	ctx     context.Context // cancelled by Close
	cancel  context.CancelFunc

	closeOnce sync.Once
	connected atomic.Bool

	mu  sync.Mutex // guards cur
	cur *conn
}

// DialDealer returns at once; the Dealer connects asynchronously and
// reconnects with backoff until Close.
func DialDealer(network, address string, opts Options) (*Dealer, error) {
	opts = opts.withDefaults()
	if len(opts.Identity) > 255 {
		return nil, fmt.Errorf("zmtp: dealer identity of %d octets, at most 255", len(opts.Identity))
	}
	if len(opts.Identity) > 0 && opts.Identity[0] == 0 {
		return nil, fmt.Errorf("zmtp: dealer identity may not start with a zero octet (reserved for generated ones)")
	}
	d := &Dealer{
		opts:    opts,
		network: network,
		address: address,
		sendq:   newSendQueueBound(opts.SendHWM, opts.SendBound),
		recv:    make(chan Message, opts.RecvHWM),
		done:    make(chan struct{}),
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.wg.Add(1)
	go d.loop()
	return d, nil
}

func (d *Dealer) loop() {
	defer d.wg.Done()
	ctx := d.ctx
	log := d.opts.Logger.With("addr", d.address)
	backoff := d.opts.ReconnectInterval
	wait := func() bool {
		t := time.NewTimer(backoff)
		defer t.Stop()
		backoff = min(2*backoff, d.opts.ReconnectIntervalMax)
		select {
		case <-d.done:
			return false
		case <-t.C:
			return true
		}
	}
	var dialer net.Dialer
	for {
		select {
		case <-d.done:
			return
		default:
		}
		dctx, dcancel := context.WithTimeout(ctx, d.opts.HandshakeTimeout)
		nc, err := dialer.DialContext(dctx, d.network, d.address)
		dcancel()
		if err != nil {
			log.Debug("zmtp: dealer connect", "err", err)
			if !wait() {
				return
			}
			continue
		}
		c, err := handshake(ctx, nc, &d.opts, false, "DEALER")
		if f := d.opts.OnHandshake; f != nil {
			f(err)
		}
		if err != nil {
			nc.Close()
			log.Info("zmtp: dealer handshake failed", "err", err)
			if !wait() {
				return
			}
			continue
		}
		d.mu.Lock()
		select {
		case <-d.done:
			d.mu.Unlock()
			c.close()
			c.release()
			return
		default:
		}
		d.cur = c
		d.mu.Unlock()
		backoff = d.opts.ReconnectInterval
		d.connected.Store(true)
		log.Debug("zmtp: dealer connected")
		peer := c.peer
		c.pool = &d.pool
		err = c.run(d.sendq, func(frames [][]byte, bufs *msgBufs) bool {
			m := newMessage(frames, peer, bufs, &d.pool)
			select {
			case d.recv <- m:
				return true
			default:
			}
			select {
			case d.recv <- m:
				return true
			case <-c.done:
				return false
			}
		})
		d.connected.Store(false)
		d.mu.Lock()
		d.cur = nil
		d.mu.Unlock()
		log.Info("zmtp: dealer disconnected", "err", err)
		if f := d.opts.OnDisconnect; f != nil {
			f(peer)
		}
		if !wait() {
			return
		}
	}
}

// Send queues a message without blocking, or returns ErrPeerNotResponding
// when SendHWM messages are already queued, or with Options.SendBound the
// octets of its bound (nothing is queued then). The frames must not be
// modified afterwards.
func (d *Dealer) Send(frames ...[]byte) error {
	if err := checkSend(frames, d.opts.MaxMsgSize); err != nil {
		return err
	}
	select {
	case <-d.done:
		return ErrClosed
	default:
	}
	if !d.sendq.push(outMsg{frames: frames}) {
		return fmt.Errorf("zmtp: dealer send to %s: %w", d.address, ErrPeerNotResponding)
	}
	return nil
}

// Queued returns how many messages wait in the send queue, not yet taken
// by the connection's writer (which takes up to 32 at a time, or with
// SendBound up to 64 KiB of them): 0 once everything sent before was
// handed to the connection.
func (d *Dealer) Queued() int {
	n, _ := d.sendq.size()
	return n
}

// SendContext queues a message, blocking while the queue is full (SendHWM,
// or SendBound).
func (d *Dealer) SendContext(ctx context.Context, frames ...[]byte) error {
	if err := checkSend(frames, d.opts.MaxMsgSize); err != nil {
		return err
	}
	select {
	case <-d.done:
		return ErrClosed
	default:
	}
	return d.sendq.pushWait(ctx, outMsg{frames: frames}, d.done, ErrClosed)
}

// Flush returns when every message queued before the call has been written
// to the socket (handed to the kernel, not necessarily read by the peer),
// or with ctx's error when ctx ends first; then Close drops nothing that
// was queued before the Flush. While the Dealer is disconnected it waits
// for the reconnection; while the queue is full it waits for room (the
// flush takes a place in the queue). It returns ErrClosed after Close, and
// an error wrapping ErrDisconnected when the connection that took the
// flush broke before writing everything ahead of it. Messages that an
// earlier connection took and lost when it broke are lost as always (see
// Dealer); Flush does not report them.
func (d *Dealer) Flush(ctx context.Context) error {
	select {
	case <-d.done:
		return ErrClosed
	default:
	}
	ch := make(chan error, 1)
	if err := d.sendq.pushWait(ctx, outMsg{flushed: ch}, d.done, ErrClosed); err != nil {
		if err == ErrClosed {
			return err
		}
		return fmt.Errorf("zmtp: dealer flush to %s: %w", d.address, err)
	}
	err := waitFlushed(ctx, ch, d.done)
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrDisconnected) {
		select {
		case <-d.done:
			return ErrClosed
		default:
		}
	}
	return fmt.Errorf("zmtp: dealer flush to %s: %w", d.address, err)
}

// Recv returns the next whole message from the peer.
func (d *Dealer) Recv(ctx context.Context) (Message, error) {
	select {
	case m := <-d.recv:
		return m, nil
	default:
	}
	select {
	case m := <-d.recv:
		return m, nil
	case <-d.done:
		return Message{}, ErrClosed
	case <-ctx.Done():
		return Message{}, ctx.Err()
	}
}

// Connected reports whether a handshake-complete connection is up now.
func (d *Dealer) Connected() bool { return d.connected.Load() }

// Close closes the connection and stops reconnecting. Messages still queued
// are dropped (Flush first to write them). It is idempotent and waits for
// the Dealer's goroutines.
func (d *Dealer) Close() error {
	d.closeOnce.Do(func() {
		d.mu.Lock()
		close(d.done)
		d.cancel()
		if d.cur != nil {
			d.cur.close()
		}
		d.mu.Unlock()
	})
	d.wg.Wait()
	return nil
}
