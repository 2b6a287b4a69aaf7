package zmtp

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// handshakeCommandLimit caps a command frame during the handshake.
	handshakeCommandLimit = 64 << 10
	// codecSlack is what a FrameCodec may add to a logical frame on the wire.
	codecSlack = 1024
	bufSize    = 64 << 10
	// handshakeBufSize is the buffer size until the handshake is done.
	handshakeBufSize = 4 << 10
	maxPingCtx       = 16
)

// conn is one ZMTP connection after (or during) its handshake.
type conn struct {
	nc    net.Conn
	opts  *Options
	log   *slog.Logger
	br    *bufio.Reader
	fw    frameWriter
	fr    frameReader
	pool  *bufPool // large received frames' buffers; nil = no pooling
	codec FrameCodec
	sess  Session
	peer  *Peer

	ctrl      chan []byte   // command frames (PONG) waiting to be written
	done      chan struct{} // closed by close
	wdone     chan struct{} // closed when writeLoop has returned
	closeOnce sync.Once
	sessOnce  sync.Once
	peerTTL   atomic.Int64 // nanoseconds, from the peer's PING; 0 = none
	live      atomic.Bool  // past the handshake: reads get the idle deadline
	sealBuf   []byte
	cmdBuf    []byte
	wire      []byte     // scratch for sealed frames up to scratchMax (reader only)
	rdl       time.Time  // read deadline last set (reader only)
	small     bool       // br is still the handshake's small buffer (reader only)
	grow      bool       // a read filled it: readLoop moves to bufSize (reader only)
	lw        *lowater   // the receive low-water mark; nil where there is none (reader only)
	adm       *admission // Options.PreAdmit on a Router; nil otherwise
}

// outMsg is one entry of a send queue: a message, or a Flush marker.
type outMsg struct {
	frames [][]byte
	// flushed, when non-nil, makes this entry a marker (frames is nil):
	// the writer sends nil on it once everything queued before it has
	// been written to the socket, or an error wrapping ErrDisconnected
	// when the connection ends first. Its buffer of 1 keeps the writer
	// from blocking.
	flushed chan error
}

// deadlineReader sets the idle (heartbeat) read deadline before every read
// the bufio.Reader makes, so it costs one timer reset per buffer fill.
type deadlineReader struct{ c *conn }

