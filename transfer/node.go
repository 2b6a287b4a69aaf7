package transfer

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// WaitPeer waits until n knows peer (its HELLO came), for up to wait,
// reading and dropping n's events meanwhile. Its error wraps ErrPeerAway
// and ctx's error.
func WaitPeer(ctx context.Context, n Node, peer uuid.UUID, wait time.Duration) error {
	if Poll(ctx, n, 50*time.Millisecond, wait, func() bool { return slices.Contains(n.Peers(), peer) }) {
		return nil
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
