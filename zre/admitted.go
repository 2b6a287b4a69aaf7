package zre

import (
	"bytes"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/zmtp"
)

// PreAdmitBytes bounds what a connection into our inbox may send before
// the node accepted its HELLO (zmtp.Options.PreAdmit): 64 KiB in all, its
// frames as on the wire. Anyone can connect to the inbox (in secure mode
// too: a key nobody trusts still completes CURVE, and is refused at its
// HELLO), so until then a connection may send what a HELLO needs and no
// more. A frame that would go past it is never read: a connection that
// sent no message yet is closed at once; one that did waits, reading
// nothing, for the verdict on its HELLO (at most Config.Expired, which a
// held HELLO waits at most) and is closed without one. Closed ones are
// counted in Stats.InboxUnadmitted.
//
// A HELLO is its name, endpoint, groups and headers: a few hundred octets
// for a C or Go node, ours with X-PUBLICKEY and a trust binding under
// 1 KiB. 64 KiB leaves room for about 2 000 groups of 24 characters; a
// node in more than that cannot join us (its connection is closed and
// logged at debug). The C reference has no bound (libzmq's
// ZMQ_MAXMSGSIZE is unset in zyre), nor does pyre.
//
// The same bound is the largest message our DEALERs read: nothing comes
// back on a DEALER to a ZRE inbox, but the inbox of a stranger whose
// beacon we dialled may send anyway.
//
// So a connection that never says an accepted HELLO costs at most 64 KiB
// read and decrypted, plus its buffers (the reader's, 4 to 64 KiB; under
// CURVE a 64 KiB scratch), whatever it claims or sends; Limits.MaxConns
// and MaxConnsPerAddr bound how many there are (64 per address: about
// 16 MiB at worst from one address), Limits.ConnRate how fast they come.
const PreAdmitBytes = 64 << 10

// admitInbound lifts PreAdmitBytes for the inbox connection of identity,
// once its HELLO was accepted (state.admitInbound). Loop goroutine.
func (n *Node) admitInbound(identity []byte) {
	if n.router != nil {
		n.router.Admit(identity)
	}
}

// admittedAlready is the inbox's zmtp.Options.Admitted: a connection of a
// peer that said HELLO already (it reconnected) is admitted at once, when
// the key that authenticated it is the peer's (plain mode: its identity
// alone, which proves nothing there anyway). On the connection's goroutine.
func (n *Node) admittedAlready(p *zmtp.Peer) bool {
	if len(p.Identity) != IdentitySize || p.Identity[0] != 1 {
		return false
	}
	info, ok := n.dir.info(uuid.UUID(p.Identity[1:]))
	if !ok {
		return false
	}
	if n.sec == nil {
		return true
	}
	return !info.Key.IsZero() && bytes.Equal(info.Key.Bytes(), p.PublicKey)
}

// PeerBacklog returns how many of our messages to peer wait to be handed
// to its connection (in its DEALER's queue and in the node's own), or -1
// while a sender holds or waits for its queue (it is full, or being
// filled); 0 for a peer not known. What was handed to the connection and
// is still in the kernel's buffers is not counted. An application that
// sends a peer a probe and waits for an answer learns from it that the
// probe still waits behind its own data (agent: a private chat's probe
// of a silent member during a large transfer).
func (n *Node) PeerBacklog(peer uuid.UUID) int {
	p, _ := n.dir.peerName(peer)
	if p == nil {
		return 0
	}
	if p.tx.waiting.Load() > 0 || !p.tryLock() {
		return -1
	}
	q := int(p.tx.npending.Load())
	if l, ok := p.link.(interface{ Queued() int }); ok && p.tx.open {
		q += l.Queued()
	}
	p.unlock()
	return q
}
