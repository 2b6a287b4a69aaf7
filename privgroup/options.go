package privgroup

import (
	"crypto/rand"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
)

// Defaults of Options.
const (
	DefaultBatchSize     = 256
	DefaultBatchBytes    = 4 << 20
	DefaultBatchInterval = 20 * time.Millisecond
	DefaultMaxMessages   = 1 << 24
	DefaultMaxAge        = time.Hour
	DefaultGrace         = 30 * time.Second
	DefaultWindow        = 1024
	DefaultMaxAhead      = 2048
	DefaultMaxPending    = 4
)

// Options configure a Sender or a Receiver. The zero value gives the
// defaults; a constructor copies the options and never changes them.
type Options struct {
	// Rand is the source of chain keys, signing keys and box nonces
	// (crypto/rand when nil).
	Rand io.Reader
	// Now is the clock (time.Now when nil). Tests inject one.
	Now func() time.Time

	// Sender: a batch record is due once BatchSize messages (1..MaxBatch;
	// 1 signs every message) or BatchBytes octets of plaintext are
	// unsigned, or the oldest unsigned one is BatchInterval old. The
	// defaults sign at most every 256 messages and every 4 MiB: one
	// Ed25519 signature and verification per 256 KiB of 1 KiB messages,
	// per 4 MiB of 16 or 64 KiB ones, and what one lost batch record can
	// cost a receiver stays under 4 MiB.
	BatchSize     int
	BatchBytes    int
	BatchInterval time.Duration
	// Sender: the suite of its epochs (SuiteAuto:
	// PreferredSuite(DefaultChunkSize)). A Receiver opens every suite,
	// whatever this says.
	Suite Suite
	// Sender: RotationDue reports true after MaxMessages messages or MaxAge
	// in one epoch.
	MaxMessages uint32
	MaxAge      time.Duration

	// Receiver: messages of an old epoch are refused Grace after a newer
	// epoch of the same sender was seen.
	Grace time.Duration
	// Receiver: the reorder window in messages (64..65536, a multiple of
	// 64). Messages further behind the newest one are refused; messages
	// skipped and still missing when they leave it are lost. At most
	// Window skipped message keys are cached. Sender: Seal refuses to have
	// more than Window/2 (at most MaxBatch) messages not covered by a batch
	// record. Use the
	// same Window on all members; BatchSize must be at most Window/2.
	Window int
	// Receiver: a counter more than MaxAhead beyond the newest one is
	// refused (this bounds the work one record can cause).
	MaxAhead int
	// Receiver: how many batch records that wait for missing messages are
	// kept per sender epoch.
	MaxPending int
	// Receiver: VerifySender, if set, is called with the sender id and
	// long-term key of every sender key before it is accepted; an error
	// refuses it. The node (package zyregroup) checks that id is the peer
	// that whispered the record, whose UUID zre binds to the key its CURVE
	// connection authenticated, and that the key is trusted.
	VerifySender func(id uuid.UUID, key curve.PublicKey) error
}

func (o Options) withDefaults() (Options, error) {
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Window == 0 {
		o.Window = DefaultWindow
	}
	if o.BatchSize == 0 {
		o.BatchSize = min(DefaultBatchSize, o.Window/2)
	}
	if o.BatchBytes == 0 {
		o.BatchBytes = DefaultBatchBytes
	}
	if o.BatchInterval == 0 {
		o.BatchInterval = DefaultBatchInterval
	}
	if o.MaxMessages == 0 {
		o.MaxMessages = DefaultMaxMessages
	}
	if o.MaxAge == 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.Grace == 0 {
		o.Grace = DefaultGrace
	}
	if o.Suite == SuiteAuto {
		o.Suite = PreferredSuite(DefaultChunkSize)
	}
	if o.MaxAhead == 0 {
		o.MaxAhead = DefaultMaxAhead
	}
	if o.MaxPending == 0 {
		o.MaxPending = DefaultMaxPending
	}
	switch {
	case !o.Suite.known():
		return o, fmt.Errorf("%w: unknown %s", ErrInvalidOptions, o.Suite)
	case o.BatchSize < 1 || o.BatchSize > MaxBatch:
		return o, fmt.Errorf("%w: BatchSize %d, want 1..%d", ErrInvalidOptions, o.BatchSize, MaxBatch)
	case o.Window < 64 || o.Window > 1<<16 || o.Window%64 != 0:
		return o, fmt.Errorf("%w: Window %d, want a multiple of 64 in 64..65536", ErrInvalidOptions, o.Window)
	case o.BatchBytes < 1:
		return o, fmt.Errorf("%w: BatchBytes %d, want at least 1", ErrInvalidOptions, o.BatchBytes)
	case o.BatchSize > o.Window/2:
		return o, fmt.Errorf("%w: BatchSize %d is more than half the Window %d", ErrInvalidOptions, o.BatchSize, o.Window)
	case o.MaxAhead < 1 || o.MaxAhead > 1<<20:
		return o, fmt.Errorf("%w: MaxAhead %d, want 1..%d", ErrInvalidOptions, o.MaxAhead, 1<<20)
	case o.MaxPending < 1 || o.MaxPending > 64:
		return o, fmt.Errorf("%w: MaxPending %d, want 1..64", ErrInvalidOptions, o.MaxPending)
	case o.BatchInterval < 0 || o.MaxAge < 0 || o.Grace < 0:
		return o, fmt.Errorf("%w: negative duration", ErrInvalidOptions)
	}
	return o, nil
}

func checkGroup(group string) error {
	if len(group) == 0 || len(group) > MaxGroupLen {
		return fmt.Errorf("%w: group name of %d octets, want 1..%d", ErrInvalidOptions, len(group), MaxGroupLen)
	}
	return nil
}