func (d deadlineReader) Read(p []byte) (int, error) {
	c := d.c
	if c.live.Load() {
		if to := c.idleTimeout(); to > 0 {
			// The deadline stays between to and to+to/8 from now: it is
			// moved only when less than to is left (or, after the peer's
			// TTL shrank, more than to+to/8), not at every read, since a
			// large frame arrives in many reads.
			now := time.Now()
			if left := c.rdl.Sub(now); left < to || left > to+to/8 {
				c.rdl = now.Add(to + to/8)
				c.nc.SetReadDeadline(c.rdl)
			}
		} else if !c.rdl.IsZero() {
			// No timeout any more (the peer's TTL went to 0, RFC 37):
			// the deadline of the last one must not drop the peer.
			c.rdl = time.Time{}
			c.nc.SetReadDeadline(c.rdl)
		}
	}
	n, err := c.nc.Read(p)
	if n == 0 && err != nil && c.lw != nil && c.lw.raised() && isTimeout(err) {
		// The raised low-water mark (frameReader.readFull) kept octets
		// that arrived below it from waking the reader: the peer was
		// idle only if none did. Whatever is there is read now, without
		// waiting, and the next read gets a new deadline.
		c.rdl = time.Time{}
		c.nc.SetReadDeadline(c.rdl)
		if m, rerr := c.lw.readNow(p); m > 0 || rerr != nil {
			n, err = m, rerr
		}
	}
	if c.small && n == len(p) && n >= handshakeBufSize/2 {
		c.grow = true
	}
	return n, err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// growReader moves the reader to a buffer of bufSize, keeping what the
// small one holds: once reads fill the handshake's buffer, a larger one
// takes more messages per system call.
func (c *conn) growReader() {
	c.small, c.grow = false, false
	var rd io.Reader = deadlineReader{c}
	if n := c.br.Buffered(); n > 0 {
		left, _ := c.br.Peek(n)
		rd = &prefixReader{left: bytes.Clone(left), r: rd}
	}
	c.br = bufio.NewReaderSize(rd, bufSize)
	c.fr.r = c.br
}

// prefixReader reads left, then r.
type prefixReader struct {
	left []byte
	r    io.Reader
}

func (p *prefixReader) Read(b []byte) (int, error) {
	if len(p.left) > 0 {
		n := copy(b, p.left)
		p.left = p.left[n:]
		return n, nil
	}
	return p.r.Read(b)
}

func (c *conn) idleTimeout() time.Duration {
	var to time.Duration
	if c.opts.HeartbeatInterval > 0 {
		to = c.opts.HeartbeatInterval + c.opts.HeartbeatTimeout
	}
	if ttl := time.Duration(c.peerTTL.Load()); ttl > to {
		to = ttl
	}
	return to
}

// handshakeConn adapts a conn to CommandConn for the mechanism's handshake.
type handshakeConn struct{ c *conn }

func (h handshakeConn) WriteCommand(name string, body []byte) error {
	if len(name) == 0 || len(name) > 255 {
		return fmt.Errorf("zmtp: command name %q: bad length", name)
	}
	b := appendCommand(nil, name, body)
	if err := h.c.fw.writeFrame(FlagCommand, b); err != nil {
		return err
	}
	return h.c.fw.flush()
}

func (h handshakeConn) ReadCommand() (string, []byte, error) {
	flags, body, err := h.c.fr.readFrame(handshakeCommandLimit)
	if err != nil {
		return "", nil, fmt.Errorf("zmtp: handshake: %w", err)
	}
	if flags&FlagCommand == 0 {
		return "", nil, fmt.Errorf("zmtp: handshake: got a data frame, want a command: %w", ErrProtocol)
	}
	return parseCommand(body)
}

// compatible reports whether socket types may talk (RFC 37 / RFC 28).
func compatible(local, remote string) bool {
	switch local {
	case "ROUTER":
		return remote == "DEALER" || remote == "REQ" || remote == "ROUTER"
	case "DEALER":
		return remote == "ROUTER" || remote == "REP" || remote == "DEALER"
	}
	return false
}

// closeSession closes a session that implements io.Closer (see Session).
func closeSession(s Session, log *slog.Logger) {
	if cl, ok := s.(io.Closer); ok {
		if err := cl.Close(); err != nil {
			log.Warn("zmtp: closing the session", "err", err)
		}
	}
}

// preparer is implemented by the Sessions of this package that can do
// part of their handshake before the peer's greeting arrives (CURVE: the
// transient key pair, and the client's HELLO), so that the wait for the
// greeting hides it. prepare is called once, before Handshake.
type preparer interface {
	prepare() error
}

// serverRole reports whether this side's mechanism plays the server: by
// its configuration when it implements ServerRole, else when this side
// accepted the connection.
func serverRole(m Mechanism, accepted bool) bool {
	if r, ok := m.(ServerRole); ok {
		return r.IsServer()
	}
	return accepted
}

// handshake runs the greeting and the mechanism's handshake on nc.
func handshake(ctx context.Context, nc net.Conn, opts *Options, server bool, socketType string) (_ *conn, err error) {
	c := &conn{
		nc:    nc,
		opts:  opts,
		log:   opts.Logger.With("remote", addrString(nc.RemoteAddr())),
		ctrl:  make(chan []byte, 8),
		done:  make(chan struct{}),
		wdone: make(chan struct{}),
	}
	// Small buffers until the handshake is done, so that connections that
	// never finish it cost little.
	c.br = bufio.NewReaderSize(deadlineReader{c}, handshakeBufSize)
	c.fw.w = nc
	c.fr.r = c.br

	deadline := time.Now().Add(opts.HandshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	nc.SetDeadline(deadline)
	// The deadline (or a Close) interrupts the handshake's reads and
	// writes; once the handshake is complete, nothing may interrupt the
	// connection any more: complete says so, under dlMu, so that an
	// AfterFunc that started late cannot undo the clearing below.
	var dlMu sync.Mutex
	complete := false
	stop := context.AfterFunc(ctx, func() {
		dlMu.Lock()
		defer dlMu.Unlock()
		if !complete {
			nc.SetDeadline(time.Unix(1, 0))
		}
	})
	defer stop()

	mech := opts.Mechanism
	idLen := 0
	if socketType == "DEALER" {
		idLen = len(opts.Identity)
	}
	g := AppendGreeting(make([]byte, 0, GreetingSize), Greeting{Major: 3, Minor: 1, Mechanism: mech.Name(), AsServer: mech.AsServer(), IdentityLen: idLen})
	if _, err := nc.Write(g); err != nil {
		return nil, fmt.Errorf("zmtp: sending greeting: %w", err)
	}
	sess, err := mech.NewSession()
	if err != nil {
		return nil, fmt.Errorf("zmtp: %s session: %w", mech.Name(), err)
	}
	defer func() {
		if err != nil {
			closeSession(sess, c.log)
		}
	}()
	if p, ok := sess.(preparer); ok {
		// While the peer's greeting crosses ours.
		if err := p.prepare(); err != nil {
			return nil, fmt.Errorf("zmtp: %s session: %w", mech.Name(), err)
		}
	}
	var gb [GreetingSize]byte
	// Read the signature first so that a non-ZMTP peer is refused at once:
	// a ZMTP 1.0 peer starts with a length octet, not 0xFF.
	if _, err := io.ReadFull(c.br, gb[:1]); err != nil {
		return nil, fmt.Errorf("zmtp: reading greeting: %w", unexpected(err))
	}
	if gb[0] != 0xFF {
		return nil, fmt.Errorf("zmtp: greeting starts with %#x, not 0xff (ZMTP 1.0 peer or not ZMTP): %w", gb[0], ErrProtocol)
	}
	if _, err := io.ReadFull(c.br, gb[1:10]); err != nil {
		return nil, fmt.Errorf("zmtp: reading greeting: %w", unexpected(err))
	}
	if gb[0] != 0xFF || gb[9]&1 != 1 {
		return nil, fmt.Errorf("zmtp: bad greeting signature % x (ZMTP 1.0 peer or not ZMTP): %w", gb[:10], ErrProtocol)
	}
	if _, err := io.ReadFull(c.br, gb[10:]); err != nil {
		return nil, fmt.Errorf("zmtp: reading greeting: %w", unexpected(err))
	}
	pg, err := ParseGreeting(gb[:])
	if err != nil {
		return nil, err
	}
	if pg.Mechanism != mech.Name() {
		return nil, fmt.Errorf("zmtp: mechanism mismatch: peer %q, we %q: %w", pg.Mechanism, mech.Name(), ErrProtocol)
	}
	// The peer's as-server bit is not checked: libzmq does not check it
	// either, and the C reference's CURVE server sends 0 (see
	// testdata/zre/curvezmq_server_to_client.hex).
	// Like libzmq, a ROUTER or DEALER always sends Identity, empty when it
	// has none (the READY in testdata/zre/curvezmq_server_to_client.hex).
	local := Metadata{{Name: "Socket-Type", Value: []byte(socketType)}, {Name: "Identity", Value: opts.Identity}}
	if socketType == "ROUTER" {
		local[1].Value = nil
	}
	var auth Authorizer
	if serverRole(mech, server) {
		auth = opts.Authorize
		if auth != nil {
			// Give the authorizer the remote address, which sessions cannot know.
			addr := nc.RemoteAddr()
			inner := auth
			auth = func(ctx context.Context, req AuthRequest) error {
				req.RemoteAddr = addr
				return inner(ctx, req)
			}
		}
	}
	res, err := sess.Handshake(ctx, handshakeConn{c}, server, local, auth)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, ErrDenied) && !errors.Is(err, ErrProtocol) {
			return nil, fmt.Errorf("zmtp: %s handshake: %w (timeout %v)", mech.Name(), err, opts.HandshakeTimeout)
		}
		return nil, fmt.Errorf("zmtp: %s handshake: %w", mech.Name(), err)
	}
	st, _ := res.Metadata.Get("Socket-Type")
	if !compatible(socketType, strings.ToUpper(string(st))) {
		return nil, fmt.Errorf("zmtp: socket type %q cannot talk to our %s: %w", st, socketType, ErrProtocol)
	}
	id, _ := res.Metadata.Get("Identity")
	if len(id) > 255 {
		return nil, fmt.Errorf("zmtp: identity of %d octets: %w", len(id), ErrProtocol)
	}
	c.codec = sess.Codec()
	c.sess = sess
	c.peer = &Peer{
		RemoteAddr: nc.RemoteAddr(),
		Identity:   id,
		SocketType: string(st),
		Metadata:   res.Metadata,
		Mechanism:  mech.Name(),
		PublicKey:  res.PublicKey,
	}
	// The handshake is complete, and for the peer too: a CURVE server
	// sent READY, after which the client writes what it had queued. Its
	// deadline passing now (this goroutine descheduled since the last
	// write) must not fail the connection: the messages the peer wrote
	// into it would be lost for good, while the peer's socket reconnects
	// as if nothing had happened (a lost ZRE HELLO leaves a pair of nodes
	// half meshed). A Close of the Router or Dealer meanwhile still ends
	// the connection: both check for it once the handshake returned.
	dlMu.Lock()
	complete = true
	dlMu.Unlock()
	stop()
	nc.SetDeadline(time.Time{})
	// The reader keeps the handshake's small buffer until a read fills it
	// (growReader): a connection that carries little costs little.
	c.small = true
	if c.lw = newLowater(nc); c.lw != nil {
		c.fr.lowat = c.lw.setMark
	}
	if b := opts.SendBound; b.Target > 0 && b.NotSentLowat >= 0 {
		// The kernel's share of the bound (SendBound.NotSentLowat).
		setNotSentLowat(nc, cmp.Or(b.NotSentLowat, DefaultNotSentLowat))
	}
	c.live.Store(true)
	return c, nil
}

