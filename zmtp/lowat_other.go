//go:build !linux

package zmtp

import "net"

// lowatSetter returns nil: the receive low-water mark is used on Linux
// only, whose semantics (poll and epoll readiness, non-blocking reads
// return what is there) readFull relies on.
func lowatSetter(nc net.Conn) func(int) { return nil }
