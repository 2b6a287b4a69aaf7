package zre

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre/zremsg"
)

// The trust store in the secure node (spec/secure-node.md, "Trust store";
// spec/trust.md, "How the node uses the store").

// ErrRevoked: a key the trust store holds as revoked.
var ErrRevoked = errors.New("zre: key revoked")

// TrustConfig wires a trust store into a secure node (SecureConfig.Trust).
type TrustConfig struct {
	// Store decides on every peer key, once per connection and once per
	// HELLO (trust.Store.Admit), pins unbound peers, and applies the
	// statements exchanged in the group trust.Group.
	Store *trust.Store
	// Signer, optional, is our Ed25519 signing key (keystore.Identity's
	// Signer): our HELLO then carries our binding (trust.BindingHeader),
	// peers get the head of our statement log, and new statements of our
	// log (made with Store.Sign, or "zyre trust revoke" beside the node)
	// are shouted in trust.Group.
	Signer ed25519.PrivateKey
}

// KeyChanged: the trust store knows the peer (by UUID, or by name between
// unbound peers) with another key than the one it presented. (A peer
// with a key of its own that presents the name of a verified, introduced
// or revoked peer is another device: a Refused event whose Reason is a
// trust.ErrNameTaken, never a KeyChanged.)
// The peer was refused; "zyre trust accept" accepts the new key if the
// change is expected. Reported once per (UUID, new key); may be dropped
// for a slow consumer, like Refused.
type KeyChanged struct {
	EventHeader
	Old, New                       curve.PublicKey
	OldFingerprint, NewFingerprint string
	// Bound reports whether the UUID is derived from New.
	Bound bool
	Addr  string
}

// Type implements Event.
func (*KeyChanged) Type() EventType { return EventKeyChanged }

var _ Event = (*KeyChanged)(nil)

// trustState is the node's side of the trust store. binding, signer and
// store are read-only after New; pins is replaced wholesale (atomic) by the
// state goroutine and read by handshakes; the rest belongs to the state
// goroutine.
type trustState struct {
	store   *trust.Store
	signer  ed25519.PublicKey // nil: no statements of our own
	binding string            // our BindingHeader value, "" without a signer

	// pins maps the UUIDs of the store's unbound records to their keys,
	// reloaded on every housekeeping tick: beacons are checked against it.
	pins atomic.Pointer[map[uuid.UUID]curve.PublicKey]
	// revoked holds the revoked keys, reloaded with pins.
	revoked     map[curve.PublicKey]bool
	lastShouted uint64 // seq of the last statement of our log shouted
	version     uint64 // the store's Version when last listed
	listed      bool
}

func newTrustState(c *TrustConfig, pub curve.PublicKey) (*trustState, error) {
	if c.Store == nil {
		return nil, errors.New("zre: SecureConfig.Trust without a Store")
	}
	t := &trustState{store: c.Store, revoked: map[curve.PublicKey]bool{}}
	if len(c.Signer) != 0 {
		if len(c.Signer) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("zre: trust signer of %d octets, want %d", len(c.Signer), ed25519.PrivateKeySize)
		}
		b, err := trust.NewBinding(c.Signer, pub, time.Now())
		if err != nil {
			return nil, fmt.Errorf("zre: failed to make our trust binding: %w", err)
		}
		t.binding = trust.EncodeBindingHeader(b)
		t.signer = c.Signer.Public().(ed25519.PublicKey)
		seq, _, err := c.Store.Head(t.signer)
		if err != nil {
			return nil, fmt.Errorf("zre: trust store: %w", err)
		}
		t.lastShouted = seq // older statements reach peers by HEAD and WANT
	}
	empty := map[uuid.UUID]curve.PublicKey{}
	t.pins.Store(&empty)
	return t, nil
}

// pinned returns the key the store pins an unbound UUID to.
func (t *trustState) pinned(id uuid.UUID) (curve.PublicKey, bool) {
	k, ok := (*t.pins.Load())[id]
	return k, ok
}

