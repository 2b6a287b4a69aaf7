// Package privgroup is the crypto core of zyre's private groups: it makes
// the SHOUT content of a ZRE group readable only by the members that hold
// each other's sender keys, and lets them tell which member sent what. It
// is transport-agnostic: no sockets, no goroutines, an injectable clock
// and randomness (Options). The wire format and the design rationale are
// in spec/private-groups.md.
//
// Each member seals its messages with a Sender: per epoch a random chain
// key that a hash ratchet steps at every message (SHA-256), each
// message key used once with the epoch's AEAD, and an Ed25519 key that
// signs "batch records" covering the hashes of the messages since the last
// one. The AEAD and the hash are the epoch's Suite: ChaCha20-Poly1305 with
// SHA-256, or AES-256-GCM with BLAKE3 (twice as fast for large messages on
// x86-64; PreferredSuite picks by CPU and message size, Sender.SetSuite
// changes it at the next rotation). Receivers open both. KeyFor seals the sender key to one member's long-term X25519 key
// (a NaCl box); the node delivers it by WHISPER over CURVE. Rotate starts a
// new epoch when a member leaves or is revoked (or when RotationDue).
//
// A Receiver opens the records of all senders of the group. A data message
// that decrypts is Pending: some member made it. It becomes Authenticated
// when a batch record signed by the sender's epoch key covers it
// (Info.Settlements). Replays, counters behind the reorder window, old
// epochs after the grace window and forged batch records are refused with
// errors that wrap the sentinels of this package (IsRecordError).
//
// Writer and Reader carry a byte stream over sealed messages: the Reader
// releases only authenticated data, in order, and reports lost data as a
// *GapError. A Queue carries one sender's records, bounded, from the
// goroutine that receives them to the goroutine of its Reader.
//
// The caller's duties: deliver KeyFor records only to current trusted
// members, before the first message of the epoch (ZRE sends WHISPER and
// SHOUT to a peer over one connection, in order); send each batch record
// after the messages it covers; call Batch when BatchDue (or use a
// Writer); check the sender's identity with Options.VerifySender.
package privgroup
