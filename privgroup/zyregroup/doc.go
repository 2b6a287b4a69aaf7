// Package zyregroup binds a private group (package privgroup, the crypto
// core) to a running ZRE node: it delivers sender keys to the group's
// trusted members by WHISPER, seals what it SHOUTs, shouts batch records on
// a timer, rotates when a member leaves, exits or stops being trusted, and
// carries byte streams (Writer, Reader) through the group. It is layered on
// the node's public API and the node knows nothing of it (zre does not
// import privgroup).
//
// Who reads the node's events: the application. It reads Node.Events and
// passes each event to Group.Handle, which acts on the events of its group
// (WHISPERs that carry sender keys, SHOUTs in the group, JOIN, LEAVE and
// EXIT) and reports whether it consumed the event. Membership events are
// never consumed: the application sees them too. One node may carry several
// private groups; hand each event to each Group.
//
//	g, err := zyregroup.Attach(node, "hotel-room", zyregroup.Options{Secret: sk, Trust: store})
//	go func() {
//		for ev := range node.Events() {
//			if !g.Handle(ev) {
//				// not the private group's: the application's
//			}
//		}
//	}()
//	w, _ := g.NewWriter()   // io.WriteCloser into the group
//	rd, _ := g.NewReader(peer) // that member's stream, authenticated, in order
//
// Wire: SHOUT content is one frame, a privgroup data message (0x11) or
// batch record (0x12). A sender key travels in a WHISPER of three frames:
// the reserved, versioned prefix "zyre-privgroup/1" (WhisperPrefix), the
// group name, and the privgroup sender-key record (0x13), sealed from the
// sender's long-term CURVE key to the member's. The prefix and the group
// name alone are a key request. See spec/private-groups.md, "In the node".
//
// Trust: a member gets our sender key, and we accept its sender key, only
// when Options.Trusted (or, by default, the trust store Options.Trust) says
// its authenticated key is trusted. Untrusted members, revoked peers and
// non-members see only ciphertext.
package zyregroup