// admit asks the store about an authenticated peer key. note receives a
// KeyChanged event when the store reports one.
func (t *trustState) admit(ctx context.Context, pk PeerKey, note func(Event)) error {
	// A connection that has not said HELLO is no peer yet: the store
	// decides on its key but records no new one (usertry5 #8).
	obs := trust.Observation{UUID: pk.UUID, Name: pk.Name, Key: pk.Key, Addr: pk.Addr, BeforeHello: pk.Stage == StageConnection}
	if v, ok := headerValue(pk.Headers, trust.BindingHeader); ok {
		if b, err := trust.DecodeBindingHeader(v); err == nil {
			obs.Binding = b
		}
	}
	v, err := t.store.Admit(ctx, obs, time.Now())
	if err != nil {
		return fmt.Errorf("%w: trust store unavailable: %w", ErrNotAuthorized, err)
	}
	if kc := v.KeyChange; kc != nil {
		note(&KeyChanged{EventHeader: EventHeader{Peer: pk.UUID, Name: pk.Name}, Old: kc.Old, New: kc.New,
			OldFingerprint: kc.OldFingerprint, NewFingerprint: kc.NewFingerprint, Bound: kc.Bound, Addr: pk.Addr})
	}
	if v.Allow {
		return nil
	}
	switch {
	case v.KeyChange != nil:
		// The reason names the peer, the old and the new fingerprint, once.
		return fmt.Errorf("%w: trust store: %s", ErrKeyMismatch, v.Reason)
	case v.NameTaken != nil:
		// Another device with a known name: the Refused event's reason
		// says so (errors.Is trust.ErrNameTaken), on this peer only.
		return fmt.Errorf("%w: trust store: %w", ErrNotAuthorized, v.NameTaken)
	case v.Record.State == trust.StateRevoked && v.Record.Key == pk.Key:
		return fmt.Errorf("%w: %w: %s", ErrNotAuthorized, ErrRevoked, v.Reason)
	}
	return fmt.Errorf("%w: trust store: %s", ErrNotAuthorized, v.Reason)
}

// trustTick is the trust store's part of the housekeeping tick (state
// goroutine): reload pins and revocations (the CLI may have changed the
// file), drop peers whose key is revoked, shout our new statements.
func (s *state) trustTick() {
	t := s.sec.trust
	// The peers connected are seen: a flood of new keys never evicts the
	// pin of one that keeps talking (from memory: no file work).
	keys := make([]curve.PublicKey, 0, len(s.peers))
	for _, p := range s.peers {
		if !p.key.IsZero() {
			keys = append(keys, p.key)
		}
	}
	t.store.Seen(keys)
	v := t.store.Version() // from memory: no file work on the loop
	if v == t.version && t.listed {
		s.shoutOwnStatements() // nothing changed: no copy of the store
		return
	}
	recs, err := t.store.List()
	if err != nil {
		s.log.Warn("zre: trust store unreadable", "err", err)
		return
	}
	t.version, t.listed = v, true
	pins := make(map[uuid.UUID]curve.PublicKey)
	revoked := make(map[curve.PublicKey]bool)
	for _, r := range recs {
		if r.State == trust.StateRevoked {
			revoked[r.Key] = true
		}
		if !IsBound(r.UUID, r.Key) && r.UUID != uuid.Nil {
			if _, ok := pins[r.UUID]; !ok || r.State != trust.StateRevoked {
				pins[r.UUID] = r.Key
			}
		}
	}
	t.pins.Store(&pins)
	t.revoked = revoked
	s.dropRevoked()
	s.shoutOwnStatements()
}

