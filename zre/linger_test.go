package zre

import (
	"context"
	"fmt"
	"testing"
)

// TestStopDeliversWhatWasSent: a node that whispers and stops at once
// loses nothing. Its peer gets every whisper, and all of them before the
// EXIT (after it, they would come from a peer it no longer knows and be
// dropped). The peer sees the stop in two ways, and neither may overtake
// the whispers still queued to its loop: a GOODBYE (in order behind them),
// and without one the port-0 beacon with the close of the connection into
// its inbox (exit.go). The close is reported on another channel than
// the messages, so the loop must take what the connection delivered
// before it. Plain and secure mode.
func TestStopDeliversWhatWasSent(t *testing.T) {
	const whispers = 300
	for _, tc := range []struct {
		name    string
		secure  bool
		goodbye bool
	}{
		{"plain, no GOODBYE", false, false},
		{"secure, no GOODBYE", true, false},
		{"secure, GOODBYE", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := testBeaconPort()
			ac := Config{Name: "alpha", Beacon: BeaconConfig{Port: port}}
			bc := Config{Name: "beta", Beacon: BeaconConfig{Port: port}}
			if tc.secure {
				ac, bc = secureConfig(t, "alpha", port), secureConfig(t, "beta", port)
			}
			if !tc.goodbye {
				ac.Headers = []Header{{Key: HeaderGoodbye, Value: "0"}} // no GOODBYE for alpha
			}
			a := startNode(t, ac)
			b := startNode(t, bc)
			waitEvent(t, a, eventTimeout, "ENTER beta", isEnter(b.UUID()))
			waitEvent(t, b, eventTimeout, "ENTER alpha", isEnter(a.UUID()))
			ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
			defer cancel()
			for i := range whispers {
				if err := b.WhisperContext(ctx, a.UUID(), fmt.Appendf(nil, "w%d", i)); err != nil {
					t.Fatalf("whisper %d: %v", i, err)
				}
			}
			if err := b.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			got := 0
			waitEvent(t, a, eventTimeout, "EXIT beta", func(e Event) bool {
				switch e := e.(type) {
				case *Whisper:
					if e.Peer == b.UUID() {
						if want := fmt.Sprintf("w%d", got); len(e.Content) != 1 || string(e.Content[0]) != want {
							t.Fatalf("whisper %d is %q, want %q", got, e.Content, want)
						}
						got++
					}
				case *Exit:
					return e.Peer == b.UUID()
				}
				return false
			})
			if got != whispers {
				t.Fatalf("EXIT after %d of the %d whispers sent before Stop (stats %+v)", got, whispers, a.Stats())
			}
		})
	}
}
