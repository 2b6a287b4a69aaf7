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

var _ Recorder = (*trust.Store)(nil)

// Defaults of Options.
const (
	DefaultListen      = "127.0.0.1:0"
	DefaultMaxAttempts = 3
	DefaultTimeout     = 30 * time.Second
	DefaultLinger      = 2 * time.Second
)

// Options configure both sides. The zero value needs only Identity.
type Options struct {
	// Identity is this node's identity (CURVE keypair, signing key, name).
	Identity *keystore.Identity
	// Recorder, if set, records the peer as verified on success.
	Recorder Recorder
	// Confirm, if set, is called with the result before it is recorded
	// (on the displayer, on its serving goroutine); an error refuses the
	// pairing. Apps show Result.Comparison here and ask the user.
	Confirm func(ctx context.Context, r Result) error

	// Listen is the displayer's TCP address for CURVE; default DefaultListen.
	Listen string
	// CodeListen is the displayer's TCP address for the plaintext key
	// advert of the short-code path; default: Listen's host, any port.
	CodeListen string
	// DisableCode turns the short-code path off.
	DisableCode bool
	// Hints replaces the endpoint hints put in the token; by default the
	// Listen address, or this host's interface addresses when Listen's
	// host is unspecified.
	Hints []netip.AddrPort
	// TTL is the token's lifetime; default DefaultTTL.
	TTL time.Duration
	// MaxAttempts is how many wrong proofs burn the token; default
	// DefaultMaxAttempts.
	MaxAttempts int

	// Timeout bounds each step of the scanner (connecting to one
	// endpoint, waiting for one reply); default DefaultTimeout.
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
	if o.Listen == "" {
		o.Listen = DefaultListen
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
