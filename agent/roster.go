package agent

import (
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/privgroup/zyregroup"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

// Roster follows the receivers of a stream that a node sends in a private
// group: the members holding its key when the stream starts (Start), whose
// acknowledgements of the end the sender waits for; who acknowledged
// (Ack); who was removed on the way, and why (Update). "zyre stream send"
// uses it with a node of its own, the agent with its node.
//
// A Roster is safe for concurrent use.
type Roster struct {
	mu    sync.Mutex
	n     *zre.Node
	g     *zyregroup.Group
	st    *trust.Store // nil: removals are not looked up
	known map[uuid.UUID]*rosterEntry
	order []uuid.UUID // known, in the order first seen
	// declined: members that said they read no stream (a private chat's
	// ChattingFrame): they owe no acknowledgement.
	declined map[uuid.UUID]bool
	// refused: members that refused our key (RefusedFrame; it may come
	// before the Roster sees them), or whose node refuses it in the
	// handshake (zre.Node.PeerDenial): they read nothing, owe nothing.
	refused map[uuid.UUID]bool
	// deniedAt: when the members were last asked about (checkDenials).
	deniedAt time.Time
}

type rosterEntry struct {
	r      client.StreamReceiver
	key    curve.PublicKey
	member bool // holds our key, as of the last Update
}

// NewRoster returns a Roster of g, a private group attached to n; st, if
// not nil, tells why a removed member was removed (its key revoked, no
// longer trusted).
func NewRoster(n *zre.Node, g *zyregroup.Group, st *trust.Store) *Roster {
	return &Roster{n: n, g: g, st: st, known: map[uuid.UUID]*rosterEntry{}, declined: map[uuid.UUID]bool{}, refused: map[uuid.UUID]bool{}}
}

// Start notes the members holding our key now, as the stream's first
// octets go out, as its receivers and returns how many there are.
func (r *Roster) Start() int {
	r.checkDenials(true)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.updateLocked()
	k := 0
	for _, p := range r.order {
		if e := r.known[p]; e.member {
			e.r.AtStart = true
			k++
		}
	}
	return k
}

// seeLocked adds peer, a member holding our key.
func (r *Roster) seeLocked(p uuid.UUID) *rosterEntry {
	e, ok := r.known[p]
	if !ok {
		k, _ := r.n.PeerKey(p)
		e = &rosterEntry{r: client.StreamReceiver{Peer: p.String(), Name: r.n.PeerName(p)}, key: k}
		r.known[p] = e
		r.order = append(r.order, p)
	}
	e.member = true
	e.r.Removed, e.r.Revoked = "", false
	return e
}

// Watch calls Update every 50 ms on a goroutine of its own and hands
// what it returns to report (on that goroutine), until stop is called;
// stop waits for the goroutine and may be called more than once.
func (r *Roster) Watch(report func(removed []client.StreamReceiver)) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			report(r.Update())
			select {
			case <-t.C:
			case <-quit:
				return
			}
		}
	}()
	return sync.OnceFunc(func() { close(quit); <-done })
}

// Update compares the members holding our key with those of the last
// call and returns the ones removed since, with why, leaving out those
// that acknowledged the end already (a receiver that acknowledged may
// stop).
func (r *Roster) Update() []client.StreamReceiver {
	r.checkDenials(false)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.updateLocked()
}

// checkDenials marks refused the members whose node refuses our key in
// the handshake (a zre.Denied: nothing of ours reaches them), asking the
// node at most once a second (now: at once). The node is asked without
// r.mu held.
func (r *Roster) checkDenials(now bool) {
	if r.n == nil {
		return
	}
	r.mu.Lock()
	if !now && time.Since(r.deniedAt) < time.Second {
		r.mu.Unlock()
		return
	}
	r.deniedAt = time.Now()
	r.mu.Unlock()
	var denied []uuid.UUID
	for _, p := range r.g.Members() {
		if _, ok := r.n.PeerDenial(p); ok {
			denied = append(denied, p)
		}
	}
	if len(denied) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range denied {
		if len(r.refused) < 4096 {
			r.refused[p] = true
		}
	}
}

