//go:build !unix

package sim

import "time"

// CPUTime returns 0: getrusage is a unix call.
func CPUTime() time.Duration { return 0 }
