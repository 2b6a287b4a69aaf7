package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/internal/autoaccept"
	"github.com/zyre-go/zyre/transfer"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

// File transfer through the agent: "send" and "receive" run
// transfer.Send and transfer.Receive on the agent's node, reading and
// writing the files in the agent's process (the client is of the
// agent's uid, so may read and write them anyway). The event goroutine
// hands the transfers' events (their WHISPERs, ENTER and EXIT) to each
// running transfer through a tap.

// TapQueue is how many events wait for a transfer before further ones are
// dropped (the transfer protocol recovers a lost DATA or ACK; a node drops
// events the same way when its queue is full).
const TapQueue = 512

// xferState is owned by the event goroutine.
type xferState struct {
	taps      map[*tap]struct{}
	receiving bool // a receive runs: a client's, or the background's (background)
	// background: the receive that runs is the background one's
	// (background.go).
	background bool
	streams    map[string]bool         // groups with a stream through the agent (stream.go)
	shared     map[string]*sharedGroup // their users (stream.go)
}

// transfers answers "transfers": how many run.
func (s *Server) transfers(ctx context.Context) (client.Transfers, error) {
	var t client.Transfers
	if !s.do(ctx, func() {
		t.Receiving = s.xfer.receiving
		t.Streams = len(s.xfer.streams)
		t.Background = s.xfer.background
		for tp := range s.xfer.taps {
			if !tp.all && !tp.background {
				t.Sending++
			}
		}
		if t.Receiving && !t.Background {
			t.Sending--
		}
	}) {
		return t, errors.New("the agent is stopping")
	}
	return t, nil
}

// tap is a transfer's view of the agent's node: its own events, the node's
// everything else.
type tap struct {
	*zre.Node
	ch chan zre.Event
	// all: every event (a private group's), not only a transfer's; lost:
	// events were dropped since the last one handed on, which an
	// Overflow event tells before the next.
	all, lost bool
	// keep: the node was in the group before a stream's Group joined it:
	// its Leave leaves the node in it.
	keep string
	// background: the background receive's, fed nothing while a client's
	// receive runs.
	background bool
}

// Leave leaves group, unless the node was in it before (keep).
func (t *tap) Leave(group string) error {
	if group == t.keep {
		return nil
	}
	return t.Node.Leave(group)
}

func (t *tap) Events() <-chan zre.Event { return t.ch }

// feed hands e to the running transfers, on the event goroutine; it
// never blocks.
func (x *xferState) feed(e zre.Event) {
	if len(x.taps) == 0 {
		return
	}
	forTransfer := false
	switch e := e.(type) {
	case *zre.Whisper:
		forTransfer = transfer.IsMessage(e.Content)
	case *zre.Enter, *zre.Exit, *zre.Denied:
		forTransfer = true
	}
	for t := range x.taps {
		if !t.all && !forTransfer || t.background && x.receiving && !x.background {
			continue
		}
		if t.lost {
			select {
			case t.ch <- &zre.Overflow{}:
				t.lost = false
			default:
				continue
			}
		}
		select {
		case t.ch <- e:
		default:
			t.lost = t.all
		}
	}
}

// xferOp returns the handler of a transfer op, nil for other ops. The
// handler owns the connection from then on.
func (s *Server) xferOp(op string) func(ctx context.Context, c *net.UnixConn, rd *bufio.Reader, line []byte) {
	switch op {
	case "send":
		return s.serveSend
	case "receive":
		return s.serveReceive
	case "stream.send", "stream.recv":
		return s.serveStream // stream.go
	case "chat.private":
		return s.serveChat // chat.go
	}
	return nil
}

// xferConn writes a transfer's lines; the reader goroutine reads the
// client's (answers, or its end).
type xferConn struct {
	mu      sync.Mutex
	c       *net.UnixConn
	w       *bufio.Writer
	id      uint64
	answers chan bool
	lastPr  time.Time
}

func newXferConn(c *net.UnixConn, id uint64) *xferConn {
	return &xferConn{c: c, w: bufio.NewWriter(c), id: id, answers: make(chan bool, 1)}
}

