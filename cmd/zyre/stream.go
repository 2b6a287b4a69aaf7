package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/agent"
	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/keystore"
	"github.com/zyre-go/zyre/privgroup"
	"github.com/zyre-go/zyre/privgroup/zyregroup"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

const streamUsage = `usage: zyre stream send [flags] GROUP [FILE]
       zyre stream recv [flags] GROUP > FILE

Send FILE (default stdin) to the trusted members of GROUP, or write the stream of one
member to stdout, end-to-end encrypted (private groups, spec/private-groups.md).
recv reads the member that says it streams, never one that only chats in GROUP
(--peer-name: the member of that name, whatever it sends). When every trusted
member there has said it streams nothing (a chat, another receiver), recv says
so at once, naming them, and goes on waiting for a stream to start, up to
--wait (then it fails). Start the receivers first: a stream that ended before
is gone.
Always in secure mode, with this node's identity from the keystore (--home).
Who is trusted (--trust): verified (default: verified or introduced in the
trust store of --home), tofu (tofu records too) or any (every authenticated
peer: anyone on the network can read).

send shows a progress bar (with the total, percentage and time left when
FILE's size is known) and both sides end with a summary: octets, time, rate
and SHA-256; the sender's names who acknowledged the end. send waits for
the acknowledgement of every member holding its key when the stream starts
(--members is only the minimum to start) and fails, naming them, if one did
not acknowledge (one whose key was revoked on the way owes none, nor one that
refused our key because it does not trust this device: the summary names it).

A receiver that joins a stream late lacks its beginning: an error, unless
--live says the stream is live (then joining late, and data lost on the
way, are reported and normal). send --live starts without
waiting for members and waits for no acknowledgement.`

// streamAck is the WHISPER a receiver sends to the sender at the end of a
// stream, so the sender knows its data arrived before it stops: frames
// streamAck, "EOF", group.
const streamAck = "zyre-stream/1"

// streamFlags are stream's own flags beside the node flags.
type streamFlags struct {
	*nodeFlags
	peerName string
	count    int64
	bytes    int64
	chunk    int
	members  int
	wait     time.Duration
	trust    string
	suite    string
	suiteID  privgroup.Suite
	progress time.Duration
	live     bool
	file     string // send: the file to send; "" is stdin
	agent    agentFlags
	in       io.Reader
	size     int64 // of in, or -1 when unknown
}

// newStreamFlags returns the flags of "zyre stream MODE" (send or recv):
// the node flags and stream's own, those of the other mode hidden, and
// --group (the stream's group is the GROUP argument).
func newStreamFlags(env *cliEnv, mode string) *streamFlags {
	f := &streamFlags{nodeFlags: newNodeFlags(env, "stream "+mode)}
	f.synopsis = streamUsage
	f.fs.StringVar(&f.peerName, "peer-name", "", "read the stream of the member with this `name`, whatever it sends (default: the member that says it streams, never one that only chats)")
	f.fs.Int64Var(&f.count, "count", 0, "stop after `N` chunks of --chunk octets (0: no limit)")
	f.fs.Int64Var(&f.bytes, "bytes", 0, "stop after `N` octets (0: no limit)")
	f.fs.IntVar(&f.chunk, "chunk", privgroup.DefaultChunkSize, "chunk size in `octets` (send: octets per message)")
	f.fs.IntVar(&f.members, "members", 1, "wait for `N` trusted members to hold our key before sending (the end waits for the acknowledgements of all that hold it when the stream starts)")
	f.fs.DurationVar(&f.wait, "wait", 30*time.Second, "send: how long to wait for members and acknowledgements; recv: for a stream to start")
	f.fs.StringVar(&f.trust, "trust", "verified", "who is trusted: verified, tofu or any")
	f.fs.StringVar(&f.suite, "suite", "auto", "cipher suite: auto, chacha20poly1305-sha256 or aes256gcm-blake3 (auto: the faster one here for --chunk, and chacha20poly1305-sha256 while a member says it opens the other slowly)")
	f.fs.DurationVar(&f.progress, "progress", 500*time.Millisecond, "interval of the progress bar on stderr (0: none)")
	f.agent.register(f.fs)
	f.fs.BoolVar(&f.live, "live", false, "a live stream: send starts without waiting for members (unless --members) and waits for no acknowledgement; recv takes joining late and lost data as normal (reported, exit status 0)")
	hideFlags(f.fs, "group")
	if mode == "send" {
		hideFlags(f.fs, "peer-name")
	} else {
		hideFlags(f.fs, "members", "suite")
	}
	return f
}

