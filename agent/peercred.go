package agent

import (
	"net"

	"github.com/zyre-go/zyre/agent/client"
)

// peerUID returns the uid of the process at the other end of c, from the
// kernel (SO_PEERCRED), as it was when that process connected.
func peerUID(c *net.UnixConn) (int, error) { return client.PeerUID(c) }
