package trust

import (
	"container/list"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
)

// Errors about the store that callers can branch on with errors.Is.
var (
	// ErrCorrupt: trust.json is malformed. It is never overwritten: fix or
	// move it by hand.
	ErrCorrupt = errors.New("trust: corrupt trust file")
	// ErrUnsupportedVersion: trust.json was written by a newer zyre.
	ErrUnsupportedVersion = errors.New("trust: unsupported trust file version")
	// ErrNotFound: no record matches.
	ErrNotFound = errors.New("trust: no such peer")
	// ErrAmbiguous: a PEER argument matches more than one record; the
	// *AmbiguousError lists them.
	ErrAmbiguous = errors.New("trust: ambiguous peer")
	// ErrRevoked: the key is revoked. Only its revoker can withdraw the
	// revocation (Unrevoke, or a signed Unrevoke statement).
	ErrRevoked = errors.New("trust: key revoked")
	// ErrNotRevoked: Unrevoke of a key that is not revoked.
	ErrNotRevoked = errors.New("trust: key not revoked")
	// ErrInsecure: trust.json (or its journal) can be read or written by
	// group or others; chmod 600 it.
	ErrInsecure = errors.New("trust: trust store readable or writable by others")
	// ErrNoKeyChange: Accept or Reject found no pending key change.
	ErrNoKeyChange = errors.New("trust: no key change pending")
	// ErrConflict: the change would give a UUID or key to two records.
	ErrConflict = errors.New("trust: conflicting record")
	// ErrStoreFull: the store holds as many verified and introduced
	// records as it may (Options.MaxPeers times 4); tofu records never
	// fill it (the least recently seen is forgotten instead), nor do
	// revoked ones (capped apart).
	ErrStoreFull = errors.New("trust: too many peers")
	// ErrInvalidKey: a zero or malformed key.
	ErrInvalidKey = errors.New("trust: invalid key")
	// ErrInvalidPolicy: an unknown policy mode.
	ErrInvalidPolicy = errors.New("trust: invalid policy")
	// ErrNameTaken: a peer with a key of its own (not yet verified or
	// introduced) presented the name of a verified, introduced or revoked
	// record; it was refused (a *NameTaken says which).
	ErrNameTaken = errors.New("trust: name of another peer")
	// ErrAnotherDevice: Accept of a key change that cannot be one: a bound
	// peer (UUID derived from its key, one of our nodes) with another key
	// is another device, trusted by pairing with it.
	ErrAnotherDevice = errors.New("trust: another device, not a key change")
)

// State is how far a peer's key is trusted.
type State int

// States; see spec/trust.md for the transitions.
const (
	// StateTOFU: key pinned on first sight, never checked by a person.
	StateTOFU State = iota + 1
	// StateVerified: key checked by pairing (QR code, short code).
	StateVerified
	// StateIntroduced: key vouched for by a verified peer.
	StateIntroduced
	// StateRevoked: key revoked, locally or by an honoured statement;
	// refused from then on, whatever the policy.
	StateRevoked
)

var stateNames = map[State]string{
	StateTOFU:       "tofu",
	StateVerified:   "verified",
	StateIntroduced: "introduced",
	StateRevoked:    "revoked",
}

