package zmtp

import (
	"net"
	"syscall"
)

// lowatSetter returns what sets nc's receive low-water mark
// (SO_RCVLOWAT), or nil when nc is not a socket that has one.
func lowatSetter(nc net.Conn) func(int) {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	// One closure for the connection's life: a setting allocates nothing.
	var mark int
	set := func(fd uintptr) {
		// A failure only costs the wake-ups it would have saved.
		syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, mark)
	}
	return func(n int) {
		mark = n
		raw.Control(set)
	}
}
