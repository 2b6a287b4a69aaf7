package transfer

import (
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