// printStreamHelp prints "zyre stream --help": the synopsis, then the
// flags of both stream send and stream recv, and of each one only.
func printStreamHelp(env *cliEnv) {
	send, recv := newStreamFlags(env, "send").fs, newStreamFlags(env, "recv").fs
	shown := func(fs *flag.FlagSet, name string) bool {
		f := fs.Lookup(name)
		return f != nil && !strings.HasPrefix(f.Usage, hiddenMark)
	}
	var both, sendOnly, recvOnly []*flag.Flag
	send.VisitAll(func(f *flag.Flag) {
		switch {
		case shown(send, f.Name) && shown(recv, f.Name):
			both = append(both, f)
		case shown(send, f.Name):
			sendOnly = append(sendOnly, f)
		}
	})
	recv.VisitAll(func(f *flag.Flag) {
		if shown(recv, f.Name) && !shown(send, f.Name) {
			recvOnly = append(recvOnly, f)
		}
	})
	fmt.Fprintln(env.stderr, streamUsage)
	for _, sec := range []struct {
		title string
		flags []*flag.Flag
	}{{"stream send and stream recv", both}, {"stream send only", sendOnly}, {"stream recv only", recvOnly}} {
		if len(sec.flags) > 0 {
			fmt.Fprintf(env.stderr, "\nflags of %s:\n%s", sec.title, flagsText(sec.flags))
		}
	}
}

// runStream implements "zyre stream send|recv GROUP".
func runStream(ctx context.Context, env *cliEnv, args []string) error {
	args, err := subcommandFirst("stream", args, "send", "recv")
	if err != nil {
		return err
	}
	if len(args) == 0 || (args[0] != "send" && args[0] != "recv") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
			printStreamHelp(env)
			return flag.ErrHelp
		}
		if len(args) > 0 {
			return withHint(fmt.Errorf("%w: unknown command \"stream %s\"", errUsage, args[0]), `run "zyre stream --help": the commands are send and recv`)
		}
		return withHint(fmt.Errorf("%w: want send or recv, then GROUP", errUsage), `run "zyre stream --help" for usage`)
	}
	mode := args[0]
	f := newStreamFlags(env, mode)
	pos, err := f.parseArgs(args[1:])
	if err != nil {
		return err
	}
	f.progress = progressInterval(env, f.fs, f.progress)
	maxArgs, want := 1, "GROUP"
	if mode == "send" {
		maxArgs, want = 2, "GROUP [FILE]"
	}
	switch {
	case len(pos) == 0:
		return fmt.Errorf("%w: missing GROUP: want %s", errUsage, want)
	case len(pos) > maxArgs:
		return fmt.Errorf("%w: unexpected argument %q: want %s", errUsage, pos[maxArgs], want)
	}
	group := pos[0]
	if group == "" || len(group) > privgroup.MaxGroupLen {
		return fmt.Errorf("%w: group name of %d octets, want 1..%d", errUsage, len(group), privgroup.MaxGroupLen)
	}
	if len(pos) == 2 && pos[1] != "-" {
		f.file = pos[1]
	}
	if f.live && mode == "send" && !flagSet(f.fs, "members") {
		f.members = 0
	}
	switch {
	case f.chunk < 1 || f.chunk > privgroup.MaxPlaintext-privgroup.ChunkHeaderSize:
		return fmt.Errorf("%w: --chunk %d out of range 1..%d", errUsage, f.chunk, privgroup.MaxPlaintext-privgroup.ChunkHeaderSize)
	case f.count < 0 || f.bytes < 0 || f.members < 0 || f.wait <= 0:
		return fmt.Errorf("%w: negative --count, --bytes, --members or --wait", errUsage)
	case f.trust != "verified" && f.trust != "tofu" && f.trust != "any":
		return fmt.Errorf("%w: --trust %q: want verified, tofu or any", errUsage, f.trust)
	case len(f.groups) > 0:
		return fmt.Errorf("%w: --group: the stream's group is the GROUP argument", errUsage)
	case mode == "send" && f.peerName != "":
		return fmt.Errorf("%w: --peer-name is for recv", errUsage)
	}
	suite, err := privgroup.ParseSuite(f.suite)
	if err != nil {
		return fmt.Errorf("%w: --suite: %w", errUsage, err)
	}
	if flagSet(f.fs, "secure") && !f.secure {
		return fmt.Errorf("%w: private streams need secure mode", errUsage)
	}
	f.secure = true
	limit := f.bytes
	if f.count > 0 && (limit == 0 || f.count*int64(f.chunk) < limit) {
		limit = f.count * int64(f.chunk)
	}

	f.suiteID = suite
	var in io.Reader = env.stdin
	size := int64(-1) // unknown
	if mode == "send" && f.file != "" {
		// Opened before the node starts: a wrong name fails at once.
		fh, err := os.Open(f.file)
		if err != nil {
			return err
		}
		defer fh.Close()
		if fi, err := fh.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
		in = fh
	}
	f.in, f.size = in, size
	c, err := f.agent.dial(ctx, env, f.fs, streamAgentAllowed...)
	if err != nil {
		return err
	}
	if c != nil {
		defer c.Close()
		return streamAgent(ctx, env, c, f, mode, group, limit)
	}
	s, err := startStreamNode(ctx, env, f, group)
	if err != nil {
		return err
	}
	defer s.close()
	if mode == "send" {
		return s.send(ctx, f, limit)
	}
	return s.recv(ctx, f, limit)
}

