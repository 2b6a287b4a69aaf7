package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/zyre-go/zyre/agent"
	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/privgroup/zyregroup"
	"github.com/zyre-go/zyre/zre"
)

// chatAgentPrivate is the private chat through the agent: the agent's
// node seals our lines to the trusted members of group and opens theirs
// (op chat.private); a second connection carries the node's other events,
// printed as the public chat through the agent prints them. Lines typed
// while no trusted member holds our key wait, as in the one-shot chat.
func chatAgentPrivate(ctx context.Context, env *cliEnv, c *client.Client, info client.Info, sock, group string, wait time.Duration, verbose bool) error {
	// Before c carries the chat: the peers there already.
	ev, present, err := subscribeChat(ctx, c, sock, group, verbose)
	if err != nil {
		return err
	}
	defer ev.Close()
	pc, first, err := c.ChatPrivate(ctx, group)
	if err != nil {
		return err
	}
	defer pc.Close()
	fmt.Fprintf(env.stderr, "zyre: private chat in %s through the agent %s %s: sealed to the trusted members (verified or introduced; --public for all)\n",
		group, safe(info.Name), shortText(info.UUID))
	present.print(env)
	events, evErr := pumpEvents(ctx, ev)
	msgs, msgErr := pump(ctx, pc.Next)
	members := first.Members
	pending := pendingLines{stderr: env.stderr, group: group, who: "trusted member", wait: wait}
	defer pending.unsent()
	lines, readDone := readLines(ctx, env)
	ending := false
	end := func() error {
		ending = true
		return pc.End()
	}
	tick := time.NewTicker(chatTick)
	defer tick.Stop()
	for {
		select {
		case l := <-lines:
			if err := pending.line(l, members > 0, pc.Send); err != nil {
				return err
			}
		case err := <-readDone:
			lines, readDone = nil, nil
			done, err := pending.stdinEnd(err)
			if err != nil {
				return err
			}
			if done {
				if err := end(); err != nil {
					return err
				}
			}
		case m := <-msgs:
			switch m.Kind {
			case client.ChatSent:
				printShout(env, info.Name, shortText(info.UUID), group, m.Text)
			case client.ChatLine:
				printShout(env, m.Name, peerShort(m.Peer), group, m.Text)
			case client.ChatNotice:
				fmt.Fprintf(env.stderr, "zyre: %s %s: %s\n", safe(m.Name), peerShort(m.Peer), terminalText(m.Text))
			case client.ChatMembers:
				members = m.Members
				if done, err := pending.release(members > 0 && !ending, pc.Send); err != nil {
					return err
				} else if done {
					if err := end(); err != nil {
						return err
					}
				}
			case client.ChatRemoved:
				return fmt.Errorf("chat: %s", terminalText(m.Text))
			case client.StreamResult:
				return nil
			}
		case err := <-msgErr:
			return agentChatEnd(ctx, "chat", err)
		case e := <-events:
			if !privateNoise(e, group) {
				present.show(env, e)
			}
		case err := <-evErr:
			return agentChatEnd(ctx, "the agent's events", err)
		case <-tick.C:
			if !ending {
				if err := pending.expired(); err != nil {
					return err
				}
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// errAgentStoppedChat ends a chat through the agent whose agent stopped.
var errAgentStoppedChat = errors.New("the agent stopped; chat ended")

// agentChatEnd is the end of a chat through the agent whose reading of
// what (its events, its chat) failed with err: none when the chat was
// interrupted, errAgentStoppedChat when the agent went away.
func agentChatEnd(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	if agentGone(err) {
		return errAgentStoppedChat
	}
	return fmt.Errorf("%s: %w", what, err)
}

// agentGone reports whether err, from reading the agent's socket, is the
// agent going away (it stopped, or was killed): the end of the
// connection, said as such rather than "EOF".
// An agent that stops says so on the way (agent.ErrStopped).
func agentGone(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) || strings.HasSuffix(err.Error(), agent.ErrStopped.Error())
}

// privateNoise reports whether an event of the agent is the private
// group's own traffic (sealed records, sender keys, acknowledgements),
// which the one-shot chat does not print either.
func privateNoise(e client.Event, group string) bool {
	switch e.Type {
	case zre.EventShout.String():
		return e.Group == group
	case zre.EventWhisper.String():
		return len(e.Content) > 0 && (string(e.Content[0]) == zyregroup.WhisperPrefix || strings.HasPrefix(string(e.Content[0]), "zyre-"))
	}
	return false
}

// chatPresent is what a chat through the agent has shown of the peers:
// the one-shot chat's node meets every peer anew, and shows an ENTER for
// each and a JOIN for those in the group; the agent's node met them
// before the chat began. The chat's goroutine owns it.
type chatPresent struct {
	group    string
	verbose  bool
	refusals *chatRefusals
	members  []client.Member // at the start, to print
	entered  map[string]bool // UUIDs shown entered, not yet exited
	joined   map[string]bool // UUIDs shown in the group, not yet gone
}

// subscribeChat opens the second connection of a chat through the agent
// (at sock), which carries the events of its node, and asks c for the
// peers there already. The caller closes ev.
func subscribeChat(ctx context.Context, c *client.Client, sock, group string, verbose bool) (ev *client.Client, present *chatPresent, err error) {
	ev, err = client.Dial(ctx, sock)
	if err != nil {
		return nil, nil, err
	}
	if err := ev.Subscribe(ctx); err != nil {
		ev.Close()
		return nil, nil, err
	}
	present, err = agentPresent(ctx, c, group, verbose)
	if err != nil {
		ev.Close()
		return nil, nil, err
	}
	return ev, present, nil
}

// agentPresent asks the agent for the peers its node knows. Call it after
// subscribing: an event that races with the answer is then shown once
// (shows), not lost.
func agentPresent(ctx context.Context, c *client.Client, group string, verbose bool) (*chatPresent, error) {
	ms, err := c.Members(ctx)
	if err != nil {
		return nil, fmt.Errorf("the agent's members: %w", err)
	}
	p := &chatPresent{group: group, verbose: verbose, refusals: &chatRefusals{verbose: verbose}, members: ms, entered: map[string]bool{}, joined: map[string]bool{}}
	for _, m := range ms {
		p.entered[m.UUID] = true
		if slices.Contains(m.Groups, group) {
			p.joined[m.UUID] = true
		}
	}
	return p, nil
}

// print shows the peers of the start as the one-shot chat's first lines:
// ENTER for each, then JOIN for those in the group.
func (p *chatPresent) print(env *cliEnv) {
	for _, m := range p.members {
		fmt.Fprintln(env.stdout, agentEventLine(client.Event{Type: zre.EventEnter.String(), Peer: m.UUID, Name: m.Name, Addr: m.Address}))
	}
	for _, m := range p.members {
		if p.joined[m.UUID] {
			fmt.Fprintln(env.stdout, agentEventLine(client.Event{Type: zre.EventJoin.String(), Peer: m.UUID, Name: m.Name, Group: p.group}))
		}
	}
	p.members = nil
}

// show prints e, an event of the agent's node, as the one-shot chat in
// the group would (shows).
func (p *chatPresent) show(env *cliEnv, e client.Event) {
	if p.shows(e) {
		if l, ok := agentChatLine(e, p.refusals); ok {
			fmt.Fprintln(env.stdout, l)
		}
	}
}

// shows reports whether the chat prints e, an event of the agent's node,
// as the one-shot chat in the group would: not an ENTER or JOIN shown at
// the start already, not a SHOUT of another group (the one-shot chat's
// node is in the group only), and presence (EVASIVE, SILENT) only when
// verbose.
func (p *chatPresent) shows(e client.Event) bool {
	group := p.group
	switch e.Type {
	case zre.EventEnter.String():
		if p.entered[e.Peer] {
			return false
		}
		p.entered[e.Peer] = true
	case zre.EventExit.String():
		delete(p.entered, e.Peer)
		delete(p.joined, e.Peer)
	case zre.EventJoin.String():
		if e.Group == group {
			if p.joined[e.Peer] {
				return false
			}
			p.joined[e.Peer] = true
		}
	case zre.EventLeave.String():
		if e.Group == group {
			delete(p.joined, e.Peer)
		}
	case zre.EventShout.String():
		return e.Group == group
	}
	return chatEventShown(e.Type, p.verbose)
}

// chatEventShown reports whether a chat prints an event of type typ on
// stdout: presence changes (EVASIVE, SILENT) only with --verbose; a chat
// is for the conversation and who is in it ("zyre members" and "zyre
// monitor" show presence).
func chatEventShown(typ string, verbose bool) bool {
	return verbose || (typ != zre.EventEvasive.String() && typ != zre.EventSilent.String())
}
