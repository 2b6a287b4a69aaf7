package testenv

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// WaitFor polls cond every few milliseconds until it holds, and fails tb
// (naming what it waited for) when timeout passes first. It is for states
// that no event announces, such as counters; where an event says it, wait
// on the event instead.
func WaitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("no %s within %v", what, timeout)
		}
		<-tick.C
	}
}

// NoLeak records how many goroutines run now and, when the test ends, waits
// up to timeout until no more run, failing tb with every goroutine's stack
// otherwise. Call it first in the test, so that its cleanup runs last
// (cleanups run in reverse order), after what the test started was closed.
// It counts every goroutine of the process: tests that use it must not run
// in parallel.
func NoLeak(tb testing.TB, timeout time.Duration) {
	before := runtime.NumGoroutine()
	tb.Cleanup(func() {
		deadline := time.Now().Add(timeout)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				tb.Errorf("goroutine leak: %d before, %d after\n%s", before, n, strings.Join(Goroutines(nil), "\n\n"))
				return
			}
			time.Sleep(10 * time.Millisecond) // polling, bounded by the deadline
		}
	})
}

// Goroutines returns the stacks of the running goroutines for which match
// returns true (all of them when match is nil).
func Goroutines(match func(stack string) bool) []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if match == nil || match(g) {
			out = append(out, g)
		}
	}
	return out
}

// NoGoroutines waits up to timeout until no running goroutine's stack
// matches, and fails tb with the stacks of those left otherwise. A
// goroutine that has called wg.Done may still be on its way out when a
// Close returns: hence the wait.
func NoGoroutines(tb testing.TB, timeout time.Duration, match func(stack string) bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		left := Goroutines(match)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Errorf("%d goroutines still running after %v:\n%s", len(left), timeout, strings.Join(left, "\n\n"))
			return
		}
		time.Sleep(5 * time.Millisecond) // polling, bounded by the deadline
	}
}