// streamNode is a secure node with one private group and its event pump.
type streamNode struct {
	env   *cliEnv
	n     *zre.Node
	g     *zyregroup.Group
	group string
	acks  chan uuid.UUID
	// ending is set just before the Writer sends the end of the stream: an
	// acknowledgement before that cannot be one of our stream.
	ending atomic.Bool
	done   chan struct{}
	st     *trust.Store // the node's trust store; nil with --trust any
	rv     *revocations
	// reading is the sender recv reads (a *uuid.UUID); opaqueAt the first
	// time (UnixNano) a record of it could not be opened since.
	reading  atomic.Pointer[uuid.UUID]
	opaqueAt atomic.Int64
	// removed is set when the sender we read told us we are removed.
	removed atomic.Pointer[string]
	// probedAt is when (UnixNano) we probed the sender we read, silent;
	// 0 when it answered.
	probedAt atomic.Int64
	// writing: our stream goes out, until its end is sent (we answer
	// queries); streaming: the senders that said they stream
	// (uuid.UUID -> struct{}), see agent.AwaitStreamer.
	writing   atomic.Bool
	streaming sync.Map
	// idle: the members that said they stream nothing (uuid.UUID ->
	// agent.ChattingFrame or agent.IdleFrame).
	idle sync.Map
	// trusted is the Group's trust decision (agent.TrustDecision).
	trusted func(uuid.UUID, curve.PublicKey) bool
	// roster is our stream's, while it goes out: a private chat's
	// member declines it (agent.ChattingFrame).
	roster atomic.Pointer[agent.Roster]
}

func (s *streamNode) isStreaming(peer uuid.UUID) bool {
	_, ok := s.streaming.Load(peer)
	return ok
}

// answered is peer's answer that it streams nothing, or "".
func (s *streamNode) answered(peer uuid.UUID) string {
	if v, ok := s.idle.Load(peer); ok {
		return v.(string)
	}
	return ""
}

func startStreamNode(ctx context.Context, env *cliEnv, f *streamFlags, group string) (*streamNode, error) {
	if err := f.lockIdentity(env); err != nil {
		return nil, err
	}
	cfg, err := f.config(env)
	if err != nil {
		return nil, err
	}
	rv := newRevocations()
	f.onRevoked = rv.hook
	sc, name, err := f.secureConfig(ctx, env)
	if err != nil {
		return nil, err
	}
	cfg.Secure = sc
	if cfg.Name == "" {
		cfg.Name = name
	}
	opts := zyregroup.Options{Secret: sc.Secret, ChunkSize: f.chunk, Crypto: privgroup.Options{Suite: f.suiteID}}
	switch f.trust {
	case "any":
		fmt.Fprintln(env.stderr, "zyre: warning: --trust any: every authenticated peer in the group can read the stream")
		opts.Trusted = func(uuid.UUID, curve.PublicKey) bool { return true }
	default:
		// The node's own store: a revocation it applies (gossip, or
		// "zyre trust revoke" beside it) reaches the group at once.
		st := f.trustStore
		if st == nil {
			home := f.home
			if home == "" {
				if home, err = keystore.DefaultHome(env.getenv); err != nil {
					return nil, fmt.Errorf("no home for the trust store (use --home or --trust any): %w", err)
				}
			}
			if st, err = trust.Open(home, trust.Options{Logger: quietLog(), OnRevoked: rv.hook}); err != nil {
				return nil, err
			}
		}
		opts.Trust, opts.TrustTOFU = st, f.trust == "tofu"
	}
	s := &streamNode{env: env, group: group, acks: make(chan uuid.UUID, 64), done: make(chan struct{}), st: opts.Trust, rv: rv}
	opts.OnOpaque = s.onOpaque
	s.trusted = agent.TrustDecision(&opts)
	n, err := zre.New(cfg)
	if err != nil {
		return nil, err
	}
	if err := n.Start(ctx); err != nil {
		n.Close()
		return nil, err
	}
	own := n.PublicKey()
	rv.own.Store(&own)
	opts.Logger = f.libLog(env, n)
	g, err := zyregroup.Attach(n, group, opts)
	if err != nil {
		stopNode(n)
		return nil, err
	}
	s.n, s.g = n, g
	tell := s.tellRemoved
	rv.before.Store(&tell)
	rv.g.Store(g)
	go s.pump()
	return s, nil
}

