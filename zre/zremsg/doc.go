// Package zremsg is the ZRE message codec (RFC 36 and 43, as the C
// reference zeromq/zyre puts it on the wire): the ten message types (MsgID),
// one message (Msg) with its HELLO headers (Header), Decode and the
// encoders. It owns no sockets and no state; package zre's node is built on
// it.
//
// It sends message version 2, as the C reference does, and accepts
// versions 2 and 3. Decode takes all the frames of one ZMTP message and
// returns one message or an error wrapping ErrMalformed: unlike the C
// decoder, it never leaves frames behind to be read as another message.
// Test vectors made by the C reference are in testdata/zre at the root of
// the module.
//
// Why public, not internal: Header is part of zre's API (Config.Headers,
// the Enter and PeerInfo events), where zre.Header is an alias of this
// package's type, so its documentation must be reachable; and the codec is
// what a tool outside this module needs to read or write ZRE traffic
// without running a node — a capture dissector, a conformance or fuzzing
// harness against another implementation, or an impostor's HELLO such as
// cmd/zyre's demo sends to show secure mode refusing it.
package zremsg
