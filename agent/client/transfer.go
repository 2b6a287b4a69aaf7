package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// File transfer through the agent ("send", "receive"; spec/agent.md):
// the agent's node does the network work and the agent reads and writes
// the files itself, for a client of its own uid; the connection carries
// the transfer's events and, for "receive", the client's answer to an
// offer. A connection that carried a transfer carries nothing else
// afterwards: the agent closes it after the result.

// SendRequest asks the agent to send files and folders to one peer.
type SendRequest struct {
	ID uint64 `json:"id"`
	Op string `json:"op"` // "send"
	// Peer is a name, UUID prefix or fingerprint of the agent's trust store.
	Peer string `json:"peer"`
	// Paths are absolute paths of files and folders, read by the agent.
	Paths []string `json:"paths"`
	// Trust is "verified" (the default: verified or introduced) or "tofu".
	Trust string `json:"trust,omitempty"`
	// WaitMS is how long the peer may be away, in milliseconds (0: 2 min).
	WaitMS int64 `json:"wait_ms,omitempty"`
}

// ReceiveRequest asks the agent to receive one transfer into a folder.
type ReceiveRequest struct {
	ID uint64 `json:"id"`
	Op string `json:"op"` // "receive"
	// Dir is the absolute path of the folder, written by the agent.
	Dir string `json:"dir"`
	// From, if set, takes offers of this peer only (as SendRequest.Peer).
	From   string `json:"from,omitempty"`
	Trust  string `json:"trust,omitempty"`
	WaitMS int64  `json:"wait_ms,omitempty"`
	// Yes accepts the first offer (of From, if set) without asking.
	Yes bool `json:"yes,omitempty"`
	// Ask: the client answers "offer" events; without Yes or Ask only
	// the offers of the peers in the auto-accept list are taken.
	Ask bool `json:"ask,omitempty"`
}

// Answer is the client's answer to an "offer" event of "receive".
type Answer struct {
	ID     uint64 `json:"id"`
	Op     string `json:"op"` // "answer"
	Accept bool   `json:"accept"`
}

// Kinds of TransferEvent.
const (
	XferSkipped  = "skipped"  // send: Text is a path that is not a regular file, not sent
	XferWaiting  = "waiting"  // send: waiting for Peer to appear
	XferOffering = "offering" // send: offering Files (Total octets) to Peer
	XferOffer    = "offer"    // receive: Peer offers Files; answer with Answer
	XferAccepted = "accepted" // receive: accepted (Text: "auto-accept", "yes" or "answer")
	XferDeclined = "declined" // receive: declined
	XferProgress = "progress" // Held of Total octets are at the receiver
	XferNotice   = "notice"   // Text: the peer went away, came back, ...
)

// EventFiles bounds the files an event lists (the result lists all).
const EventFiles = 10

// MaxTransferLine bounds a line of a transfer: its result lists every
// file of the offer (at most 100000, of names up to 4096 octets).
const MaxTransferLine = 1 << 30

