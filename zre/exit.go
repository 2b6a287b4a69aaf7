package zre

import (
	"bytes"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/zmtp"
)

// A secure peer that stops says so with a port-0 beacon, which nobody can
// authenticate: anyone can send one with the peer's UUID and public key.
// Alone it only gets the peer a PING and removal after Config.Evasive
// unless it answers (onBeacon). But a peer that really stops also closes
// its connections, and that we can trust: its connection into our inbox
// was authenticated by CURVE with its key. So a peer is removed at once
// when both happened within Config.Evasive of each other, in either order:
//
//   - a port-0 beacon for it, and
//   - its authenticated connection into our inbox closed (with no message
//     from it since, and no connection of it open into our inbox again),
//     or our own connection to it is down.
//
// A C node that stops sends the beacon and closes its sockets at once: its
// EXIT comes within milliseconds instead of about 5.5 s. The checks of our
// own connection run on the beacon and on every reap (each second).

// inboxHas reports whether a connection with this ZMTP identity is open
// into our inbox (state.inboxConnected). Called on the loop goroutine.
func (n *Node) inboxHas(identity []byte) bool {
	if n.router == nil {
		return false
	}
	for _, id := range n.router.Peers() {
		if bytes.Equal(id, identity) {
			return true
		}
	}
	return false
}

// inboxClosed is a connection into our inbox that ended: who it was (the
// ZMTP identity) and the key CURVE authenticated (nil in plain mode).
type inboxClosed struct {
	identity  []byte
	publicKey []byte
}

// inboxDisconnected is the inbox ROUTER's OnDisconnect: it hands the event
// to the loop without blocking (dropped if the loop is that far behind;
// the peer then goes by the slow path).
func (n *Node) inboxDisconnected(p *zmtp.Peer) {
	select {
	case n.closedConns <- inboxClosed{identity: bytes.Clone(p.Identity), publicKey: bytes.Clone(p.PublicKey)}:
	default:
	}
}

// beaconGoodbye handles a port-0 beacon for a ready, connected peer: it
// reports true when the peer was removed.
func (s *state) beaconGoodbye(p *peer, now time.Time) bool {
	p.goodbyeAt = now
	if s.exitIfGone(p, now) {
		return true
	}
	if s.goodbyes == nil {
		s.goodbyes = make(map[uuid.UUID]*peer)
	}
	s.goodbyes[p.id] = p // watched by exitReap until Evasive has passed
	return false
}

// exitIfGone removes p if a port-0 beacon came for it within Evasive and
// one of its connections is gone.
func (s *state) exitIfGone(p *peer, now time.Time) bool {
	if p.goodbyeAt.IsZero() || now.Sub(p.goodbyeAt) > s.cfg.Evasive {
		return false
	}
	inboxGone := !p.inboxClosedAt.IsZero() && now.Sub(p.inboxClosedAt) <= s.cfg.Evasive
	if inboxGone && s.inboxConnected != nil && s.inboxConnected(Identity(p.id)) {
		// It connected again (a network blip, or its ZMTP reconnect took
		// over): it did not stop, whatever the beacon says. (Without this,
		// a forged port-0 beacon in the Evasive after any reconnect of a
		// peer that had nothing to send removed it.)
		inboxGone = false
	}
	if !inboxGone && linkConnected(p.link) {
		return false
	}
	s.log.Debug("zre: peer said goodbye by beacon and its connection closed", "peer", p.label(), "inbox closed", inboxGone)
	s.removePeer(p)
	return true
}

// onInboxClosed: a connection into our inbox ended.
func (s *state) onInboxClosed(c inboxClosed, now time.Time) {
	if s.stopped || len(c.identity) != IdentitySize {
		return
	}
	var id uuid.UUID
	copy(id[:], c.identity[1:])
	if h := s.held[id]; h != nil && bytes.Equal(c.publicKey, h.msgs[0].in.publicKey) {
		// Its HELLO's checks still run: their verdict, late, must not
		// admit a peer whose connection is gone (it says HELLO again if
		// it lives). Another key's close is not this peer's.
		s.stats.messagesDropped.Add(uint64(len(h.msgs)))
		s.unhold(id, h) // verdict.go
	}
	p := s.peers[id]
	if p == nil || !p.ready || s.sec != nil && !bytes.Equal(c.publicKey, p.key.Bytes()) {
		return
	}
	p.inboxClosedAt = now
	s.exitIfGone(p, now)
}

// exitReap runs exitIfGone for the peers whose port-0 beacon came within
// Evasive (reap); it looks at those only.
func (s *state) exitReap(now time.Time) {
	if len(s.goodbyes) == 0 {
		return
	}
	ps := make([]*peer, 0, len(s.goodbyes))
	for _, p := range s.goodbyes {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, comparePeers) // removals in a fixed order
	for _, p := range ps {
		if s.peers[p.id] != p || now.Sub(p.goodbyeAt) > s.cfg.Evasive || s.exitIfGone(p, now) {
			delete(s.goodbyes, p.id)
		}
	}
}
