package zmtp

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// admission is the state of a Router connection under Options.PreAdmit.
type admission struct {
	ok   atomic.Bool   // admitted: MaxMsgSize alone applies
	ch   chan struct{} // closed at admission
	once sync.Once

	// Reader only.
	spent     int64 // octets read before admission
	delivered bool  // a message was delivered before admission

	refused *atomic.Uint64 // the Router's count (Router.Unadmitted)
}

func newAdmission(refused *atomic.Uint64) *admission {
	return &admission{ch: make(chan struct{}), refused: refused}
}

// admit admits the connection; idempotent, any goroutine.
func (a *admission) admit() {
	a.once.Do(func() {
		a.ok.Store(true)
		close(a.ch)
	})
}

// preAdmit runs before each frame of a connection not admitted yet: it
// looks at the next frame's header without taking it and lets it be read
// when it fits in what is left of Options.PreAdmit. Otherwise the
// connection is closed at once when it has delivered nothing (nothing to
// decide on: its first message alone is too large), or waits for the
// decision on what it delivered, at most AdmitWait. stop reports that
// the reader must return err (nil: the connection was closed here).
func (c *conn) preAdmit(a *admission) (stop bool, err error) {
	h, err := c.br.Peek(1)
	if err != nil {
		return true, c.readErr(err)
	}
	hl := 2
	if h[0]&FlagLong != 0 {
		hl = 9
	}
	if h, err = c.br.Peek(hl); err != nil {
		return true, c.readErr(unexpected(err))
	}
	var size uint64
	if hl == 9 {
		size = binary.BigEndian.Uint64(h[1:])
	} else {
		size = uint64(h[1])
	}
	limit := c.opts.PreAdmit
	if left := uint64(limit - a.spent); size <= left && uint64(hl) <= left-size {
		a.spent += int64(hl) + int64(size)
		return false, nil
	}
	tooMuch := func(why string) error {
		a.refused.Add(1)
		err := fmt.Errorf("zmtp: %v sent a frame of %d octets %s: at most %d octets in all before its admission: %w",
			addrString(c.nc.RemoteAddr()), size, why, limit, ErrTooLarge)
		c.log.Debug("zmtp: router: closing a connection not admitted", "err", err)
		return err
	}
	if !a.delivered {
		return true, tooMuch("before any message")
	}
	t := time.NewTimer(c.opts.AdmitWait)
	defer t.Stop()
	select {
	case <-a.ch:
		return false, nil
	case <-c.done:
		return true, nil
	case <-t.C:
		return true, tooMuch(fmt.Sprintf("and was not admitted within %v", c.opts.AdmitWait))
	}
}
