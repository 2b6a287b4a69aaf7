package transfer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/zre"
)

// Node is what Send and Receive use of a secure node: a *zre.Node they
// read the events of, or a view of one whose events another goroutine
// reads and hands on (the agent's node, which serves other clients too).
// Events must carry at least the node's WHISPER, ENTER and EXIT events;
// Send and Receive ignore the rest.
type Node interface {
	Events() <-chan zre.Event
	Whisper(peer uuid.UUID, content ...[]byte) error
	Peers() []uuid.UUID
	PeerName(peer uuid.UUID) string
}

var _ Node = (*zre.Node)(nil)

// IsMessage reports whether content is a message of this protocol (its
// first frame is Tag): what a Node view must hand on.
func IsMessage(content [][]byte) bool { return len(content) > 0 && string(content[0]) == Tag }

// ErrPeerAway: the peer did not appear in time (WaitPeer).
var ErrPeerAway = errors.New("transfer: the peer did not appear")

// ErrRefused: the peer's node refuses this device's key in the handshake
// (zre.Denied); the errors of Send and WaitPeer that say so are a
// *RefusedError, which wraps it.
var ErrRefused = errors.New("transfer: the peer refuses this device's key")

// RefusedError says that the peer's node refuses this device's key, why
// as far as it said, and what to do: one line for the user, e.g.
// "phone1 refuses this device's key (we are not trusted there): pair with
// it first (its node said: key not authorized)".
type RefusedError struct {
	Name   string // the peer's name (its HELLO's, or its UUID's first 8 digits)
	Reason string // its node's reason, cleaned (zre.CleanReason)
}

func (e *RefusedError) Error() string {
	why, fix := "we are not trusted there", "pair with it first"
	switch {
	case strings.Contains(e.Reason, "revoked"):
		why, fix = "it is revoked there", "a revoked key stays refused: this device needs a new key (zyre keys rotate) and a new pairing"
	case strings.Contains(e.Reason, "name of another device"):
		why = "it knows another device by this device's name"
	case strings.Contains(e.Reason, "key mismatch"):
		why = "it knows this device's UUID or name with another key"
	}
	said := "no reason given"
	if e.Reason != "" {
		said = "its node said: " + e.Reason
	}
	return fmt.Sprintf("%s refuses this device's key (%s): %s (%s)", e.Name, why, fix, said)
}

// Unwrap returns ErrRefused.
func (e *RefusedError) Unwrap() error { return ErrRefused }

// denier is a Node that can tell whether a peer refuses us (*zre.Node;
// the agent's view of one embeds it).
type denier interface {
	PeerDenial(peer uuid.UUID) (zre.Denied, bool)
}

// Denial reports whether n's node was refused by peer in the handshake
// lately (zre.Node.PeerDenial); false when n cannot tell.
func Denial(n Node, peer uuid.UUID) (zre.Denied, bool) {
	if d, ok := n.(denier); ok {
		return d.PeerDenial(peer)
	}
	return zre.Denied{}, false
}

// NameRefused gives the *RefusedError in err, if any, the name name when
// the node knew none for its peer (it names it by its UUID's first 8
// digits then): the caller's name for the peer (its trust record's).
func NameRefused(err error, peer uuid.UUID, name string) error {
	var re *RefusedError
	if name != "" && errors.As(err, &re) && re.Name == peer.String()[:8] {
		re.Name = zre.CleanReason(name)
	}
	return err
}

// refusedError is the error for d, naming the peer as n knows it.
func refusedError(n Node, d zre.Denied) *RefusedError {
	name := d.Name
	if name == "" {
		name = n.PeerName(d.Peer)
	}
	if name == "" {
		name = d.Peer.String()[:8]
	}
	return &RefusedError{Name: zre.CleanReason(name), Reason: zre.CleanReason(d.Reason)}
}

// WaitPeer waits until n knows peer (its HELLO came), for up to wait,
// reading and dropping n's events meanwhile. Its error wraps ErrPeerAway
// and ctx's error, or is a *RefusedError when the peer's node refuses our
// key meanwhile (see Denial).
func WaitPeer(ctx context.Context, n Node, peer uuid.UUID, wait time.Duration) error {
	var refused error
	if Poll(ctx, n, 50*time.Millisecond, wait, func() bool {
		if d, ok := Denial(n, peer); ok {
			refused = refusedError(n, d)
			return true
		}
		return slices.Contains(n.Peers(), peer)
	}) {
		return refused
	}
	err := ctx.Err()
	if err == nil {
		err = context.DeadlineExceeded
	}
	return fmt.Errorf("%w: %s after %v: %w", ErrPeerAway, peer.String()[:8], wait, err)
}

// Poll calls done now, then after every event of n and every interval,
// until it is true (Poll returns true) or wait has passed or ctx ended
// (false). It reads and drops n's events meanwhile: the node goes on
// meeting the network, which is what done usually waits for.
func Poll(ctx context.Context, n Node, interval, wait time.Duration, done func() bool) bool {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for !done() {
		select {
		case <-n.Events():
		case <-tick.C:
		case <-ctx.Done():
			return false
		}
	}
	return true
}