// close closes the connection once; safe from any goroutine.
func (c *conn) close() {
	c.closeOnce.Do(func() {
		close(c.done)
		c.nc.Close()
	})
}

// release closes the session once the connection no longer uses it: run
// calls it, and so must whoever drops a conn without running it.
func (c *conn) release() {
	c.sessOnce.Do(func() { closeSession(c.sess, c.log) })
}

// run serves the connection: a writer goroutine takes messages from sendq,
// the calling goroutine reads and hands whole messages to deliver, which
// blocks for backpressure and returns false to stop. run returns when the
// connection is closed, both have stopped and the session is released.
func (c *conn) run(sendq *sendQueue, deliver func(frames [][]byte, bufs *msgBufs) bool) error {
	var wg sync.WaitGroup
	var werr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		werr = c.writeLoop(sendq)
		c.close()
	}()
	err := c.readLoop(deliver)
	c.close()
	wg.Wait()
	c.release()
	if err == nil {
		err = werr
	}
	return err
}

// writerBatch is the most messages the writer takes from its queue at once.
const writerBatch = 32

func (c *conn) writeLoop(q *sendQueue) error {
	var marks []chan error // Flush markers taken, answered after the next flush
	// With the byte bound (q.db), the writer reports the octets it wrote,
	// when it takes again or before it waits: held were taken and not
	// yet reported, pend handed to the frameWriter and not yet flushed,
	// wrote flushed and not yet reported.
	bounded := q.db != nil
	var held, pend, wrote int64
	var lowSet int64 // TCP_NOTSENT_LOWAT set (at first by the handshake); 0 = none
	if bounded {
		lowSet = q.db.lowMin
	}
	defer func() {
		if bounded && held > 0 {
			q.drop(held) // written into a dead socket, or never
		}
		for _, m := range marks {
			m <- fmt.Errorf("zmtp: connection to %v closed before the flush: %w", addrString(c.nc.RemoteAddr()), ErrDisconnected)
		}
		close(c.wdone)
	}()
	var tick <-chan time.Time
	if c.opts.HeartbeatInterval > 0 {
		t := time.NewTicker(c.opts.HeartbeatInterval)
		defer t.Stop()
		tick = t.C
	}
	var batch [writerBatch]outMsg
	// A Dealer's queue may hold messages already: the writer starts by
	// taking them.
	for started := false; ; started = true {
		var err error
		if started {
			select {
			case <-c.done:
				return nil
			case cmd := <-c.ctrl:
				err = c.writeLogical(FlagCommand, cmd)
			case <-q.wake:
			case <-tick:
				err = c.writePing()
			}
		}
		// Write whatever is queued before one flush. Single-case selects
		// are much cheaper than a multi-case one.
		for err == nil {
			if len(c.ctrl) > 0 {
				err = c.writeLogical(FlagCommand, <-c.ctrl)
				continue
			}
			var k int
			if bounded {
				var lowat int64
				k, lowat = q.takeBound(batch[:], wrote, time.Now())
				if lowat > 0 && (lowat > lowSet*5/4 || lowat < lowSet*3/4) {
					// The measured rate moved the kernel's share: set
					// it when it changed by a quarter.
					setNotSentLowat(c.nc, int(lowat))
					lowSet = lowat
				}
				held -= wrote
				wrote = 0
				for _, m := range batch[:k] {
					held += wireSize(m.frames)
				}
			} else {
				k = q.take(batch[:])
			}
			if k == 0 {
				break // q.wake has a token once more arrives
			}
			for i, m := range batch[:k] {
				if m.flushed != nil {
					marks = append(marks, m.flushed)
					continue
				}
				if err = c.writeMsg(m.frames); err != nil {
					// The next connection (a Dealer's) writes what
					// this one took and did not write.
					q.unget(batch[i+1 : k])
					if bounded {
						for _, m := range batch[i+1 : k] {
							held -= wireSize(m.frames)
						}
					}
					break
				}
				if bounded {
					if pend += wireSize(m.frames); c.fw.buffered() == 0 {
						wrote, pend = wrote+pend, 0 // the frameWriter wrote it all
					}
				}
			}
			clear(batch[:k])
		}
		if err == nil {
			err = c.fw.flush()
		}
		if err == nil && bounded && pend+wrote > 0 {
			wrote += pend
			q.report(wrote, time.Now())
			held -= wrote
			pend, wrote = 0, 0
		}
		if err == nil && len(marks) > 0 {
			for _, m := range marks {
				m <- nil
			}
			clear(marks)
			marks = marks[:0]
		}
		if err != nil {
			select {
			case <-c.done:
				return nil
			default:
			}
			return fmt.Errorf("zmtp: write to %v: %w", c.nc.RemoteAddr(), err)
		}
	}
}

