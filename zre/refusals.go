package zre

import (
	"fmt"
	"net"
	"time"

	"github.com/google/uuid"
)

// Anyone on the network can make a secure node refuse something many
// times a second: a beacon carrying a peer's UUID with a fresh key each
// time is a new (UUID, key) every time, which report's once-per-triple
// rule does not stop (user trial 5: 2 000 beacons a second made 32 781
// REFUSED lines in 20 s in every chat of the family). So Refused events
// are also bounded per source address and per claimed UUID:
//
//   - the first refusalBurst refusals of a source are reported as they
//     are; the refusals of that source (or claiming the UUID of its
//     first, from anywhere) that follow are counted, not reported, and
//     refusalGap after its last report one Refused stands for them: the latest of them, with Count (how
//     many it stands for) and Over (the time they came in), its Reason
//     saying so too ("... (1 of 3204 refusals from 10.85.0.4 in the last
//     10s; the others are not reported one by one)");
//   - the gap doubles with each such summary up to refusalGapMax, and
//     starts again at refusalGap once the source was quiet for
//     refusalQuiet: a flood of any length and rate makes at most 6 lines
//     per source in its first minute (3 at once, then at 10, 30 and 70
//     s), then one a minute; one refusal now and then (one every
//     refusalGap or slower) is reported on its own each time;
//   - a source not seen before gets a line of its own only while the
//     node's budget of new sources allows (refusalNewBurst, then one every
//     refusalNewEvery): refusals from ever new (spoofed) addresses beyond
//     it are counted together and summarised the same way.
//
// Stats.BeaconsRefused and PeersRefused still count every refusal,
// Stats.RefusalsAggregated those reported only as part of a Count.
const (
	refusalBurst    = 3
	refusalGap      = 10 * time.Second
	refusalGapMax   = time.Minute
	refusalQuiet    = 2 * time.Minute
	refusalNewBurst = 8
	refusalNewEvery = 10 * time.Second
	maxRefusalAggs  = 256
	maxRefusalHosts = 64
)

// refusalAgg is the refusals of one source address (or of one claimed
// UUID) not reported one by one since its last report.
type refusalAgg struct {
	lastReport time.Time // its last Refused event
	gap        time.Duration
	tokens     int // reports left before counting starts
	count      uint64
	since      time.Time // the first of count
	last       *Refused  // the latest of count
	hosts      map[string]struct{}
	host       string // the source it was made for ("" for the others)
	id         uuid.UUID
}

// refusalLimiter bounds the Refused events (see above). State goroutine
// only.
type refusalLimiter struct {
	bySrc     map[string]*refusalAgg
	byID      map[uuid.UUID]*refusalAgg
	others    refusalAgg // new sources past the budget
	newTokens float64
	newAt     time.Time
}

// hostOf is the address part of an event's Addr ("10.0.0.4:5670").
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// allow reports whether r is reported now; otherwise it is counted in an
// aggregate, reported later by due.
func (l *refusalLimiter) allow(r *Refused, now time.Time) bool {
	if l.bySrc == nil {
		l.bySrc = make(map[string]*refusalAgg)
		l.byID = make(map[uuid.UUID]*refusalAgg)
		l.newTokens, l.newAt = refusalNewBurst, now
		l.others.gap = refusalGap
	}
	host := hostOf(r.Addr)
	a := l.bySrc[host]
	if a == nil {
		a = l.byID[r.Peer]
	}
	if a == nil {
		l.newTokens = min(l.newTokens+float64(now.Sub(l.newAt))/float64(refusalNewEvery), refusalNewBurst)
		l.newAt = now
		if l.newTokens < 1 || len(l.bySrc) >= maxRefusalAggs || len(l.byID) >= maxRefusalAggs {
			l.others.add(r, host, now)
			return false
		}
		l.newTokens--
		a = &refusalAgg{lastReport: now, gap: refusalGap, tokens: refusalBurst - 1, host: host, id: r.Peer}
		l.bySrc[host] = a
		if l.byID[r.Peer] == nil {
			l.byID[r.Peer] = a
		}
		return true
	}
	if a.count == 0 && (a.tokens > 0 || now.Sub(a.lastReport) >= a.gap) {
		if a.tokens > 0 {
			a.tokens--
		}
		a.lastReport = now // the first few, or a trickle: each one on its own
		return true
	}
	a.add(r, host, now)
	return false
}

func (a *refusalAgg) add(r *Refused, host string, now time.Time) {
	if a.count == 0 {
		a.since = now
	}
	a.count++
	a.last = r
	if a.hosts == nil {
		a.hosts = make(map[string]struct{})
	}
	if len(a.hosts) < maxRefusalHosts {
		a.hosts[host] = struct{}{}
	}
}

// due returns the summaries whose gap has passed, and forgets the
// sources quiet for refusalQuiet.
func (l *refusalLimiter) due(now time.Time) []*Refused {
	var out []*Refused
	for _, a := range l.bySrc {
		if r := a.summary(now); r != nil {
			out = append(out, r)
		}
	}
	for _, a := range l.byID {
		if a != l.bySrc[a.host] { // not summarised above
			if r := a.summary(now); r != nil {
				out = append(out, r)
			}
		}
	}
	if r := l.others.summary(now); r != nil {
		out = append(out, r)
	}
	for h, a := range l.bySrc {
		if a.count == 0 && now.Sub(a.lastReport) >= refusalQuiet {
			delete(l.bySrc, h)
		}
	}
	for id, a := range l.byID {
		if a.count == 0 && now.Sub(a.lastReport) >= refusalQuiet {
			delete(l.byID, id)
		}
	}
	return out
}

// summary is the Refused that stands for a's refusals once its gap has
// passed, or nil.
func (a *refusalAgg) summary(now time.Time) *Refused {
	if a.count == 0 || now.Sub(a.lastReport) < a.gap {
		return nil
	}
	r := *a.last
	r.Count, r.Over = a.count, now.Sub(a.since)
	from := ""
	for h := range a.hosts {
		from = h
		break
	}
	if len(a.hosts) > 1 {
		more := fmt.Sprintf("%d", len(a.hosts)-1)
		if len(a.hosts) >= maxRefusalHosts {
			more = "more than " + more
		}
		from = fmt.Sprintf("%s and %s other addresses", from, more)
	}
	r.Reason = fmt.Errorf("%w (1 of %d refusals from %s in the last %v; the others are not reported one by one)",
		a.last.Reason, a.count, from, r.Over.Round(time.Second))
	a.lastReport, a.count, a.last = now, 0, nil
	clear(a.hosts)
	a.gap = min(2*a.gap, refusalGapMax)
	return &r
}
