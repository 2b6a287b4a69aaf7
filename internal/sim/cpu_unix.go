//go:build unix

package sim

import (
	"syscall"
	"time"
)

// CPUTime returns the CPU time (user + system) this process used so far,
// or 0 when getrusage fails.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
