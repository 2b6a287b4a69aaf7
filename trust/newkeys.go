package trust

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// New keys: how many a minute the store records, and what it tells the
// user about a flood of them (spec/trust.md, "No lock-out").

// Stats counts what the store did with keys it did not know, since it
// was opened (Store.Stats).
type Stats struct {
	// Recorded counts the new keys pinned as tofu.
	Recorded uint64
	// BeforeHello counts the new keys admitted at the connection stage
	// (Observation.BeforeHello), not recorded.
	BeforeHello uint64
	// Unrecorded counts the new keys admitted without a record because
	// Options.MaxNewPerMinute were recorded in that minute already.
	Unrecorded uint64
	// Evicted counts the tofu records forgotten to keep at most
	// Options.MaxPeers.
	Evicted uint64
	// Minutes counts the minutes that left keys unrecorded or forgot
	// records (each logged once).
	Minutes uint64
}

// Stats returns the counters of new keys. It never waits for the disk.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// newKeys counts the new tofu keys of one minute. Guarded by Store.mu.
type newKeys struct {
	start      time.Time // zero: no minute under way
	recorded   int
	unrecorded int
	evicted    int
}

// roll ends the minute under way when now is a minute or more after its
// start (or before it: the clock went back) and returns it, when it is
// worth telling: keys were left unrecorded, or records forgotten.
func (s *Store) roll(now time.Time) (ended newKeys, tell bool) {
	m := &s.minute
	if m.start.IsZero() || now.Sub(m.start) < time.Minute && !now.Before(m.start) {
		return newKeys{}, false
	}
	ended, *m = *m, newKeys{}
	if ended.unrecorded == 0 && ended.evicted == 0 {
		return newKeys{}, false
	}
	s.stats.Minutes++
	return ended, true
}

// admitNew counts a new tofu key at now and reports whether it may be
// recorded (Options.MaxNewPerMinute).
func (s *Store) admitNew(now time.Time) bool {
	m := &s.minute
	if m.start.IsZero() {
		m.start = now
	}
	if s.opts.MaxNewPerMinute > 0 && m.recorded >= s.opts.MaxNewPerMinute {
		m.unrecorded++
		s.stats.Unrecorded++
		return false
	}
	m.recorded++
	s.stats.Recorded++
	return true
}

// evicted counts n tofu records forgotten at now.
func (s *Store) evicted(now time.Time, n int) {
	if n == 0 {
		return
	}
	if s.minute.start.IsZero() {
		s.minute.start = now
	}
	s.minute.evicted += n
	s.stats.Evicted += uint64(n)
}

// tell logs a minute that roll ended, once: the user learns that unknown
// devices keep coming and that the store keeps only the most recently
// seen of them. A minute that left keys unrecorded (more new keys than
// Options.MaxNewPerMinute: a flood, which the user must hear of: the zyre
// CLI shows warnings only) is a warning; one that only forgot records
// (a busy network) is info. Called without Store.mu.
func (s *Store) tell(m newKeys) {
	n := m.recorded + m.unrecorded
	devices := "devices"
	if n == 1 {
		devices = "device"
	}
	msg := fmt.Sprintf("trust: %d new unknown %s in the last minute; recorded %d", n, devices, m.recorded)
	if m.unrecorded > 0 {
		msg += fmt.Sprintf(" (at most %d a minute), %d admitted without a record", s.opts.MaxNewPerMinute, m.unrecorded)
	}
	if m.evicted > 0 {
		msg += fmt.Sprintf("; keeping the %d most recently seen (%d older forgotten)", s.opts.MaxPeers, m.evicted)
	}
	level := slog.LevelInfo
	if m.unrecorded > 0 {
		level = slog.LevelWarn
	}
	// The numbers are in the message: the zyre CLI says a warning as its
	// message (and its attributes), in one line.
	s.opts.Logger.Log(context.Background(), level, msg)
}
