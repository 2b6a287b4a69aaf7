//go:build !linux

package zmtp

import "net"

// lowater is Linux only: readFull relies on Linux's semantics of the
// receive low-water mark (poll and epoll readiness wait for it; a
// non-blocking read returns what is there).
type lowater struct{}

func newLowater(net.Conn) *lowater           { return nil }
func (*lowater) setMark(int)                 {}
func (*lowater) raised() bool                { return false }
func (*lowater) readNow([]byte) (int, error) { return 0, nil }

// setNotSentLowat is Linux only (TCP_NOTSENT_LOWAT); elsewhere the
// kernel's send buffer stays as the system sets it.
func setNotSentLowat(net.Conn, int) {}

// notSentLowat reports -1: not read elsewhere (tests).
func notSentLowat(net.Conn) int { return -1 }
