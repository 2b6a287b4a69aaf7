package zre

import (
	"net/netip"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
)

// link is our outgoing connection to one peer: a DEALER in the node, a
// recorder in tests. Send must not block (zmtp.Dealer.Send).
type link interface {
	Send(frames ...[]byte) error
	Close() error
}

// peer is one remote node as the state knows it. Only the state goroutine
// touches it.
type peer struct {
	id       uuid.UUID
	name     string
	endpoint string // where our DEALER connects: tcp://host:port
	headers  []Header
	link     link // nil once disconnected
	ready    bool // a HELLO was accepted and the link is up
	entered  bool // an Enter event was emitted (so Exit will be)
	status   uint8
	sentSeq  uint16 // sequence of the last message we sent
	wantSeq  uint16 // sequence of the last message we accepted
	groups   map[string]bool
	// key is the peer's long-term key in secure mode: from the beacon we
	// dialled, then the one its HELLO was authenticated with (zero in
	// plain mode).
	key curve.PublicKey

	evasiveAt, silentAt, expiredAt time.Time
	evasive, silent                bool      // the event of the current episode was sent
	unreadySince                   time.Time // reap: when it was first seen without an accepted HELLO

	probedAt    time.Time  // when probe last pinged it (another UUID claimed its endpoint)
	helloSentAt time.Time  // when we last said HELLO to it (new link)
	pendingSrc  netip.Addr // valid while it counts against the pending caps (dialled on a beacon from there, no HELLO yet)
}

func newPeer(id uuid.UUID) *peer {
	return &peer{id: id, groups: make(map[string]bool)}
}

// label is the peer's name for logs and errors: its name once known,
// otherwise the first 6 characters of its UUID.
func (p *peer) label() string {
	if p.name != "" {
		return p.name
	}
	return DefaultName(p.id)
}

// send encodes m with the next sequence number and queues it. The
// sequence only advances when the message was queued, so a refused send
// leaves no gap at the receiver.
func (p *peer) send(m *Msg) error {
	if p.link == nil {
		return errNotConnected
	}
	m.Sequence = p.sentSeq + 1
	frames, err := m.Frames()
	if err != nil {
		return err
	}
	if err := p.link.Send(frames...); err != nil {
		return err
	}
	p.sentSeq++
	return nil
}

// heard records activity: anything (beacon or message) refreshes the
// evasive and expired timers, only a message refreshes the silent one.
func (p *peer) heard(now time.Time, cfg *Config, message bool) {
	p.evasiveAt = now.Add(cfg.Evasive)
	p.expiredAt = now.Add(cfg.Expired)
	p.evasive = false
	if message {
		p.silentAt = now.Add(cfg.Silent)
		p.silent = false
	}
}

func (p *peer) disconnect() {
	if p.link != nil {
		p.link.Close()
		p.link = nil
	}
	p.ready = false
}
