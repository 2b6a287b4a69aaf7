package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/keystore"
	"github.com/zyre-go/zyre/pairing"
	"github.com/zyre-go/zyre/trust"
)

// MaxPairTimeout bounds a pairing's timeout_ms.
const MaxPairTimeout = time.Hour

// pair runs one pairing for the client on c (spec/agent.md, "Pairing"):
// the agent's identity and trust store do the pairing; the client shows
// the token and asks its user to compare the number. The connection is
// the pairing's until it ends: the client's only other line is
// "pair.confirm", and its hanging up ends the pairing.
func (s *Server) pair(ctx context.Context, c net.Conn, rd *bufio.Reader, req client.Request, send func(client.Response) error) {
	var mu sync.Mutex // send is the connection's writer: Confirm runs on a pairing goroutine
	psend := func(r client.Response) error {
		mu.Lock()
		defer mu.Unlock()
		r.ID = req.ID
		return send(r)
	}
	fail := func(err error) { psend(client.Response{Error: err.Error()}) }
	a := req.Pair
	if a == nil {
		a = &client.PairArgs{}
	}
	switch {
	case s.cfg.Identity == nil || s.cfg.Trust == nil:
		fail(errors.New("pair: the agent's node is in plain mode: no identity to pair"))
		return
	case a.Token != "" && a.Code != "":
		fail(errors.New("pair: give a token or a code, not both"))
		return
	case a.Endpoint != "" && a.Code == "":
		fail(errors.New("pair: an endpoint goes with a code"))
		return
	case a.TimeoutMS < 0 || a.TimeoutMS > MaxPairTimeout.Milliseconds(): // compared in ms: a Duration would overflow
		fail(fmt.Errorf("pair: timeout_ms %d: want 0 to %d", a.TimeoutMS, MaxPairTimeout.Milliseconds()))
		return
	}
	if a.Code != "" {
		if _, err := pairing.NormalizeCode(a.Code); err != nil {
			fail(err)
			return
		}
	}
	listen, iface, loopback, err := pairNetwork(s.cfg.Network, s.cfg.PairAnyNetwork, *a)
	if errors.Is(err, errWiderNetwork) {
		err = fmt.Errorf("%w; an agent started with --pair-any-network allows it", err)
	}
	if err != nil {
		fail(err)
		return
	}
	timeout := time.Duration(a.TimeoutMS) * time.Millisecond
	if timeout == 0 {
		timeout = pairing.DefaultTTL + 30*time.Second
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	// The client's lines: answers to the comparison; its hanging up (or
	// anything else) ends the pairing.
	var (
		askMu   sync.Mutex
		asking  bool      // an answer is taken only to a question asked
		askSeq  int       // and only to the one up now (its number)
		answers chan bool // the question up's answer (capacity 1)
		grace   *time.Timer
	)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		// With the question up, the client's going is a "no": the
		// pairing tells the other side, which would otherwise wait with
		// its own question up until its token expires. Cancelling at once
		// would cut that last word short, so cancel after it.
		end := func() {
			askMu.Lock()
			pending := asking
			if asking {
				asking = false
				answers <- false
			}
			askMu.Unlock()
			if pending {
				grace = time.AfterFunc(2*pairing.DefaultLinger, cancel)
				return
			}
			cancel()
		}
		for {
			line, err := readLine(rd)
			if err != nil {
				end()
				return
			}
			var r client.Request
			if json.Unmarshal(line, &r) != nil || r.Op != "pair.confirm" {
				psend(client.Response{Error: "pair: only pair.confirm may come during a pairing"})
				end()
				return
			}
			ok := r.Pair != nil && r.Pair.Confirm
			q := 0
			if r.Pair != nil {
				q = r.Pair.Question
			}
			askMu.Lock()
			// An answer to a question dropped (another device came
			// since) is not taken; one without a number (an older
			// client) is taken as a no only.
			if asking && (q == askSeq || (q == 0 && !ok)) {
				asking = false
				answers <- ok
			}
			askMu.Unlock()
		}
	}()
	defer func() {
		c.Close()
		<-readerDone
		if grace != nil {
			grace.Stop()
		}
	}()

	opts := pairing.Options{
		Identity: s.cfg.Identity, Recorder: s.cfg.Trust, Listen: listen, Interface: iface,
		Loopback: loopback, Logger: s.log,
		// A failed short-code attempt spends that code only: the client
		// shows the fresh one (PairCode), the QR token stays valid.
		OnCode: func(c pairing.CodeSpent) { psend(client.Response{OK: true, Pair: PairCodeOf(c)}) },
		Confirm: func(cctx context.Context, r pairing.Result) error {
			if r.Comparison == "" && !r.AsDisplayer && r.NameHolder == nil {
				return nil // a QR scanner: it scanned the screen it pairs with
			}
			// A question dropped (another device came) may still be
			// returning when the next is asked: each has its own
			// answer channel, and only the one up takes answers.
			askMu.Lock()
			asking = true
			askSeq++
			seq := askSeq
			mine := make(chan bool, 1)
			answers = mine
			askMu.Unlock()
			defer func() { // the question ends with this call: a late answer is dropped
				askMu.Lock()
				if askSeq == seq {
					asking = false
				}
				askMu.Unlock()
			}()
			if psend(client.Response{OK: true, Pair: pairQuestion(seq, r)}) != nil {
				return errors.New("the client went away")
			}
			select {
			case ok := <-mine:
				switch {
				case ok:
				case r.NameHolder != nil: // as the one-shot zyre pair words each
					return errors.New("the device under a known name was not picked by its id")
				case r.Comparison == "":
					return errors.New("the device was not confirmed")
				default:
					return errors.New("the comparison numbers were not confirmed")
				}
				return nil
			case <-cctx.Done():
				return cctx.Err()
			case <-pctx.Done():
				return pctx.Err()
			}
		},
	}
	var res pairing.Result
	switch {
	case a.Code != "":
		res, err = pairing.JoinCode(pctx, a.Code, a.Endpoint, opts)
	case a.Token != "":
		res, err = pairing.Join(pctx, a.Token, opts)
	default:
		res, err = s.pairShow(pctx, opts, psend)
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			// Said once in words, as the one-shot "zyre pair" says it.
			psend(client.Response{Error: "pair: " + PairTimeoutText(err, timeout)})
			return
		} else if msg, hint := pairing.Explain(err); msg != "" {
			// One sentence for the person at the client, as the
			// one-shot "zyre pair" says it.
			psend(client.Response{Error: "pair: " + msg, Hint: hint})
			return
		}
		fail(err)
		return
	}
	b, err := json.Marshal(PairResultOf(res))
	if err != nil {
		fail(err)
		return
	}
	psend(client.Response{OK: true, Result: b})
}

