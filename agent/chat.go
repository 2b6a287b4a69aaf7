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
)

// A private chat through the agent ("chat.private"): the private group of
// a stream (openGroup), one Writer for the client's lines, one Reader per
// member's stream; what "zyre chat" does with a node of its own in secure
// mode (chat_private.go), with the agent's node.

// Bounds of a private chat, as the one-shot chat's.
const (
	chatMaxLine      = 64 << 10
	chatTick         = 100 * time.Millisecond
	chatRemovedAfter = 300 * time.Millisecond
)

type chatLine struct {
	peer uuid.UUID
	text string
	end  error
	done bool
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
	lines := make(chan chatLine, 64)
	readers := map[uuid.UUID]bool{}
	// cut: the members said to be cut off, and when; said to be back
	// once a message of theirs arrives after.
	cut := map[uuid.UUID]time.Time{}
	// The names of the members read, kept: one that left (its cut
	// stream said after its EXIT) is named still.
	names := map[uuid.UUID]string{}
	name := func(p uuid.UUID) string {
		if nm := n.PeerName(p); nm != "" {
			names[p] = nm
			return nm
		}
		return names[p]
	}
	tick := time.NewTicker(chatTick)
	defer tick.Stop()
	for {
		select {
		case l := <-in:
			if _, err := w.Write(append(l, '\n')); err != nil {
				return fmt.Errorf("chat: sending: %w", err)
			}
			if err := w.Flush(); err != nil {
				return fmt.Errorf("chat: sending: %w", err)
			}
			sc.msg(client.StreamMsg{Kind: client.ChatSent, Text: string(l)})
		case err := <-inEnd:
			if err != nil {
				return fmt.Errorf("chat: the client: %w", err)
			}
			if err := w.Close(); err != nil {
				return fmt.Errorf("chat: ending: %w", err)
			}
			return nil
		case m := <-lines:
			g.heardFrom(m.peer, time.Now())
			if m.done {
				readers[m.peer] = false // its stream ended: not opened again
				g.readers.Delete(m.peer)
				if m.end != nil && !errors.Is(m.end, zyregroup.ErrClosed) && ctx.Err() == nil {
					sc.msg(client.StreamMsg{Kind: client.ChatNotice, Peer: m.peer.String(), Name: name(m.peer), Text: ChatEndText(m.end)})
				}
				continue
			}
			if err := sc.msg(client.StreamMsg{Kind: client.ChatLine, Peer: m.peer.String(), Name: n.PeerName(m.peer), Text: m.text}); err != nil {
				return err
			}
		case <-tick.C:
			if k := len(g.Members()); k != members {
				members = k
				sc.msg(client.StreamMsg{Kind: client.ChatMembers, Members: k})
			}
			g.rejoined.Range(func(k, _ any) bool {
				p := k.(uuid.UUID)
				if running, ok := readers[p]; ok && !running {
					delete(readers, p) // its stream ended: it is back with a new one
				}
				g.rejoined.Delete(p)
				return true
			})
			for _, p := range g.Senders() {
				if _, ok := readers[p]; !ok && !g.isStreaming(p) {
					readers[p] = true
					name(p)
					g.readers.Store(p, new(atomic.Int64))
					go chatRead(ctx, g, p, lines)
				}
			}
			var removed error
			for p, running := range readers {
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
					others := 0
					for q, r := range readers {
						if r && q != p {
							others++
						}
					}
					if others == 0 {
						removed = err
						break
					}
					sc.msg(client.StreamMsg{Kind: client.ChatNotice, Peer: p.String(), Name: name(p), Text: err.Error()})
					cut[p] = time.Now()
				}
			}
			for p, at := range cut {
				if g.heardSince(p, at) {
					delete(cut, p)
					sc.msg(client.StreamMsg{Kind: client.ChatNotice, Peer: p.String(), Name: name(p), Text: BackText(name(p), p, req.Group)})
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
		return "left or stopped in the middle of the chat (its lines were cut)"
	}
	return err.Error()
}

// chatRead sends peer's lines to lines until its stream ends or ctx does.
func chatRead(ctx context.Context, g *streamGroup, peer uuid.UUID, lines chan<- chatLine) {
	end := func(err error) {
		select {
		case lines <- chatLine{peer: peer, end: err, done: true}:
		case <-ctx.Done():
		}
	}
	rd, err := g.NewReader(peer)
	if err != nil {
		end(err)
		return
	}
	defer rd.Close()
	// A sender that says it streams (markStreaming) closes rd: its
	// records are a file, not lines.
	g.chatReaders.Store(peer, rd)
	defer g.chatReaders.Delete(peer)
	if g.isStreaming(peer) {
		rd.Close()
	}
	stop := context.AfterFunc(ctx, func() { rd.Close() })
	defer stop()
	for {
		sc := bufio.NewScanner(rd)
		sc.Buffer(make([]byte, 4096), chatMaxLine)
		for sc.Scan() {
			if v, ok := g.readers.Load(peer); ok {
				v.(*atomic.Int64).Store(0)
			}
			select {
			case lines <- chatLine{peer: peer, text: sc.Text()}:
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
