package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/agent"
	"github.com/zyre-go/zyre/privgroup"
	"github.com/zyre-go/zyre/privgroup/zyregroup"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

// Bounds of the lines a private chat keeps while no trusted member is
// present, and of one received line.
const (
	chatPendingLines = 100
	chatPendingBytes = 64 << 10
	chatMaxLine      = 64 << 10
	// chatTick is how often the chat looks at the group's members and
	// senders.
	chatTick = 100 * time.Millisecond
	// chatRemovedAfter: records of a sender we read that stay opaque this
	// long mean it rotated its key without giving it to us.
	chatRemovedAfter = 300 * time.Millisecond
)

// chatMsg is a line of a member's stream, or the end of its Reader.
type chatMsg struct {
	peer uuid.UUID
	text string
	end  error
	done bool
}

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

	msgs    chan chatMsg
	readers map[uuid.UUID]bool // a Reader was opened: true while it runs
	// names of the members read, kept: one that left (its cut stream
	// said after its EXIT) is named still.
	names map[uuid.UUID]string
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
		msgs: make(chan chatMsg, 64), readers: map[uuid.UUID]bool{}, names: map[uuid.UUID]string{}, rds: map[uuid.UUID]*zyregroup.Reader{}, streaming: map[uuid.UUID]bool{}, opaque: map[uuid.UUID]time.Time{}, probed: map[uuid.UUID]time.Time{},
		pending: pendingLines{stderr: env.stderr, group: group, who: "trusted member"}}
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
	var eofAt time.Time // stdin's end, while lines wait
	for {
		select {
		case l := <-lines:
			if l == "" {
				continue
			}
			if len(g.Members()) == 0 || c.pending.waiting() > 0 {
				c.pending.add(l)
				continue
			}
			if err := c.send(w, l); err != nil {
				return err
			}
		case err := <-readDone:
			lines, readDone = nil, nil
			if err != nil {
				return fmt.Errorf("reading stdin: %w", err)
			}
			if c.pending.waiting() == 0 {
				return c.end(w)
			}
			eofAt = time.Now()
			c.pending.atEOF(wait)
		case e, ok := <-n.Events():
			if !ok {
				return errors.New("chat: the node stopped")
			}
			if g.Handle(e) {
				continue
			}
			if w, ok := e.(*zre.Whisper); ok {
				if why, ok := removedNotice(w, group); ok && c.readers[w.Peer] {
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
				if running, ok := c.readers[j.Peer]; ok && !running {
					delete(c.readers, j.Peer)
				}
				delete(c.streaming, j.Peer)
			}
			if si, ok := e.(*zre.Silent); ok && c.readers[si.Peer] {
				// Idle, or its node dropped ours (a revocation whose
				// notice was lost): a probe tells.
				c.probed[si.Peer] = time.Now()
				sendProbe(n, si.Peer, group, false)
			}
			if chatEventShown(e.Type().String(), f.verbose) {
				if l, ok := f.chatEventText(e, refusals); ok {
					fmt.Fprintln(env.stdout, l)
				}
			}
		case m := <-c.msgs:
			if m.done {
				c.readers[m.peer] = false // its stream ended: not opened again
				delete(c.rds, m.peer)
				delete(c.opaque, m.peer)
				if m.end != nil && !errors.Is(m.end, zyregroup.ErrClosed) && ctx.Err() == nil {
					fmt.Fprintf(env.stderr, "zyre: %s %s: %s\n", safe(c.name(m.peer)), uuidText(m.peer), terminalText(agent.ChatEndText(m.end)))
				}
				continue
			}
			delete(c.opaque, m.peer)
			delete(c.probed, m.peer) // its lines arrive: no cut-off
			fmt.Fprintf(env.stdout, "SHOUT %s %s %s %s\n", safe(n.PeerName(m.peer)), uuidText(m.peer), group, contentText([][]byte{[]byte(m.text)}))
		case rec := <-rv.ours:
			return ownRevokedError(rec, f.trustStore)
		case <-tick.C:
			count, removed := watch.update()
			for _, r := range removed {
				r.report(env.stderr, group)
			}
			for _, p := range g.Senders() {
				if _, ok := c.readers[p]; !ok && !c.streaming[p] {
					c.readers[p] = true
					c.name(p)
					rd, err := g.NewReader(p)
					if err == nil {
						c.rds[p] = rd
					}
					go c.read(rctx, p, rd, err)
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
				others := 0
				for q, running := range c.readers {
					if running && q != p {
						others++
					}
				}
				if others == 0 {
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
			if count > 0 && c.pending.waiting() > 0 {
				if err := c.pending.flush(func(l string) error { return c.send(w, l) }); err != nil {
					return err
				}
				if !eofAt.IsZero() {
					return c.end(w)
				}
			}
			if !eofAt.IsZero() && time.Since(eofAt) >= wait {
				return c.pending.nobody(wait)
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// onOpaque notes records of a sender we read that we cannot open: Handle
// calls it on the command's goroutine.
func (c *privateChat) onOpaque(peer uuid.UUID, _ []byte) {
	if c.readers[peer] {
		if _, ok := c.opaque[peer]; !ok {
			c.opaque[peer] = time.Now()
		}
	}
}

// send seals a line to the members and echoes it.
func (c *privateChat) send(w *zyregroup.Writer, l string) error {
	if _, err := io.WriteString(w, l+"\n"); err != nil {
		return fmt.Errorf("chat: sending: %w", err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("chat: sending: %w", err)
	}
	fmt.Fprintf(c.env.stdout, "SHOUT %s %s %s %s\n", safe(c.n.Name()), uuidText(c.n.UUID()), c.group, contentText([][]byte{[]byte(l)}))
	return nil
}

// end ends our stream so members see its end.
func (c *privateChat) end(w *zyregroup.Writer) error {
	if err := w.Close(); err != nil {
		return fmt.Errorf("chat: ending: %w", err)
	}
	return nil
}

// read sends the lines of peer's Reader rd (or its error err) to c.msgs
// until its stream ends or ctx does.
func (c *privateChat) read(ctx context.Context, peer uuid.UUID, rd *zyregroup.Reader, err error) {
	end := func(err error) {
		select {
		case c.msgs <- chatMsg{peer: peer, end: err, done: true}:
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
			select {
			case c.msgs <- chatMsg{peer: peer, text: sc.Text()}:
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

// name is the name of the member p, kept from when it was known: one that
// left is named still.
func (c *privateChat) name(p uuid.UUID) string {
	if nm := c.n.PeerName(p); nm != "" {
		c.names[p] = nm
		return nm
	}
	return c.names[p]
}
