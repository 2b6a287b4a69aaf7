package zmtp

import (
	"io"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// lowater sets a TCP connection's receive low-water mark (SO_RCVLOWAT)
// for frameReader.readFull, and reads what arrived below it when the idle
// deadline passes while the mark is raised (deadlineReader). The reader
// goroutine is its only user.
type lowater struct {
	raw  syscall.RawConn
	mark int              // the mark set; 0 or 1 = the default
	set  func(fd uintptr) // sets mark; made once, so that a setting allocates nothing
}

// newLowater returns nil when nc is not a TCP connection.
func newLowater(nc net.Conn) *lowater {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	l := &lowater{raw: raw}
	l.set = func(fd uintptr) {
		// A failure only costs the wake-ups it would have saved.
		syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, max(l.mark, 1))
	}
	return l
}

// setMark sets the low-water mark to n octets.
func (l *lowater) setMark(n int) {
	l.mark = n
	l.raw.Control(l.set)
}

// raised reports whether the mark is above 1.
func (l *lowater) raised() bool { return l.mark > 1 }

// readNow reads what the socket holds into p without waiting (the mark
// does not hold back a read, only the wake-up): 0 and no error when it
// holds nothing, io.EOF when the peer closed its side. The connection's
// read deadline must not have passed.
func (l *lowater) readNow(p []byte) (int, error) {
	var n int
	var rerr error
	err := l.raw.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), p)
		return true // one try, never a wait
	})
	if err != nil {
		return 0, err
	}
	switch {
	case rerr == syscall.EAGAIN || rerr == syscall.EINTR:
		return 0, nil
	case rerr != nil:
		return 0, rerr
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// setNotSentLowat sets TCP_NOTSENT_LOWAT on a TCP connection (see
// SendBound.NotSentLowat); other connections are left as they are. A
// failure only leaves the kernel's buffer as large as before.
func setNotSentLowat(nc net.Conn, n int) {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return
	}
	raw.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, n)
	})
}

// notSentLowat returns a TCP connection's TCP_NOTSENT_LOWAT (tests); -1
// when it cannot be read.
func notSentLowat(nc net.Conn) int {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return -1
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return -1
	}
	v := -1
	raw.Control(func(fd uintptr) {
		if n, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT); err == nil {
			v = n
		}
	})
	return v
}