// String returns the state's name as stored: tofu, verified, introduced,
// revoked.
func (s State) String() string {
	if n, ok := stateNames[s]; ok {
		return n
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// ParseState is the inverse of State.String.
func ParseState(s string) (State, error) {
	for k, v := range stateNames {
		if v == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown state %q", s)
}

// Mode is the admission policy, after ssh's StrictHostKeyChecking.
type Mode int

// Modes.
const (
	// ModeTOFU admits new keys and pins them; a known peer with another key
	// is refused. The default.
	ModeTOFU Mode = iota + 1
	// ModeOpen admits anyone except revoked keys and records nothing
	// (interoperation with nodes that cannot be checked).
	ModeOpen
	// ModeStrict admits only verified peers and, when Policy.Introductions
	// is set, peers introduced by a verified peer.
	ModeStrict
)

var modeNames = map[Mode]string{ModeTOFU: "tofu", ModeOpen: "open", ModeStrict: "strict"}

// String returns open, tofu or strict.
func (m Mode) String() string {
	if n, ok := modeNames[m]; ok {
		return n
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode parses open, tofu or strict.
func ParseMode(s string) (Mode, error) {
	for k, v := range modeNames {
		if v == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown mode %q (want open, tofu or strict)", ErrInvalidPolicy, s)
}

// Policy is the local admission policy, stored in trust.json.
type Policy struct {
	// Mode is open, tofu or strict.
	Mode Mode
	// Introductions lets a vouch by a verified peer admit a key in strict
	// mode (and mark it introduced in tofu mode). Depth is 1: vouches by
	// introduced or tofu peers never count.
	Introductions bool
	// VerifiedRevoke honours revocations signed by verified peers. A
	// revocation signed by the key's own signing key is always honoured.
	VerifiedRevoke bool
	// Vouch makes pairing sign a vouch for each peer it verifies
	// (Store.MarkVerifiedVouch): every node that verified us then trusts
	// that peer as introduced. It tells the peers we exchange statements
	// with whom we paired (key, UUID and name). Turn it off on a shared
	// device (a hotel room's camera) whose pairings should not make its
	// users' devices trust each other.
	Vouch bool
}

// DefaultPolicy is the policy of a new store: tofu, introductions and
// revocations by verified peers honoured, vouches signed on pairing.
func DefaultPolicy() Policy {
	return Policy{Mode: ModeTOFU, Introductions: true, VerifiedRevoke: true, Vouch: true}
}

// Record is what the store knows about one peer key. Records returned by
// the store are copies.
type Record struct {
	// UUID is the peer's ZRE UUID as last seen (pinned to Key).
	UUID uuid.UUID
	// Name is the peer's ZRE name as last seen (untrusted text).
	Name string
	// Key is the peer's long-term CURVE public key; one record per key.
	Key curve.PublicKey
	// Fingerprint is keystore.Fingerprint(Key).
	Fingerprint string
	// Bound reports whether UUID is derived from Key (zre.IsBound).
	Bound bool
	// State is tofu, verified, introduced or revoked.
	State State
	// FirstSeen and LastSeen are when the key was first and last admitted.
	// LastSeen is updated at most once per Options.SeenResolution.
	FirstSeen, LastSeen time.Time
	// LastAddr is the address the peer last connected from.
	LastAddr string
	// IntroducedBy is the CURVE key of the verified peer whose vouch
	// introduced this key (zero otherwise).
	IntroducedBy curve.PublicKey
	// VerifiedMethod and VerifiedAt say how and when the key was verified
	// (pairing: "qr", "code", ...).
	VerifiedMethod string
	VerifiedAt     time.Time
	// SigningKey is the peer's Ed25519 key for trust statements, when
	// known (learned by pairing or by a binding over CURVE); nil otherwise.
	SigningKey ed25519.PublicKey
	// BindingTime is the timestamp of the binding that taught SigningKey.
	BindingTime time.Time
	// RevokedAt, RevokedBy and RevokeReason describe a revocation.
	// RevokedBy is the CURVE key of the signer, zero for a local revocation.
	RevokedAt    time.Time
	RevokedBy    curve.PublicKey
	RevokeReason string
	// RevokedFrom is the state before the revocation, restored when the
	// revocation is withdrawn (Unrevoke).
	RevokedFrom State
	// KeyChange is set while a peer known as this record presents another
	// key: the new key waits for "zyre trust accept".
	KeyChange *KeyChange
	// Notes is free text for people.
	Notes string

	order uint64        // when first recorded, for List
	elem  *list.Element // in the eviction order (tofu records)
}

// Trusted reports whether the key may see private data: it is verified
// (a person checked it by pairing) or introduced (a verified peer vouched
// for it). A tofu record is only known: its key is pinned, so a changed
// key is caught, but nobody checked who holds it. A revoked key is never
// trusted.
func (r *Record) Trusted() bool { return r.State == StateVerified || r.State == StateIntroduced }

// ShortUUID is the first 8 hex digits of the UUID.
func (r *Record) ShortUUID() string { return r.UUID.String()[:8] }

func (r *Record) clone() Record {
	c := *r
	c.elem = nil
	if r.SigningKey != nil {
		c.SigningKey = append(ed25519.PublicKey(nil), r.SigningKey...)
	}
	if r.KeyChange != nil {
		kc := *r.KeyChange
		c.KeyChange = &kc
	}
	return c
}

// KeyChange describes a peer known with one key that presented another.
type KeyChange struct {
	// UUID and Name are what the peer with the new key claimed.
	UUID uuid.UUID
	Name string
	// Old is the pinned key, New the presented one.
	Old, New                       curve.PublicKey
	OldFingerprint, NewFingerprint string
	// Bound reports whether UUID is derived from New.
	Bound bool
	// Seen and Addr are when and from where the new key was presented.
	Seen time.Time
	Addr string
}

// Observation is what a node knows about a peer when it decides whether to
// admit it: what the peer claims (UUID, Name) and what it proved (Key, by
// the CURVE handshake). Whether UUID is bound to Key (derived from it, see
// spec/identity.md) the store computes itself.
type Observation struct {
	// UUID is the UUID the peer claims (ZMTP Identity or HELLO).
	UUID uuid.UUID
	// Name is the name from HELLO; empty when not known yet (ZMTP).
	Name string
	// Key is the CURVE key the peer authenticated with.
	Key curve.PublicKey
	// Addr is the peer's address, for the record and for people.
	Addr string
	// Binding, optional, is the peer's binding statement (NewBinding)
	// received over the connection authenticated as Key: it teaches the
	// peer's signing key.
	Binding []byte
	// BeforeHello says that the peer has only completed the CURVE
	// handshake (the node's connection stage): it is not a peer yet, and
	// a key the store does not know is decided on but not recorded
	// (Verdict.Unrecorded); it is pinned when its HELLO is admitted. A
	// stranger opening connections with fresh keys and never saying
	// HELLO records nothing. (A known key's record is updated as usual,
	// and a key change is recorded on the record it would change.)
	BeforeHello bool
}

// Verdict is the store's decision on an Observation.
type Verdict struct {
	// Allow says whether to admit the peer.
	Allow bool
	// Reason says why, for logs and people.
	Reason string
	// Record is the peer's record after the decision (zero when nothing is
	// recorded: open mode, unknown peer refused in strict mode, a new key
	// Unrecorded).
	Record Record
	// KeyChange is set when the peer is known with another key: the node
	// raises a KeyChanged event with both fingerprints.
	KeyChange *KeyChange
	// New reports that the key was not known: it is recorded now, unless
	// Unrecorded.
	New bool
	// Unrecorded reports a new key admitted without a record: before its
	// HELLO (Observation.BeforeHello), or beyond Options.MaxNewPerMinute
	// (it is pinned at a later admission). Record is zero then.
	Unrecorded bool
	// NameTaken is set when the peer was refused because it calls itself
	// by the name of a verified, introduced or revoked record with another
	// key: a different peer, never a key change of that record.
	NameTaken *NameTaken
}

// NameTaken describes a peer refused for presenting the name of a known
// record (Verdict.NameTaken). It is an error (errors.Is ErrNameTaken)
// whose text says it plainly, for people.
type NameTaken struct {
	// Name is the name presented; Key and Fingerprint the presenter's key.
	Name        string
	Key         curve.PublicKey
	Fingerprint string
	// Known is the record that holds the name (verified, introduced or
	// revoked); when Self, this device's name and key (no record: its
	// State is zero).
	Known Record
	// Self: the name is this device's own (Options.SelfName).
	Self bool
}

func (e *NameTaken) Error() string {
	if e.Self {
		return fmt.Sprintf("a device with another key (%s) calls itself %s, the name of this device (%s); refused",
			e.Fingerprint, quoteName(e.Name), e.Known.Fingerprint)
	}
	what := "your " + e.Known.State.String() + " " + quoteName(e.Name) + " is " + e.Known.Fingerprint
	if e.Known.State == StateRevoked {
		what = "the " + quoteName(e.Name) + " you knew (" + e.Known.Fingerprint + ") was revoked"
		if e.Known.RevokeReason != "" {
			what += ": " + e.Known.RevokeReason
		}
	}
	return fmt.Sprintf("a device with another key (%s) calls itself %s; %s; refused. If it is the same device with a new key, pair with it again",
		e.Fingerprint, quoteName(e.Name), what)
}

// Is makes errors.Is(err, ErrNameTaken) true.
func (e *NameTaken) Is(target error) bool { return target == ErrNameTaken }

// quoteName shows a peer's name (untrusted text) as is when it is
// printable, quoted otherwise.
func quoteName(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}
