package agent

import (
	"context"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/zyre-go/zyre/agent/client"
)

// waitStreams waits until the agent runs want streams.
func waitStreams(t *testing.T, c *client.Client, want int) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		tr, err := c.Transfers(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if tr.Streams == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d streams after %v, want %d", tr.Streams, testTimeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A stream reader or a private chat whose client hangs up gives the group
// back: no stream left, the node out of the group.
func TestStreamAndChatClientHangsUp(t *testing.T) {
	a, _ := twoAgents(t)
	ac := dial(t, a.sock)
	for _, c := range []struct {
		name  string
		start func(ctx context.Context, c *client.Client)
	}{
		{"recv waiting", func(ctx context.Context, c *client.Client) {
			c.StreamRecv(ctx, client.StreamRequest{Group: "g1", WaitMS: testTimeout.Milliseconds()}, io.Discard, func(client.StreamMsg) {})
		}},
		{"chat", func(ctx context.Context, c *client.Client) {
			p, _, err := c.ChatPrivate(ctx, "g2")
			if err == nil {
				<-ctx.Done()
				p.Close()
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); c.start(ctx, dial(t, a.sock)) }()
			waitStreams(t, ac, 1)
			cancel()
			<-done
			waitStreams(t, ac, 0)
			deadline := time.Now().Add(testTimeout)
			for slices.ContainsFunc(a.n.OwnGroups(), func(g string) bool { return g == "g1" || g == "g2" }) {
				if time.Now().After(deadline) {
					t.Fatalf("the node is still in %v", a.n.OwnGroups())
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}
