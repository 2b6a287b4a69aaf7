package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/privgroup"
	"github.com/zyre-go/zyre/privgroup/zyregroup"
	"github.com/zyre-go/zyre/zre"
)

// A private chat through the agent ("chat.private"): the private group of
// a stream (openGroup), one Writer for the client's lines, one Reader per
// member's stream; what "zyre chat" does with a node of its own in secure
// mode (chat_private.go), with the agent's node.

// Bounds of a private chat, as the one-shot chat's; chatMaxLine, a
// received line's, also the one-shot chat's (ReadChat).
const (
	chatMaxLine      = 64 << 10
	chatTick         = 100 * time.Millisecond
	chatRemovedAfter = 300 * time.Millisecond
)

// ChatMsg is a line of a member's stream in a private chat, or (Done) the
// end of that stream: End is nil at its end, else why it ended
// (ChatEndText says it).
type ChatMsg struct {
	Peer uuid.UUID
	Text string
	End  error
	Done bool
}

func (s *Server) serveChat(ctx context.Context, c *net.UnixConn, rd *bufio.Reader, line []byte) {
	sc := &streamConn{w: bufio.NewWriter(c)}
	var req client.ChatRequest
	if err := json.Unmarshal(line, &req); err != nil {
		sc.msg(client.StreamMsg{Kind: client.StreamError, Error: "bad request: " + err.Error()})
		return
	}
	if err := s.chat(ctx, rd, sc, &req); err != nil {
		sc.msg(client.StreamMsg{Kind: client.StreamError, Error: stoppedText(ctx, err)})
		return
	}
	sc.msg(client.StreamMsg{Kind: client.StreamResult})
}

