//go:build unix

package testenv

import (
	"syscall"
	"time"
)

// ProcessCPU returns the CPU time (user + system) of the whole process:
// every thread, the runtime and the garbage collector included. Benchmarks
// that measure what a receiving process costs read it at both ends of
// their window. It returns -1 when getrusage fails.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