func (c *conn) writePing() error {
	ttl := (c.opts.HeartbeatInterval + c.opts.HeartbeatTimeout) / (100 * time.Millisecond)
	if ttl > 0xFFFF {
		ttl = 0xFFFF
	}
	c.cmdBuf = appendCommand(c.cmdBuf[:0], "PING", nil)
	c.cmdBuf = binary.BigEndian.AppendUint16(c.cmdBuf, uint16(ttl))
	return c.writeLogical(FlagCommand, c.cmdBuf)
}

func (c *conn) writeMsg(frames [][]byte) error {
	last := len(frames) - 1
	for i, f := range frames {
		var flags byte
		if i < last {
			flags = FlagMore
		}
		if err := c.writeLogical(flags, f); err != nil {
			return err
		}
	}
	return nil
}

func (c *conn) writeLogical(flags byte, body []byte) error {
	if c.codec == nil {
		return c.fw.writeFrame(flags, body)
	}
	wf, out, err := c.codec.Seal(c.sealBuf[:0], flags, body)
	if err != nil {
		return fmt.Errorf("zmtp: sealing frame: %w", err)
	}
	c.sealBuf = out[:0]
	if err := c.fw.writeFrame(wf&^FlagLong, out); err != nil {
		return err
	}
	if len(out) >= bigBody {
		// The frame writer references out, which the next Seal reuses:
		// write it now, with what was queued before it, in one writev.
		return c.fw.flush()
	}
	return nil
}