// pump feeds the node's events to the group; acknowledgements of our
// stream go to s.acks, once the end is being sent (none can come before).
func (s *streamNode) pump() {
	defer close(s.done)
	for ev := range s.n.Events() {
		if s.g.Handle(ev) {
			continue
		}
		if d, ok := ev.(*zre.Denied); ok {
			// Its node refuses our key: nothing of ours reaches it (the
			// roster counts it as refusing, agent.Roster.checkDenials).
			// Said once: the node reports it once.
			fmt.Fprintln(s.env.stderr, barBreak(s.env)+"zyre: "+deniedSentence(s.n, d))
			continue
		}
		if si, ok := ev.(*zre.Silent); ok {
			// Idle, or its node dropped ours: a probe tells.
			if p := s.reading.Load(); p != nil && *p == si.Peer {
				s.probedAt.CompareAndSwap(0, time.Now().UnixNano())
				sendProbe(s.n, si.Peer, s.group, false)
			}
			continue
		}
		if w, ok := ev.(*zre.Whisper); ok && streamNotice(w, s.group, agent.QueryFrame) {
			agent.AnswerQuery(s.n, s.g, w.Peer, s.writing.Load(), false)
			continue
		}
		if w, ok := ev.(*zre.Whisper); ok && streamNotice(w, s.group, agent.StreamingFrame) {
			if agent.RefuseUntrusted(s.n, s.group, w.Peer, s.trusted) {
				continue // we refused its key: we read nothing of it
			}
			s.idle.Delete(w.Peer)
			s.streaming.Store(w.Peer, struct{}{})
			continue
		}
		if w, ok := ev.(*zre.Whisper); ok && streamNotice(w, s.group, agent.ChattingFrame) {
			if r := s.roster.Load(); r != nil {
				r.Decline(w.Peer)
			}
			if !s.isStreaming(w.Peer) {
				s.idle.Store(w.Peer, agent.ChattingFrame)
			}
			continue
		}
		if w, ok := ev.(*zre.Whisper); ok && streamNotice(w, s.group, agent.RefusedFrame) {
			if r := s.roster.Load(); r != nil {
				r.Refuse(w.Peer)
			}
			continue
		}
		if w, ok := ev.(*zre.Whisper); ok && streamNotice(w, s.group, agent.IdleFrame) {
			if !s.isStreaming(w.Peer) {
				s.idle.Store(w.Peer, agent.IdleFrame)
			}
			continue
		}
		if j, ok := ev.(*zre.Join); ok && j.Group == s.group {
			// Back in the group: what it said before no longer holds.
			s.idle.Delete(j.Peer)
		}
		if w, ok := ev.(*zre.Whisper); ok && probeMsg(w, s.group, false) {
			sendProbe(s.n, w.Peer, s.group, true)
			continue
		}
		if w, ok := ev.(*zre.Whisper); ok && probeMsg(w, s.group, true) {
			s.probedAt.Store(0)
			continue
		}
		if w, ok := ev.(*zre.Whisper); ok {
			if why, ok := removedNotice(w, s.group); ok {
				if p := s.reading.Load(); p != nil && *p == w.Peer {
					s.removed.Store(&why)
				}
				continue
			}
		}
		if w, ok := ev.(*zre.Whisper); ok && s.ending.Load() && len(w.Content) == 3 && string(w.Content[0]) == streamAck &&
			string(w.Content[1]) == "EOF" && string(w.Content[2]) == s.group {
			select {
			case s.acks <- w.Peer:
			default:
			}
		}
	}
}