func (x *xferConn) write(r client.TransferResponse) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	r.ID = x.id
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	x.w.Write(append(b, '\n'))
	return x.w.Flush()
}

func (x *xferConn) event(e client.TransferEvent) {
	x.write(client.TransferResponse{OK: true, Event: &e})
}

// progress sends a progress event, at most every 100 ms but always the
// last one.
func (x *xferConn) progress(held, total int64) {
	now := time.Now()
	if held < total && now.Sub(x.lastPr) < 100*time.Millisecond {
		return
	}
	x.lastPr = now
	x.event(client.TransferEvent{Kind: client.XferProgress, Held: held, Total: total})
}

// read reads the client's lines until it hangs up, then cancels: a
// transfer ends with its client. Only answers are expected.
func (x *xferConn) read(rd *bufio.Reader, cancel context.CancelCauseFunc) {
	for {
		line, err := readLine(rd)
		if err != nil {
			cancel(errors.New("the client went away"))
			return
		}
		var a client.Answer
		if err := json.Unmarshal(line, &a); err != nil || a.Op != "answer" {
			cancel(fmt.Errorf("bad line during a transfer: want an answer"))
			return
		}
		select {
		case x.answers <- a.Accept:
		default:
			cancel(errors.New("an answer nobody asked for"))
			return
		}
	}
}

// runXfer decodes the request into req, starts the reader, registers a
// tap, runs f and writes its result or error. busy, if set, is checked and
// set on the event goroutine with the tap (one receive at a time).
func (s *Server) runXfer(ctx context.Context, c *net.UnixConn, rd *bufio.Reader, id uint64, receive bool,
	f func(ctx context.Context, x *xferConn, t *tap) (*client.TransferResult, error)) {
	x := newXferConn(c, id)
	fail := func(err error) { x.write(client.TransferResponse{Error: err.Error()}) }
	n := s.cfg.Node
	if !n.Secure() || s.cfg.Trust == nil {
		fail(errors.New("the agent's node is in plain mode: a transfer needs a secure node and its trust store"))
		return
	}
	tctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go x.read(rd, cancel)
	t := &tap{Node: n, ch: make(chan zre.Event, TapQueue)}
	var busy, bg bool
	if !s.do(ctx, func() {
		if receive && s.xfer.receiving {
			busy, bg = true, s.xfer.background
			return
		}
		if s.xfer.taps == nil {
			s.xfer.taps = map[*tap]struct{}{}
		}
		s.xfer.taps[t] = struct{}{}
		if receive {
			s.xfer.receiving = true
		}
	}) {
		fail(errors.New("the agent is stopping"))
		return
	}
	if busy && bg {
		fail(errors.New("the agent is receiving from an auto-accepted peer in the background: one receive at a time; try again when it is done"))
		return
	}
	if busy {
		fail(errors.New("a receive runs already through this agent: one at a time"))
		return
	}
	defer s.do(ctx, func() {
		delete(s.xfer.taps, t)
		if receive {
			s.xfer.receiving = false
		}
	})
	res, err := f(tctx, x, t)
	if err != nil {
		if ctx.Err() != nil {
			// The agent stops (not the client's doing): said so, not
			// "context canceled".
			fail(ErrStopped)
			return
		}
		if cause := context.Cause(tctx); tctx.Err() != nil && cause != nil {
			err = fmt.Errorf("%w (%v)", err, cause)
		}
		fail(err)
		return
	}
	x.write(client.TransferResponse{OK: true, Result: res})
}

// trusted reports whether peer presents a key its trust store holds as
// verified or introduced (or tofu, with tofu) under that UUID.
func (s *Server) trusted(peer uuid.UUID, tofu bool) bool {
	key, ok := s.cfg.Node.PeerKey(peer)
	if !ok {
		return false
	}
	rec, ok, err := s.cfg.Trust.Lookup(key)
	if err != nil || !ok || rec.UUID != peer {
		return false
	}
	switch rec.State {
	case trust.StateVerified, trust.StateIntroduced:
		return true
	case trust.StateTOFU:
		return tofu
	}
	return false
}