// openInto is implemented by the FrameCodecs of this package that open a
// frame into storage the core gives (the CURVE codec): dst has len 0 and
// room for len(wire) octets and does not overlap wire, which the core
// reuses once openInto returns. The core owns dst's storage and hands it
// to the receiver; the body returned lies in it. Other codecs get Open's
// documented contract (dst nil, wire handed over).
type openInto interface {
	openInto(dst []byte, wireFlags byte, wire []byte) (flags byte, out []byte, err error)
}

// readLogical reads one frame and opens it with the codec. A body of
// poolMin to chunk octets lies in a buffer of c.pool, returned as pb. A
// failure to read is returned as it is, with rerr set: readErr turns it
// into readLoop's result.
func (c *conn) readLogical(limit int64) (flags byte, body []byte, pb *[]byte, rerr bool, err error) {
	oi, into := c.codec.(openInto)
	if !into {
		flags, body, pb, err = c.fr.readFramePooled(limit, c.pool, nil)
		if err != nil {
			return 0, nil, nil, true, err
		}
		if c.codec != nil {
			// Open may write over the wire buffer, which it is handed,
			// and return a part of it: pb stays the body's buffer.
			flags, body, err = c.codec.Open(nil, flags, body)
			if err != nil {
				return 0, nil, nil, false, fmt.Errorf("zmtp: opening frame from %v: %w", c.nc.RemoteAddr(), err)
			}
		}
		return flags, body, pb, false, nil
	}
	// The sealed frame goes into scratch (c.wire, or a pooled buffer
	// given back at once), and is opened straight into the storage the
	// body keeps: one pass of the cipher, no copy.
	wflags, wire, wpb, err := c.fr.readFramePooled(limit, c.pool, &c.wire)
	if err != nil {
		return 0, nil, nil, true, err
	}
	n := len(wire)
	var dst []byte
	switch {
	case n <= smallFrame:
		dst = c.fr.carve(n)
	case c.pool != nil && n >= poolMin && n <= chunk:
		dst, pb = c.pool.getMsg(n)
		dst = dst[:0]
	default:
		dst = make([]byte, 0, n)
	}
	flags, body, err = oi.openInto(dst, wflags, wire)
	if wpb != nil {
		c.pool.put(wpb)
	}
	if err != nil {
		if pb != nil {
			c.pool.put(pb)
		}
		return 0, nil, nil, false, fmt.Errorf("zmtp: opening frame from %v: %w", c.nc.RemoteAddr(), err)
	}
	return flags, body, pb, false, nil
}

