package pairing

import (
	"context"
	"crypto/ed25519"
	"io"
	"log/slog"
	"net/netip"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/keystore"
	"github.com/zyre-go/zyre/trust"
)

// Recorder records a verified peer; *trust.Store is one.
type Recorder interface {
	MarkVerified(ctx context.Context, key curve.PublicKey, id uuid.UUID, name, method string, signingKey ed25519.PublicKey) (trust.Record, error)
}

// Voucher is a Recorder that can also vouch for the peer it records,
// signing with our identity (trust.Store.MarkVerifiedVouch): when
// Options.Recorder is one, pairing uses it, and every node that verified
// us then trusts the new peer as introduced (the store's Policy.Vouch
// decides whether a vouch is signed; spec/trust.md, "Vouching on
// pairing"). *trust.Store is one.
type Voucher interface {
	Recorder
	MarkVerifiedVouch(ctx context.Context, signer trust.Signer, key curve.PublicKey, id uuid.UUID, name, method string, signingKey ed25519.PublicKey) (trust.Record, *trust.Statement, error)
}

var (
	_ Recorder = (*trust.Store)(nil)
	_ Voucher  = (*trust.Store)(nil)
)

// Defaults of Options.
const (
	// DefaultListen ("") listens where a node does: on all addresses,
	// with the token's hints taken from the beacon interface (Interface).
	DefaultListen      = ""
	DefaultMaxAttempts = 3
	DefaultTimeout     = 30 * time.Second
	DefaultLinger      = 2 * time.Second
	// DefaultMaxCodes is how many short codes one pairing shows at most:
	// the first and 5 fresh ones after failed attempts.
	DefaultMaxCodes = 6
	// DefaultProveTimeout is the time a short-code taker has from CODE-B
	// to CODE-C. An honest scanner sends CODE-C at once, with no person
	// in between (one round trip and a scalar multiplication); 10 s
	// covers three lost TCP segments in a row (retransmission after 1,
	// 2 and 4 s, RFC 6298's initial timeout) on a bad Wi-Fi, while a
	// taker who never proves the code holds it seconds, not the 30 s
	// step timeout (spec/pairing.md, "Burning a code").
	DefaultProveTimeout = 10 * time.Second
)

