package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// PairArgs are the arguments of "pair": with neither Token nor Code the
// agent shows a token (the displayer), else it joins the device that
// shows Token, or the short Code (at Endpoint, else found on the
// network). Confirm is the user's answer in "pair.confirm".
type PairArgs struct {
	Token    string `json:"token,omitempty"`
	Code     string `json:"code,omitempty"`
	Endpoint string `json:"endpoint,omitempty"`
	// Listen, Interface and Loopback narrow where the agent pairs: by
	// default where its node runs; wider is refused unless the agent
	// allows any network (spec/agent.md, "Pairing").
	Listen    string `json:"listen,omitempty"`
	Interface string `json:"interface,omitempty"`
	Loopback  bool   `json:"loopback,omitempty"`
	// TimeoutMS bounds the whole pairing (0: the agent's default, the
	// token's lifetime and 30 s).
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
	// Confirm is the answer of "pair.confirm": true when the user saw the
	// same comparison number on both screens.
	Confirm bool `json:"confirm,omitempty"`
	// Question is the PairProgress.Question answered: an answer to a
	// question the agent dropped (another device came) is not taken.
	Question int `json:"question,omitempty"`
}

// Stages of a pairing the agent reports (PairProgress.Stage).
const (
	PairToken   = "token"   // the token to show (displayer)
	PairConfirm = "confirm" // the comparison number to confirm
	// PairCode: the short code shown was spent by a failed attempt
	// (Spent names the device, SpentWhy how); Code is the fresh code
	// shown now, "" when the pairing shows no more (only the QR code
	// pairs then). spec/pairing.md, "Burning a code".
	PairCode = "code"
)

// PairProgress is a step of a pairing, for the client to show.
type PairProgress struct {
	Stage        string    `json:"stage"`
	Token        string    `json:"token,omitempty"`         // PairToken: the URI (ZYRE:...)
	Code         string    `json:"code,omitempty"`          // PairToken: the short code
	CodeEndpoint string    `json:"code_endpoint,omitempty"` // PairToken: for --peer
	Interface    string    `json:"interface,omitempty"`     // PairToken: where it is announced
	Expires      time.Time `json:"expires,omitzero"`        // PairToken
	Comparison   string    `json:"comparison,omitempty"`    // PairConfirm
	// PairConfirm: who is pairing (spec/pairing.md): the question's
	// number (answers carry it), the method, whether this side shows the
	// token, the other device and, when the token or code is exposed,
	// the other devices that tried it.
	Question    int        `json:"question,omitempty"`
	Method      string     `json:"method,omitempty"`
	AsDisplayer bool       `json:"as_displayer,omitempty"`
	Peer        *PairPeer  `json:"peer,omitempty"`
	Others      []PairPeer `json:"others,omitempty"`
	// NameHolder, when set, is the device known here (verified,
	// introduced or revoked) whose name Peer presents with another key:
	// Peer is ANOTHER device, which the client's user must pick by its
	// id, never on a plain yes nor without a person (spec/pairing.md,
	// "A known name").
	NameHolder *PairKnown `json:"name_holder,omitempty"`
	// PairCode: the device that spent the code, how, how many codes the
	// pairing has spent and how many fresh ones it may still show.
	Spent      *PairPeer `json:"spent,omitempty"`
	SpentWhy   string    `json:"spent_why,omitempty"`
	CodesSpent int       `json:"codes_spent,omitempty"`
	CodesLeft  int       `json:"codes_left,omitempty"`
}

// PairKnown is the record of this node that holds a name a pairing peer
// presents: its name, UUID, fingerprint, state, and Text, a sentence
// part for people such as "your verified phone1 is FAWY-FLPA-OCBC-GSIW
// (8b0744b8)" (pairing.DescribeNameHolder).
type PairKnown struct {
	Name        string `json:"name"`
	UUID        string `json:"uuid"`
	Fingerprint string `json:"fingerprint"`
	State       string `json:"state"`
	Text        string `json:"text"`
}

// PairPeer is a device in a pairing question: as it named itself
// (untrusted text), its UUID, fingerprint and address.
type PairPeer struct {
	Name        string `json:"name,omitempty"`
	UUID        string `json:"uuid"`
	Fingerprint string `json:"fingerprint"`
	Addr        string `json:"addr,omitempty"`
	// Known names the device by this node's record of its key (e.g.
	// `your verified "phone1"`, pairing.KnownAs), when it gave no name.
	Known string `json:"known,omitempty"`
	// Method is how it tried: "qr" (the token) or "code" (a short code).
	Method string `json:"method,omitempty"`
}

