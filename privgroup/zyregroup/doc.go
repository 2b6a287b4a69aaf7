// Package zyregroup binds a private group (package privgroup, the crypto
// core) to a running ZRE node through the node's public API: it gives our
// sender key to the group's trusted members by WHISPER, rotates when a
// member leaves, exits or stops being trusted, seals what it SHOUTs (with
// batch records on a timer) and carries byte streams (Writer, Reader).
// Trust: a member gets our sender key, and we accept its own, only when
// Options.Trusted (or the trust store Options.Trust) trusts its
// authenticated key, and our records go to those members only: the others
// get none. Wire: WhisperPrefix and spec/private-groups.md, "In the node".
//
// The application passes each event of the node to Group.Handle (to each
// Group, if it runs several), which reports whether it consumed it: sender
// keys and records are consumed, membership events never (ExampleAttach);
// or Open has the Group read the node's events itself. A consumed event's
// content is the Group's: it hands the buffers back to the node
// (zre.Shout.Release) once done with them, so the caller must not use
// the content afterwards; an event not consumed stays the caller's.
//
// Concurrency: one goroutine per Group owns its state, as the node's does;
// every method hands it work and is safe for concurrent use. It never waits
// for a peer: a record goes to the members with one SHOUT that waits for no
// one, and a member whose full queue refuses it (or a key) gets it, and all
// after it, in order, through its line: a goroutine hands the line's first
// item to the node's WhisperContext or ShoutToOwned and reports back. A
// Writer waits while a line is not empty, so it goes at the pace of its
// slowest member; one that takes nothing for Options.SendTimeout is given
// up. Trusted, PeerKey and FastSuite run on the Group's goroutine, OnOpaque
// on Handle's caller's.
package zyregroup
