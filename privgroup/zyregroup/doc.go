// Package zyregroup binds a private group (package privgroup, the crypto
// core) to a running ZRE node: it delivers sender keys to the group's
// trusted members by WHISPER, seals what it SHOUTs, shouts batch records on
// a timer, rotates when a member leaves, exits or stops being trusted, and
// carries byte streams (Writer, Reader) through the group. It uses the
// node's public API; zre does not import privgroup.
//
// The application reads Node.Events and passes each event to Group.Handle
// (to each Group, if it runs several), which acts on its group's events
// and reports whether it consumed one: WHISPERs that carry sender keys and
// SHOUTs of records are consumed, membership events never. See
// ExampleAttach.
//
// A Group is one goroutine that owns its state, as the node is; it never
// waits for a peer. A member whose queue is full gets what it refused, and
// all after it, in order, as the node's queue takes it; a Writer goes no
// faster than its slowest member, which is given up after
// Options.SendTimeout.
//
// Wire: see WhisperPrefix and spec/private-groups.md, "In the node". Trust:
// a member gets our sender key, and we accept its own, only when
// Options.Trusted (or the trust store Options.Trust) trusts its
// authenticated key; the others see only ciphertext.
package zyregroup