func wait(ms int64) time.Duration {
	if ms <= 0 {
		return 2 * time.Minute
	}
	return time.Duration(ms) * time.Millisecond
}

func checkTrust(t string) (tofu bool, err error) {
	switch t {
	case "", "verified":
		return false, nil
	case "tofu":
		return true, nil
	}
	return false, fmt.Errorf("trust %q: want verified or tofu", t)
}

func (s *Server) serveSend(ctx context.Context, c *net.UnixConn, rd *bufio.Reader, line []byte) {
	var req client.SendRequest
	if err := json.Unmarshal(line, &req); err != nil {
		newXferConn(c, 0).write(client.TransferResponse{Error: "bad request: " + err.Error()})
		return
	}
	s.runXfer(ctx, c, rd, req.ID, false, func(ctx context.Context, x *xferConn, t *tap) (*client.TransferResult, error) {
		return s.send(ctx, x, t, &req)
	})
}

func (s *Server) send(ctx context.Context, x *xferConn, t *tap, req *client.SendRequest) (*client.TransferResult, error) {
	tofu, err := checkTrust(req.Trust)
	if err != nil {
		return nil, err
	}
	if len(req.Paths) == 0 {
		return nil, errors.New("send: no paths")
	}
	for _, p := range req.Paths {
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("send: %q is not an absolute path", p)
		}
	}
	pw := wait(req.WaitMS)
	for _, p := range req.Paths { // a missing file first, as ever
		if _, err := os.Lstat(p); err != nil {
			return nil, err
		}
	}
	// Who first: a mistyped or ambiguous PEER is said before a big file
	// is read and hashed.
	rec, err := s.findPeer(ctx, t, req.Peer, tofu, pw)
	if err != nil {
		return nil, fmt.Errorf("peer %q: %w", req.Peer, err)
	}
	peer := rec.UUID
	if st := rec.State; st == trust.StateRevoked || st == trust.StateTOFU && !tofu {
		return nil, fmt.Errorf("%s (%s) is %s, not trusted for a transfer", rec.Name, peer.String()[:8], st)
	}
	src, err := transfer.PrepareContext(ctx, req.Paths)
	if err != nil {
		return nil, err
	}
	for _, p := range src.Skipped {
		x.event(client.TransferEvent{Kind: client.XferSkipped, Text: p})
	}
	x.event(client.TransferEvent{Kind: client.XferWaiting, Peer: peer.String(), Name: rec.Name, Total: pw.Milliseconds()})
	if err := transfer.WaitPeer(ctx, t, peer, pw); err != nil {
		return nil, transfer.NameRefused(err, peer, rec.Name)
	}
	if !s.trusted(peer, tofu) {
		return nil, fmt.Errorf("%s %s is not trusted with the key it presents", rec.Name, peer.String()[:8])
	}
	x.event(client.TransferEvent{Kind: client.XferOffering, Peer: peer.String(), Name: rec.Name, Count: len(src.Offer.Files), Total: src.Offer.Total()})
	res, err := transfer.Send(ctx, t, peer, src, transfer.SendOptions{PeerWait: pw, Progress: x.progress, Logger: s.log,
		Notify: func(m string) { x.event(client.TransferEvent{Kind: client.XferNotice, Text: m}) }})
	if err != nil {
		return nil, transfer.NameRefused(err, peer, rec.Name)
	}
	return &client.TransferResult{Peer: peer.String(), Name: rec.Name, Files: res.Files, Octets: res.Octets, Resumed: res.Resumed,
		ElapsedMS: res.Elapsed.Milliseconds()}, nil
}

func offerFiles(o *transfer.Offer) []client.OfferFile {
	fs := make([]client.OfferFile, len(o.Files))
	for i, f := range o.Files {
		fs[i] = client.OfferFile{Path: f.Path, Size: f.Size, Mode: f.Mode, SHA256: f.SHA256}
	}
	return fs
}

