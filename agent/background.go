package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/internal/autoaccept"
	"github.com/zyre-go/zyre/transfer"
	"github.com/zyre-go/zyre/zre"
)

// The background receive: with Config.ReceiveDir, the agent takes the
// offers of the peers of its auto-accept list into that folder while no
// "zyre receive" runs through it, as Syncthing takes a shared folder's
// changes. Other peers' offers are left unanswered (their senders go on
// offering, for a "zyre receive" later). A receive of a client is refused
// while a background transfer runs, and the background receive is fed no
// events while a client's runs.

// goBackground starts the background receive, when configured; it ends
// with ctx and Serve waits for it.
func (s *Server) goBackground(ctx context.Context) {
	c := s.cfg
	if c.ReceiveDir == "" || c.Home == "" || c.Trust == nil || !c.Node.Secure() {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.backgroundReceive(ctx)
	}()
}

func (s *Server) notify(msg string) {
	if s.cfg.Notify != nil {
		s.cfg.Notify(msg)
	}
}

// autoAccepts reports whether list lets peer's offers in without asking,
// for the key the node knows it by; a nil list lets nobody in.
func (s *Server) autoAccepts(list *autoaccept.List) func(peer uuid.UUID) bool {
	return func(peer uuid.UUID) bool {
		if list == nil {
			return false
		}
		key, ok := s.cfg.Node.PeerKey(peer)
		if !ok {
			return false
		}
		ok, err := list.Allows(peer, key)
		if err != nil {
			s.log.Warn("agent: the auto-accept list", "err", err)
		}
		return ok
	}
}

func (s *Server) backgroundReceive(ctx context.Context) {
	n := s.cfg.Node
	auto := s.autoAccepts(autoaccept.Open(s.cfg.Home))
	for ctx.Err() == nil {
		t := &tap{Node: n, ch: make(chan zre.Event, TapQueue), background: true}
		if !s.do(ctx, func() {
			if s.xfer.taps == nil {
				s.xfer.taps = map[*tap]struct{}{}
			}
			s.xfer.taps[t] = struct{}{}
		}) {
			return
		}
		// busy: this receive holds the agent's one receive. It is taken
		// in Ignore, before the offer is answered at all, so an offer
		// that a client's receive (started meanwhile) takes is left
		// unanswered here, never rejected; it is given back when the
		// peer turns out not trusted.
		busy := false
		claim := func() bool {
			s.do(ctx, func() {
				if !s.xfer.receiving {
					s.xfer.receiving, s.xfer.background = true, true
					busy = true
				}
			})
			return busy
		}
		release := func() {
			s.do(ctx, func() {
				if busy {
					s.xfer.receiving, s.xfer.background = false, false
					busy = false
				}
			})
		}
		res, err := transfer.Receive(ctx, t, transfer.ReceiveOptions{
			Dir: s.cfg.ReceiveDir,
			// Other peers' offers, and any while a client's receive
			// runs, are left to a "zyre receive".
			Ignore: func(p uuid.UUID) bool { return !auto(p) || !claim() },
			Trusted: func(p uuid.UUID) bool {
				if !s.trusted(p, false) {
					release()
					return false
				}
				return true
			},
			Accept: func(ctx context.Context, p uuid.UUID, name string, o *transfer.Offer, held int64) (bool, error) {
				s.notify(fmt.Sprintf("receiving %d file(s), %d octets, from %s %s into %s (auto-accept)", len(o.Files), o.Total(), name, p.String()[:8], s.cfg.ReceiveDir))
				return true, nil
			},
			Logger: s.log,
		})
		s.do(ctx, func() {
			delete(s.xfer.taps, t)
			if busy {
				s.xfer.receiving, s.xfer.background = false, false
			}
		})
		switch {
		case err == nil:
			// Said even when the agent is stopping: the sender was told
			// (DONE) before Receive returned, and may have stopped us.
			s.notify(fmt.Sprintf("received %d file(s), %d octets, from %s %s into %s; every file's sha256 checked", res.Files, res.Octets, res.Name, res.From.String()[:8], s.cfg.ReceiveDir))
		case ctx.Err() != nil:
			return
		case errors.Is(err, transfer.ErrRejected):
		default:
			s.notify(fmt.Sprintf("background receive: %v", err))
			// Not in a loop of errors (a folder gone, say).
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return
			}
		}
	}
}
