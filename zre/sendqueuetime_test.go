package zre

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/zmtp"
	"github.com/zyre-go/zyre/zre/zremsg"
)

// The node's connections to its peers are bounded by time by default
// (Config.SendQueueTime): towards a peer that does not read, Whisper
// refuses once about 256 KiB wait (no rate measured: MinBytes), not at
// SendHWM messages; WhisperContext waits. Off (<0), SendHWM alone.
func TestSendQueueTimeBoundsWhisper(t *testing.T) {
	for _, tc := range []struct {
		name     string
		qt       time.Duration
		min, max int // messages of 64 KiB waiting in the queue at the refusal
	}{
		// 256 KiB waiting, those the writer holds counted: 4 whispers at
		// most, and our HELLO when the connection is not up yet.
		{"default", 0, 0, 5},
		// SendHWM: 40, of which the writer may take 32 after.
		{"off", -1, 8, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := startNode(t, Config{Name: "a", Beacon: BeaconConfig{Disabled: true}, Bind: "127.0.0.1", SendHWM: 40, SendQueueTime: tc.qt})
			ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
			defer cancel()
			// A raw peer whose inbox reads nothing after the HELLO.
			inbox, err := zmtp.ListenRouter("tcp", "127.0.0.1:0", zmtp.Options{RecvHWM: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer inbox.Close()
			rawID := uuid.New()
			d, err := zmtp.DialDealer("tcp", strings.TrimPrefix(a.Endpoint(), "tcp://"), zmtp.Options{Identity: Identity(rawID)})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			hello, err := (&zremsg.Msg{ID: zremsg.MsgHello, Sequence: 1, Endpoint: "tcp://" + inbox.Addr().String(), Name: "raw"}).Frames()
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Send(hello...); err != nil {
				t.Fatal(err)
			}
			waitEvent(t, a, eventTimeout, "ENTER raw", isEnter(rawID))
			// The kernel's buffers take some (how much depends on the
			// system's): keep whispering until refused, then count
			// what waits in our queue only.
			n := 0
			for ; n < 100000; n++ {
				if err := a.Whisper(rawID, bytes.Repeat([]byte{1}, 64<<10)); err != nil {
					if !errors.Is(err, zmtp.ErrPeerNotResponding) {
						t.Fatalf("whisper %d: %v, want ErrPeerNotResponding", n, err)
					}
					break
				}
			}
			if n == 100000 {
				t.Fatal("whispers to a peer that reads nothing never refused")
			}
			backlog := a.PeerBacklog(rawID)
			for backlog < 0 && ctx.Err() == nil { // a send of the node's in progress
				time.Sleep(time.Millisecond)
				backlog = a.PeerBacklog(rawID)
			}
			if backlog < tc.min || backlog > tc.max {
				t.Fatalf("refused after %d whispers of 64 KiB with %d waiting in the queue, want %d to %d", n, backlog, tc.min, tc.max)
			}
			t.Logf("refused after %d whispers of 64 KiB, %d waiting in the queue", n, backlog)
		})
	}
}
