package client

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
)

// Private streams through the agent ("stream.send", "stream.recv";
// spec/agent.md): the agent's node is the member of the private group and
// seals or opens the records; the stream's octets cross the socket. After
// the request line, both ways carry frames: one octet of kind, four of
// length (big-endian, at most MaxFrame), the payload.
const (
	FrameData = 'd' // octets of the stream
	FrameEnd  = 'e' // client -> agent: the stream ends here (empty)
	FrameMsg  = 'j' // a StreamMsg in JSON
)

// errAgent marks an error the agent sent ("agent: " and its text).
var errAgent = errors.New("agent: ")

// MaxFrame bounds a frame's payload.
const MaxFrame = 1 << 20

// StreamRequest asks the agent to send or receive a private stream.
type StreamRequest struct {
	ID      uint64 `json:"id"`
	Op      string `json:"op"` // "stream.send" or "stream.recv"
	Group   string `json:"group"`
	Trust   string `json:"trust,omitempty"` // verified (default), tofu or any
	Members int    `json:"members,omitempty"`
	WaitMS  int64  `json:"wait_ms,omitempty"` // for members, a sender, acknowledgements (0: 30 s)
	Chunk   int    `json:"chunk,omitempty"`
	Suite   string `json:"suite,omitempty"`
	Live    bool   `json:"live,omitempty"`
	// recv: the sender's name (default: the first), and a limit in octets.
	PeerName string `json:"peer_name,omitempty"`
	Limit    int64  `json:"limit,omitempty"`
}

// Kinds of StreamMsg.
const (
	StreamStreaming = "streaming" // send: Members hold our key; Suite
	StreamReading   = "reading"   // recv: reading the stream of Peer
	StreamNobody    = "nobody"    // recv: every member there streams nothing yet, or nobody has joined the group; send: nobody has joined the group; Text; the wait goes on
	StreamLate      = "late"      // recv: joined late: Octets sent before
	StreamGap       = "gap"       // recv: Octets (Messages) lost on the way; Text
	StreamResult    = "result"    // the end (below)
	StreamError     = "error"     // the end: Error
)

// StreamMsg is one message of the agent during a stream.
type StreamMsg struct {
	Kind     string `json:"kind"`
	Peer     string `json:"peer,omitempty"`
	Name     string `json:"name,omitempty"`
	Suite    string `json:"suite,omitempty"`
	Members  int    `json:"members,omitempty"`
	Octets   uint64 `json:"octets,omitempty"`
	Messages uint64 `json:"messages,omitempty"`
	Text     string `json:"text,omitempty"`
	Error    string `json:"error,omitempty"`
	// result of send: how many members it went to, how many acknowledged
	// the end; of recv: the stream ended, octets sent before we joined,
	// octets lost on the way, the end acknowledged to the sender.
	SentTo int    `json:"sent_to,omitempty"`
	Acked  int    `json:"acked,omitempty"`
	Ended  bool   `json:"ended,omitempty"`
	Late   uint64 `json:"late,omitempty"`
	Lost   uint64 `json:"lost,omitempty"`
	// Receivers, in the result (or error) of send: the members that
	// held our key when the stream started, and any other that
	// acknowledged the end.
	Receivers []StreamReceiver `json:"receivers,omitempty"`
}

// StreamReceiver is one receiver of a sent stream, in its result.
type StreamReceiver struct {
	Peer    string `json:"peer"` // UUID
	Name    string `json:"name,omitempty"`
	AtStart bool   `json:"at_start,omitempty"` // held our key when the stream started
	Acked   bool   `json:"acked,omitempty"`    // acknowledged the end
	// Removed says why the member no longer held our key before it
	// acknowledged the end (its key revoked, no longer trusted, it left
	// or stopped); "" while it holds it.
	Removed string `json:"removed,omitempty"`
	// Revoked: removed because its key is revoked or no longer
	// trusted; such a receiver owes no acknowledgement.
	Revoked bool `json:"revoked,omitempty"`
	// Refused: it refused our key (we are not trusted there): it read
	// nothing and owes no acknowledgement.
	Refused bool `json:"refused,omitempty"`
}

// WriteFrame writes one frame.
func WriteFrame(w io.Writer, kind byte, p []byte) error {
	if len(p) > MaxFrame {
		return fmt.Errorf("client: frame of %d octets, at most %d", len(p), MaxFrame)
	}
	var h [5]byte
	h[0] = kind
	binary.BigEndian.PutUint32(h[1:], uint32(len(p)))
	if len(p) == 0 {
		// No write of nothing: on a socket the agent closed after this
		// frame (the end), it would fail.
		_, err := w.Write(h[:])
		return err
	}
	// One writev where w is a connection.
	bufs := net.Buffers{h[:], p}
	_, err := bufs.WriteTo(w)
	return err
}

// WriteMsg writes a StreamMsg frame.
func WriteMsg(w io.Writer, m StreamMsg) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return WriteFrame(w, FrameMsg, b)
}

// ReadFrame reads one frame into buf (grown as needed) and returns its
// kind and payload.
func ReadFrame(r *bufio.Reader, buf []byte) (byte, []byte, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[1:])
	switch {
	case n > MaxFrame:
		return 0, nil, fmt.Errorf("client: frame of %d octets, at most %d", n, MaxFrame)
	case h[0] != FrameData && h[0] != FrameEnd && h[0] != FrameMsg:
		return 0, nil, fmt.Errorf("client: frame of unknown kind %q", h[0])
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, fmt.Errorf("client: a cut frame: %w", err)
	}
	return h[0], buf, nil
}