// findPeer finds who among the peers a transfer may go to (FindTarget);
// with tofu, a peer not met yet is looked for again for up to wait.
func (s *Server) findPeer(ctx context.Context, t *tap, who string, tofu bool, wait time.Duration) (trust.Record, error) {
	rec, err := FindTarget(s.cfg.Trust, who, tofu)
	if err == nil || !tofu || !errors.Is(err, trust.ErrNotFound) {
		return rec, err
	}
	transfer.Poll(ctx, t, 100*time.Millisecond, wait, func() bool {
		rec, err = FindTarget(s.cfg.Trust, who, tofu)
		return err == nil || !errors.Is(err, trust.ErrNotFound)
	})
	return rec, err
}

// usable says which records a name may resolve to for a transfer (a
// name shared with revoked or untrusted records names the one that can
// take part): not revoked, and trusted unless tofu peers are allowed.
func (s *Server) serveReceive(ctx context.Context, c *net.UnixConn, rd *bufio.Reader, line []byte) {
	var req client.ReceiveRequest
	if err := json.Unmarshal(line, &req); err != nil {
		newXferConn(c, 0).write(client.TransferResponse{Error: "bad request: " + err.Error()})
		return
	}
	s.runXfer(ctx, c, rd, req.ID, true, func(ctx context.Context, x *xferConn, t *tap) (*client.TransferResult, error) {
		return s.receive(ctx, x, t, &req)
	})
}

func (s *Server) receive(ctx context.Context, x *xferConn, t *tap, req *client.ReceiveRequest) (*client.TransferResult, error) {
	tofu, err := checkTrust(req.Trust)
	if err != nil {
		return nil, err
	}
	if !filepath.IsAbs(req.Dir) {
		return nil, fmt.Errorf("receive: %q is not an absolute path", req.Dir)
	}
	var only uuid.UUID
	if req.From != "" {
		rec, err := FindTarget(s.cfg.Trust, req.From, tofu)
		if err != nil {
			return nil, fmt.Errorf("from %q: %w", req.From, err)
		}
		only = rec.UUID
	}
	var list *autoaccept.List
	if s.cfg.Home != "" {
		list = autoaccept.Open(s.cfg.Home)
	}
	auto := s.autoAccepts(list)
	// Without --yes nor anyone to ask, only the auto-accept list's peers.
	autoOnly := !req.Yes && !req.Ask
	res, err := transfer.Receive(ctx, t, transfer.ReceiveOptions{
		Dir:      req.Dir,
		PeerWait: wait(req.WaitMS),
		Trusted: func(p uuid.UUID) bool {
			return (only == uuid.Nil || p == only) && s.trusted(p, tofu) && (!autoOnly || auto(p))
		},
		Accept: func(ctx context.Context, p uuid.UUID, name string, o *transfer.Offer, held int64) (bool, error) {
			ev := client.TransferEvent{Peer: p.String(), Name: name, Count: len(o.Files), Files: offerFiles(o), Total: o.Total(), Held: held}
			ev.Files = ev.Files[:min(len(ev.Files), client.EventFiles)]
			how := ""
			switch {
			case auto(p):
				how = "auto-accept"
			case req.Yes:
				how = "yes"
			case req.Ask:
				ev.Kind = client.XferOffer
				x.event(ev)
				select {
				case a := <-x.answers:
					if a {
						how = "answer"
					}
				case <-ctx.Done():
					return false, ctx.Err()
				}
			}
			ev.Files = nil
			if how == "" {
				ev.Kind = client.XferDeclined
				x.event(ev)
				return false, nil
			}
			ev.Kind, ev.Text = client.XferAccepted, how
			x.event(ev)
			return true, nil
		},
		Progress: x.progress,
		Notify:   func(m string) { x.event(client.TransferEvent{Kind: client.XferNotice, Text: m}) },
		Logger:   s.log,
	})
	if err != nil {
		return nil, err
	}
	return &client.TransferResult{Peer: res.From.String(), Name: res.Name, Files: res.Files, Octets: res.Octets,
		Resumed: res.Resumed, ElapsedMS: res.Elapsed.Milliseconds(), OfferID: res.Offer.ID, Offer: offerFiles(&res.Offer), Paths: res.Paths}, nil
}