// tellRemoved tells the members whose key rs revoke (tellRemoved), on
// the trust store's goroutine, before the group rechecks.
func (s *streamNode) tellRemoved(rs []trust.Record) { tellRemoved(s.n, s.group, rs) }

// onOpaque is Options.OnOpaque, called on the pump's goroutine: a record
// of the sender we read that we cannot open means it no longer gives us
// its key.
func (s *streamNode) onOpaque(peer uuid.UUID, _ []byte) {
	if p := s.reading.Load(); p != nil && *p == peer {
		s.opaqueAt.CompareAndSwap(0, time.Now().UnixNano())
	}
}

func (s *streamNode) close() {
	s.g.Close()
	stopNode(s.n)
	<-s.done
}

// send streams stdin into the group.
func (s *streamNode) send(ctx context.Context, f *streamFlags, limit int64) error {
	wctx, cancel := context.WithTimeout(ctx, f.wait)
	defer cancel()
	if err := s.waitMembers(ctx, wctx, f); err != nil {
		return err
	}
	// The receivers whose acknowledgements we wait for: the members
	// holding our key as the first octets go out (or the end, for an
	// empty stream).
	roster := agent.NewRoster(s.n, s.g, s.st)
	s.roster.Store(roster)
	sentTo := len(s.g.Members())
	start := sync.OnceFunc(func() { sentTo = roster.Start() })
	fmt.Fprintf(s.env.stderr, "zyre: streaming to %d member(s) of %q (%s)\n", sentTo, s.group, s.g.Suite())
	w, err := s.g.NewWriter()
	if err != nil {
		return err
	}
	// Said before the first record, which follows it on each connection:
	// receivers read us, not a member that only chats.
	s.writing.Store(true)
	agent.AnnounceStream(s.n, s.g)
	in := f.in
	size := f.size
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
	p := newProgress(s.env, "sending", size, f.progress)
	// res is the result, for the summary: the roster's receivers, once
	// the wait for the acknowledgements has ended.
	var res client.StreamMsg
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
		fmt.Fprintf(s.env.stderr, "zyre: sent to %d member(s) of %q%s: %s; %s\n",
			readers(max(sentTo, len(res.Receivers)), res.Receivers), s.group, live, p.summary(), ackText(res.Receivers, ended))
	}()
	// A member removed on the way (revoked, or gone) is named, with why,
	// as it happens: by this goroutine while the stream goes out, then
	// by the wait for the acknowledgements.
	report := func(removed []client.StreamReceiver) {
		for _, r := range removed {
			fmt.Fprint(s.env.stderr, barBreak(s.env))
			reportRemoved(s.env.stderr, s.group, r)
		}
	}
	stopWatch := roster.Watch(report)
	defer stopWatch()
	rctx, stopReading := context.WithCancel(ctx)
	_, err = io.CopyBuffer(progressWriter{startWriter{w, start}, p}, newContextReader(rctx, in, f.chunk), make([]byte, f.chunk))
	stopReading() // its goroutine ends, unless blocked on stdin itself
	p.done()
	start()
	if err != nil {
		stopWatch()
		res.Receivers = roster.Receivers()
		// No Close: it would mark the end of the stream, and receivers
		// would take what they got for all of it. Leaving the group
		// (s.close) cuts the stream for them instead.
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
	stopWatch()
	report(roster.Update())
	s.ending.Store(true)
	s.writing.Store(false) // a receiver that asks now would come too late
	if err := w.Close(); err != nil {
		res.Receivers = roster.Receivers()
		return fmt.Errorf("stream: ending the stream: %w", err)
	}
	ended = true
	// Wait for the acknowledgements of the receivers of the start: the
	// data is then delivered. (Removals on the way are told as they are
	// seen.)
	res, err = agent.AwaitAcks(ctx, roster, s.acks, f.live, f.members, f.wait, func(removed []client.StreamReceiver) { report(removed) })
	return err
}

// interruptedStream is the one line of a stream sender interrupted
// (Ctrl-C) after total octets, before the end: nothing was "sent".
func interruptedStream(total int64) error {
	return fmt.Errorf("interrupted after %s: receivers see the stream cut", sizeText(float64(total)))
}

