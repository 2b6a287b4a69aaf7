// Package agent is the server side of "zyre agent": one long-running node
// per user and device that other processes (the zyre CLI, apps) reach over
// a control socket instead of each starting a node of their own. The
// socket is a Unix socket in a directory of mode 0700, itself of mode 0600,
// and the server refuses a connection from another user by its peer
// credentials (SO_PEERCRED). The protocol is line-delimited JSON
// (spec/agent.md); package agent/client is its client side.
package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/keystore"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

// SubscriberQueue is how many events wait for a slow subscriber before
// further ones are dropped (and counted in the next event's Dropped).
const SubscriberQueue = 1024

// Config configures a Server.
type Config struct {
	// Node is the agent's node, started; the Server reads its Events and
	// nothing else may.
	Node *zre.Node
	// Trust is the node's trust store (nil in plain mode).
	Trust *trust.Store
	// Identity is the node's identity (nil in plain mode), for pairing
	// and for signing trust statements; the caller wipes it after Serve.
	Identity *keystore.Identity
	// Secret is the node's secret key (zero in plain mode): private
	// streams through the agent seal and open with it (stream.go).
	Secret curve.SecretKey
	// ReceiveDir, if set, is where the agent receives, in the background,
	// the offers of the peers of its auto-accept list (background.go);
	// Notify, if set, is told what it received, on its own goroutine.
	ReceiveDir string
	Notify     func(string)
	// Socket is the control socket's path (client.DefaultSocket).
	Socket string
	// Network is where the node runs (its beacon interface, loopback
	// mode, bind host): pairings listen and announce there. A pair
	// request may narrow it, not widen it (spec/agent.md, "Pairing").
	Network Network
	// PairAnyNetwork lets a pair request name any listen address and
	// interface ("zyre agent --pair-any-network").
	PairAnyNetwork bool
	// Home is the node's home directory, reported in Info.
	Home string
	// Version is the software's version, reported in Info.
	Version string
	// OnEvent, if set, is called with every node event on the Server's
	// event goroutine, before subscribers and the agent's own readers
	// (private groups, transfers) get it; it must not block, nor keep
	// the event's content after it returns.
	OnEvent func(zre.Event)
	// Logger gets the server's diagnostics; nil means slog.Default().
	Logger *slog.Logger
}

// Server serves the control socket of one node.
type Server struct {
	cfg     Config
	log     *slog.Logger
	ln      *net.UnixListener
	started time.Time
	// calls run on the event goroutine, which owns tracker and subs.
	calls   chan func()
	tracker *Tracker
	subs    map[*subscriber]struct{}
	uid     int
	wg      sync.WaitGroup
	xfer    xferState // file transfers (transfer.go); the event goroutine's
}

type subscriber struct {
	ch      chan client.Event
	dropped uint64
}

// ErrRunning: another agent answers at the socket.
var ErrRunning = errors.New("agent: an agent already runs")

// Listen makes the socket's directory (mode 0700) when missing, refuses a
// directory that others may write to, removes a stale socket (nothing
// answers), and listens with mode 0600.
func Listen(cfg Config) (*Server, error) {
	if cfg.Node == nil || cfg.Socket == "" {
		return nil, errors.New("agent: Config needs Node and Socket")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	dir := filepath.Dir(cfg.Socket)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("agent: socket directory: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("agent: socket directory: %w", err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return nil, fmt.Errorf("agent: socket directory %s belongs to uid %d, not to us", dir, st.Uid)
	}
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&os.ModeSticky == 0 {
		return nil, fmt.Errorf("agent: socket directory %s is writable by others (mode %04o)", dir, fi.Mode().Perm())
	}
	if c, err := net.DialTimeout("unix", cfg.Socket, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("%w at %s", ErrRunning, cfg.Socket)
	}
	// Only a socket (or a link, itself removed) is stale: a mistyped
	// --socket naming a file or directory of the user's is not removed.
	if fi, err := os.Lstat(cfg.Socket); err == nil && fi.Mode()&(os.ModeSocket|os.ModeSymlink) == 0 {
		return nil, fmt.Errorf("agent: %s is not a socket (mode %v): not removed", cfg.Socket, fi.Mode())
	}
	if err := os.Remove(cfg.Socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("agent: stale socket: %w", err)
	}
	// The umask makes the socket 0600 from its creation on.
	old := syscall.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: cfg.Socket, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("agent: listen: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(cfg.Socket, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("agent: socket mode: %w", err)
	}
	return &Server{cfg: cfg, log: log, ln: ln, started: time.Now(), calls: make(chan func()),
		tracker: NewTracker(), subs: map[*subscriber]struct{}{}, uid: os.Getuid()}, nil
}

// Addr returns the socket's path.
func (s *Server) Addr() string { return s.cfg.Socket }

// Serve reads the node's events and serves the socket until ctx ends or
// the node's events end. It closes the socket (removing its file) and
// waits for its connections before it returns; the node stays open.
func (s *Server) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var conns sync.Map // net.Conn -> struct{}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		var backoff time.Duration
		for {
			c, err := s.ln.AcceptUnix()
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
					return
				}
				// Out of descriptors (a client that opens connections
				// without end) or a connection aborted: wait and go on,
				// as net/http does; the agent must not stop for one
				// client.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("agent: accept", "err", err, "retry", backoff)
				select {
				case <-time.After(backoff):
				case <-ctx.Done():
					return
				}
				continue
			}
			backoff = 0
			conns.Store(c, struct{}{})
			if ctx.Err() != nil {
				// Accepted as Serve stops, perhaps after it closed the
				// connections it knew: its reader would hold Serve's
				// wait until the client hangs up.
				conns.Delete(c)
				c.Close()
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer conns.Delete(c)
				s.serveConn(ctx, c)
			}()
		}
	}()
	s.goBackground(ctx) // background.go
	err := s.loop(ctx)
	cancel()
	s.ln.Close()
	conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
	// Connections still waiting on a call get it refused now.
	go func() {
		for f := range s.calls {
			f()
		}
	}()
	s.wg.Wait()
	close(s.calls)
	return err
}

