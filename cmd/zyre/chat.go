package main

import (
	"bufio"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/zre"
)

// runChat implements "zyre chat": join a group (default "chat"), shout
// every line read from stdin to it, print every event. Lines read while
// the group has no peer wait (see pendingLines) and go out when one
// joins. It ends on EOF of stdin (once no line waits, or --wait after it)
// or when interrupted, and says goodbye.
func runChat(ctx context.Context, env *cliEnv, args []string) error {
	f := newNodeFlags(env, "chat")
	var a agentFlags
	a.register(f.fs)
	public := f.fs.Bool("public", false, "secure mode: shout in clear to every peer of the group (as C nodes do), not sealed to the trusted members")
	wait := f.fs.Duration("wait", 30*time.Second, "how long lines typed while nobody is in the group (no peer; in a private chat, no trusted member) wait after stdin ends before the chat fails")
	if err := f.parse(args); err != nil {
		return err
	}
	if len(f.groups) == 0 {
		f.groups = listFlag{"chat"}
	}
	if *wait <= 0 {
		return fmt.Errorf("%w: --wait %s: want a positive duration", errUsage, *wait)
	}
	c, _, err := a.nodeAgent(ctx, env, f, "public")
	if err != nil {
		return err
	}
	if c != nil {
		defer c.Close()
		if !*public {
			// Sealed to the trusted members when the agent's node is
			// secure, as the one-shot secure chat (chat_agent.go).
			info, err := c.Info(ctx)
			if err != nil {
				return err
			}
			if info.Secure && info.Home != "" {
				return chatAgentPrivate(ctx, env, c, info, a.path(env), f.groups[0], *wait, f.verbose)
			}
			if info.Secure {
				// An --ephemeral agent: no trust store to seal to.
				fmt.Fprintln(env.stderr, `zyre: warning: the agent runs an ephemeral identity without a trust store: this chat is not sealed, every peer of the group reads it`)
			}
		}
		return chatAgent(ctx, env, c, a.path(env), f.groups[0], f.verbose)
	}
	private := f.secure && !*public
	group := f.groups[0]
	rv := newRevocations()
	if private {
		// The private group joins the group itself.
		f.groups = f.groups[1:]
		f.onRevoked = rv.hook
	}
	n, err := f.startNode(ctx, env)
	if err != nil {
		return err
	}
	defer stopNode(n)
	if private {
		own := n.PublicKey()
		rv.own.Store(&own)
		return chatPrivate(ctx, env, f, n, rv, group, *wait)
	}
	if f.secure {
		fmt.Fprintf(env.stderr, "zyre: chatting in %s as %s %s: --public, every peer of the group reads it\n", group, n.Name(), uuidText(n.UUID()))
	} else {
		fmt.Fprintf(env.stderr, "zyre: chatting in %s in clear as %s %s (plain ZRE, no --secure): anyone on the network reads it\n", group, n.Name(), uuidText(n.UUID()))
	}

	return chatPublic(ctx, env, f, n, group, *wait)
}

