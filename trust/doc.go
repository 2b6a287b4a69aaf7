// Package trust owns a node's trust in its peers' keys: the trust store
// (trust.json in the node's home), the admission policy, key-change
// detection, and the web of trust built from signed statements.
//
// A record per peer key says how far the key is trusted: tofu (pinned on
// first sight), verified (checked by pairing), introduced (vouched for by a
// verified peer) or revoked. The policy mode is open, tofu (the default) or
// strict, like ssh's StrictHostKeyChecking.
//
// A node uses the store like this (spec/trust.md, "How the node uses the
// store"):
//
//	st, _ := trust.Open(home, trust.Options{OnRevoked: closeConns})
//	// ZMTP CURVE server: admit or refuse before READY.
//	opts := zmtp.Options{Authorize: st.Authorizer(trust.AuthorizerOptions{OnVerdict: raise})}
//	// Our HELLO carries our binding in the header trust.BindingHeader.
//	b, _ := trust.NewBinding(id.Signer(), id.CurveKey, now)
//	hdr := trust.EncodeBindingHeader(b)
//	// On a peer's HELLO (over the connection authenticated as key):
//	bind, _ := trust.DecodeBindingHeader(hello.Headers[trust.BindingHeader])
//	v, err := st.Admit(ctx, trust.Observation{UUID: u, Name: name, Key: key, Addr: a, Binding: bind}, now)
//	// Every frame received in the group trust.Group ("zyre-trust"):
//	replies, applied, err := st.Handle(ctx, frame) // whisper replies back
//
// Admit is called per connection and per HELLO, never per message; it
// reads a cached copy of the file (one stat(2) per call) and writes only
// when something changed. Every change takes the file's lock, re-reads it,
// applies the change and replaces it atomically (internal/atomicfile), so
// the zyre CLI can edit the store while a node runs on it. A corrupt file
// is reported (ErrCorrupt, with its line) and never overwritten.
//
// Statements (Vouch, Revoke) are signed with the node's Ed25519 key and
// kept in one append-only, hash-chained log per signer; Binding statements
// tie a signing key to a CURVE key over the authenticated connection.
//
// The package has no goroutines and no package-level mutable state. It
// imports neither zre nor keystore (the node in zre imports it); Fingerprint
// and the UUID derivation repeat theirs, and tests keep them equal.
package trust