// readLoop reads frames until an error or until deliver returns false.
// deliver gets a message's frames and the pooled buffers behind them (see
// Message.Release).
func (c *conn) readLoop(deliver func(frames [][]byte, bufs *msgBufs) bool) error {
	limitMsg := c.opts.MaxRecvSize
	var frames [][]byte // scratch, reused
	var slab [][]byte   // delivered frame lists are carved from it
	var bufs *msgBufs   // pooled buffers of the message being read
	var total int64
	for {
		if c.grow {
			c.growReader()
		}
		if a := c.adm; a != nil && !a.ok.Load() {
			if stop, err := c.preAdmit(a); stop {
				if err == nil {
					return nil
				}
				return err
			}
		}
		limit := int64(-1)
		if limitMsg >= 0 {
			limit = limitMsg - total
			if c.codec != nil {
				limit += codecSlack
			}
		}
		flags, body, pb, rerr, err := c.readLogical(limit)
		if rerr {
			return c.readErr(err)
		}
		if err != nil {
			return err
		}
		if flags&FlagCommand != 0 {
			// The command's buffer goes back only once onCommand is done
			// with it: another connection of the socket may take it from
			// the pool at once and read its frames into it.
			err := c.onCommand(body)
			if pb != nil {
				c.pool.put(pb)
			}
			if err != nil {
				return err
			}
			continue
		}
		if pb != nil {
			if bufs == nil {
				bufs = new(msgBufs)
			}
			bufs.add(pb)
		}
		// The receiver's frame ends where its octets do: the rest of a
		// pooled buffer (or of the storage CURVE opened into) holds an
		// earlier message's octets, from any peer of the socket.
		body = body[:len(body):len(body)]
		total += int64(len(body))
		if limitMsg >= 0 && total > limitMsg {
			return fmt.Errorf("zmtp: message from %v over %d octets: %w", c.nc.RemoteAddr(), limitMsg, ErrTooLarge)
		}
		frames = append(frames, body)
		if flags&FlagMore == 0 {
			n := len(frames)
			if len(slab) < n {
				slab = make([][]byte, max(n, 128))
			}
			out := slab[:n:n]
			slab = slab[n:]
			copy(out, frames)
			clear(frames)
			frames = frames[:0]
			total = 0
			outBufs := bufs
			bufs = nil
			if c.adm != nil {
				c.adm.delivered = true
			}
			if !deliver(out, outBufs) {
				return nil
			}
		}
	}
}

