package transfer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
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

// goneNode is a Node whose peer the node forgets (Whisper: ErrUnknownPeer)
// before the EXIT event comes, as a zre.Node does.
type goneNode struct {
	peersNode
	gone atomic.Bool
}

func (n *goneNode) Whisper(uuid.UUID, ...[]byte) error {
	if n.gone.Load() {
		return zre.ErrUnknownPeer
	}
	return nil
}

func (n *goneNode) PeerName(uuid.UUID) string {
	if n.gone.Load() {
		return ""
	}
	return "bob"
}

// A peer the node forgets while DATA goes out is said to have gone away,
// once, also when a send finds it unknown before its EXIT event comes (the
// sender said nothing then, and nothing at the EXIT).
func TestSendSaysGoneOnce(t *testing.T) {
	peer := uuid.New()
	src := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(src, make([]byte, 4*ChunkSize), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Prepare([]string{src})
	if err != nil {
		t.Fatal(err)
	}
	n := &goneNode{peersNode: peersNode{peers: []uuid.UUID{peer}, ev: make(chan zre.Event)}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var notices []string
	done := make(chan error, 1)
	go func() {
		_, err := Send(ctx, n, peer, s, SendOptions{Notify: func(m string) { mu.Lock(); notices = append(notices, m); mu.Unlock() }})
		done <- err
	}()
	n.gone.Store(true) // forgotten: the first DATA finds it unknown
	n.ev <- &zre.Whisper{EventHeader: zre.EventHeader{Peer: peer, Name: "bob"}, Content: frames(kindAccept, &accept{ID: s.Offer.ID, Offsets: []int64{0}}, nil)}
	n.ev <- &zre.Exit{EventHeader: zre.EventHeader{Peer: peer, Name: "bob"}}
	n.ev <- &zre.Silent{EventHeader: zre.EventHeader{Peer: uuid.New()}} // the EXIT was handled
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(notices) != 1 || !strings.HasPrefix(notices[0], "bob went away with ") {
		t.Fatalf("notices %q, want one that bob went away", notices)
	}
}

// TestSendGivesUpOnAFlappingSilentPeer: a peer that goes away and comes
// back again and again without ever answering the offer is the sign of a
// node that refuses our key (its CURVE server denies the connection, which
// the beacon brings back every few seconds) or a firewall: after
// maxSilentFlaps the send stops and says so, instead of looping for
// PeerWait (usertry3 #8). A peer that answered once is waited for as ever.
func TestSendGivesUpOnAFlappingSilentPeer(t *testing.T) {
	peer := uuid.New()
	src := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(src, make([]byte, 100), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Prepare([]string{src})
	if err != nil {
		t.Fatal(err)
	}
	n := &peersNode{peers: []uuid.UUID{peer}, ev: make(chan zre.Event)}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := Send(ctx, n, peer, s, SendOptions{PeerWait: time.Hour, AcceptWait: time.Hour})
		done <- err
	}()
	for i := 1; ; i++ {
		select {
		case n.ev <- &zre.Exit{EventHeader: zre.EventHeader{Peer: peer, Name: "phone1"}}:
		case err := <-done:
			t.Fatalf("ended before EXIT %d: %v", i, err)
		}
		select {
		case n.ev <- &zre.Enter{EventHeader: zre.EventHeader{Peer: peer, Name: "phone1"}}:
		case err := <-done:
			if i != maxSilentFlaps || err == nil || !strings.Contains(err.Error(), "phone1 went away 3 times without ever answering the offer: its node may refuse this device's key") {
				t.Fatalf("after %d flaps: %v", i, err)
			}
			return
		}
		if i > maxSilentFlaps {
			t.Fatalf("still sending after %d flaps", i)
		}
	}
}

// A peer that answered (an ACCEPT, here) and then comes and goes
// is waited for, as a receiver on a bad network is.
func TestSendWaitsForAnAnsweringFlappingPeer(t *testing.T) {
	peer := uuid.New()
	src := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(src, make([]byte, 100), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Prepare([]string{src})
	if err != nil {
		t.Fatal(err)
	}
	n := &peersNode{peers: []uuid.UUID{peer}, ev: make(chan zre.Event)}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := Send(ctx, n, peer, s, SendOptions{PeerWait: time.Hour, AcceptWait: time.Hour})
		done <- err
	}()
	events := []zre.Event{&zre.Whisper{EventHeader: zre.EventHeader{Peer: peer, Name: "phone1"}, Content: frames(kindAccept, &accept{ID: s.Offer.ID, Offsets: []int64{0}}, nil)}}
	for range 2 * maxSilentFlaps {
		events = append(events, &zre.Exit{EventHeader: zre.EventHeader{Peer: peer, Name: "phone1"}}, &zre.Enter{EventHeader: zre.EventHeader{Peer: peer, Name: "phone1"}})
	}
	for _, e := range events {
		select {
		case n.ev <- e:
		case err := <-done:
			t.Fatalf("a peer that answered was given up: %v", err)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Send: %v, want it cancelled", err)
	}
}