func (s *Server) chat(ctx context.Context, rd *bufio.Reader, sc *streamConn, req *client.ChatRequest) error {
	n := s.cfg.Node
	switch {
	case !n.Secure() || s.cfg.Secret.IsZero() || s.cfg.Trust == nil:
		return errors.New("the agent's node is in plain mode: a private chat needs a secure node and its trust store")
	case req.Group == "" || len(req.Group) > privgroup.MaxGroupLen:
		return fmt.Errorf("group name of %d octets, want 1..%d", len(req.Group), privgroup.MaxGroupLen)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, closeGroup, err := s.openGroup(ctx, req.Group, zyregroup.Options{Secret: s.cfg.Secret, Trust: s.cfg.Trust, Logger: s.log}, "chat", "verified")
	if err != nil {
		return err
	}
	defer closeGroup()
	g.chat.Store(true)
	defer g.chat.Store(false)
	w, err := g.NewWriter()
	if err != nil {
		return err
	}
	members := len(g.Members())
	if err := sc.msg(client.StreamMsg{Kind: client.ChatChatting, Members: members}); err != nil {
		return err
	}
	// The client's frames: lines, then the end; its hanging up ends the
	// chat (our stream cut, not ended).
	in := make(chan []byte)
	inEnd := make(chan error, 1)
	go func() {
		for {
			kind, p, err := client.ReadFrame(rd, nil)
			if err == nil && kind == client.FrameEnd {
				inEnd <- nil
				return
			}
			if err == nil && kind != client.FrameData {
				err = fmt.Errorf("a frame %q from the client", kind)
			}
			if err == nil && len(p) > chatMaxLine {
				err = fmt.Errorf("a line of %d octets, at most %d", len(p), chatMaxLine)
			}
			if err != nil {
				inEnd <- err
				return
			}
			select {
			case in <- p:
			case <-ctx.Done():
				return
			}
		}
	}()
	lines := make(chan ChatMsg, 64)
	readers := NewChatReaders(n)
	// cut: the members said to be cut off, and when; said to be back
	// once a message of theirs arrives after.
	cut := map[uuid.UUID]time.Time{}
	tick := time.NewTicker(chatTick)
	defer tick.Stop()
	for {
		select {
		case l := <-in:
			if err := SendChatLine(w, string(l)); err != nil {
				return err
			}
			sc.msg(client.StreamMsg{Kind: client.ChatSent, Text: string(l)})
		case err := <-inEnd:
			if err != nil {
				return fmt.Errorf("chat: the client: %w", err)
			}
			return EndChat(w)
		case m := <-lines:
			g.heardFrom(m.Peer, time.Now())
			if m.Done {
				readers.Ended(m.Peer)
				g.readers.Delete(m.Peer)
				if m.End != nil && !errors.Is(m.End, zyregroup.ErrClosed) && ctx.Err() == nil {
					sc.msg(client.StreamMsg{Kind: client.ChatNotice, Peer: m.Peer.String(), Name: readers.Name(m.Peer), Text: ChatEndText(m.End)})
				}
				continue
			}
			if err := sc.msg(client.StreamMsg{Kind: client.ChatLine, Peer: m.Peer.String(), Name: n.PeerName(m.Peer), Text: m.Text}); err != nil {
				return err
			}
		case <-tick.C:
			if k := len(g.Members()); k != members {
				members = k
				sc.msg(client.StreamMsg{Kind: client.ChatMembers, Members: k})
			}
			g.rejoined.Range(func(k, _ any) bool {
				p := k.(uuid.UUID)
				readers.Rejoined(p)
				g.rejoined.Delete(p)
				return true
			})
			for _, p := range g.Senders() {
				if readers.New(p) && !g.isStreaming(p) {
					readers.Start(p)
					g.readers.Store(p, new(atomic.Int64))
					go chatRead(ctx, g, p, lines)
				}
			}
			var removed error
			for p, running := range readers.Running {
				if !running {
					continue
				}
				if err := g.cutOff(p, n.PeerName(p), req.Group, n.PeerBacklog(p)); err != nil {
					if _, ok := g.removed.Load(p); ok {
						removed = err
						break
					}
					// Cut off: an error only when nobody else is read.
					g.probed.Delete(p)
					if readers.Others(p) == 0 {
						removed = err
						break
					}
					sc.msg(client.StreamMsg{Kind: client.ChatNotice, Peer: p.String(), Name: readers.Name(p), Text: err.Error()})
					cut[p] = time.Now()
				}
			}
			for p, at := range cut {
				if g.heardSince(p, at) {
					delete(cut, p)
					sc.msg(client.StreamMsg{Kind: client.ChatNotice, Peer: p.String(), Name: readers.Name(p), Text: BackText(readers.Name(p), p, req.Group)})
				}
			}
			g.readers.Range(func(k, v any) bool {
				if t := v.(*atomic.Int64).Load(); t != 0 && time.Since(time.Unix(0, t)) >= chatRemovedAfter {
					p := k.(uuid.UUID)
					removed = fmt.Errorf("%s %s no longer gives this device its key: removed from the private group %q (revoked?)",
						n.PeerName(p), p.String()[:8], req.Group)
					return false
				}
				return true
			})
			if removed != nil {
				sc.msg(client.StreamMsg{Kind: client.ChatRemoved, Text: removed.Error()})
				return removed
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ErrStopped is the word of an agent that stops to the clients of its
// chats and streams: "the agent stopped", not "context canceled".
var ErrStopped = errors.New("the agent stopped")

// stoppedText is the error text for a client of an op that ended with
// err: the agent's stopping (ctx, the connection's, ended) in words.
func stoppedText(ctx context.Context, err error) string {
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return ErrStopped.Error()
	}
	return err.Error()
}

// ChatEndText is what a private chat says of a member whose stream of
// lines ended with err (not zyregroup.ErrClosed): a stream cut before its
// end (io.ErrUnexpectedEOF: the member stopped, or was cut off) in words,
// not "unexpected EOF".
func ChatEndText(err error) string {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "left the chat without ending it (its node stopped, or the network dropped it)"
	}
	if errors.Is(err, zyregroup.ErrRemoved) {
		return "removed this device from the private group: it no longer trusts this device's key"
	}
	return err.Error()
}

// ChatReaders are the members whose streams a private chat reads, and
// their names. The chat's goroutine owns it.
type ChatReaders struct {
	n *zre.Node
	// Running holds the members whose Reader was opened: true while it
	// runs, false once their stream ended (not opened again, unless
	// Rejoined).
	Running map[uuid.UUID]bool
	// names of the members read, kept: one that left (its cut stream
	// said after its EXIT) is named still.
	names map[uuid.UUID]string
}

// NewChatReaders returns the ChatReaders of a chat of n's, none read yet.
func NewChatReaders(n *zre.Node) *ChatReaders {
	return &ChatReaders{n: n, Running: map[uuid.UUID]bool{}, names: map[uuid.UUID]string{}}
}

// New reports whether p's stream is not read and was not read to its end.
func (r *ChatReaders) New(p uuid.UUID) bool {
	_, ok := r.Running[p]
	return !ok
}

// Start notes that p's stream is read from now on, and p's name.
func (r *ChatReaders) Start(p uuid.UUID) {
	r.Running[p] = true
	r.Name(p)
}

// Ended notes that p's stream ended: it is not opened again.
func (r *ChatReaders) Ended(p uuid.UUID) { r.Running[p] = false }

// Rejoined notes that p joined the group again: a stream of it that ended
// was its last, and its new one is read.
func (r *ChatReaders) Rejoined(p uuid.UUID) {
	if running, ok := r.Running[p]; ok && !running {
		delete(r.Running, p)
	}
}

// Others is the number of members but p whose streams are read.
func (r *ChatReaders) Others(p uuid.UUID) int {
	others := 0
	for q, running := range r.Running {
		if running && q != p {
			others++
		}
	}
	return others
}

// Name is p's name, kept from when it was known: one that left is named
// still.
func (r *ChatReaders) Name(p uuid.UUID) string {
	if nm := r.n.PeerName(p); nm != "" {
		r.names[p] = nm
		return nm
	}
	return r.names[p]
}

// SendChatLine seals l to the members as the next line of our stream w.
func SendChatLine(w *zyregroup.Writer, l string) error {
	if _, err := io.WriteString(w, l+"\n"); err != nil {
		return fmt.Errorf("chat: sending: %w", err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("chat: sending: %w", err)
	}
	return nil
}

// EndChat ends our stream w, so that the members see its end.
func EndChat(w *zyregroup.Writer) error {
	if err := w.Close(); err != nil {
		return fmt.Errorf("chat: ending: %w", err)
	}
	return nil
}

// chatRead sends peer's lines to lines until its stream ends or ctx does.
func chatRead(ctx context.Context, g *streamGroup, peer uuid.UUID, lines chan<- ChatMsg) {
	rd, err := g.NewReader(peer)
	if err == nil {
		// A sender that says it streams (markStreaming) closes rd: its
		// records are a file, not lines.
		g.chatReaders.Store(peer, rd)
		defer g.chatReaders.Delete(peer)
		if g.isStreaming(peer) {
			rd.Close()
		}
	}
	ReadChat(ctx, peer, rd, err, lines, func() {
		if v, ok := g.readers.Load(peer); ok {
			v.(*atomic.Int64).Store(0)
		}
	})
}

// ReadChat sends the lines of peer's stream in a private chat to out, each
// of at most 64 KiB (chatMaxLine) and read past a gap (joined late, or
// lines lost on the way), then its end (Done), until the stream or ctx
// ends. rd is peer's Reader, or err why it could not be opened: then its
// end, at once. ReadChat closes rd, also when ctx ends. onLine, if not
// nil, is called before each line is sent. It blocks: run it on a
// goroutine of its own.
func ReadChat(ctx context.Context, peer uuid.UUID, rd *zyregroup.Reader, err error, out chan<- ChatMsg, onLine func()) {
	end := func(err error) {
		select {
		case out <- ChatMsg{Peer: peer, End: err, Done: true}:
		case <-ctx.Done():
		}
	}
	if err != nil {
		end(err)
		return
	}
	defer rd.Close()
	stop := context.AfterFunc(ctx, func() { rd.Close() })
	defer stop()
	for {
		sc := bufio.NewScanner(rd)
		sc.Buffer(make([]byte, 4096), chatMaxLine)
		for sc.Scan() {
			if onLine != nil {
				onLine()
			}
			select {
			case out <- ChatMsg{Peer: peer, Text: sc.Text()}:
			case <-ctx.Done():
				return
			}
		}
		var gap *privgroup.GapError
		if err := sc.Err(); errors.As(err, &gap) {
			continue // joined late or lost on the way: the next lines still come
		} else {
			end(err)
			return
		}
	}
}