// OfferFile is one file of an offer.
type OfferFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	Mode   uint32 `json:"mode,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
}

// TransferEvent is one event of a transfer.
type TransferEvent struct {
	Kind string `json:"kind"`
	Peer string `json:"peer,omitempty"` // full UUID
	Name string `json:"name,omitempty"`
	// Count is the number of files of an offer; Files the first
	// EventFiles of them.
	Count int         `json:"count,omitempty"`
	Files []OfferFile `json:"files,omitempty"`
	Held  int64       `json:"held,omitempty"`
	Total int64       `json:"total,omitempty"`
	Text  string      `json:"text,omitempty"`
}

// TransferResult sums up a transfer done.
type TransferResult struct {
	Peer      string      `json:"peer"` // full UUID
	Name      string      `json:"name"`
	Files     int         `json:"files"`
	Octets    int64       `json:"octets"`
	Resumed   int64       `json:"resumed"`
	ElapsedMS int64       `json:"elapsed_ms"`
	OfferID   string      `json:"offer_id,omitempty"` // receive
	Offer     []OfferFile `json:"offer,omitempty"`    // receive
	Paths     []string    `json:"paths,omitempty"`    // receive: where the files were put, relative to Dir
}

// Elapsed is the transfer's duration.
func (r *TransferResult) Elapsed() time.Duration {
	return time.Duration(r.ElapsedMS) * time.Millisecond
}

// TransferResponse is one line of the agent during a transfer: an event,
// or the end (OK with a Result, or Error).
type TransferResponse struct {
	ID     uint64          `json:"id"`
	OK     bool            `json:"ok"`
	Error  string          `json:"error,omitempty"`
	Result *TransferResult `json:"result,omitempty"`
	Event  *TransferEvent  `json:"transfer,omitempty"`
}

// Send asks the agent to send files; on is called with each event, on
// the caller's goroutine. The connection carries nothing else afterwards.
// Ending ctx closes the connection, which stops the transfer.
func (c *Client) Send(ctx context.Context, req SendRequest, on func(TransferEvent)) (TransferResult, error) {
	req.Op = "send"
	return c.transfer(ctx, &req.ID, &req, func(e TransferEvent) (bool, error) { on(e); return false, nil })
}

// Receive asks the agent to receive one transfer. on is called with each
// event on the caller's goroutine; for an "offer" (only when req.Ask) its
// answer is sent to the agent. As Send, it uses up the connection.
func (c *Client) Receive(ctx context.Context, req ReceiveRequest, on func(TransferEvent) (accept bool)) (TransferResult, error) {
	req.Op = "receive"
	return c.transfer(ctx, &req.ID, &req, func(e TransferEvent) (bool, error) {
		a := on(e)
		if e.Kind != XferOffer {
			return false, nil
		}
		return a, c.writeJSON(Answer{ID: req.ID, Op: "answer", Accept: a})
	})
}

func (c *Client) writeJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = c.conn.Write(append(b, '\n'))
	return err
}

func (c *Client) transfer(ctx context.Context, id *uint64, req any, on func(TransferEvent) (bool, error)) (TransferResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.subd {
		return TransferResult{}, errors.New("client: the connection carries events or a transfer already")
	}
	c.subd = true
	c.next++
	*id = c.next
	// The connection is this transfer's: ending ctx closes it, which
	// ends the transfer in the agent too.
	stop := context.AfterFunc(ctx, func() { c.conn.Close() })
	defer stop()
	if err := c.writeJSON(req); err != nil {
		return TransferResult{}, c.ctxErr(ctx, fmt.Errorf("client: transfer: %w", err))
	}
	for {
		line, err := c.readLineMax(MaxTransferLine)
		if err != nil {
			return TransferResult{}, c.ctxErr(ctx, fmt.Errorf("client: transfer: %w", err))
		}
		var resp TransferResponse
		if err := json.Unmarshal(line, &resp); err != nil {
			return TransferResult{}, fmt.Errorf("client: transfer: bad response: %w", err)
		}
		switch {
		case !resp.OK:
			return TransferResult{}, fmt.Errorf("agent: %s", resp.Error)
		case resp.ID != *id:
			return TransferResult{}, fmt.Errorf("client: transfer: response %d to request %d", resp.ID, *id)
		case resp.Event != nil:
			if _, err := on(*resp.Event); err != nil {
				return TransferResult{}, c.ctxErr(ctx, fmt.Errorf("client: transfer: answer: %w", err))
			}
		case resp.Result != nil:
			return *resp.Result, nil
		default:
			return TransferResult{}, errors.New("client: transfer: a line with neither event nor result")
		}
	}
}

// Transfers says what transfers run through the agent ("transfers").
type Transfers struct {
	Sending   int  `json:"sending"`
	Receiving bool `json:"receiving"`
	Streams   int  `json:"streams"` // streams sent or received (stream.go)
	// Background: the receive that runs is the agent's background one
	// (an auto-accepted peer's offer into its --receive-dir).
	Background bool `json:"background,omitempty"`
}

// Transfers asks the agent what transfers run.
func (c *Client) Transfers(ctx context.Context) (Transfers, error) {
	var t Transfers
	err := c.Call(ctx, Request{Op: "transfers"}, &t)
	return t, err
}
