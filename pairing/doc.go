// Package pairing makes two zyre nodes verify each other's keys in one step,
// the way people meet: one device shows a pairing token (a QR code, or the
// same token as a zyre: URI for NFC or copy and paste), the other scans it;
// or, between two terminals without a camera, one shows a short code that
// the other types.
//
// The QR path: the displayer listens with a ZMTP ROUTER secured by CURVE
// under its long-term key. The token carries that key, the displayer's
// UUID, endpoint hints, a one-time secret of 128 bits and an expiry. The
// scanner connects as a CURVE client to the key from the token (so it
// talks to the authentic displayer or to nobody), proves that it knows the
// secret with an HMAC bound to both CURVE keys and the token id, and gets
// the displayer's own proof back. Both then exchange their Ed25519 signing
// keys (as trust binding statements) and names over the authenticated
// channel and record each other as verified.
//
// The short-code path runs CPace (draft-irtf-cfrg-cpace) on ristretto255
// over a CURVE connection whose server key the scanner learns in
// plaintext; the CPace channel identifier holds both CURVE keys as each
// side sees them, so a man in the middle who terminates CURVE cannot
// complete the exchange. Both sides end with key confirmation and show a
// 6-digit comparison number.
//
// A secret on a screen proves only that the other device saw the screen:
// the displayer's Confirm hook is asked who is pairing (Result.Peer: its
// name, UUID, fingerprint and address) for both paths, and nothing is
// recorded before it said yes. A token or code tried by a second device
// before the outcome is exposed: the question is asked again naming every
// device that tried (Result.Others), and without Confirm nobody is paired
// (ErrExposed); the device that came late is told that the code was
// taken (ErrCodeUsed). A failed short-code exchange spends that code
// only: the displayer names the device (Options.OnCode) and shows a
// fresh code, up to Options.MaxCodes; the QR token is never touched.
//
// The wire format is in spec/pairing.md. The package keeps no global
// state. A Displayer's goroutines are those of its zmtp sockets; Wait runs
// the protocol on the caller's goroutine.
package pairing
