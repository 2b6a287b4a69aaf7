package client

import (
	"context"
	"fmt"
)

// A private chat through the agent ("chat.private"; spec/agent.md): the
// agent's node is the member of the private group, as for a stream; each
// line the client sends is sealed to the trusted members, each line of a
// member's stream comes back. Frames as for streams: client -> agent
// FrameData (one line, without its newline) and FrameEnd (the end of our
// stream); agent -> client FrameMsg only.

// Kinds of StreamMsg in a private chat.
const (
	ChatChatting = "chatting" // the first: Members hold our key
	ChatMembers  = "members"  // the number of members holding our key changed: Members
	ChatLine     = "line"     // a member's line: Peer, Name, Text
	ChatSent     = "sent"     // our line Text went out
	ChatNotice   = "notice"   // Text: a member's stream ended with an error
	// ChatRemoved ends the chat: Text says who removed this device.
	ChatRemoved = "removed"
)

// ChatRequest asks for a private chat in Group.
type ChatRequest struct {
	ID    uint64 `json:"id"`
	Op    string `json:"op"` // "chat.private"
	Group string `json:"group"`
}

// PrivateChat is a private chat through the agent. Send and End may be
// called on one goroutine while Next runs on another.
type PrivateChat struct {
	c    *Client
	ctx  context.Context
	stop func() bool
}

// ChatPrivate opens a private chat in group; it returns with the agent's
// "chatting" message. The connection carries nothing else; ending ctx
// closes it, which cuts our stream for the members.
func (c *Client) ChatPrivate(ctx context.Context, group string) (*PrivateChat, StreamMsg, error) {
	req := ChatRequest{Op: "chat.private", Group: group}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.subd {
		return nil, StreamMsg{}, fmt.Errorf("client: the connection carries events or a transfer already")
	}
	c.subd = true
	c.next++
	req.ID = c.next
	stop := context.AfterFunc(ctx, func() { c.conn.Close() })
	if err := c.writeJSON(req); err != nil {
		stop()
		return nil, StreamMsg{}, c.ctxErr(ctx, fmt.Errorf("client: chat: %w", err))
	}
	m, err := c.nextMsg(ctx)
	if err != nil {
		stop()
		return nil, m, err
	}
	return &PrivateChat{c: c, ctx: ctx, stop: stop}, m, nil
}

// Send seals line to the members (a "sent" message follows).
func (p *PrivateChat) Send(line string) error {
	if err := WriteFrame(p.c.conn, FrameData, []byte(line)); err != nil {
		return p.c.ctxErr(p.ctx, fmt.Errorf("client: chat: %w", err))
	}
	return nil
}

// End ends our stream (a "result" message follows).
func (p *PrivateChat) End() error {
	if err := WriteFrame(p.c.conn, FrameEnd, nil); err != nil {
		return p.c.ctxErr(p.ctx, fmt.Errorf("client: chat: %w", err))
	}
	return nil
}

// Next returns the agent's next message; "error" is returned as an error.
func (p *PrivateChat) Next() (StreamMsg, error) { return p.c.nextMsg(p.ctx) }

// Close closes the connection.
func (p *PrivateChat) Close() error {
	p.stop()
	return p.c.conn.Close()
}
