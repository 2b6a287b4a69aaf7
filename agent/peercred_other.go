//go:build !linux

package agent

import (
	"errors"
	"net"
)

// peerUID is only implemented on Linux; elsewhere every connection is
// refused, rather than trusting the socket's mode alone.
func peerUID(*net.UnixConn) (int, error) {
	return -1, errors.New("peer credentials are only checked on Linux")
}
