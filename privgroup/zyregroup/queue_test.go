package zyregroup

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/zmtp"
)

// A send that a member's full queue refuses waits for it (through the
// node's WhisperContext) until SendTimeout, then the member is given up; a
// send that fails otherwise is not tried again; Close ends the wait.
func TestRetry(t *testing.T) {
	other := errors.New("no such peer")
	for _, c := range []struct {
		name        string
		fails       int   // ErrPeerNotResponding this many times, then success
		err         error // or this error at once
		timeout     time.Duration
		close       bool
		waits       int    // WhisperContext calls
		undelivered uint64 // given up
		holds       bool   // the member took the key
	}{
		{name: "success", holds: true},
		{name: "other error", err: other},
		{name: "full twice", fails: 2, timeout: time.Minute, waits: 1, holds: true},
		{name: "full until the timeout", fails: 1 << 30, timeout: 20 * time.Millisecond, waits: 1, undelivered: 1},
		{name: "closed while waiting", fails: 1 << 30, timeout: time.Minute, close: true, waits: 1, undelivered: 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeGroup(t, 0xff, func(o *Options) { o.SendTimeout = c.timeout })
			node := f.g.node.(*fakeNode)
			calls := 0
			tried := make(chan struct{})
			node.mu.Lock()
			node.refuseWhisper = func(uuid.UUID) error {
				if calls++; calls == 3 {
					close(tried)
				}
				if c.err != nil {
					return c.err
				}
				if calls <= c.fails {
					return fmt.Errorf("zre: whisper: %w", zmtp.ErrPeerNotResponding)
				}
				return nil
			}
			node.mu.Unlock()
			if err := f.g.Rotate(); err != nil {
				t.Fatal(err)
			}
			if c.close {
				<-tried
				f.g.Close()
			}
			waitFor(t, "nothing waiting", func() bool { return f.g.is(func() bool { return len(f.g.send.pend) == 0 }) })
			node.mu.Lock()
			waits, n := node.waits, calls
			node.mu.Unlock()
			st := f.g.Stats()
			holds := f.g.is(func() bool { return f.g.send.holds[f.p] == f.g.send.s.Epoch() })
			if waits != c.waits || st.SendRetries != uint64(c.waits) || st.Undelivered != c.undelivered || holds != c.holds {
				t.Fatalf("%d waits (SendRetries %d), Undelivered %d, holds the key %v; want %d, %d, %v", waits, st.SendRetries, st.Undelivered, holds, c.waits, c.undelivered, c.holds)
			}
			if c.err != nil && n != 1 {
				t.Fatalf("%d tries for an error that is not retried", n)
			}
		})
	}
}
