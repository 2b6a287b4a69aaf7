package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/zyre-go/zyre/agent/client"
)

// streamAgent runs "zyre stream send|recv" through the agent: the agent's
// node is the member of the private group (it seals and opens the
// records); the stream's octets cross the control socket.
func streamAgent(ctx context.Context, env *cliEnv, c *client.Client, f *streamFlags, mode, group string, limit int64) error {
	info, err := c.Info(ctx)
	if err != nil {
		return err
	}
	if f.trust == "any" {
		fmt.Fprintln(env.stderr, "zyre: warning: --trust any: every authenticated peer in the group can read the stream")
	}
	req := client.StreamRequest{Group: group, Trust: f.trust, Members: f.members, WaitMS: f.wait.Milliseconds(), Chunk: f.chunk,
		Suite: f.suite, Live: f.live, PeerName: f.peerName}
	if mode == "send" {
		return streamSendAgent(ctx, env, c, f, info, req, limit)
	}
	req.Limit = limit
	return streamRecvAgent(ctx, env, c, f, info, req)
}

func streamSendAgent(ctx context.Context, env *cliEnv, c *client.Client, f *streamFlags, info client.Info, req client.StreamRequest, limit int64) error {
	ss, m, err := c.StreamSendNotify(ctx, req, func(m client.StreamMsg) {
		fmt.Fprintln(env.stderr, "zyre: "+terminalText(m.Text))
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stderr, "zyre: streaming to %d member(s) of %q (%s) through the agent %s %s\n", m.Members, req.Group, m.Suite, safe(info.Name), shortText(info.UUID))
	in, size := f.in, f.size
	if limit > 0 {
		in = io.LimitReader(in, limit)
		if size < 0 || limit < size {
			size = limit
		}
	}
	source := "stdin"
	if f.file != "" {
		source = f.file
	}
	p := newProgress(env, "sending", size, f.progress)
	res := client.StreamMsg{SentTo: m.Members}
	ended := false
	interrupted := false // Ctrl-C mid-stream: one line, no summary
	defer func() {
		if interrupted {
			return
		}
		live := ""
		if f.live {
			live = " (live)"
		}
		for _, r := range res.Receivers {
			if r.Removed != "" {
				reportRemoved(env.stderr, req.Group, r)
			}
		}
		fmt.Fprintf(env.stderr, "zyre: sent to %d member(s) of %q%s: %s; %s\n",
			readers(max(res.SentTo, m.Members), res.Receivers), req.Group, live, p.summary(), ackText(res.Receivers, ended))
	}()
	rctx, stopReading := context.WithCancel(ctx)
	_, err = io.CopyBuffer(progressWriter{ss, p}, newContextReader(rctx, in, f.chunk), make([]byte, f.chunk))
	stopReading()
	p.done()
	if err != nil {
		ss.Abort()
		if ctx.Err() != nil {
			interrupted = true
			return interruptedStream(p.total)
		}
		var we writeError
		if errors.As(err, &we) {
			return fmt.Errorf("stream: sending after %d octets: %w", p.total, we.err)
		}
		return fmt.Errorf("stream: reading %s after %d octets: %w (the stream was not ended: receivers see it cut)", source, p.total, err)
	}
	// The agent's result (or error) names the receivers: who
	// acknowledged the end, who did not, who was removed on the way.
	res, err = ss.Close()
	ended = res.Receivers != nil || err == nil
	return err
}

func streamRecvAgent(ctx context.Context, env *cliEnv, c *client.Client, f *streamFlags, info client.Info, req client.StreamRequest) error {
	var p *progress
	who := ""
	out := writerFunc(func(b []byte) (int, error) {
		n, err := env.stdout.Write(b)
		if p != nil {
			p.add(b[:n])
		}
		return n, err
	})
	res, err := c.StreamRecv(ctx, req, out, func(m client.StreamMsg) {
		switch m.Kind {
		case client.StreamNobody:
			fmt.Fprintln(env.stderr, "zyre: "+terminalText(m.Text))
		case client.StreamReading:
			who = safe(m.Name) + " " + peerShort(m.Peer)
			fmt.Fprintf(env.stderr, "zyre: reading the stream of %s in %q through the agent %s %s\n", who, req.Group, safe(info.Name), shortText(info.UUID))
			p = newProgress(env, "receiving", -1, f.progress)
		case client.StreamLate:
			if !f.live {
				fmt.Fprintf(env.stderr, "%szyre: warning: joined the stream late: its first %d octets were sent before\n", barBreak(env), m.Octets)
			}
		case client.StreamGap:
			fmt.Fprintf(env.stderr, "%szyre: warning: %s\n", barBreak(env), terminalText(m.Text))
		}
	})
	if p != nil {
		p.done()
		state := "the stream did not end"
		if res.Ended {
			state = "the stream ended"
		}
		if res.Late > 0 {
			state += fmt.Sprintf("; joined late: the first %d octets were sent before", res.Late)
		}
		if res.Lost > 0 {
			state += fmt.Sprintf("; %d octets lost on the way", res.Lost)
		}
		fmt.Fprintf(env.stderr, "zyre: received from %s in %q: %s; %s\n", who, req.Group, p.summary(), state)
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	if res.Lost > 0 && !f.live {
		return withHint(fmt.Errorf("stream: the output lacks what was lost on the way: %d octets", res.Lost),
			"with --live, a stream with gaps is normal")
	}
	if res.Late > 0 && !f.live {
		return withHint(fmt.Errorf("stream: the output lacks the first %d octets: this receiver joined the stream late", res.Late),
			"with --live, joining a stream late is normal")
	}
	return nil
}

// writerFunc is an io.Writer of a function.
type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(b []byte) (int, error) { return w(b) }

// streamAgentAllowed are the stream flags that do not configure a node.
var streamAgentAllowed = []string{"peer-name", "count", "bytes", "chunk", "members", "trust", "suite", "progress", "live"}