// dropRevoked removes the peers (and pending connections) whose key is
// revoked: their links are closed, and so are their connections into our
// inbox (by the peer's identity, and by the identity bound to each revoked
// key, which only that key can hold); their HELLO and connections are
// refused from then on by the store.
func (s *state) dropRevoked() {
	t := s.sec.trust
	if len(t.revoked) == 0 {
		return
	}
	for _, p := range s.sortedPeers() {
		if !p.key.IsZero() && t.revoked[p.key] {
			s.log.Warn("zre: dropping a peer whose key is revoked", "peer", p.label(), "key", p.key.Z85())
			s.stats.peersRevoked.Add(1)
			s.removePeer(p)
			s.disconnectRevoked(Identity(p.id), p.key)
		}
	}
	for ep, pp := range s.pending {
		if t.revoked[pp.key] {
			pp.link.Close()
			delete(s.pending, ep)
		}
	}
	for k := range t.revoked {
		s.disconnectRevoked(Identity(UUIDFromKey(k)), k)
	}
}

// disconnectRevoked closes the inbox connection with the given identity
// (one authenticated with the revoked key), if there is one.
func (s *state) disconnectRevoked(identity []byte, key curve.PublicKey) {
	if s.sec.disconnect == nil {
		return
	}
	if s.sec.disconnect(identity) {
		s.log.Warn("zre: closed an inbox connection of a revoked key", "uuid", uuidString(uuid.UUID(identity[1:])), "key", key.Z85())
	}
}

// shoutOwnStatements shouts in trust.Group the statements of our log made
// since the last tick.
func (s *state) shoutOwnStatements() {
	t := s.sec.trust
	if t.signer == nil {
		return
	}
	seq, _, err := t.store.Head(t.signer)
	if err != nil || seq <= t.lastShouted {
		return
	}
	raws, err := t.store.LogSince(t.signer, t.lastShouted, trust.MaxWantReply)
	if err != nil {
		s.log.Warn("zre: cannot read our statements", "err", err)
		return
	}
	for _, raw := range raws {
		s.trustShout(trust.StatementMessage(raw))
		t.lastShouted++
	}
}

// trustShout sends one trust message to every peer in trust.Group.
func (s *state) trustShout(frame []byte) {
	g := s.groups[trust.Group]
	if g == nil {
		return
	}
	for _, p := range s.sortedPeers() {
		if g.peers[p.id] != nil {
			s.trustSendTo(p, frame)
		}
	}
}

// trustSendTo "whispers" a trust message: a SHOUT in trust.Group sent to
// p alone, so that trust messages never mix with application WHISPERs.
func (s *state) trustSendTo(p *peer, frame []byte) {
	s.sendTo(p, &zremsg.Msg{ID: zremsg.MsgShout, Group: trust.Group, Content: [][]byte{frame}})
}

// trustEnter sends the head of our log to a peer that joined trust.Group
// (in its HELLO or later); peers outside it (C nodes) get no trust
// messages.
func (s *state) trustEnter(p *peer) {
	t := s.sec.trust
	if t.signer == nil {
		return
	}
	head, err := t.store.HeadMessage(t.signer)
	if err != nil {
		return
	}
	s.trustSendTo(p, head)
}

// onTrustMessage handles a SHOUT in trust.Group: the store applies it; its
// replies go back to the sender alone; revocations take effect at once.
func (s *state) onTrustMessage(p *peer, content [][]byte) {
	t := s.sec.trust
	if len(content) != 1 {
		s.log.Debug("zre: trust message of several frames dropped", "peer", p.label(), "frames", len(content))
		return
	}
	replies, applied, err := t.store.Handle(s.ctx(), content[0])
	if err != nil {
		s.stats.trustErrors.Add(1)
		s.log.Debug("zre: trust message refused", "peer", p.label(), "err", err)
	}
	for _, r := range replies {
		s.trustSendTo(p, r)
	}
	if applied != nil && len(applied.Revoked) > 0 {
		for _, r := range applied.Revoked {
			t.revoked[r.Key] = true
		}
		s.dropRevoked()
	}
}

// reservedGroup reports whether events of group name stay inside the node.
func (s *state) reservedGroup(name string) bool {
	return name == trust.Group && s.sec != nil && s.sec.trust != nil
}
