package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/agent"
	"github.com/zyre-go/zyre/privgroup/zyregroup"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

// Bounds of the lines a chat keeps while nobody is there to read them
// (a received line's: agent.ReadChat).
const (
	chatPendingLines = 100
	chatPendingBytes = 64 << 10
	// chatTick is how often the chat looks at the group's members and
	// senders.
	chatTick = 100 * time.Millisecond
	// chatRemovedAfter: records of a sender we read that stay opaque this
	// long mean it rotated its key without giving it to us.
	chatRemovedAfter = 300 * time.Millisecond
)

// privateChat is "zyre chat" in secure mode: the lines are sealed to the
// trusted members of the group (verified or introduced in the trust
// store) as one private-group stream per member. The command's goroutine
// owns every field; each member's Reader has a goroutine of its own.
type privateChat struct {
	env   *cliEnv
	f     *nodeFlags
	n     *zre.Node
	g     *zyregroup.Group
	rv    *revocations
	group string
	wait  time.Duration

	msgs    chan agent.ChatMsg
	readers *agent.ChatReaders
	// rds are the running Readers; streaming the senders that said they
	// stream (a "zyre stream send"): their records are a file, not lines,
	// and are not read.
	rds       map[uuid.UUID]*zyregroup.Reader
	streaming map[uuid.UUID]bool
	opaque    map[uuid.UUID]time.Time // first opaque record of a sender we read
	probed    map[uuid.UUID]time.Time // probes of silent senders, unanswered
	pending   pendingLines
}

