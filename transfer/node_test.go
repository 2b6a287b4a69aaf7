package transfer

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/zre"
)

// peersNode is a Node whose peers a test sets; each change is an event.
type peersNode struct {
	mu    sync.Mutex
	peers []uuid.UUID
	ev    chan zre.Event
}

func (n *peersNode) Events() <-chan zre.Event           { return n.ev }
func (n *peersNode) Whisper(uuid.UUID, ...[]byte) error { return nil }
func (n *peersNode) PeerName(uuid.UUID) string          { return "" }
func (n *peersNode) Peers() []uuid.UUID {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]uuid.UUID(nil), n.peers...)
}
func (n *peersNode) enter(p uuid.UUID) {
	n.mu.Lock()
	n.peers = append(n.peers, p)
	n.mu.Unlock()
	n.ev <- &zre.Enter{EventHeader: zre.EventHeader{Peer: p}}
}

func TestWaitPeer(t *testing.T) {
	peer := uuid.New()

	// The peer comes: WaitPeer returns at its ENTER, well before wait.
	n := &peersNode{ev: make(chan zre.Event)}
	go func() {
		n.ev <- &zre.Silent{EventHeader: zre.EventHeader{Peer: uuid.New()}} // another peer's event first
		n.enter(peer)
	}()
	if err := WaitPeer(context.Background(), n, peer, time.Hour); err != nil {
		t.Fatalf("WaitPeer with the peer come: %v", err)
	}

	// It does not: ErrPeerAway with the deadline, or ctx's error.
	n = &peersNode{ev: make(chan zre.Event)}
	if err := WaitPeer(context.Background(), n, peer, 10*time.Millisecond); !errors.Is(err, ErrPeerAway) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitPeer for a peer that never comes: %v, want ErrPeerAway and DeadlineExceeded", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := WaitPeer(ctx, n, peer, time.Hour); !errors.Is(err, ErrPeerAway) || !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitPeer with ctx cancelled: %v, want ErrPeerAway and Canceled", err)
	}
}
