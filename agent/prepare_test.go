package agent

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/zre"
)

// waitSending waits until the agent runs want sends, for at most d.
func waitSending(t *testing.T, c *client.Client, want int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		tr, err := c.Transfers(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if tr.Sending == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sends after %v, want %d", tr.Sending, d, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A send whose client hangs up while the agent still reads and hashes the
// files (a big folder: minutes) stops at once, as a one-shot "zyre send"
// stops on Ctrl-C, instead of reading the disk to the end.
func TestSendClientGoneWhileHashing(t *testing.T) {
	a := newSecureAgent(t, 20000+rand.IntN(40000), "laptop")
	// A sparse file of 1 TiB: hashing it takes far longer than the test.
	big := filepath.Join(t.TempDir(), "big")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 40); err != nil {
		t.Skipf("no sparse file of 1 TiB here: %v", err)
	}
	f.Close()
	// The peer is found before the files are hashed: a known tablet.
	tab, _, err := curve.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.st.MarkVerified(context.Background(), tab, zre.UUIDFromKey(tab), "tablet", "test", nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := dial(t, a.sock).Send(ctx, client.SendRequest{Peer: "tablet", Paths: []string{big}}, func(client.TransferEvent) {})
		done <- err
	}()
	ac := dial(t, a.sock)
	waitSending(t, ac, 1, testTimeout)
	cancel()
	<-done
	waitSending(t, ac, 0, testTimeout/3)
}
