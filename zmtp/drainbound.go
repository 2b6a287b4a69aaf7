package zmtp

import (
	"cmp"
	"time"
)

// SendBound bounds a send queue by the time its octets take to drain, not
// only by its number of messages (SendHWM): so that bulk data queued for a
// peer cannot keep a small message behind it for seconds on a slow link,
// while a fast link keeps its throughput. Like Linux's byte queue limits,
// the connection's writer measures how fast its queue drains (octets
// written per unit of time while it always had something to write,
// smoothed), and the queue refuses a new message while the octets waiting
// in it (and taken by the writer, not yet written) reach max(MinBytes,
// rate × Target): Send returns an error wrapping ErrPeerNotResponding,
// SendContext and Flush wait for room, as they do at SendHWM. A message is
// always accepted when no entry waits, however large. The zero value is
// off.
type SendBound struct {
	// Target is the time the queued octets may take to drain at the
	// measured rate; 0 = off (the queue is bounded by SendHWM alone).
	Target time.Duration
	// MinBytes is the least the bound allows, whatever the rate (also
	// before a first measurement); 0 = DefaultBoundMinBytes.
	MinBytes int
	// NotSentLowat, on Linux, sets TCP_NOTSENT_LOWAT on the connection:
	// the kernel takes more from the writer only while fewer octets than
	// this wait unsent in the socket, so that its send buffer (autotuned
	// to megaoctets) does not hold seconds of data beyond the bound. It is
	// the least: the writer raises it to what drains in a quarter of
	// Target at the measured rate (at most maxNotSentLowat), so that a
	// fast link is not woken for every 128 KiB. 0 = DefaultNotSentLowat;
	// <0 = left as the system sets it. Elsewhere it is not set.
	NotSentLowat int
}

// Defaults of SendBound.
const (
	DefaultBoundMinBytes = 256 << 10
	DefaultNotSentLowat  = 128 << 10
)

const (
	// takeBudget bounds the octets the writer takes from a bounded queue
	// at once (one entry at least): what it holds, counted in the bound
	// until written, stays small beside MinBytes.
	takeBudget = 64 << 10
	// sampleEvery is the shortest window of the drain rate's samples:
	// a shorter one mostly measures the kernel's buffer filling.
	sampleEvery = 10 * time.Millisecond
	// maxNotSentLowat caps TCP_NOTSENT_LOWAT as the rate raises it: the
	// default maximum of Linux's send buffer (net.ipv4.tcp_wmem).
	maxNotSentLowat = 4 << 20
)

// drainBound is a send queue's SendBound state, guarded by the queue's
// mutex. The writer reports the octets it wrote and when (done); the rate
// is sampled over windows of at least sampleEvery during which the writer
// never found the queue empty (bytes stayed above 0), so that a sample
// measures how fast the connection takes data, not how fast it was given.
type drainBound struct {
	target time.Duration
	min    int64

	bytes  int64   // octets queued, or taken by the writer and not yet reported written
	limit  int64   // max(min, rate × target)
	lowMin int64   // NotSentLowat; 0 = not set
	lowat  int64   // TCP_NOTSENT_LOWAT wanted: rate × target/4 within [lowMin, maxNotSentLowat]
	rate   float64 // octets per second, smoothed; 0 before the first sample

	inWin    bool      // a window is open: the writer has been busy since winStart
	winStart time.Time // its start
	winBytes int64     // octets reported written in it
}

func newDrainBound(b SendBound) *drainBound {
	m := int64(b.MinBytes)
	if m <= 0 {
		m = DefaultBoundMinBytes
	}
	db := &drainBound{target: b.Target, min: m, limit: m}
	if b.NotSentLowat >= 0 {
		db.lowMin = int64(cmp.Or(b.NotSentLowat, DefaultNotSentLowat))
		db.lowat = db.lowMin
	}
	return db
}

// over reports whether the octets waiting reach the bound.
func (b *drainBound) over() bool { return b.bytes >= b.limit }

// done records n octets written by the writer, reported at now: they
// leave the count, and the rate is sampled when the window is long enough.
// The window ends when nothing is left (the writer will wait for more),
// and a new one starts at the first report that finds octets waiting.
func (b *drainBound) done(n int64, now time.Time) {
	b.bytes -= n
	if b.bytes < 0 {
		b.bytes = 0 // (never: every octet reported was counted)
	}
	if !b.inWin {
		if b.bytes > 0 {
			b.inWin, b.winStart, b.winBytes = true, now, 0
		}
		return
	}
	b.winBytes += n
	if el := now.Sub(b.winStart); el >= sampleEvery {
		b.sample(float64(b.winBytes) / el.Seconds())
		b.winStart, b.winBytes = now, 0
	}
	if b.bytes == 0 {
		b.inWin = false
	}
}

// sample folds one measured rate r into the estimate: the first as it
// is, then a quarter of each difference (a few windows follow a change of
// the link).
func (b *drainBound) sample(r float64) {
	if b.rate == 0 {
		b.rate = r
	} else {
		b.rate += (r - b.rate) / 4
	}
	b.limit = max(b.min, int64(min(b.rate*b.target.Seconds(), 1<<62)))
	if b.lowMin > 0 {
		b.lowat = min(max(b.lowMin, b.limit/4), max(b.lowMin, maxNotSentLowat))
	}
}

// restart ends the window: the connection that measured it ended.
func (b *drainBound) restart() { b.inWin = false }

// wireSize is what a message occupies in a bounded queue: its frames and
// their headers (at most 9 octets each).
func wireSize(frames [][]byte) int64 {
	n := int64(0)
	for _, f := range frames {
		n += int64(len(f)) + 9
	}
	return n
}
