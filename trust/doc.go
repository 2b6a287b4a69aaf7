// Package trust owns a node's trust in its peers' keys: the trust store
// (trust.json and trust.journal in the node's home), the admission policy,
// key-change detection, and the web of trust built from signed statements.
//
// A record per peer key says how far the key is trusted: tofu (pinned on
// first sight), verified (checked by pairing), introduced (vouched for by a
// verified peer) or revoked. The policy mode is open, tofu (the default) or
// strict, like ssh's StrictHostKeyChecking. Known is not trusted: a tofu
// key is pinned, so a changed key is caught, but only verified and
// introduced keys are trusted (Record.Trusted, Store.Trusted) to see
// private data.
//
// A node uses the store like this (spec/trust.md, "How the node uses the
// store"):
//
//	st, _ := trust.Open(home, trust.Options{OnRevoked: closeConns})
//	// Our HELLO carries our binding in the header trust.BindingHeader.
//	b, _ := trust.NewBinding(id.Signer(), id.CurveKey, now)
//	hdr := trust.EncodeBindingHeader(b)
//	// On a CURVE connection and on a peer's HELLO (authenticated as key):
//	bind, _ := trust.DecodeBindingHeader(hello.Headers[trust.BindingHeader])
//	v, err := st.Admit(ctx, trust.Observation{UUID: u, Name: name, Key: key, Addr: a, Binding: bind}, now)
//	// Every frame received in the group trust.Group ("zyre-trust"):
//	replies, applied, err := st.Handle(ctx, frame) // whisper replies back
//
// The store lives in memory: reads, Admit and Handle answer from memory and
// never wait for the disk, so a node calls them from its loop. A goroutine
// the Store owns (running only while there is work) appends their changes
// to the journal, at most Options.WriteDelay later, compacts the journal
// into trust.json when it has grown, and picks up the changes of other
// processes (the zyre CLI beside a running node). The user's acts
// (MarkVerified, Revoke, Sign, ...) are written before they return. Tofu
// records are a bounded set that evicts the least recently seen, so a
// flood of new keys never locks anyone out. A corrupt file is reported
// (ErrCorrupt, with its line) and never overwritten.
//
// Statements (Vouch, Revoke, Unrevoke) are signed with the node's Ed25519
// key and kept in one append-only, hash-chained log per signer; Binding
// statements tie a signing key to a CURVE key over the authenticated
// connection. Pairing records a peer with MarkVerifiedVouch, which also
// signs a vouch for it (Policy.Vouch, on by default): every node that
// verified us then trusts that peer as introduced, and loses it again
// when it revokes us (spec/trust.md, "Vouching on pairing").
//
// The package has no package-level mutable state. It imports neither zre
// nor keystore nor zmtp (the node in zre imports it); Fingerprint and the
// UUID derivation repeat theirs, and tests keep them equal.
package trust
