//go:build unix

package zmtp_test

import "syscall"

// contextSwitches returns the context switches of every thread of the
// process so far, voluntary (a thread that parked, waiting for work or a
// wake-up) and involuntary (preempted): what a hand-off between goroutines
// costs when it goes through a sleeping thread.
func contextSwitches() (voluntary, involuntary int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return int64(ru.Nvcsw), int64(ru.Nivcsw)
}
