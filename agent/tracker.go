package agent

import (
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

// Tracker follows the presence of a node's peers from its events: alive
// from ENTER and every message, evasive from EVASIVE, idle from SILENT,
// gone at EXIT. It is not safe for concurrent use: the goroutine that
// reads the node's events owns it.
type Tracker struct {
	now   func() time.Time
	peers map[uuid.UUID]*presence
}

type presence struct {
	state string
	since time.Time
}

// NewTracker returns an empty Tracker.
func NewTracker() *Tracker {
	return &Tracker{now: time.Now, peers: map[uuid.UUID]*presence{}}
}

// Handle takes one event of the node.
func (t *Tracker) Handle(e zre.Event) {
	id := e.PeerUUID()
	set := func(state string) {
		p := t.peers[id]
		if p == nil {
			p = &presence{}
			t.peers[id] = p
		}
		if p.state != state {
			p.state, p.since = state, t.now()
		}
	}
	switch e.(type) {
	case *zre.Enter, *zre.Join, *zre.Leave, *zre.Whisper, *zre.Shout:
		set(client.Alive)
	case *zre.Evasive:
		set(client.Evasive)
	case *zre.Silent:
		set(client.Silent)
	case *zre.Exit:
		delete(t.peers, id)
	}
}

// Members returns the node's peers with their presence and, with ts, the
// trust state of their keys; by name, then UUID.
func (t *Tracker) Members(n *zre.Node, ts *trust.Store) []client.Member {
	infos := n.PeerInfos()
	out := make([]client.Member, 0, len(infos))
	for _, p := range infos {
		m := client.Member{Name: p.Name, UUID: p.UUID.String(), ID: p.UUID.String()[:8], Address: p.Endpoint,
			Presence: client.Alive, Trust: "-", Groups: p.Groups}
		if m.Groups == nil {
			m.Groups = []string{}
		}
		if pr := t.peers[p.UUID]; pr != nil {
			m.Presence, m.Since = pr.state, pr.since
		}
		if !p.Key.IsZero() {
			m.Fingerprint = trust.Fingerprint(p.Key)
			m.Trust = "unknown"
			if ts != nil {
				if r, ok, err := ts.Lookup(p.Key); err == nil && ok {
					m.Trust = r.State.String()
				}
			}
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b client.Member) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.UUID, b.UUID)
	})
	return out
}

// EventOf is the protocol's form of a node event, with a copy of its content.
func EventOf(e zre.Event, now time.Time) client.Event {
	ev := client.Event{Type: e.Type().String(), Peer: e.PeerUUID().String(), Name: e.PeerName(), Time: now}
	switch e := e.(type) {
	case *zre.Enter:
		ev.Addr = e.Addr
		ev.Headers = map[string]string{}
		for _, h := range e.Headers {
			ev.Headers[h.Key] = h.Value
		}
	case *zre.Join:
		ev.Group = e.Group
	case *zre.Leave:
		ev.Group = e.Group
	case *zre.Whisper:
		ev.Content = cloneContent(e.Content)
	case *zre.Shout:
		ev.Group, ev.Content = e.Group, cloneContent(e.Content)
	case *zre.Refused:
		ev.Stage, ev.Key, ev.Addr = e.Stage.String(), e.Key.Z85(), e.Addr
		if e.Reason != nil {
			ev.Reason = e.Reason.Error()
		}
	case *zre.Denied:
		ev.Key, ev.Addr, ev.Reason = e.Key.Z85(), e.Addr, e.Reason
	case *zre.KeyChanged:
		ev.Key, ev.Addr = e.New.Z85(), e.Addr
		ev.Reason = "key changed from " + e.OldFingerprint + " to " + e.NewFingerprint
	}
	return ev
}

// cloneContent copies a message's frames: an event's content may be
// handed back to the node (Release) while a client's copy is still being
// written.
func cloneContent(fs [][]byte) [][]byte {
	out := make([][]byte, len(fs))
	for i, f := range fs {
		out[i] = slices.Clone(f)
	}
	return out
}