// ackText is the end of a sender's summary: who acknowledged the end and,
// once it was sent (ended), who did not; who was removed on the way.
func ackText(rs []client.StreamReceiver, ended bool) string {
	var acked, not, removed, refused []client.StreamReceiver
	for _, r := range rs {
		switch {
		case r.Acked:
			acked = append(acked, r)
		case r.Refused:
			refused = append(refused, r)
		case r.Removed != "":
			removed = append(removed, r)
		case r.AtStart:
			not = append(not, r)
		}
	}
	t := fmt.Sprintf("%d acknowledged the end", len(acked))
	if len(acked) > 0 {
		t += ": " + receiverNames(acked)
	}
	if ended && len(not) > 0 {
		t += "; not acknowledged: " + receiverNames(not)
	}
	if len(removed) > 0 {
		t += "; removed on the way: " + receiverNames(removed)
	}
	if len(refused) > 0 {
		t += "; refused our key (we are not trusted there): " + receiverNames(refused)
	}
	return t
}

// readers is how many members a stream was sent to that could read it:
// of the members counted (sent), not those that refused our key (we are
// not trusted there), which ackText names apart.
func readers(sent int, rs []client.StreamReceiver) int {
	for _, r := range rs {
		if r.Refused {
			sent--
		}
	}
	return max(sent, 0)
}

// receiverNames lists receivers as "name 1234abcd, name 5678abcd".
func receiverNames(rs []client.StreamReceiver) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = safe(r.Name) + " " + peerShort(r.Peer)
	}
	return strings.Join(parts, ", ")
}

// reportRemoved prints the removal of a receiver on w.
func reportRemoved(w io.Writer, group string, r client.StreamReceiver) {
	fmt.Fprintf(w, "zyre: removed %s %s from the private group %q: %s\n", safe(r.Name), peerShort(r.Peer), group, terminalText(r.Removed))
}

// waitMembers waits until f.members trusted members hold our key, for
// as long as wctx lasts (--wait); nobody in the group (a mistyped name,
// usually) is said once discovery had its first seconds.
func (s *streamNode) waitMembers(ctx, wctx context.Context, f *streamFlags) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	noticed := false
	for len(s.g.Members()) < f.members {
		if !noticed && time.Since(start) >= agent.Discovery {
			noticed = true
			if near, ok := agent.NearGroup(s.n, s.group); ok {
				return agent.NearGroupError(s.n, s.group, near)
			}
			if text, ok := agent.AbsentNotice(s.n, s.group, f.wait); ok {
				fmt.Fprintln(s.env.stderr, "zyre: "+terminalText(text))
			}
		}
		select {
		case <-tick.C:
		case <-wctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return agent.MembersError(s.n, s.group, len(s.g.Members()), f.members, f.wait)
		}
	}
	return nil
}