// loop owns the tracker and the subscribers.
func (s *Server) loop(ctx context.Context) error {
	defer func() {
		for sub := range s.subs {
			close(sub.ch)
			delete(s.subs, sub)
		}
	}()
	events := s.cfg.Node.Events()
	for {
		select {
		case e, ok := <-events:
			if !ok {
				return errors.New("agent: the node stopped")
			}
			// Everything that reads the event's content comes before the
			// taps: a tap's reader (a private group, a transfer) may
			// consume the event and hand its content back to the node
			// (zre.Shout.Release), which then reads other messages into
			// those buffers. The subscribers' copy is made here (EventOf
			// copies the content).
			s.tracker.Handle(e)
			if s.cfg.OnEvent != nil {
				s.cfg.OnEvent(e)
			}
			var ev client.Event
			if len(s.subs) > 0 {
				ev = EventOf(e, time.Now())
				s.nameRefused(e, &ev)
			}
			s.xfer.feed(e)
			for sub := range s.subs {
				ev.Dropped = sub.dropped
				select {
				case sub.ch <- ev:
					sub.dropped = 0
				default:
					sub.dropped++
				}
			}
		case f := <-s.calls:
			f()
		case <-ctx.Done():
			return nil
		}
	}
}

// nameRefused names a peer refused (or refusing us) before its HELLO by
// its record in the trust store, as the one-shot commands do: "REFUSED
// phone2 ...: its key is revoked", not "REFUSED unknown".
func (s *Server) nameRefused(e zre.Event, ev *client.Event) {
	var key curve.PublicKey
	switch e := e.(type) {
	case *zre.Refused:
		key = e.Key
	case *zre.Denied:
		key = e.Key
	default:
		return
	}
	if ev.Name != "" || key.IsZero() || s.cfg.Trust == nil {
		return
	}
	if r, ok, err := s.cfg.Trust.Lookup(key); err == nil && ok {
		ev.Name = r.Name
	}
}

// do runs f on the event goroutine; false when the server is stopping.
func (s *Server) do(ctx context.Context, f func()) bool {
	done := make(chan struct{})
	select {
	case s.calls <- func() { f(); close(done) }:
	case <-ctx.Done():
		return false
	}
	<-done
	return true
}

