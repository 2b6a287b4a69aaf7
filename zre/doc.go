// Package zre implements the ZeroMQ Realtime Exchange protocol (ZRE, RFC 36
// and 43, as the C reference zeromq/zyre puts it on the wire): the UDP
// discovery beacon (Beacon, ParseBeacon), node identities, and the node
// built on them and on the message codec, package zre/zremsg.
//
// Beacons are 22 octets (version 1) or 54 octets (version 3, with the
// node's CURVE public key); anything else is an error wrapping ErrBadBeacon.
// Sockets live elsewhere: the UDP beacon service is internal/beacon.
//
// A Node runs in plain mode or, with Config.Secure, in secure mode: CURVE
// on every connection, v3 beacons, each peer's UUID bound to (or pinned
// to) the key that authenticated it, forgeries refused and reported
// (Refused), peers that refuse us reported (Denied), and optionally a trust store (package trust) deciding on
// every peer key (KeyChanged) and exchanging signed statements in the
// group zyre-trust. See spec/secure-node.md.
//
// Beacons are not authenticated, and anyone can connect to a node's inbox;
// what strangers can make a node hold or compute is bounded (Limits). A
// beacon or HELLO of a new UUID never evicts a peer alive on its
// connection that has the same endpoint: the peer is probed (a PING; it is
// removed after Config.Evasive unless heard from) and a beacon's claim is
// ignored meanwhile, so a spoofed beacon costs nothing and a real restart
// with a new UUID one re-entry. A second HELLO from a ready peer (it
// restarted with the same UUID) costs one re-entry and is answered with our
// HELLO, but never within 10 s of our last HELLO to that peer, so two nodes
// cannot feed each other HELLOs. Peers dialled on a beacon without a HELLO
// yet are capped per source address and in total; a dial that never
// completes its handshake is given up after at most two tries; the inbox
// limits connections per address and in total and the rate of new ones
// (each CURVE handshake needs a connection). Stats counts every refusal.
package zre
