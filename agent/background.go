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

func (s *Server) backgroundReceive(ctx context.Context) {
	list := autoaccept.Open(s.cfg.Home)
	n := s.cfg.Node
	auto := func(p uuid.UUID) bool {
		key, ok := n.PeerKey(p)
		if !ok {
			return false
		}
		ok, err := list.Allows(p, key)
		if err != nil {
			s.log.Warn("agent: the auto-accept list", "err", err)
		}
		return ok
	}
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
		busy := false
		res, err := transfer.Receive(ctx, t, transfer.ReceiveOptions{
			Dir:    s.cfg.ReceiveDir,
			Ignore: func(p uuid.UUID) bool { return !auto(p) },
			Trusted: func(p uuid.UUID) bool {
				return s.trusted(p, false)
			},
			Accept: func(ctx context.Context, p uuid.UUID, name string, o *transfer.Offer, held int64) (bool, error) {
				client := false
				s.do(ctx, func() {
					if client = s.xfer.receiving; !client {
						s.xfer.receiving, s.xfer.background = true, true
						busy = true
					}
				})
				if client {
					return false, nil // a client's receive takes it
				}
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
		case ctx.Err() != nil:
			return
		case err == nil:
			s.notify(fmt.Sprintf("received %d file(s), %d octets, from %s %s into %s; every file's sha256 checked", res.Files, res.Octets, res.Name, res.From.String()[:8], s.cfg.ReceiveDir))
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
