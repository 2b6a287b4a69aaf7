package zre

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// An Authorize that calls the node (Peers) at both stages, and one that
// blocks until the node closes: no hang, the peers mesh and exchange
// messages, and Close returns.
func TestSecureAuthorizeCallsNode(t *testing.T) {
	port := testBeaconPort()
	var alpha atomic.Pointer[Node]
	var calls [3]atomic.Int32 // by stage
	cfg := secureConfig(t, "alpha", port)
	cfg.Beacon.Loopback, cfg.Beacon.Interval = true, 100*time.Millisecond
	cfg.Secure.Authorize = func(ctx context.Context, k PeerKey) error {
		calls[k.Stage-1].Add(1)
		if n := alpha.Load(); n != nil {
			n.Peers()
			n.PeerInfos()
			n.Stats()
			// Join goes through the node's loop: it hung when Authorize
			// ran there.
			if err := n.Join("authorized"); err != nil {
				return err
			}
		}
		return nil
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	alpha.Store(n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	t.Cleanup(func() {
		n.Close()
		<-closed
	})
	defer close(closed)

	beta := startNode(t, secureConfig(t, "beta", port))
	waitEvent(t, n, eventTimeout, "ENTER beta", isEnter(beta.UUID()))
	waitEvent(t, beta, eventTimeout, "ENTER alpha", isEnter(n.UUID()))
	if calls[StageConnection-1].Load() == 0 || calls[StageHello-1].Load() == 0 {
		t.Fatalf("Authorize calls: connection %d, hello %d", calls[StageConnection-1].Load(), calls[StageHello-1].Load())
	}
	// Messages sent right after the HELLO (held during the check) arrive.
	if err := beta.Whisper(n.UUID(), []byte("one")); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, n, eventTimeout, "WHISPER one", isWhisper(beta.UUID(), "one"))
	if err := n.Whisper(beta.UUID(), []byte("two")); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, beta, eventTimeout, "WHISPER two", isWhisper(n.UUID(), "two"))

	done := make(chan struct{})
	go func() { n.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(eventTimeout):
		t.Fatal("Close hung")
	}
}

// An Authorize that blocks at the hello stage until its context ends: the
// node keeps serving its other peers, and Close cancels it and returns.
func TestSecureAuthorizeBlocks(t *testing.T) {
	port := testBeaconPort()
	entered := make(chan struct{})
	var blocked atomic.Bool
	cfg := secureConfig(t, "alpha", port)
	cfg.Beacon.Loopback, cfg.Beacon.Interval = true, 100*time.Millisecond
	friendCfg := secureConfig(t, "friend", port)
	slowCfg := secureConfig(t, "slow", port)
	slowKey := slowCfg.Secure.Secret.Public()
	cfg.Secure.Authorize = func(ctx context.Context, k PeerKey) error {
		if k.Key == slowKey && k.Stage == StageHello {
			if blocked.CompareAndSwap(false, true) {
				close(entered)
			}
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	startNode(t, slowCfg)
	select {
	case <-entered:
	case <-time.After(eventTimeout):
		t.Fatal("Authorize not called for slow")
	}
	friend := startNode(t, friendCfg)
	waitEvent(t, n, eventTimeout, "ENTER friend", isEnter(friend.UUID()))
	waitFor(t, "friend to see alpha", func() bool { return slices.Contains(friend.Peers(), n.UUID()) })
	if err := friend.Whisper(n.UUID(), []byte("hi")); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, n, eventTimeout, "WHISPER hi", isWhisper(friend.UUID(), "hi"))
	if got := n.Peers(); len(got) != 1 {
		t.Fatalf("peers %v: want only friend", got)
	}
	done := make(chan struct{})
	go func() { n.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(eventTimeout):
		t.Fatal("Close hung on a blocked Authorize")
	}
}