// serveConn serves one connection: requests one line each, answered in
// order; after "subscribe" only events.
func (s *Server) serveConn(ctx context.Context, c *net.UnixConn) {
	defer c.Close()
	w := bufio.NewWriter(c)
	send := func(r client.Response) error {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		w.Write(append(b, '\n'))
		return w.Flush()
	}
	uid, err := peerUID(c)
	if err != nil || uid != s.uid {
		msg := fmt.Sprintf("refused: uid %d is not the agent's user", uid)
		if err != nil {
			msg = "refused: no peer credentials: " + err.Error()
		}
		s.log.Warn("agent: connection "+msg, "err", err)
		send(client.Response{Error: msg})
		return
	}
	rd := bufio.NewReaderSize(c, 64<<10)
	for {
		line, err := readLine(rd)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				send(client.Response{Error: err.Error()})
			}
			return
		}
		var req client.Request
		if err := json.Unmarshal(line, &req); err != nil {
			send(client.Response{Error: "bad request: " + err.Error()})
			return
		}
		if req.Op == "subscribe" {
			s.subscribe(ctx, req, send)
			return
		}
		if req.Op == "pair" { // pair.go
			s.pair(ctx, c, rd, req, send)
			return
		}
		if h := s.xferOp(req.Op); h != nil {
			h(ctx, c, rd, line) // owns the connection from here
			return
		}
		result, err := s.handle(ctx, req)
		resp := client.Response{ID: req.ID, OK: err == nil}
		if err != nil {
			resp.Error = err.Error()
		} else if result != nil {
			b, merr := json.Marshal(result)
			if merr != nil {
				resp.OK, resp.Error = false, merr.Error()
			}
			resp.Result = b
		}
		if send(resp) != nil {
			return
		}
	}
}

// readLine reads one line of at most client.MaxLine octets.
func readLine(rd *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		part, isPrefix, err := rd.ReadLine()
		if err != nil {
			return nil, err
		}
		line = append(line, part...)
		if len(line) > client.MaxLine {
			return nil, fmt.Errorf("request longer than %d octets", client.MaxLine)
		}
		if !isPrefix {
			return line, nil
		}
	}
}

func (s *Server) subscribe(ctx context.Context, req client.Request, send func(client.Response) error) {
	sub := &subscriber{ch: make(chan client.Event, SubscriberQueue)}
	if !s.do(ctx, func() { s.subs[sub] = struct{}{} }) {
		return
	}
	defer s.do(ctx, func() { delete(s.subs, sub) })
	if send(client.Response{ID: req.ID, OK: true}) != nil {
		return
	}
	for ev := range sub.ch {
		if send(client.Response{ID: req.ID, OK: true, Event: &ev}) != nil {
			return
		}
	}
}

// handle answers one request.
func (s *Server) handle(ctx context.Context, req client.Request) (any, error) {
	n := s.cfg.Node
	switch req.Op {
	case "info":
		i := client.Info{Protocol: client.ProtocolVersion, Version: s.cfg.Version, PID: os.Getpid(), Name: n.Name(),
			UUID: n.UUID().String(), Endpoint: n.Endpoint(), Secure: n.Secure(), Home: s.cfg.Home,
			Groups: n.OwnGroups(), Started: s.started,
			BeaconPort: s.cfg.Network.Port, Interface: s.cfg.Network.Interface, Loopback: s.cfg.Network.Loopback}
		if i.Groups == nil {
			i.Groups = []string{}
		}
		if n.Secure() {
			i.PublicKey = n.PublicKey().Z85()
			i.Fingerprint = trust.Fingerprint(n.PublicKey())
		}
		return i, nil
	case "members":
		var ms []client.Member
		if !s.do(ctx, func() { ms = s.tracker.Members(n, s.cfg.Trust) }) {
			return nil, errors.New("the agent is stopping")
		}
		return ms, nil
	case "join":
		return nil, n.Join(req.Group)
	case "leave":
		return nil, n.Leave(req.Group)
	case "shout":
		if len(req.Content) == 0 {
			return nil, errors.New("shout: no content")
		}
		return nil, n.Shout(req.Group, req.Content...)
	case "whisper":
		id, err := uuid.Parse(req.Peer)
		if err != nil {
			return nil, fmt.Errorf("whisper: peer %q: %w", req.Peer, err)
		}
		if len(req.Content) == 0 {
			return nil, errors.New("whisper: no content")
		}
		return nil, n.Whisper(id, req.Content...)
	case "transfers":
		return s.transfers(ctx)
	case "trust.list":
		if s.cfg.Trust == nil {
			return nil, errors.New("trust.list: the agent's node is in plain mode: no trust store")
		}
		recs, err := s.cfg.Trust.List()
		if err != nil {
			return nil, err
		}
		out := make([]client.TrustRecord, 0, len(recs))
		for i := range recs {
			out = append(out, TrustRecordOf(&recs[i]))
		}
		return out, nil
	case "trust.revoke", "trust.unrevoke", "trust.forget", "trust.accept", "trust.policy": // trustops.go
		return s.trustChange(ctx, req.Op, req.Trust)
	}
	return nil, fmt.Errorf("unknown op %q", req.Op)
}
