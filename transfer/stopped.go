package transfer

import (
	"errors"
	"fmt"
	"time"
)

// ErrStopped: the other side of a transfer stopped it (its user's Ctrl-C,
// its agent stopping) or stopped answering; the errors of Send and
// Receive that say so are a *StoppedError, which wraps it. What the
// receiver holds stays in its folder: the same files sent again resume.
var ErrStopped = errors.New("transfer: the other side stopped")

// StoppedError says that the other side stopped a transfer part-way, how
// far it got, and how to go on: one line for the user, e.g. "phone1
// stopped receiving after 172.0 MiB of 400.0 MiB (43%); it keeps what it
// holds: send the same files again to resume".
type StoppedError struct {
	Name   string        // the other side's name
	Sender bool          // the sender stopped (else the receiver)
	Silent time.Duration // > 0: it said nothing for this long (not told)
	Held   int64         // octets the receiver holds
	Total  int64         // octets of the offer
}

func (e *StoppedError) Error() string {
	far := fmt.Sprintf("%s of %s (%d%%)", SizeText(e.Held), SizeText(e.Total), percent(e.Held, e.Total))
	switch {
	case e.Sender:
		return fmt.Sprintf("%s stopped sending after %s; what arrived is kept: receive again while it sends the same files again to resume", e.Name, far)
	case e.Silent > 0:
		return fmt.Sprintf("%s stopped answering after %s: nothing from it for %v (its receive was stopped, or its agent or the link went down); "+
			"it keeps what it holds: send the same files again to resume", e.Name, far, e.Silent)
	}
	return fmt.Sprintf("%s stopped receiving after %s; it keeps what it holds: send the same files again to resume", e.Name, far)
}

// Unwrap returns ErrStopped.
func (e *StoppedError) Unwrap() error { return ErrStopped }

func percent(held, total int64) int64 {
	if total <= 0 {
		return 100
	}
	return held * 100 / total
}

// SizeText says n octets for a person: "172.0 MiB", "12.5 KiB", "17 B".
func SizeText(n int64) string {
	f := float64(n)
	switch {
	case f >= 1<<30:
		return fmt.Sprintf("%.1f GiB", f/(1<<30))
	case f >= 1<<20:
		return fmt.Sprintf("%.1f MiB", f/(1<<20))
	case f >= 1<<10:
		return fmt.Sprintf("%.1f KiB", f/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
