//go:build !linux

package client

import (
	"errors"
	"net"
)

// PeerUID is only implemented on Linux; elsewhere it fails, and Dial
// refuses the socket rather than trust its path alone.
func PeerUID(*net.UnixConn) (int, error) {
	return -1, errors.New("peer credentials are only checked on Linux")
}