// StreamSender sends a stream through the agent (StreamSend).
type StreamSender struct {
	c    *Client
	stop func() bool
	ctx  context.Context
}

// startStream sends req and returns the agent's first message; the
// connection then carries frames only.
func (c *Client) startStream(ctx context.Context, req *StreamRequest) (StreamMsg, func() bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.subd {
		return StreamMsg{}, nil, errors.New("client: the connection carries events or a transfer already")
	}
	c.subd = true
	c.next++
	req.ID = c.next
	// The connection is this transfer's: ending ctx closes it, which
	// ends the transfer in the agent too.
	stop := context.AfterFunc(ctx, func() { c.conn.Close() })
	if err := c.writeJSON(req); err != nil {
		return StreamMsg{}, stop, c.ctxErr(ctx, fmt.Errorf("client: %s: %w", req.Op, err))
	}
	m, err := c.nextMsg(ctx)
	return m, stop, err
}

// nextMsg reads frames up to the next message (data frames are an error).
func (c *Client) nextMsg(ctx context.Context) (StreamMsg, error) {
	kind, p, err := ReadFrame(c.rd, nil)
	if err != nil {
		return StreamMsg{}, c.ctxErr(ctx, fmt.Errorf("client: stream: %w", err))
	}
	if kind != FrameMsg {
		return StreamMsg{}, fmt.Errorf("client: stream: a frame %q where a message was due", kind)
	}
	return decodeMsg(p)
}

func decodeMsg(p []byte) (StreamMsg, error) {
	var m StreamMsg
	if err := json.Unmarshal(p, &m); err != nil {
		return m, fmt.Errorf("client: stream: bad message: %w", err)
	}
	if m.Kind == StreamError {
		return m, fmt.Errorf("%w%s", errAgent, m.Error)
	}
	return m, nil
}

// StreamSend asks the agent to open the private stream of req.Group and
// returns once the members are there (the "streaming" message). Write the
// stream to the StreamSender and Close it to end it; ending ctx, or
// Abort, cuts it (receivers see it cut, not ended). The connection
// carries nothing else.
func (c *Client) StreamSend(ctx context.Context, req StreamRequest) (*StreamSender, StreamMsg, error) {
	return c.StreamSendNotify(ctx, req, nil)
}

// StreamSendNotify is StreamSend with on, when not nil, called with each
// notice of the agent while it waits for members (StreamNobody: nobody
// has joined the group), on the calling goroutine.
func (c *Client) StreamSendNotify(ctx context.Context, req StreamRequest, on func(StreamMsg)) (*StreamSender, StreamMsg, error) {
	req.Op = "stream.send"
	m, stop, err := c.startStream(ctx, &req)
	for err == nil && m.Kind == StreamNobody {
		if on != nil {
			on(m)
		}
		m, err = c.nextMsg(ctx)
	}
	if err != nil {
		if stop != nil {
			stop()
		}
		return nil, m, err
	}
	return &StreamSender{c: c, stop: stop, ctx: ctx}, m, nil
}

// Write sends p as data frames.
func (s *StreamSender) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), MaxFrame)
		if err := WriteFrame(s.c.conn, FrameData, p[:k]); err != nil {
			return n, s.agentErr(err)
		}
		n += k
		p = p[k:]
	}
	return n, nil
}

// Close ends the stream and waits for the agent's result (the members'
// acknowledgements of the end, unless live).
func (s *StreamSender) Close() (StreamMsg, error) {
	defer s.stop()
	if err := WriteFrame(s.c.conn, FrameEnd, nil); err != nil {
		return StreamMsg{}, s.agentErr(err)
	}
	return s.c.nextMsg(s.ctx)
}

// agentErr is the error of a failed write: the agent's word on why it
// closed the connection, when it said one.
func (s *StreamSender) agentErr(err error) error {
	if s.ctx.Err() == nil {
		if _, merr := s.c.nextMsg(s.ctx); merr != nil && errors.Is(merr, errAgent) {
			return merr
		}
	}
	return s.c.ctxErr(s.ctx, fmt.Errorf("client: stream: %w", err))
}

// Abort cuts the stream: the connection closes without its end.
func (s *StreamSender) Abort() {
	s.stop()
	s.c.conn.Close()
}

// StreamRecv asks the agent to read a member's private stream in
// req.Group: data goes to out, messages to on (on the caller's
// goroutine), until the result.
func (c *Client) StreamRecv(ctx context.Context, req StreamRequest, out io.Writer, on func(StreamMsg)) (StreamMsg, error) {
	req.Op = "stream.recv"
	m, stop, err := c.startStream(ctx, &req)
	if stop != nil {
		defer stop()
	}
	var buf []byte
	for {
		if err != nil {
			return m, err
		}
		if m.Kind == StreamResult {
			return m, nil
		}
		on(m)
		for {
			var kind byte
			var p []byte
			kind, p, err = ReadFrame(c.rd, buf)
			if err != nil {
				return StreamMsg{}, c.ctxErr(ctx, fmt.Errorf("client: stream: %w", err))
			}
			if kind == FrameMsg {
				m, err = decodeMsg(p)
				break
			}
			if kind != FrameData {
				return StreamMsg{}, fmt.Errorf("client: stream: a frame %q from the agent", kind)
			}
			buf = p
			if _, werr := out.Write(p); werr != nil {
				return StreamMsg{}, fmt.Errorf("stream: write: %w", werr)
			}
		}
	}
}