func (r *Roster) updateLocked() []client.StreamReceiver {
	cur := map[uuid.UUID]bool{}
	for _, p := range r.g.Members() {
		cur[p] = true
		r.seeLocked(p)
	}
	var removed []client.StreamReceiver
	for _, p := range r.order {
		e := r.known[p]
		if !e.member || cur[p] {
			continue
		}
		e.member = false
		if e.r.Acked || r.refused[p] {
			continue // (a refuser read nothing: its summary says so)
		}
		e.r.Removed, e.r.Revoked = r.why(e)
		removed = append(removed, e.r)
	}
	return removed
}

// why a member that no longer holds our key was removed; revoked: its
// key is revoked or no longer trusted.
func (r *Roster) why(e *rosterEntry) (why string, revoked bool) {
	if r.st != nil && !e.key.IsZero() {
		if rec, ok, err := r.st.Lookup(e.key); err == nil && ok {
			switch {
			case rec.State == trust.StateRevoked:
				if rec.RevokeReason != "" {
					return "its key is revoked (" + rec.RevokeReason + ")", true
				}
				return "its key is revoked", true
			case !rec.Trusted():
				return "it is no longer trusted", true
			}
		}
	}
	return "it left the group or stopped", false
}

// Ack notes the acknowledgement of the end by peer. It reports false,
// and counts nothing, for a peer that never held our key.
func (r *Roster) Ack(peer uuid.UUID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.known[peer]
	if !ok {
		for _, p := range r.g.Members() {
			if p == peer {
				e, ok = r.seeLocked(p), true
			}
		}
	}
	if !ok {
		return false
	}
	e.r.Acked, e.r.Removed, e.r.Revoked = true, "", false
	return true
}

// Decline notes that peer, a member, reads no stream (a private chat in
// the group): it is no receiver and owes no acknowledgement.
func (r *Roster) Decline(peer uuid.UUID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.declined) < 4096 {
		r.declined[peer] = true
	}
}

// Refuse notes that peer, a member, refused our key (RefusedFrame: we
// are not trusted there): it reads nothing and owes no acknowledgement;
// Receivers lists it as Refused.
func (r *Roster) Refuse(peer uuid.UUID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.refused) < 4096 {
		r.refused[peer] = true
	}
}

// Refused is how many receivers of the start refused our key.
func (r *Roster) Refused() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := 0
	for p, e := range r.known {
		if e.r.AtStart && !e.r.Acked && r.refused[p] {
			k++
		}
	}
	return k
}

// Acked is how many receivers acknowledged the end.
func (r *Roster) Acked() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := 0
	for _, e := range r.known {
		if e.r.Acked {
			k++
		}
	}
	return k
}

// Waiting returns the receivers of the start that have neither
// acknowledged the end nor been removed.
func (r *Roster) Waiting() []client.StreamReceiver {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []client.StreamReceiver
	for _, p := range r.order {
		if e := r.known[p]; e.r.AtStart && !e.r.Acked && e.r.Removed == "" && !r.refused[p] && !r.declined[p] {
			out = append(out, e.r)
		}
	}
	return out
}

// Missing returns the receivers of the start that have not
// acknowledged the end and owe it: those Waiting, and those that left or
// stopped (not those whose key was revoked).
func (r *Roster) Missing() []client.StreamReceiver {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []client.StreamReceiver
	for _, p := range r.order {
		if e := r.known[p]; e.r.AtStart && !e.r.Acked && !e.r.Revoked && !r.refused[p] && !r.declined[p] {
			out = append(out, e.r)
		}
	}
	return out
}

// Revoked is how many receivers of the start were removed, their key
// revoked or no longer trusted, without acknowledging the end.
func (r *Roster) Revoked() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := 0
	for p, e := range r.known {
		if e.r.AtStart && !e.r.Acked && e.r.Revoked && !r.declined[p] {
			k++
		}
	}
	return k
}

// Receivers returns the receivers of the start and any other member that
// acknowledged the end, in the order first seen.
func (r *Roster) Receivers() []client.StreamReceiver {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []client.StreamReceiver
	for _, p := range r.order {
		if e := r.known[p]; e.r.AtStart && !r.declined[p] || e.r.Acked {
			rc := e.r
			rc.Refused = r.refused[p] && !rc.Acked
			out = append(out, rc)
		}
	}
	return out
}
