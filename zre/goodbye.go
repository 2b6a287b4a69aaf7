package zre

import "slices"

// GOODBYE (message 10) is zyre-only: RFC 36 and 43 do not have it, and
// older peers do not know it (pyre logs "unknown message type 10" and then
// drops us for lost messages; gyre's decoder crashes on it). The C
// reference sends it only in gossip mode, where it has no beacon to say
// port 0, and acts on it only there. We send it to a peer only when
//
//   - we discover by gossip (Config.Gossip), as the C reference does, or
//   - the peer announced in its HELLO that it understands GOODBYE, with the
//     header HeaderGoodbye (ours do).
//
// Otherwise the port-0 beacon says goodbye, as it does for every beacon
// node. Receiving a GOODBYE always removes the peer: the message says
// nothing else.

// HeaderGoodbye is the HELLO header with which a node says that it
// understands GOODBYE, so that a peer may send it one when it stops. Our
// nodes send it with the value "1".
const HeaderGoodbye = "X-ZRE-GOODBYE"

// goodbyeHeader is the header our HELLO carries.
var goodbyeHeader = Header{Key: HeaderGoodbye, Value: "1"}

// wantsGoodbye reports whether p is sent a GOODBYE when we stop.
func (s *state) wantsGoodbye(p *peer) bool {
	if s.gossipMode() {
		return true
	}
	for _, h := range p.headers {
		if h.Key == HeaderGoodbye {
			return h.Value == "1"
		}
	}
	return false
}

// helloHeaders returns the headers of our HELLO: the configured ones and
// HeaderGoodbye (unless the configuration has it already).
func (s *state) helloHeaders() []Header {
	hs := slices.Clone(s.cfg.Headers)
	for _, h := range hs {
		if h.Key == HeaderGoodbye {
			return hs
		}
	}
	return append(hs, goodbyeHeader)
}