// recv writes one member's stream to stdout.
func (s *streamNode) recv(ctx context.Context, f *streamFlags, limit int64) error {
	wctx, cancel := context.WithTimeout(ctx, f.wait)
	defer cancel()
	var sender uuid.UUID
	var err error
	if f.peerName != "" {
		// Named: that member's stream, whatever it is.
		sender, err = s.g.AwaitSender(wctx, func(p uuid.UUID) bool { return s.n.PeerName(p) == f.peerName })
	} else {
		// The member that streams, not one that only chats.
		sender, err = agent.AwaitStreamer(wctx, s.g, agent.StreamerWatch{Streaming: s.isStreaming, Answered: s.answered,
			Query: func(p uuid.UUID) { s.n.Whisper(p, []byte(streamAck), []byte(agent.QueryFrame), []byte(s.group)) },
			Nobody: func(a map[uuid.UUID]string) {
				fmt.Fprintln(s.env.stderr, "zyre: "+terminalText(agent.NobodyText(s.group, a, s.n.PeerName, f.wait)))
			},
			Absent: func() {
				if text, ok := agent.AbsentNotice(s.n, s.group, f.wait); ok {
					fmt.Fprintln(s.env.stderr, "zyre: "+terminalText(text))
				}
			}})
	}
	var ns *agent.NotStreamingError
	switch {
	case errors.As(err, &ns) && ctx.Err() == nil:
		return fmt.Errorf("stream: %s", terminalText(agent.NotStreamingText(s.n, ns, f.wait)))
	case err != nil && f.peerName != "":
		return fmt.Errorf("stream: no trusted sender named %s: %w", f.peerName, err)
	case err != nil:
		return fmt.Errorf("stream: %w", err)
	}
	senderName := s.n.PeerName(sender)
	s.reading.Store(&sender)
	if f.peerName != "" {
		// Whether it streams tells, if it leaves with nothing sent, why.
		s.n.Whisper(sender, []byte(streamAck), []byte(agent.QueryFrame), []byte(s.group))
	}
	fmt.Fprintf(s.env.stderr, "zyre: reading the stream of %s %s in %q\n", safe(senderName), uuidText(sender), s.group)
	rd, err := s.g.NewReader(sender)
	if err != nil {
		return err
	}
	defer rd.Close()
	// The Reader ends with ctx, or if our node stops under us (its events
	// end, and nothing would reach the Reader any more).
	// It ends too when this device is removed from the group: our key
	// revoked, or the sender's records no longer open for us.
	rctx, rcancel := context.WithCancelCause(ctx)
	defer rcancel(nil)
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.done:
				rcancel(nil)
				return
			case rec := <-s.rv.ours:
				rcancel(ownRevokedError(rec, s.st))
				return
			case <-tick.C:
				if why := s.removed.Load(); why != nil {
					rcancel(fmt.Errorf("%s %s removed this device from the private group %q: %s", safe(senderName), uuidText(sender), s.group, safe(*why)))
					return
				}
				if t := s.probedAt.Load(); t != 0 && time.Since(time.Unix(0, t)) >= probeWait {
					rcancel(cutOffError(senderName, sender, s.group))
					return
				}
				if t := s.opaqueAt.Load(); t != 0 && time.Since(time.Unix(0, t)) >= chatRemovedAfter {
					rcancel(fmt.Errorf("%s %s no longer gives this device its key: removed from the private group %q (revoked?)", safe(senderName), uuidText(sender), s.group))
					return
				}
			case <-rctx.Done():
				return
			}
		}
	}()
	stop := context.AfterFunc(rctx, func() { rd.Close() })
	defer stop()
	p := newProgress(s.env, "receiving", -1, f.progress)
	buf := make([]byte, max(f.chunk, 32<<10))
	var total int64
	var lost privgroup.GapError // summed, after the first octet
	var late uint64             // octets sent before we joined
	ended := false
	defer func() {
		p.done()
		state := "the stream did not end"
		if ended {
			state = "the stream ended"
		}
		if late > 0 {
			state += fmt.Sprintf("; joined late: the first %d octets were sent before", late)
		}
		if lost.Bytes > 0 {
			state += fmt.Sprintf("; %d octets lost on the way", lost.Bytes)
		}
		fmt.Fprintf(s.env.stderr, "zyre: received from %s %s in %q: %s; %s\n", safe(senderName), uuidText(sender), s.group, p.summary(), state)
	}()
	ack := func() {
		// Tell the sender: its data arrived.
		// A live sender waits for none and may be gone already.
		if werr := s.n.Whisper(sender, []byte(streamAck), []byte("EOF"), []byte(s.group)); werr != nil && !f.live {
			fmt.Fprintf(s.env.stderr, "%szyre: warning: acknowledgement not sent: %v\n", barBreak(s.env), werr)
		}
	}
