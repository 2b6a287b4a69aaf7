package zmtp_test

import (
	"net"
	"syscall"
)

func init() {
	rawLowat = func(c net.Conn, n int) {
		raw, err := c.(*net.TCPConn).SyscallConn()
		if err != nil {
			return
		}
		raw.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, n)
		})
	}
}