// Options configure both sides. The zero value needs only Identity.
type Options struct {
	// Identity is this node's identity (CURVE keypair, signing key, name).
	Identity *keystore.Identity
	// Recorder, if set, records the peer as verified on success; a
	// Voucher (a *trust.Store) also signs a vouch for it with Identity.
	Recorder Recorder
	// Confirm, if set, is called with the result before it is recorded;
	// an error refuses the pairing, and the other side is told at once.
	// Apps show who is pairing (Result.Peer: name, UUID, fingerprint,
	// address) and Result.Comparison here and ask the user. For a short
	// code both sides call it at the same moment (once each has checked
	// the other's key confirmation), each on a goroutine of its own; ctx
	// is cancelled when the other side refuses or gives up, and Confirm
	// must then return (the Displayer's Close and JoinCode wait for it).
	// When the token expires or another scanner uses it during the
	// comparison, ctx is cancelled and the joiner told. The displayer
	// calls it for a QR scanner too, on a goroutine of its own. When
	// another device tries the token or code before the outcome, the
	// question up is cancelled and Confirm called again with
	// Result.Others set (spec/pairing.md, "Exposure"): the app must then
	// make its user pick the device they expect. Without Confirm an
	// exposed pairing ends with ErrExposed. It may not call back into
	// the Displayer.
	Confirm func(ctx context.Context, r Result) error

	// Listen is the displayer's TCP address for CURVE. By default it
	// listens on all addresses, as a node does, and the token's hints are
	// the addresses of the beacon interface chosen by Interface (127.0.0.1
	// with Loopback).
	Listen string
	// Interface chooses the beacon interface as zre's Config.Beacon does
	// (a name, one of its IPv4 addresses, "*" for all, or "" for that of
	// the default route, else the first up broadcast interface). It sets
	// the default hints and where short-code sessions are announced and
	// looked for.
	Interface string
	// Loopback confines hints and discovery to lo, for tests and demos on
	// one host (as zre's Loopback).
	Loopback bool
	// DiscoveryPort is the UDP port of short-code announcements; default
	// DefaultDiscoveryPort.
	DiscoveryPort int
	// AnnounceInterval is the time between a displayer's announcements;
	// default DefaultAnnounceInterval. A joiner listens three of them
	// after the first matching announcement for a second one.
	AnnounceInterval time.Duration
	// DisableDiscovery stops the displayer from announcing its short-code
	// session; a joiner then needs the code endpoint. A displayer that
	// cannot announce (another program holds the port) logs a warning and
	// goes on the same way.
	DisableDiscovery bool
	// CodeListen is the displayer's TCP address for the plaintext key
	// advert of the short-code path; default: Listen's host, any port.
	CodeListen string
	// DisableCode turns the short-code path off.
	DisableCode bool
	// EndOnCodeFailure makes a failed short-code exchange (a wrong code,
	// a code taken and not proven within ProveTimeout, or the scanner's
	// refusal of the comparison) end the pairing: Wait returns its error
	// (ErrWrongCode, ErrRefused). By default the code is spent, a fresh
	// one is shown (OnCode) up to MaxCodes, and the QR token stays
	// valid. Our own user's refusal always ends it.
	EndOnCodeFailure bool
	// MaxCodes is how many short codes one pairing shows at most, the
	// first included; default DefaultMaxCodes. After a failed exchange
	// the displayer shows a fresh code (new CPace secret, new
	// announcement; the QR token unchanged) until MaxCodes were shown;
	// then it takes no more short-code attempts (the QR token still
	// works). 1 shows no fresh code.
	MaxCodes int
	// OnCode, if set, is told each time a short code is spent by a failed
	// exchange: who spent it, and the fresh code shown instead (or that
	// no more are shown). It runs on the Displayer's serving goroutine:
	// it must return quickly and may not call the Displayer.
	OnCode func(CodeSpent)
	// ProveTimeout is the time a short-code taker has from CODE-B to
	// prove the code (CODE-C); after it the code is spent as by a wrong
	// code. Default DefaultProveTimeout, or Timeout when that is shorter.
	ProveTimeout time.Duration
	// Hints replaces the endpoint hints put in the token; by default the
	// addresses of the beacon interface (see Listen), or with Listen set
	// its address, or this host's interface addresses when its host is
	// unspecified.
	Hints []netip.AddrPort
	// TTL is the token's lifetime; default DefaultTTL.
	TTL time.Duration
	// MaxAttempts is how many wrong proofs burn the token; default
	// DefaultMaxAttempts.
	MaxAttempts int

	// Timeout bounds each step of the scanner (connecting to one
	// endpoint, waiting for one reply; not the wait for the other user's
	// answer to the comparison); default DefaultTimeout. On the displayer
	// it bounds ProveTimeout's default.
	Timeout time.Duration
	// Linger is how long a displayer waits for the scanner's BYE after its
	// last message before it reports success anyway; default DefaultLinger.
	Linger time.Duration

	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the source of secrets; nil means crypto/rand.
	Rand io.Reader
	// Logger gets notes about failed attempts; nil discards them.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.DiscoveryPort == 0 {
		o.DiscoveryPort = DefaultDiscoveryPort
	}
	if o.AnnounceInterval <= 0 {
		o.AnnounceInterval = DefaultAnnounceInterval
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.ProveTimeout <= 0 {
		o.ProveTimeout = min(DefaultProveTimeout, o.Timeout)
	}
	if o.MaxCodes <= 0 {
		o.MaxCodes = DefaultMaxCodes
	}
	if o.Linger <= 0 {
		o.Linger = DefaultLinger
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Hints = append([]netip.AddrPort(nil), o.Hints...)
	return o
}