read:
	for limit == 0 || total < limit {
		want := buf
		if limit > 0 {
			want = buf[:min(int64(len(buf)), limit-total)]
		}
		n, err := rd.Read(want)
		if n > 0 {
			if _, werr := s.env.stdout.Write(want[:n]); werr != nil {
				return fmt.Errorf("stream: write: %w", werr)
			}
			total += int64(n)
			p.add(want[:n])
			s.opaqueAt.Store(0)
		}
		var gap *privgroup.GapError
		switch {
		case errors.As(err, &gap) && total == 0 && lost.Bytes == 0:
			// Nothing read yet: the stream began before we joined.
			late += gap.Bytes
			if !f.live {
				fmt.Fprintf(s.env.stderr, "%szyre: warning: joined the stream late: its first %d octets were sent before\n", barBreak(s.env), gap.Bytes)
			}
		case errors.As(err, &gap):
			fmt.Fprintf(s.env.stderr, "%szyre: warning: %v\n", barBreak(s.env), gap)
			lost.Bytes += gap.Bytes
			lost.Messages += gap.Messages
		case err == io.EOF:
			ended = true
			if (lost.Bytes > 0 || late > 0) && !f.live {
				break read
			}
			ack()
			return nil
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if rctx.Err() != nil {
				if cause := context.Cause(rctx); cause != nil && !errors.Is(cause, context.Canceled) {
					return fmt.Errorf("stream: after %d octets: %w", total, cause)
				}
				return fmt.Errorf("stream: our node stopped after %d octets: %w", total, err)
			}
			if errors.Is(err, io.ErrUnexpectedEOF) && total == 0 && late == 0 && !s.isStreaming(sender) {
				return fmt.Errorf("stream: %s %s left without streaming anything to this device: its stream ended before this receiver started, or it streamed nothing (a private chat?)",
					safe(senderName), uuidText(sender))
			}
			if errors.Is(err, zyregroup.ErrRemoved) {
				return fmt.Errorf("stream: %s %s removed this device from the private group %q after %d octets: it no longer trusts this device's key", safe(senderName), uuidText(sender), s.group, total)
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				// Said in words: "unexpected EOF" adds nothing for a user.
				return fmt.Errorf("stream: %s %s left or stopped before the end of its stream, after %d octets (the stream was cut)", safe(senderName), uuidText(sender), total)
			}
			return fmt.Errorf("stream: %w", err)
		}
	}
	if lost.Bytes > 0 && !f.live {
		// Not acknowledged: the sender must not take the stream for
		// delivered.
		return withHint(fmt.Errorf("stream: the output lacks what was lost on the way: %w", &lost),
			"with --live, a stream with gaps is normal")
	}
	if late > 0 && !f.live {
		return withHint(fmt.Errorf("stream: the output lacks the first %d octets: this receiver joined the stream late", late),
			"with --live, joining a stream late is normal")
	}
	// The limit: acknowledge only if the stream ends right there (its end
	// follows at once when it does).
	if s.endsHere(ctx, rd, min(f.wait, streamEndWait)) {
		ack()
	}
	return nil
}

// streamEndWait bounds how long recv waits, at its --bytes or --count
// limit, to see whether the stream ends there.
const streamEndWait = 5 * time.Second

// endsHere reports whether the next thing rd returns, within wait, is the
// end of the stream. It closes rd when wait runs out.
func (s *streamNode) endsHere(ctx context.Context, rd *zyregroup.Reader, wait time.Duration) bool {
	ectx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	stop := context.AfterFunc(ectx, func() { rd.Close() })
	defer stop()
	var one [1]byte
	n, err := rd.Read(one[:])
	return n == 0 && err == io.EOF
}

// contextReader reads r in a goroutine of its own, one chunk ahead, so
// that a Read waiting on r (a pipe with nothing to say yet) still returns
// when ctx ends. The goroutine may stay blocked on r after that; the
// process is about to end then.
type contextReader struct {
	ctx    context.Context
	chunks chan readChunk
	cur    readChunk
}

type readChunk struct {
	b   []byte
	err error
}

func newContextReader(ctx context.Context, r io.Reader, size int) *contextReader {
	c := &contextReader{ctx: ctx, chunks: make(chan readChunk)}
	go func() {
		for {
			b := make([]byte, size)
			n, err := r.Read(b)
			select {
			case c.chunks <- readChunk{b[:n], err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return c
}

func (c *contextReader) Read(p []byte) (int, error) {
	for len(c.cur.b) == 0 && c.cur.err == nil {
		if err := c.ctx.Err(); err != nil {
			return 0, err
		}
		select {
		case c.cur = <-c.chunks:
		case <-c.ctx.Done():
			return 0, c.ctx.Err()
		}
	}
	n := copy(p, c.cur.b)
	c.cur.b = c.cur.b[n:]
	if len(c.cur.b) == 0 && c.cur.err != nil {
		return n, c.cur.err
	}
	return n, nil
}

// progressWriter counts what passes to the Writer.
type progressWriter struct {
	w io.Writer
	p *progress
}

func (pw progressWriter) Write(b []byte) (int, error) {
	n, err := pw.w.Write(b)
	pw.p.add(b[:n])
	if err != nil {
		err = writeError{err}
	}
	return n, err
}

// startWriter calls start before its first Write.
type startWriter struct {
	w     io.Writer
	start func() // sync.OnceFunc
}

func (sw startWriter) Write(b []byte) (int, error) {
	sw.start()
	return sw.w.Write(b)
}

// writeError tells a failed send from a failed read of stdin in send's copy.
type writeError struct{ err error }

func (e writeError) Error() string { return e.err.Error() }
func (e writeError) Unwrap() error { return e.err }
