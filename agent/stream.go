package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/privgroup"
	"github.com/zyre-go/zyre/privgroup/zyregroup"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

// Private streams through the agent: "stream.send" and "stream.recv"
// attach a private group (zyregroup) to the agent's node, fed by a tap of
// every event, and carry the stream's octets over the connection in
// frames (client.WriteFrame). One stream per group at a time.

// StreamAck is the WHISPER a receiver sends to the sender at the end of a
// stream (frames StreamAck, "EOF", group), as "zyre stream recv" does.
const StreamAck = "zyre-stream/1"

// The other WHISPERs of "zyre stream" and "zyre chat" about a private
// group, frames StreamAck, the kind, the group: a probe of a silent member
// (answered with ProbedFrame), and a sender's notice that it removed us
// (a fourth frame: why).
const (
	ProbeFrame   = "PROBE"
	ProbedFrame  = "PROBED"
	RemovedFrame = "REMOVED"
	// ProbeWait is how long a probe may go unanswered before the member
	// is taken for cut off.
	ProbeWait = 3 * time.Second
)

// A stream's sender says so, which a private chat's member does not: it
// whispers frames StreamAck, StreamingFrame, the group to the group's
// peers when its stream starts, and in answer to a QueryFrame (frames
// StreamAck, QueryFrame, the group) while the stream goes out (before its
// end is sent). A receiver that names no sender reads the first whose
// key it holds that said so (AwaitStreamer), never one that only chats.
//
// A private chat's member answers a StreamingFrame with a ChattingFrame
// (frames StreamAck, ChattingFrame, the group): it reads no stream, and
// the sender waits for no acknowledgement of it (Roster.Decline).
//
// A member that does not stream answers a QueryFrame too (AnswerQuery): a
// chat with a ChattingFrame, any other (a receiver; a sender whose end is
// sent) with an IdleFrame, so that a receiver can tell at once that
// nobody streams (StreamerWatch.Nobody).
const (
	QueryFrame     = "QUERY"
	StreamingFrame = "STREAMING"
	ChattingFrame  = "CHATTING"
	IdleFrame      = "IDLE"
	// RefusedFrame answers a StreamingFrame of a sender whose key we
	// refused (our trust decision refuses it): we read nothing of its
	// stream, and it waits for no acknowledgement of ours.
	RefusedFrame = "REFUSED"
	// StreamQueryInterval is how often a waiting receiver asks again the
	// senders whose keys it holds and that have not said they stream.
	StreamQueryInterval = 2 * time.Second
	// StreamSettle is the least time a receiver looks before it says
	// that nobody streams: peers and their keys arrive over a beacon
	// interval or two.
	StreamSettle = 2 * time.Second
)

// StreamerWatch is what AwaitStreamer asks of its caller and tells it.
// The functions are called on AwaitStreamer's goroutine.
type StreamerWatch struct {
	// Streaming reports whether a peer said it streams (StreamingFrame).
	Streaming func(uuid.UUID) bool
	// Answered is a peer's answer that it streams nothing now
	// (ChattingFrame or IdleFrame), else "" (nil: none is known).
	Answered func(uuid.UUID) string
	// Query asks a peer whether it streams (whispers a QueryFrame).
	Query func(uuid.UUID)
	// Nobody, if set, is told when every trusted member there whose key
	// we hold (at least one) has said it streams nothing, with their
	// answers: once each time that set changes, no sooner than
	// StreamSettle after the start. The wait goes on: a stream may start.
	Nobody func(answers map[uuid.UUID]string)
	// Absent, if set, is called once, Discovery after the start, when no
	// sender's key is held by then: the caller says so if nobody has
	// joined the group at all (AbsentNotice). The wait goes on.
	Absent func()
}