// PairResult is a pairing's outcome: the peer, now verified in the trust
// store. It is also the form of "zyre pair --json".
type PairResult struct {
	Name        string    `json:"name"` // as the peer gave it: untrusted text
	UUID        string    `json:"uuid"`
	Key         string    `json:"key"`
	Fingerprint string    `json:"fingerprint"`
	Method      string    `json:"method"`               // qr or code
	Comparison  string    `json:"comparison,omitempty"` // code: the number both screens showed
	At          time.Time `json:"at"`
}

// PairHandler shows a pairing's steps in the client. Show gets the token
// to show (displayer). Confirm asks the user to compare the number of a
// short-code pairing; nil accepts it. Confirm's ctx ends when the other
// side gives up or refuses first: it must then return. Both run on the
// goroutine that called Pair, except Confirm, on one of its own.
type PairHandler struct {
	Show func(PairProgress)
	// Code, when set, is told that the short code shown was spent
	// (stage PairCode): it shows the fresh code, or that no more come.
	Code    func(PairProgress)
	Confirm func(ctx context.Context, comparison string) error
	// ConfirmPeer, when set, is asked instead of Confirm with the whole
	// question: who is pairing, and the other devices when the code or
	// token is exposed. A question the agent drops (another device came)
	// has its ctx cancelled, and the next one comes.
	ConfirmPeer func(ctx context.Context, q PairProgress) error
}

// Pair runs a pairing in the agent, with its identity and trust store.
// It uses the connection up: the Client is closed when Pair returns.
// Ending ctx ends the pairing (the agent closes its side).
func (c *Client) Pair(ctx context.Context, args PairArgs, h PairHandler) (PairResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.conn.Close()
	if c.subd {
		return PairResult{}, errors.New("client: the connection carries events since Subscribe")
	}
	c.subd = true
	c.next++
	id := c.next
	write := func(r Request) error {
		r.ID = id
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = c.conn.Write(append(b, '\n'))
		return err
	}
	if err := write(Request{Op: "pair", Pair: &args}); err != nil {
		return PairResult{}, c.ctxErr(ctx, fmt.Errorf("client: pair: %w", err))
	}
	type line struct {
		r   Response
		err error
	}
	lines := make(chan line)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			b, err := c.readLine()
			var l line
			if err == nil {
				err = json.Unmarshal(b, &l.r)
			}
			l.err = err
			select {
			case lines <- l:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	// A pending question to the user: cancelled when the agent's answer
	// comes first.
	type answer struct {
		q   int
		err error
	}
	var (
		answers = make(chan answer, 1)
		asking  context.CancelFunc
	)
	stopAsking := func() {
		if asking != nil {
			asking()
			<-answers
			asking = nil
		}
	}
	defer stopAsking()
	for {
		select {
		case <-ctx.Done():
			return PairResult{}, ctx.Err()
		case a := <-answers:
			if asking != nil {
				asking()
				asking = nil
			}
			if err := write(Request{Op: "pair.confirm", Pair: &PairArgs{Confirm: a.err == nil, Question: a.q}}); err != nil {
				return PairResult{}, c.ctxErr(ctx, fmt.Errorf("client: pair: %w", err))
			}
		case l := <-lines:
			if l.err != nil {
				return PairResult{}, c.ctxErr(ctx, fmt.Errorf("client: pair: %w", l.err))
			}
			r := l.r
			switch {
			case !r.OK:
				stopAsking()
				return PairResult{}, &Error{Text: r.Error, Hint: r.Hint}
			case r.Pair == nil:
				stopAsking()
				var res PairResult
				if err := json.Unmarshal(r.Result, &res); err != nil {
					return PairResult{}, fmt.Errorf("client: pair: bad result: %w", err)
				}
				return res, nil
			case r.Pair.Stage == PairToken:
				if h.Show != nil {
					h.Show(*r.Pair)
				}
			case r.Pair.Stage == PairCode:
				if h.Code != nil {
					h.Code(*r.Pair)
				}
			case r.Pair.Stage == PairConfirm && (asking == nil || r.Pair.Question != 0):
				// A new question drops the one up (the agent dropped it:
				// another device came); its answer is not sent.
				stopAsking()
				q := *r.Pair
				if h.Confirm == nil && h.ConfirmPeer == nil {
					answers <- answer{q: q.Question}
					continue
				}
				actx, cancel := context.WithCancel(ctx)
				asking = cancel
				go func() {
					if h.ConfirmPeer != nil {
						answers <- answer{q.Question, h.ConfirmPeer(actx, q)}
						return
					}
					answers <- answer{q.Question, h.Confirm(actx, q.Comparison)}
				}()
			}
		}
	}
}
