package zre

import (
	"sync/atomic"
	"time"

	"github.com/zyre-go/zyre/zmtp"
)

// A dial to an endpoint that never completes its handshake (a closed
// port, a black hole, a CURVE server with another key) is given up after
// at most two tries: a spoofed beacon pointing at someone else's address
// then buys at most two connection attempts from each node, not a retry
// every few seconds for as long as the peer record lives.
//
// The DEALER tries at once, then after dialRetry, then after twice that
// (zmtp's backoff); giveUpAfter falls between its second and its third
// try, with a second's margin either way.
const (
	dialRetry   = time.Second
	giveUpAfter = 2*dialRetry + dialRetry/2
)

// giveUpLink is a DEALER that closes itself when it has not connected
// giveUpAfter after the dial; the state then sees GaveUp and drops it (see
// reap). Once connected it behaves as the DEALER it wraps, reconnecting as
// that does (a peer that was there may come back).
type giveUpLink struct {
	*zmtp.Dealer
	timer  *time.Timer
	gaveUp atomic.Bool
}

func newGiveUpLink(d *zmtp.Dealer, after time.Duration) *giveUpLink {
	l := &giveUpLink{Dealer: d}
	// The timer's goroutine only reads Connected and closes the DEALER,
	// both safe from any goroutine.
	l.timer = time.AfterFunc(after, func() {
		if !d.Connected() {
			l.gaveUp.Store(true)
			d.Close()
		}
	})
	return l
}

// GaveUp reports whether the link was closed because it never connected.
func (l *giveUpLink) GaveUp() bool { return l.gaveUp.Load() }

// Close stops the timer and closes the DEALER.
func (l *giveUpLink) Close() error {
	l.timer.Stop()
	return l.Dealer.Close()
}