// PairTimeoutText is a pairing that ran out of its timeout (err wraps
// context.DeadlineExceeded), said for a user: "no device paired within
// 40s (--timeout)", and where a joiner looked when it says so, never
// "context deadline exceeded" nor the pairing package's layers. That a
// displayer was waiting for a scanner goes without saying.
func PairTimeoutText(err error, timeout time.Duration) string {
	msg := fmt.Sprintf("no device paired within %s (--timeout)", timeout)
	where := strings.ReplaceAll(err.Error(), "pairing: ", "")
	where = strings.TrimSuffix(strings.TrimSuffix(where, context.DeadlineExceeded.Error()), ": ")
	if where != "" && !strings.HasPrefix(where, "waiting for") {
		msg += ": " + where
	}
	return msg
}

// pairShow shows a token (sent to the client) and waits for one device.
func (s *Server) pairShow(ctx context.Context, opts pairing.Options, psend func(client.Response) error) (pairing.Result, error) {
	d, tok, err := pairing.NewDisplayer(opts)
	if err != nil {
		return pairing.Result{}, err
	}
	defer d.Close()
	p := &client.PairProgress{Stage: client.PairToken, Token: tok.URI(), Code: tok.ShortCode(),
		CodeEndpoint: d.CodeAddr(), Interface: d.Interface(), Expires: tok.Expires}
	if err := psend(client.Response{OK: true, Pair: p}); err != nil {
		return pairing.Result{}, fmt.Errorf("the client went away: %w", err)
	}
	return d.Wait(ctx)
}

// PairCodeOf is the protocol's form of a spent short code (stage
// PairCode).
func PairCodeOf(c pairing.CodeSpent) *client.PairProgress {
	by := pairPeerOf(c.By)
	return &client.PairProgress{Stage: client.PairCode, Code: c.Code, CodeEndpoint: c.Endpoint,
		Spent: &by, SpentWhy: c.Why, CodesSpent: c.Spent, CodesLeft: c.Left}
}

// pairPeerOf is the protocol's form of a device that tried.
func pairPeerOf(a pairing.Attempt) client.PairPeer {
	p := client.PairPeer{Name: a.Name, UUID: a.UUID.String(), Fingerprint: keystore.Fingerprint(a.Key), Addr: a.Addr, Method: a.Method}
	if a.Name == "" && a.Known != nil {
		p.Known = pairing.KnownAs(*a.Known)
	}
	return p
}

// pairQuestion is the protocol's form of a pairing question: who is
// pairing, and the others when the code or token is exposed.
func pairQuestion(seq int, r pairing.Result) *client.PairProgress {
	peer := pairPeerOf
	p := &client.PairProgress{Stage: client.PairConfirm, Comparison: r.Comparison, Question: seq,
		Method: r.Method, AsDisplayer: r.AsDisplayer}
	me := peer(r.Peer())
	p.Peer = &me
	for _, o := range r.Others {
		p.Others = append(p.Others, peer(o))
	}
	p.NameHolder = PairKnownOf(r.NameHolder)
	return p
}

// PairKnownOf is the protocol's form of Result.NameHolder (nil for nil).
func PairKnownOf(r *trust.Record) *client.PairKnown {
	if r == nil {
		return nil
	}
	return &client.PairKnown{Name: r.Name, UUID: r.UUID.String(), Fingerprint: r.Fingerprint,
		State: r.State.String(), Text: pairing.DescribeNameHolder(*r)}
}

// PairResultOf is the protocol's (and "zyre pair --json"'s) form of a
// pairing's result.
func PairResultOf(r pairing.Result) client.PairResult {
	return client.PairResult{Name: r.PeerName, UUID: r.PeerUUID.String(), Key: r.PeerKey.Z85(),
		Fingerprint: keystore.Fingerprint(r.PeerKey), Method: r.Method, Comparison: r.Comparison, At: r.At}
}