// AwaitStreamer waits until g holds the key of a sender that said it
// streams (w.Streaming reports it) and returns that sender; w.Query asks
// a sender (whispers a QueryFrame), when its key is first seen and every
// StreamQueryInterval after; w.Nobody hears when every member there said
// it streams nothing. The error, when ctx ends first, is a
// *NotStreamingError naming the senders whose keys g holds.
func AwaitStreamer(ctx context.Context, g *zyregroup.Group, w StreamerWatch) (uuid.UUID, error) {
	asked := map[uuid.UUID]time.Time{}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	told := "" // the answers last given to w.Nobody
	absent := w.Absent
	for {
		senders := g.Senders()
		slices.SortFunc(senders, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
		for _, p := range senders {
			if w.Streaming(p) {
				return p, nil
			}
		}
		for _, p := range senders {
			if t, ok := asked[p]; !ok || time.Since(t) >= StreamQueryInterval {
				asked[p] = time.Now()
				w.Query(p)
			}
		}
		if absent != nil && len(senders) == 0 && time.Since(start) >= Discovery {
			absent()
			absent = nil
		}
		if w.Nobody != nil && w.Answered != nil && time.Since(start) >= StreamSettle {
			if answers, key := nobodyStreams(senders, w.Answered); answers != nil && key != told {
				told = key
				w.Nobody(answers)
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return uuid.Nil, &NotStreamingError{Group: g.Name(), Senders: senders, Err: ctx.Err()}
		}
	}
}

// nobodyStreams returns the answers of the members there when every one
// whose key we hold (senders, sorted; at least one) said it streams
// nothing, with a text of them to compare, else nil. A member whose key we
// lack streams nothing we could read (it does not trust us, or its key is
// on the way: the wait goes on).
func nobodyStreams(senders []uuid.UUID, answered func(uuid.UUID) string) (map[uuid.UUID]string, string) {
	if len(senders) == 0 {
		return nil, ""
	}
	answers := make(map[uuid.UUID]string, len(senders))
	var key strings.Builder
	for _, p := range senders { // sorted
		a := answered(p)
		if a == "" {
			return nil, ""
		}
		answers[p] = a
		key.WriteString(p.String() + a)
	}
	return answers, key.String()
}

// NobodyText is StreamerWatch.Nobody's notice for a user: nobody streams
// in group yet, who is there and what each does (name names a peer), and
// how long the receiver waits for a stream to start.
func NobodyText(group string, answers map[uuid.UUID]string, name func(uuid.UUID) string, wait time.Duration) string {
	ids := slices.Collect(maps.Keys(answers))
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	parts := make([]string, len(ids))
	for i, p := range ids {
		n := name(p)
		if n == "" {
			n = "-"
		}
		what := "streams nothing"
		if answers[p] == ChattingFrame {
			what = "chats"
		}
		parts[i] = n + " " + p.String()[:8] + " " + what
	}
	return fmt.Sprintf("nothing is being streamed in %q yet: %s; waiting up to %v for a stream to start (--wait)",
		group, strings.Join(parts, ", "), wait)
}

// NotStreamingError is AwaitStreamer's error: nobody streams in Group;
// Senders are the members whose keys we hold (they chat, or stream
// nothing now).
type NotStreamingError struct {
	Group   string
	Senders []uuid.UUID
	Err     error
}

func (e *NotStreamingError) Error() string {
	return fmt.Sprintf("nothing is being streamed in %q: no trusted member said it streams (%v)", e.Group, e.Err)
}

func (e *NotStreamingError) Unwrap() error { return e.Err }

// Text is the error for a user: nothing streamed, who is there, what to
// do; name names a peer. A wait that timed out (Err is the deadline) is
// said as such, with wait (--wait), not as "context deadline exceeded".
func (e *NotStreamingError) Text(name func(uuid.UUID) string, wait time.Duration) string {
	if len(e.Senders) == 0 {
		if errors.Is(e.Err, context.DeadlineExceeded) {
			return fmt.Sprintf("no trusted sender in %q within %v (--wait): nobody there gives this device its key (is the sender trusted? see zyre trust, --trust)", e.Group, wait)
		}
		return fmt.Sprintf("no trusted sender in %q: nobody there gives this device its key (is the sender trusted? see zyre trust, --trust): %v", e.Group, e.Err)
	}
	names := make([]string, len(e.Senders))
	for i, p := range e.Senders {
		n := name(p)
		if n == "" {
			n = "-"
		}
		names[i] = n + " " + p.String()[:8]
	}
	why := ": " + e.Err.Error()
	if errors.Is(e.Err, context.DeadlineExceeded) {
		why = fmt.Sprintf(" (waited %v, --wait)", wait)
	}
	return fmt.Sprintf("nothing is being streamed in %q: %s there stream(s) nothing (a private chat?); "+
		"a stream that ended before this receiver started is gone: start the receiver first, then the sender%s",
		e.Group, strings.Join(names, ", "), why)
}

// StreamTapQueue is a stream's queue of node events (a full one drops and
// tells the Group with an Overflow, which resynchronises).
const StreamTapQueue = 4096

// streamConn writes a stream's frames.
type streamConn struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func (sc *streamConn) msg(m client.StreamMsg) error {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if err := client.WriteMsg(sc.w, m); err != nil {
		return err
	}
	return sc.w.Flush()
}

func (sc *streamConn) data(p []byte) error {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for len(p) > 0 {
		k := min(len(p), client.MaxFrame)
		if err := client.WriteFrame(sc.w, client.FrameData, p[:k]); err != nil {
			return err
		}
		p = p[k:]
	}
	return sc.w.Flush()
}

func (s *Server) serveStream(ctx context.Context, c *net.UnixConn, rd *bufio.Reader, line []byte) {
	sc := &streamConn{w: bufio.NewWriter(c)}
	var req client.StreamRequest
	if err := json.Unmarshal(line, &req); err != nil {
		sc.msg(client.StreamMsg{Kind: client.StreamError, Error: "bad request: " + err.Error()})
		return
	}
	res, err := s.stream(ctx, c, rd, sc, &req)
	if err != nil {
		// With what is known so far: a send that waited in vain for
		// acknowledgements names its receivers.
		res.Kind, res.Error = client.StreamError, stoppedText(ctx, err)
		sc.msg(res)
		return
	}
	res.Kind = client.StreamResult
	sc.msg(res)
}

// streamGroup is a private group of the agent's node for one stream.
type streamGroup struct {
	*zyregroup.Group
	acks   chan uuid.UUID
	ending atomic.Bool
	opaque atomic.Int64 // UnixNano of the first record of the read sender we could not open since the last we could
	sender atomic.Pointer[uuid.UUID]
	// readers: the senders a private chat reads (chat.go), uuid.UUID ->
	// *atomic.Int64: UnixNano of the first record of it we could not open
	// since its last line.
	readers sync.Map
	// probed: senders we read that went silent and were probed, unanswered
	// (uuid.UUID -> time.Time); removed: senders we read that told us we
	// are removed (uuid.UUID -> why).
	probed, removed sync.Map
	// heard: when each peer's last message (a WHISPER to us, a line
	// of its chat) came (uuid.UUID -> time.Time): one that arrives
	// after a probe answers it (heardFrom).
	heard sync.Map
	// writing: our stream goes out (a stream's, not a chat's), until its
	// end is sent; streaming: the senders that said they stream
	// (uuid.UUID -> struct{}).
	writing   atomic.Bool
	streaming sync.Map
	// idle: the members that said they stream nothing (uuid.UUID ->
	// ChattingFrame or IdleFrame), until they join again or stream.
	idle sync.Map
	// chatReaders: a private chat's Readers (uuid.UUID ->
	// *zyregroup.Reader), closed when their sender says it streams.
	chatReaders sync.Map
	// rejoined: peers that joined the group again (uuid.UUID ->
	// struct{}), for a chat that read their last stream to its end.
	rejoined sync.Map
	// opened is Group, for the event callback (set once Open returned).
	opened atomic.Pointer[zyregroup.Group]
	// chat: a private chat uses the group; recv: a stream receiver does
	// (sharedGroup); roster: our stream's, while it goes out.
	chat, recv atomic.Bool
	roster     atomic.Pointer[Roster]
}

// markStreaming records that peer streams, and closes a chat's Reader of
// it: the records that follow are a file, not lines. On the Group's
// event reader, before those records are handled.
func (g *streamGroup) markStreaming(peer uuid.UUID) {
	if rd, ok := g.chatReaders.Load(peer); ok {
		rd.(*zyregroup.Reader).Close() // first: a stream receiver beside the chat then opens its own
	}
	g.streaming.Store(peer, struct{}{})
}

// isStreaming reports whether peer said it streams.
func (g *streamGroup) isStreaming(peer uuid.UUID) bool {
	_, ok := g.streaming.Load(peer)
	return ok
}

// answered is peer's answer that it streams nothing, or "".
func (g *streamGroup) answered(peer uuid.UUID) string {
	if v, ok := g.idle.Load(peer); ok {
		return v.(string)
	}
	return ""
}

// reading reports whether peer is a sender we read.
func (g *streamGroup) reading(peer uuid.UUID) bool {
	if p := g.sender.Load(); p != nil && *p == peer {
		return true
	}
	_, ok := g.readers.Load(peer)
	return ok
}

// cutOff returns why the sender peer, named name, is no longer read: it
// told us we are removed, or a probe went unanswered for ProbeWait; nil
// while neither. backlog is zre.Node.PeerBacklog(peer): while our own
// messages to peer wait to go out (a large transfer to it over a slow
// link), the probe waits behind them, and its ProbeWait starts only once
// they went out (user trial 5: a 32 MB stream on a 40 Mbit/s link had a
// chat say its members were cut off while their lines arrived).
func (g *streamGroup) cutOff(peer uuid.UUID, name, group string, backlog int) error {
	return g.cutOffAt(peer, name, group, backlog, time.Now())
}

// cutOffAt is cutOff at now.
func (g *streamGroup) cutOffAt(peer uuid.UUID, name, group string, backlog int, now time.Time) error {
	if why, ok := g.removed.Load(peer); ok {
		return fmt.Errorf("%s %s removed this device from the private group %q: %s", name, peer.String()[:8], group, why)
	}
	t, ok := g.probed.Load(peer)
	if !ok {
		return nil
	}
	if backlog != 0 {
		// Not if an answer deleted it meanwhile.
		g.probed.CompareAndSwap(peer, t, now)
		return nil
	}
	if now.Sub(t.(time.Time)) >= ProbeWait {
		return fmt.Errorf("%s %s sends this device nothing any more and answers no probe while its beacons arrive: cut off from the private group %q (revoked, or the network drops the connection)",
			name, peer.String()[:8], group)
	}
	return nil
}

// heardFrom notes a message from peer at now: it answers a probe sent
// before.
func (g *streamGroup) heardFrom(peer uuid.UUID, now time.Time) {
	g.heard.Store(peer, now)
	if t, ok := g.probed.Load(peer); ok && !t.(time.Time).After(now) {
		g.probed.CompareAndDelete(peer, t)
	}
}

// heardSince reports whether a message from peer came after at.
func (g *streamGroup) heardSince(peer uuid.UUID, at time.Time) bool {
	t, ok := g.heard.Load(peer)
	return ok && t.(time.Time).After(at)
}

// BackText is what a chat says of a member it said was cut off once a
// message of it arrives again.
func BackText(name string, peer uuid.UUID, group string) string {
	return fmt.Sprintf("%s %s is back: its messages arrive again (no longer cut off from the private group %q)", name, peer.String()[:8], group)
}

func (s *Server) stream(ctx context.Context, c *net.UnixConn, rd *bufio.Reader, sc *streamConn, req *client.StreamRequest) (client.StreamMsg, error) {
	var none client.StreamMsg
	n := s.cfg.Node
	switch {
	case !n.Secure() || s.cfg.Secret.IsZero():
		return none, errors.New("the agent's node is in plain mode: a private stream needs a secure node")
	case req.Group == "" || len(req.Group) > privgroup.MaxGroupLen:
		return none, fmt.Errorf("group name of %d octets, want 1..%d", len(req.Group), privgroup.MaxGroupLen)
	case req.Chunk < 0 || req.Chunk > privgroup.MaxPlaintext-privgroup.ChunkHeaderSize:
		return none, fmt.Errorf("chunk %d out of range 1..%d", req.Chunk, privgroup.MaxPlaintext-privgroup.ChunkHeaderSize)
	case req.Members < 0 || req.WaitMS < 0 || req.Limit < 0:
		return none, errors.New("negative members, wait or limit")
	}
	suite, err := privgroup.ParseSuite(orAuto(req.Suite))
	if err != nil {
		return none, err
	}
	wait := 30 * time.Second
	if req.WaitMS > 0 {
		wait = time.Duration(req.WaitMS) * time.Millisecond
	}
	opts := zyregroup.Options{Secret: s.cfg.Secret, ChunkSize: req.Chunk, Crypto: privgroup.Options{Suite: suite}, Logger: s.log}
	switch req.Trust {
	case "any":
		opts.Trusted = func(uuid.UUID, curve.PublicKey) bool { return true }
	case "", "verified", "tofu":
		if s.cfg.Trust == nil {
			return none, errors.New("the agent has no trust store")
		}
		opts.Trust, opts.TrustTOFU = s.cfg.Trust, req.Trust == "tofu"
	default:
		return none, fmt.Errorf("trust %q: want verified, tofu or any", req.Trust)
	}
	// The stream ends with its client.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	use, trust := "stream recv", req.Trust
	if req.Op == "stream.send" {
		use = "stream send"
	}
	if trust == "" {
		trust = "verified"
	}
	g, closeGroup, err := s.openGroup(ctx, req.Group, opts, use, trust)
	if err != nil {
		return none, err
	}
	defer closeGroup()
	if req.Op == "stream.send" {
		// The client's frames: data, then the end. Its hanging up, or
		// anything else, cuts the stream.
		return s.streamSend(sctx, rd, sc, g, req, wait)
	}
	// While reading, the client only hangs up.
	go func() {
		var one [1]byte
		rd.Read(one[:])
		cancel()
	}()
	return s.streamRecv(sctx, sc, g, req, wait)
}

// sharedGroup is a private group of the agent's node used by a private
// chat and a stream receiver at once (usertry2 #4: the README's story
// reads a stream in the group a chat is open in). A stream send shares
// it with nothing: this device has one sender key (one Writer) per group,
// which the chat's lines hold while it runs. Owned by the event goroutine
// but g, err and closeGroup, set by the opener before ready is closed.
type sharedGroup struct {
	ready      chan struct{}
	g          *streamGroup
	err        error
	closeGroup func()
	users      map[string]bool // "chat", "stream send", "stream recv"
	trust      string
}

// refuse says why use, with trust, cannot share the group, or nil.
func (sh *sharedGroup) refuse(group, use, trust string) error {
	var other string
	for u := range sh.users {
		other = u
	}
	switch {
	case use == "stream send" && sh.users["chat"]:
		return fmt.Errorf("a private chat in %q runs through this agent, and its lines hold this device's one sender key in the group: "+
			"a stream would mix with them; end the chat (Ctrl-D), stream, then chat again (or stream in another group)", group)
	case use == "chat" && sh.users["stream send"]:
		return fmt.Errorf("a stream goes out in %q through this agent and holds this device's one sender key in the group: "+
			"chat once it has ended (or chat in another group)", group)
	case sh.users[use]:
		return fmt.Errorf("a %s in %q runs already through this agent: one at a time per group", use, group)
	case use == "stream send" || sh.users["stream send"]:
		return fmt.Errorf("a %s in %q runs through this agent: a stream send shares the group with nothing else; wait for its end", other, group)
	case sh.trust != trust:
		return fmt.Errorf("a %s in %q runs through this agent, trusting %s: a %s beside it trusts the same (--trust %s)", other, group, sh.trust, use, sh.trust)
	}
	return nil
}

// openGroup opens the private group for use ("chat", "stream send" or
// "stream recv") trusting trust (verified, tofu, any): the agent's
// group already open for a chat or a stream receiver is shared between
// them (opts are the first user's); closeGroup releases it, and the last
// user's closes it.
func (s *Server) openGroup(ctx context.Context, group string, opts zyregroup.Options, use, trust string) (*streamGroup, func(), error) {
	var sh *sharedGroup
	var refuse error
	creator := false
	if !s.do(ctx, func() {
		if sh = s.xfer.shared[group]; sh == nil {
			if s.xfer.shared == nil {
				s.xfer.shared = map[string]*sharedGroup{}
			}
			sh = &sharedGroup{ready: make(chan struct{}), users: map[string]bool{}, trust: trust}
			s.xfer.shared[group], creator = sh, true
		} else if refuse = sh.refuse(group, use, trust); refuse != nil {
			return
		}
		sh.users[use] = true
	}) {
		return nil, nil, errors.New("the agent is stopping")
	}
	if refuse != nil {
		return nil, nil, refuse
	}
	release := func() bool {
		last := false
		ok := s.do(ctx, func() {
			delete(sh.users, use)
			if len(sh.users) == 0 && s.xfer.shared[group] == sh {
				delete(s.xfer.shared, group)
				last = true
			}
		})
		return last || !ok
	}
	if creator {
		sh.g, sh.closeGroup, sh.err = s.attachGroup(ctx, group, opts)
		close(sh.ready)
	} else {
		select {
		case <-sh.ready:
		case <-ctx.Done():
			release()
			return nil, nil, ctx.Err()
		}
	}
	if sh.err != nil {
		release()
		return nil, nil, sh.err
	}
	return sh.g, func() {
		if release() {
			sh.closeGroup()
		}
	}, nil
}

// attachGroup attaches the private group to the agent's node, fed by a
// tap of every event; one per group at a time. closeGroup undoes it.
func (s *Server) attachGroup(ctx context.Context, group string, opts zyregroup.Options) (g *streamGroup, closeGroup func(), err error) {
	n := s.cfg.Node
	t := &tap{Node: n, ch: make(chan zre.Event, StreamTapQueue), all: true}
	if slices.Contains(n.OwnGroups(), group) {
		t.keep = group
	}
	busy := false
	if !s.do(ctx, func() {
		if s.xfer.streams[group] {
			busy = true
			return
		}
		if s.xfer.taps == nil {
			s.xfer.taps = map[*tap]struct{}{}
		}
		if s.xfer.streams == nil {
			s.xfer.streams = map[string]bool{}
		}
		s.xfer.taps[t] = struct{}{}
		s.xfer.streams[group] = true
	}) {
		return nil, nil, errors.New("the agent is stopping")
	}
	if busy {
		return nil, nil, fmt.Errorf("a stream or private chat in %q runs already through this agent: one at a time per group", group)
	}
	untap := func() {
		s.do(ctx, func() {
			delete(s.xfer.taps, t)
			delete(s.xfer.streams, group)
		})
	}
	g = &streamGroup{acks: make(chan uuid.UUID, 64)}
	trusted := TrustDecision(&opts)
	opts.OnOpaque = func(peer uuid.UUID, _ []byte) {
		now := time.Now().UnixNano()
		if p := g.sender.Load(); p != nil && *p == peer {
			g.opaque.CompareAndSwap(0, now)
		}
		if v, ok := g.readers.Load(peer); ok {
			v.(*atomic.Int64).CompareAndSwap(0, now)
		}
	}
	o, err := zyregroup.Open(t, group, opts, func(ev zre.Event) {
		if j, ok := ev.(*zre.Join); ok && j.Group == group {
			// Back in the group (a new chat, or a stream): not a
			// streamer until it says so; a chat reads its new stream.
			g.streaming.Delete(j.Peer)
			g.idle.Delete(j.Peer)
			g.rejoined.Store(j.Peer, struct{}{})
			return
		}
		switch e := ev.(type) {
		case *zre.Whisper:
			g.heardFrom(e.Peer, time.Now())
		case *zre.Shout:
			g.heardFrom(e.Peer, time.Now())
		}
		if si, ok := ev.(*zre.Silent); ok && g.reading(si.Peer) {
			// Idle, or its node dropped ours: a probe tells.
			g.probed.LoadOrStore(si.Peer, time.Now())
			n.Whisper(si.Peer, []byte(StreamAck), []byte(ProbeFrame), []byte(group))
			return
		}
		w, ok := ev.(*zre.Whisper)
		if !ok || len(w.Content) < 3 || string(w.Content[0]) != StreamAck || string(w.Content[2]) != group {
			return
		}
		switch kind := string(w.Content[1]); {
		case kind == "EOF" && len(w.Content) == 3 && g.ending.Load():
			select {
			case g.acks <- w.Peer:
			default:
			}
		case kind == ProbeFrame && len(w.Content) == 3:
			n.Whisper(w.Peer, []byte(StreamAck), []byte(ProbedFrame), []byte(group))
		case kind == QueryFrame && len(w.Content) == 3:
			if o := g.opened.Load(); o != nil {
				AnswerQuery(n, o, w.Peer, g.writing.Load(), g.chat.Load())
			}
		case kind == StreamingFrame && len(w.Content) == 3:
			if RefuseUntrusted(n, group, w.Peer, trusted) {
				return
			}
			g.idle.Delete(w.Peer)
			g.markStreaming(w.Peer)
			if g.chat.Load() && !g.recv.Load() {
				n.Whisper(w.Peer, []byte(StreamAck), []byte(ChattingFrame), []byte(group))
			}
		case kind == ChattingFrame && len(w.Content) == 3:
			if r := g.roster.Load(); r != nil {
				r.Decline(w.Peer)
			}
			if !g.isStreaming(w.Peer) {
				g.idle.Store(w.Peer, ChattingFrame)
			}
		case kind == RefusedFrame && len(w.Content) == 3:
			if r := g.roster.Load(); r != nil {
				r.Refuse(w.Peer)
			}
		case kind == IdleFrame && len(w.Content) == 3:
			if !g.isStreaming(w.Peer) {
				g.idle.Store(w.Peer, IdleFrame)
			}
		case kind == ProbedFrame && len(w.Content) == 3:
			g.probed.Delete(w.Peer)
		case kind == RemovedFrame && len(w.Content) == 4 && g.reading(w.Peer):
			why := string(w.Content[3])
			g.removed.Store(w.Peer, why)
		}
	})
	if err != nil {
		untap()
		return nil, nil, err
	}
	g.Group = o
	g.opened.Store(o)
	return g, func() { o.Close(); untap() }, nil
}

func orAuto(s string) string {
	if s == "" {
		return "auto"
	}
	return s
}

// AnnounceStream tells the members of g (those given our key: the
// others learn nothing from us) that our stream starts (a
// StreamingFrame).
func AnnounceStream(n *zre.Node, g *zyregroup.Group) {
	for _, p := range g.Members() {
		n.Whisper(p, []byte(StreamAck), []byte(StreamingFrame), []byte(g.Name()))
	}
}

// TrustDecision returns opts' trust decision as the Group makes it
// (Trusted, else Trust with TrustTOFU: verified or introduced, or tofu
// with TrustTOFU, the key bound to that peer), and sets opts.Trusted to
// it, so that the Group and its caller (RefuseUntrusted) decide alike.
// nil when opts has neither.
func TrustDecision(opts *zyregroup.Options) func(uuid.UUID, curve.PublicKey) bool {
	if opts.Trusted == nil && opts.Trust != nil {
		st, tofu := opts.Trust, opts.TrustTOFU
		opts.Trusted = func(peer uuid.UUID, key curve.PublicKey) bool {
			rec, ok, err := st.Lookup(key)
			if err != nil || !ok || (rec.UUID != uuid.Nil && rec.UUID != peer) {
				return false
			}
			return rec.State == trust.StateVerified || rec.State == trust.StateIntroduced || rec.State == trust.StateTOFU && tofu
		}
	}
	return opts.Trusted
}

// RefuseUntrusted answers the StreamingFrame of peer with a RefusedFrame
// when trusted refuses it (so the Group refused its key: we read nothing
// of its stream) and reports whether it did. The answer tells the sender
// only what it could see itself: that we do not read it.
func RefuseUntrusted(n *zre.Node, group string, peer uuid.UUID, trusted func(uuid.UUID, curve.PublicKey) bool) bool {
	if trusted == nil {
		return false
	}
	key, ok := n.PeerKey(peer)
	if !ok || trusted(peer, key) {
		return false
	}
	n.Whisper(peer, []byte(StreamAck), []byte(RefusedFrame), []byte(group))
	return true
}

// AnswerQuery answers a QueryFrame of peer, a member of g (given our
// key; a stranger learns nothing): StreamingFrame while writing, else
// ChattingFrame for a private chat, else IdleFrame.
func AnswerQuery(n *zre.Node, g *zyregroup.Group, peer uuid.UUID, writing, chatting bool) {
	if !slices.Contains(g.Members(), peer) {
		return
	}
	kind := IdleFrame
	switch {
	case writing:
		kind = StreamingFrame
	case chatting:
		kind = ChattingFrame
	}
	n.Whisper(peer, []byte(StreamAck), []byte(kind), []byte(g.Name()))
}

func (s *Server) streamSend(ctx context.Context, rd *bufio.Reader, sc *streamConn, g *streamGroup,
	req *client.StreamRequest, wait time.Duration) (client.StreamMsg, error) {
	var none client.StreamMsg
	n := s.cfg.Node
	wctx, wcancel := context.WithTimeout(ctx, wait)
	defer wcancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	// The client sends nothing before "streaming": a Peek that returns
	// meanwhile is its hanging up. (It returns later with the first frame;
	// frames are read once it has.)
	peeked := make(chan error, 1)
	go func() { _, err := rd.Peek(1); peeked <- err }()
	noticed := false
	for len(g.Members()) < req.Members {
		// Nobody in the group (a mistyped name, usually): said once
		// the node has met its network, and the wait goes on.
		if !noticed && time.Since(s.started) >= Discovery {
			noticed = true
			if near, ok := NearGroup(n, req.Group); ok {
				return none, NearGroupError(n, req.Group, near)
			}
			if text, ok := AbsentNotice(n, req.Group, wait); ok {
				if err := sc.msg(client.StreamMsg{Kind: client.StreamNobody, Text: text}); err != nil {
					return none, err
				}
			}
		}
		select {
		case <-tick.C:
		case err := <-peeked:
			if err == nil {
				err = errors.New("data before the stream was opened")
			}
			return none, fmt.Errorf("stream: the client, while waiting for members: %w", err)
		case <-wctx.Done():
			if ctx.Err() != nil {
				return none, ctx.Err()
			}
			return none, MembersError(n, req.Group, len(g.Members()), req.Members, wait)
		}
	}
	// The receivers whose acknowledgements we wait for: the members
	// holding our key as the first octets go out (or the end, for an
	// empty stream).
	roster := NewRoster(s.cfg.Node, g.Group, s.cfg.Trust)
	g.roster.Store(roster)
	sentTo := len(g.Members())
	started := false
	w, err := g.NewWriter()
	if err != nil {
		return none, err
	}
	// Said before the first record, which follows it on each
	// connection: a private chat of a member then reads none of it.
	g.writing.Store(true)
	AnnounceStream(n, g.Group)
	if err := sc.msg(client.StreamMsg{Kind: client.StreamStreaming, Members: sentTo, Suite: g.Suite().String()}); err != nil {
		return none, err
	}
	select {
	case <-peeked:
	case <-ctx.Done():
		return none, ctx.Err()
	}
	// The roster follows the members while the stream goes out (a
	// member removed on the way is named in the result), then the wait
	// for the acknowledgements takes it over.
	stopWatch := roster.Watch(func([]client.StreamReceiver) {})
	defer stopWatch()
	var buf []byte
	var total int64
	for {
		kind, p, err := client.ReadFrame(rd, buf)
		if err != nil {
			// No Close: receivers see the stream cut, not ended.
			return none, fmt.Errorf("stream: the client went away after %d octets: %w (the stream was not ended: receivers see it cut)", total, err)
		}
		if kind == client.FrameEnd {
			break
		}
		if kind != client.FrameData {
			return none, fmt.Errorf("stream: a frame %q from the client", kind)
		}
		buf = p
		if !started {
			started, sentTo = true, roster.Start()
		}
		if _, err := w.Write(p); err != nil {
			return none, fmt.Errorf("stream: sending after %d octets: %w", total, err)
		}
		total += int64(len(p))
	}
	stopWatch()
	if !started {
		sentTo = roster.Start()
	}
	g.ending.Store(true)
	g.writing.Store(false) // a receiver that asks now would come too late
	if err := w.Close(); err != nil {
		return none, fmt.Errorf("stream: ending the stream: %w", err)
	}
	res, err := AwaitAcks(ctx, roster, g.acks, req.Live, req.Members, wait, nil)
	res.SentTo = max(sentTo, len(res.Receivers))
	return res, err
}

// AckGrace is how long a sender still waits for the acknowledgement of a
// receiver that left or stopped: its acknowledgement (over its
// connection) may come after the news of its leaving (a goodbye beacon).
const AckGrace = 5 * time.Second

// AwaitAcks waits, within wait, for the acknowledgements of the end of a
// stream (acks: the peers that sent one) by every receiver of the start;
// live, by members of them. A receiver removed on the way because its key
// was revoked (or is no longer trusted) owes none; one that left or
// stopped is waited for AckGrace more, then its missing acknowledgement
// is an error. The result (Acked, Receivers) names the receivers, also
// with the error. onRemoved, if not nil, is called with the receivers
// removed meanwhile (those that left, once AckGrace is over), on the
// caller's goroutine.
func AwaitAcks(ctx context.Context, roster *Roster, acks <-chan uuid.UUID, live bool, members int, wait time.Duration,
	onRemoved func([]client.StreamReceiver)) (client.StreamMsg, error) {
	actx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	report := func(rs []client.StreamReceiver) {
		if len(rs) > 0 && onRemoved != nil {
			onRemoved(rs)
		}
	}
	var left []uuid.UUID // left or stopped during the wait, not reported yet
	lastLeft := time.Now()
	reportLeft := func() {
		var rs []client.StreamReceiver
		for _, r := range roster.Missing() {
			for _, p := range left {
				if r.Peer == p.String() && r.Removed != "" {
					rs = append(rs, r)
				}
			}
		}
		report(rs)
	}
	for {
		for drained := false; !drained; {
			select {
			case p := <-acks:
				roster.Ack(p)
			default:
				drained = true
			}
		}
		var revoked []client.StreamReceiver
		for _, r := range roster.Update() {
			if r.Revoked {
				revoked = append(revoked, r)
				continue
			}
			if p, err := uuid.Parse(r.Peer); err == nil {
				left, lastLeft = append(left, p), time.Now()
			}
		}
		report(revoked)
		res := client.StreamMsg{Acked: roster.Acked(), Receivers: roster.Receivers()}
		missing := roster.Missing()
		want := res.Acked + len(missing)
		if live {
			want = members - roster.Revoked()
		}
		switch {
		case live && res.Acked >= want:
			return res, nil
		case !live && len(missing) == 0 && res.Acked == 0 && roster.Refused() > 0:
			var refused []client.StreamReceiver
			for _, r := range res.Receivers {
				if r.Refused {
					refused = append(refused, r)
				}
			}
			return res, fmt.Errorf("stream: nobody read the stream: %s refused our key (we are not trusted there)", receiverList(refused))
		case !live && len(missing) == 0:
			return res, nil
		case !live && len(roster.Waiting()) == 0 && time.Since(lastLeft) >= AckGrace:
			reportLeft()
			return res, fmt.Errorf("stream: %d of %d members acknowledged the end; not acknowledged by %s",
				res.Acked, want, receiverList(missing))
		}
		select {
		case p := <-acks:
			roster.Ack(p)
		case <-tick.C:
		case <-actx.Done():
			reportLeft()
			return res, fmt.Errorf("stream: %d of %d members acknowledged the end; not acknowledged by %s: %w",
				res.Acked, want, receiverList(missing), actx.Err())
		}
	}
}

// receiverList lists receivers as "name 1234abcd (why removed), ...",
// the names as they are (a terminal needs them made safe).
func receiverList(rs []client.StreamReceiver) string {
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteString(", ")
		}
		name := r.Name
		if name == "" {
			name = "-"
		}
		b.WriteString(name + " " + r.Peer[:min(8, len(r.Peer))])
		if r.Removed != "" {
			b.WriteString(" (" + r.Removed + ")")
		}
	}
	return b.String()
}