// chatPublic shouts stdin's lines to group in clear; lines read while the
// group has no peer wait and go out, in order, when one joins.
func chatPublic(ctx context.Context, env *cliEnv, f *nodeFlags, n *zre.Node, group string, wait time.Duration) error {
	pending := pendingLines{stderr: env.stderr, group: group, who: "peer", wait: wait}
	defer pending.unsent()
	send := func(l string) error {
		if err := n.Shout(group, []byte(l)); err != nil {
			fmt.Fprintf(env.stderr, "zyre: %v\n", err)
			return nil // as a line typed to a present peer: told, and on
		}
		printShout(env, n.Name(), uuidText(n.UUID()), group, l)
		return nil
	}
	// flush sends the waiting lines once the group has a peer; done: stdin
	// ended and nothing waits any more.
	flush := func() (done bool) {
		done, _ = pending.release(pending.waiting() > 0 && len(n.PeersByGroup(group)) > 0, send)
		return done
	}
	refusals := &chatRefusals{verbose: f.verbose}
	lines, readDone := readLines(ctx, env)
	tick := time.NewTicker(chatTick)
	defer tick.Stop()
	for {
		select {
		case l := <-lines:
			pending.line(l, len(n.PeersByGroup(group)) > 0, send)
		case err := <-readDone:
			lines, readDone = nil, nil
			if done, err := pending.stdinEnd(err); done || err != nil {
				return err
			}
		case e, ok := <-n.Events():
			if !ok {
				return nil
			}
			f.showChatEvent(env, e, refusals)
			if j, ok := e.(*zre.Join); ok && j.Group == group && flush() {
				return nil
			}
		case <-tick.C:
			if flush() {
				return nil
			}
			if err := pending.expired(); err != nil {
				return err
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// printShout prints a line of the chat as the SHOUT event that carries it:
// from name (the peer's own: shown safe) with id (its UUID, as shown), in
// group.
func printShout(env *cliEnv, name, id, group, text string) {
	fmt.Fprintf(env.stdout, "SHOUT %s %s %s %s\n", safe(name), id, group, contentText([][]byte{[]byte(text)}))
}

// showChatEvent prints e, an event of the chat's node, if a chat shows
// it (chatEventShown).
func (f *nodeFlags) showChatEvent(env *cliEnv, e zre.Event, refusals *chatRefusals) {
	if chatEventShown(e.Type().String(), f.verbose) {
		if l, ok := f.chatEventText(e, refusals); ok {
			fmt.Fprintln(env.stdout, l)
		}
	}
}

// readLines reads stdin's lines in a goroutine of its own; readDone gets
// the end (nil at EOF). The goroutine may outlive the command while
// blocked on a terminal read; the process exits right after.
func readLines(ctx context.Context, env *cliEnv) (<-chan string, <-chan error) {
	lines := make(chan string)
	readDone := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(env.stdin)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
		readDone <- sc.Err()
	}()
	return lines, readDone
}

// chatAgent chats in group through the agent: one connection carries its
// events, c the shouts. The agent's node joins the group if it was not in
// it, and leaves it again at the end.
func chatAgent(ctx context.Context, env *cliEnv, c *client.Client, sock, group string, verbose bool) error {
	info, err := c.Info(ctx)
	if err != nil {
		return err
	}
	joined := !slices.Contains(info.Groups, group)
	if joined {
		if err := c.Join(ctx, group); err != nil {
			return err
		}
		defer func() {
			lctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
			defer cancel()
			c.Leave(lctx, group)
		}()
	}
	ev, present, err := subscribeChat(ctx, c, sock, group, verbose)
	if err != nil {
		return err
	}
	defer ev.Close()
	fmt.Fprintf(env.stderr, "zyre: chatting in %s through the agent %s %s\n", group, safe(info.Name), shortText(info.UUID))
	present.print(env)
	events, evErr := pumpEvents(ctx, ev)
	lines, readDone := readLines(ctx, env)
	for {
		select {
		case l := <-lines:
			if l == "" {
				continue
			}
			if err := c.Shout(ctx, group, []byte(l)); err != nil {
				fmt.Fprintf(env.stderr, "zyre: %v\n", err)
				continue
			}
			// Echoed, as the one-shot chat does.
			printShout(env, info.Name, shortText(info.UUID), group, l)
		case err := <-readDone:
			if err != nil {
				return fmt.Errorf("reading stdin: %w", err)
			}
			return nil
		case e := <-events:
			present.show(env, e)
		case err := <-evErr:
			return agentChatEnd(ctx, "the agent's events", err)
		case <-ctx.Done():
			return nil
		}
	}
}

// pumpEvents reads ev's events on a goroutine of its own until ctx ends
// or ev fails (its error on the second channel).
func pumpEvents(ctx context.Context, ev *client.Client) (<-chan client.Event, <-chan error) {
	return pump(ctx, func() (client.Event, error) { return ev.Next(ctx) })
}

// pump calls next on a goroutine of its own and hands what it returns to
// the first channel, until ctx ends or next fails (its error on the second
// channel).
func pump[T any](ctx context.Context, next func() (T, error)) (<-chan T, <-chan error) {
	out := make(chan T)
	outErr := make(chan error, 1)
	go func() {
		for {
			v, err := next()
			if err != nil {
				outErr <- err
				return
			}
			select {
			case out <- v:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, outErr
}