func (c *conn) readErr(err error) error {
	select {
	case <-c.done:
		return nil
	default:
	}
	if err == io.EOF {
		return io.EOF
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("zmtp: heartbeat: nothing from %v for %v: %w", c.nc.RemoteAddr(), c.idleTimeout(), err)
	}
	return fmt.Errorf("zmtp: read from %v: %w", c.nc.RemoteAddr(), err)
}

func (c *conn) onCommand(body []byte) error {
	name, data, err := parseCommand(body)
	if err != nil {
		return err
	}
	switch name {
	case "PING":
		if len(data) < 2 {
			return fmt.Errorf("zmtp: PING of %d octets: %w", len(data), ErrProtocol)
		}
		ttl := time.Duration(binary.BigEndian.Uint16(data)) * 100 * time.Millisecond
		c.peerTTL.Store(int64(ttl))
		c.log.Debug("zmtp: PING", "ttl", ttl)
		pctx := data[2:]
		if len(pctx) > maxPingCtx {
			pctx = pctx[:maxPingCtx]
		}
		pong := appendCommand(make([]byte, 0, 6+len(pctx)), "PONG", pctx)
		select {
		case c.ctrl <- pong:
		default: // the peer pings faster than we can answer; it will ping again
		}
	case "PONG":
		// Any arrival resets the idle deadline; nothing else to do.
		c.log.Debug("zmtp: PONG")
	case "ERROR":
		return fmt.Errorf("zmtp: from %v: %w", c.nc.RemoteAddr(), ParseError(data))
	default:
		c.log.Debug("zmtp: ignoring unknown command", "command", name)
	}
	return nil
}

// checkSend validates an outgoing message.
func checkSend(frames [][]byte, max int64) error {
	if len(frames) == 0 {
		return fmt.Errorf("zmtp: sending a message of no frames: %w", ErrProtocol)
	}
	if max >= 0 {
		var n int64
		for _, f := range frames {
			n += int64(len(f))
		}
		if n > max {
			return fmt.Errorf("zmtp: message of %d octets over %d: %w", n, max, ErrTooLarge)
		}
	}
	return nil
}

// addrString formats an address that may be nil (an accepted unix socket
// connection has no remote address).
func addrString(a net.Addr) string {
	if a == nil {
		return "unknown"
	}
	return a.String()
}