// chatPrivate runs the private chat on n's events until stdin ends.
func chatPrivate(ctx context.Context, env *cliEnv, f *nodeFlags, n *zre.Node, rv *revocations, group string, wait time.Duration) error {
	c := &privateChat{env: env, f: f, n: n, rv: rv, group: group, wait: wait,
		msgs: make(chan agent.ChatMsg, 64), readers: agent.NewChatReaders(n), rds: map[uuid.UUID]*zyregroup.Reader{}, streaming: map[uuid.UUID]bool{}, opaque: map[uuid.UUID]time.Time{}, probed: map[uuid.UUID]time.Time{},
		pending: pendingLines{stderr: env.stderr, group: group, who: "trusted member", wait: wait}}
	defer c.pending.unsent()
	opts := zyregroup.Options{Secret: f.secret, Trust: f.trustStore, Logger: f.libLog(env, n),
		OnOpaque: c.onOpaque}
	trusted := agent.TrustDecision(&opts)
	if f.trustStore == nil {
		return withHint(fmt.Errorf("chat: a private chat needs the trust store of an identity (not --ephemeral)"),
			"pair the devices (zyre pair), or use --public to chat in clear with every peer of the group")
	}
	g, err := zyregroup.Attach(n, group, opts)
	if err != nil {
		return err
	}
	defer g.Close()
	c.g = g
	tell := func(rs []trust.Record) { tellRemoved(n, group, rs) }
	rv.before.Store(&tell)
	rv.g.Store(g)
	defer rv.g.Store(nil)
	w, err := g.NewWriter()
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stderr, "zyre: private chat in %s as %s %s: sealed to the trusted members (verified or introduced; --public for all)\n",
		group, n.Name(), uuidText(n.UUID()))
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watch := newMemberWatch(n, g, f.trustStore)
	lines, readDone := readLines(rctx, env)
	refusals := &chatRefusals{verbose: f.verbose}
	tick := time.NewTicker(chatTick)
	defer tick.Stop()
	send := func(l string) error { return c.send(w, l) }
	for {
		select {
		case l := <-lines:
			if err := c.pending.line(l, len(g.Members()) > 0, send); err != nil {
				return err
			}
		case err := <-readDone:
			lines, readDone = nil, nil
			done, err := c.pending.stdinEnd(err)
			if err != nil {
				return err
			}
			if done {
				return agent.EndChat(w)
			}
		case e, ok := <-n.Events():
			if !ok {
				return errors.New("chat: the node stopped")
			}
			if g.Handle(e) {
				continue
			}
			if w, ok := e.(*zre.Whisper); ok {
				if why, ok := removedNotice(w, group); ok && c.readers.Running[w.Peer] {
					return fmt.Errorf("chat: %s %s removed this device from the private group %q: %s", safe(n.PeerName(w.Peer)), uuidText(w.Peer), group, safe(why))
				}
			}
			if w, ok := e.(*zre.Whisper); ok && streamNotice(w, group, agent.StreamingFrame) && agent.RefuseUntrusted(n, group, w.Peer, trusted) {
				continue // we refused its key: we read nothing of it
			}
			if w, ok := e.(*zre.Whisper); ok && streamNotice(w, group, agent.StreamingFrame) {
				// A stream, not a chat: its records (which follow this
				// notice) are not lines.
				c.streaming[w.Peer] = true
				n.Whisper(w.Peer, []byte(streamAck), []byte(agent.ChattingFrame), []byte(group)) // owes no acknowledgement
				if rd := c.rds[w.Peer]; rd != nil {
					rd.Close()
				}
				continue
			}
			if w, ok := e.(*zre.Whisper); ok && streamNotice(w, group, agent.QueryFrame) {
				// A receiver looks for a stream: a chat is none.
				agent.AnswerQuery(n, g, w.Peer, false, true)
				continue
			}
			if w, ok := e.(*zre.Whisper); ok && probeMsg(w, group, false) {
				sendProbe(n, w.Peer, group, true)
				continue
			}
			if w, ok := e.(*zre.Whisper); ok && probeMsg(w, group, true) {
				delete(c.probed, w.Peer)
				continue
			}
			if j, ok := e.(*zre.Join); ok && j.Group == group {
				// Back in the group (a new chat, or a stream): its new
				// stream is read, unless it says it streams.
				c.readers.Rejoined(j.Peer)
				delete(c.streaming, j.Peer)
			}
			if si, ok := e.(*zre.Silent); ok && c.readers.Running[si.Peer] {
				// Idle, or its node dropped ours (a revocation whose
				// notice was lost): a probe tells.
				c.probed[si.Peer] = time.Now()
				sendProbe(n, si.Peer, group, false)
			}
			f.showChatEvent(env, e, refusals)
		case m := <-c.msgs:
			if m.Done {
				c.readers.Ended(m.Peer)
				delete(c.rds, m.Peer)
				delete(c.opaque, m.Peer)
				if m.End != nil && !errors.Is(m.End, zyregroup.ErrClosed) && ctx.Err() == nil {
					fmt.Fprintf(env.stderr, "zyre: %s %s: %s\n", safe(c.readers.Name(m.Peer)), uuidText(m.Peer), terminalText(agent.ChatEndText(m.End)))
				}
				continue
			}
			delete(c.opaque, m.Peer)
			delete(c.probed, m.Peer) // its lines arrive: no cut-off
			printShout(env, n.PeerName(m.Peer), uuidText(m.Peer), group, m.Text)
		case rec := <-rv.ours:
			return ownRevokedError(rec, f.trustStore)
		case <-tick.C:
			count, removed := watch.update()
			for _, r := range removed {
				r.report(env.stderr, group)
			}
			for _, p := range g.Senders() {
				if c.readers.New(p) && !c.streaming[p] {
					c.readers.Start(p)
					rd, err := g.NewReader(p)
					if err == nil {
						c.rds[p] = rd
					}
					go agent.ReadChat(rctx, p, rd, err, c.msgs, nil)
				}
			}
			for p, t := range c.probed {
				if n.PeerBacklog(p) != 0 {
					c.probed[p] = time.Now() // the probe waits behind our own data to p
					continue
				}
				if time.Since(t) < probeWait {
					continue
				}
				delete(c.probed, p)
				if c.readers.Others(p) == 0 {
					return fmt.Errorf("chat: %w", cutOffError(n.PeerName(p), p, group))
				}
				fmt.Fprintf(env.stderr, "zyre: %v\n", cutOffError(n.PeerName(p), p, group))
			}
			for p, t := range c.opaque {
				if time.Since(t) >= chatRemovedAfter {
					return fmt.Errorf("chat: %s %s no longer gives this device its key: removed from the private group %q (revoked?)",
						safe(n.PeerName(p)), uuidText(p), group)
				}
			}
			done, err := c.pending.release(count > 0, send)
			if err != nil {
				return err
			}
			if done {
				return agent.EndChat(w)
			}
			if err := c.pending.expired(); err != nil {
				return err
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// onOpaque notes records of a sender we read that we cannot open: Handle
// calls it on the command's goroutine.
func (c *privateChat) onOpaque(peer uuid.UUID, _ []byte) {
	if c.readers.Running[peer] {
		if _, ok := c.opaque[peer]; !ok {
			c.opaque[peer] = time.Now()
		}
	}
}

// send seals a line to the members and echoes it.
func (c *privateChat) send(w *zyregroup.Writer, l string) error {
	if err := agent.SendChatLine(w, l); err != nil {
		return err
	}
	printShout(c.env, c.n.Name(), uuidText(c.n.UUID()), c.group, l)
	return nil
}