// opaqueWait is how long the records of the sender we read may stay
// unopenable before we take it that it no longer gives us its key.
const opaqueWait = 5 * time.Second

func (s *Server) streamRecv(ctx context.Context, sc *streamConn, g *streamGroup, req *client.StreamRequest, wait time.Duration) (client.StreamMsg, error) {
	var none client.StreamMsg
	n := s.cfg.Node
	// A private chat beside us in the group (sharedGroup) no longer
	// declines a stream: we read it.
	g.recv.Store(true)
	defer func() { g.sender.Store(nil); g.recv.Store(false) }()
	wctx, wcancel := context.WithTimeout(ctx, wait)
	var sender uuid.UUID
	var err error
	if req.PeerName != "" {
		// Named: that member's stream, whatever it is.
		sender, err = g.AwaitSender(wctx, func(p uuid.UUID) bool { return n.PeerName(p) == req.PeerName })
	} else {
		// The member that streams, not one that only chats.
		sender, err = AwaitStreamer(wctx, g.Group, StreamerWatch{Streaming: g.isStreaming, Answered: g.answered,
			Query: func(p uuid.UUID) { n.Whisper(p, []byte(StreamAck), []byte(QueryFrame), []byte(req.Group)) },
			Nobody: func(a map[uuid.UUID]string) {
				sc.msg(client.StreamMsg{Kind: client.StreamNobody, Text: NobodyText(req.Group, a, n.PeerName, wait)})
			},
			Absent: func() {
				if text, ok := AbsentNotice(n, req.Group, wait); ok {
					sc.msg(client.StreamMsg{Kind: client.StreamNobody, Text: text})
				}
			}})
	}
	wcancel()
	var ns *NotStreamingError
	switch {
	case errors.As(err, &ns) && ctx.Err() == nil:
		return none, fmt.Errorf("stream: %s", NotStreamingText(n, ns, wait))
	case err != nil && req.PeerName != "":
		return none, fmt.Errorf("stream: no trusted sender named %s: %w", req.PeerName, err)
	case err != nil:
		return none, fmt.Errorf("stream: %w", err)
	}
	name := n.PeerName(sender)
	g.sender.Store(&sender)
	if req.PeerName != "" {
		// Whether it streams tells, if it leaves with nothing sent, why.
		n.Whisper(sender, []byte(StreamAck), []byte(QueryFrame), []byte(req.Group))
	}
	if err := sc.msg(client.StreamMsg{Kind: client.StreamReading, Peer: sender.String(), Name: name}); err != nil {
		return none, err
	}
	// A chat beside us may still hold its Reader of the sender for a
	// moment (markStreaming closes it): try again, briefly.
	rd, err := g.NewReader(sender)
	for try := 0; errors.Is(err, zyregroup.ErrBusy) && try < 100 && ctx.Err() == nil; try++ {
		time.Sleep(20 * time.Millisecond)
		rd, err = g.NewReader(sender)
	}
	if err != nil {
		return none, err
	}
	defer rd.Close()
	rctx, rcancel := context.WithCancelCause(ctx)
	defer rcancel(nil)
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				if err := g.cutOff(sender, name, req.Group, n.PeerBacklog(sender)); err != nil {
					rcancel(err)
					return
				}
				if t := g.opaque.Load(); t != 0 && time.Since(time.Unix(0, t)) >= opaqueWait {
					rcancel(fmt.Errorf("%s %s no longer gives this device its key: removed from the private group %q (revoked?)", name, sender.String()[:8], req.Group))
					return
				}
			case <-rctx.Done():
				return
			}
		}
	}()
	stop := context.AfterFunc(rctx, func() { rd.Close() })
	defer stop()
	chunk := req.Chunk
	if chunk == 0 {
		chunk = privgroup.DefaultChunkSize
	}
	buf := make([]byte, max(chunk, 32<<10))
	var res client.StreamMsg
	var total int64
	ack := func() {
		if werr := n.Whisper(sender, []byte(StreamAck), []byte("EOF"), []byte(req.Group)); werr != nil && !req.Live {
			sc.msg(client.StreamMsg{Kind: client.StreamGap, Text: "acknowledgement not sent: " + werr.Error()})
		}
	}
	limit := req.Limit
	for limit == 0 || total < limit {
		want := buf
		if limit > 0 {
			want = buf[:min(int64(len(buf)), limit-total)]
		}
		k, err := rd.Read(want)
		if k > 0 {
			if werr := sc.data(want[:k]); werr != nil {
				return none, fmt.Errorf("stream: the client went away: %w", werr)
			}
			total += int64(k)
			g.opaque.Store(0)
		}
		var gap *privgroup.GapError
		switch {
		case errors.As(err, &gap) && total == 0 && res.Lost == 0:
			res.Late += gap.Bytes
			sc.msg(client.StreamMsg{Kind: client.StreamLate, Octets: gap.Bytes, Messages: gap.Messages})
		case errors.As(err, &gap):
			res.Lost += gap.Bytes
			sc.msg(client.StreamMsg{Kind: client.StreamGap, Octets: gap.Bytes, Messages: gap.Messages, Text: gap.Error()})
		case err == io.EOF:
			res.Ended = true
			if (res.Lost > 0 || res.Late > 0) && !req.Live {
				return res, nil
			}
			ack()
			res.Acked = 1
			return res, nil
		case err != nil:
			if cause := context.Cause(rctx); rctx.Err() != nil && cause != nil && !errors.Is(cause, context.Canceled) {
				return none, fmt.Errorf("stream: after %d octets: %w", total, cause)
			}
			if ctx.Err() != nil {
				return none, ctx.Err()
			}
			if errors.Is(err, io.ErrUnexpectedEOF) && total == 0 && res.Late == 0 && !g.isStreaming(sender) {
				return none, fmt.Errorf("stream: %s %s left without streaming anything to this device: its stream ended before this receiver started, or it streamed nothing (a private chat?)",
					name, sender.String()[:8])
			}
			if errors.Is(err, zyregroup.ErrRemoved) {
				return none, fmt.Errorf("stream: %s %s removed this device from the private group %q after %d octets: it no longer trusts this device's key", name, sender.String()[:8], req.Group, total)
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				// Said in words: "unexpected EOF" adds nothing for a user.
				return none, fmt.Errorf("stream: %s left or stopped before the end of its stream, after %d octets (the stream was cut)", name, total)
			}
			return none, fmt.Errorf("stream: %w", err)
		}
	}
	if (res.Lost > 0 || res.Late > 0) && !req.Live {
		return res, nil
	}
	// The limit: acknowledge only if the stream ends right there.
	ectx, ecancel := context.WithTimeout(ctx, min(wait, 5*time.Second))
	defer ecancel()
	estop := context.AfterFunc(ectx, func() { rd.Close() })
	defer estop()
	var one [1]byte
	if k, err := rd.Read(one[:]); k == 0 && err == io.EOF {
		res.Ended = true
		ack()
		res.Acked = 1
	}
	return res, nil
}
