package zre

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
)

func randomKey(t *testing.T) curve.PublicKey {
	var b [32]byte
	rand.Read(b[:])
	b[0] |= 1 // a key starting with 0x00 is no key in a beacon
	k, err := curve.NewPublicKey(b[:])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// refusedEvents returns the Refused events queued so far, and how many
// refusals they stand for.
func refusedEvents(h *harness) (evs []*Refused, standFor uint64) {
	for _, e := range h.st.events {
		if r, ok := e.(*Refused); ok {
			evs = append(evs, r)
			standFor += max(r.Count, 1)
		}
	}
	return evs, standFor
}

// TestRefusedFloodBounded: beacons flooded at 200 a second for 20 s (a
// peer's UUID with a fresh key each; random UUIDs; random UUIDs from ever
// new addresses) make a few Refused events per source, not one per
// beacon: the first three, then one standing for the rest every 10 s,
// 20 s, 40 s... And every refusal is accounted for: the events' Counts add
// up to Stats.BeaconsRefused.
func TestRefusedFloodBounded(t *testing.T) {
	victim := UUIDFromKey(randomKey(t))
	// Each beacon claims a key-derived UUID with another key: refused.
	cases := []struct {
		name      string
		beacon    func(i int) (uuid.UUID, string)
		maxFirst  int // events within the first minute
		maxEvents int // events in all (the flood, then two quiet minutes)
	}{
		{"one UUID, fresh keys, one address", func(int) (uuid.UUID, string) { return victim, "10.85.0.4:5670" }, 6, 7},
		{"random UUIDs, one address", func(int) (uuid.UUID, string) { return UUIDFromKey(randomKey(t)), "10.85.0.4:5670" }, 6, 7},
		// 8 new addresses at once, then one every 10 s (2 more in the
		// 20 s), each with up to 3 lines, and the rest summarised.
		{"random UUIDs, new addresses", func(i int) (uuid.UUID, string) {
			return UUIDFromKey(randomKey(t)), fmt.Sprintf("10.%d.%d.%d:5670", i>>16&255, i>>8&255, i&255)
		}, 12 + 6, 12 + 7},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newSecureHarness(t)
			start := h.now
			nextReap := h.now.Add(time.Second)
			firstMinute := -1
			for i := range 4000 { // 200/s for 20 s
				id, from := tc.beacon(i)
				h.beaconV3(id, randomKey(t), 50009, from)
				h.advance(5 * time.Millisecond)
				if !h.now.Before(nextReap) {
					h.st.reap(h.now)
					nextReap = nextReap.Add(time.Second)
				}
			}
			for h.now.Sub(start) < 3*time.Minute {
				h.advance(time.Second)
				h.st.reap(h.now)
				if firstMinute < 0 && h.now.Sub(start) >= time.Minute {
					evs, _ := refusedEvents(h.harness)
					firstMinute = len(evs)
				}
			}
			evs, standFor := refusedEvents(h.harness)
			st := h.stats.snapshot()
			if st.BeaconsRefused != 4000 {
				t.Fatalf("BeaconsRefused = %d, want 4000", st.BeaconsRefused)
			}
			if firstMinute > tc.maxFirst || len(evs) > tc.maxEvents {
				t.Errorf("%d Refused events in the first minute, %d in all; want at most %d and %d", firstMinute, len(evs), tc.maxFirst, tc.maxEvents)
			}
			if standFor != st.BeaconsRefused {
				t.Errorf("the events stand for %d refusals, Stats counts %d", standFor, st.BeaconsRefused)
			}
			single := uint64(0)
			for _, r := range evs {
				if r.Count == 0 {
					single++
					continue
				}
				if !strings.Contains(r.Reason.Error(), fmt.Sprintf("(1 of %d refusals from ", r.Count)) || !strings.Contains(r.Reason.Error(), "not reported one by one") {
					t.Errorf("summary's reason %q", r.Reason)
				}
				if !errorsIsKeyMismatchOrUnbound(r.Reason) {
					t.Errorf("summary's reason %q wraps neither ErrKeyMismatch nor ErrUnbound", r.Reason)
				}
			}
			if st.RefusalsAggregated != st.BeaconsRefused-single {
				t.Errorf("RefusalsAggregated = %d, want %d", st.RefusalsAggregated, st.BeaconsRefused-single)
			}
		})
	}
}

// TestRefusedTrickleEachReported: refusals that come now and then (every
// 15 s from one address, beyond the first three at once) are each
// reported on their own, and a quiet source starts afresh.
func TestRefusedTrickleEachReported(t *testing.T) {
	h := newSecureHarness(t)
	victim := UUIDFromKey(randomKey(t))
	for range 3 {
		h.beaconV3(victim, randomKey(t), 50009, "10.85.0.4:5670")
	}
	for range 5 {
		h.advance(15 * time.Second)
		h.st.reap(h.now)
		h.beaconV3(victim, randomKey(t), 50009, "10.85.0.4:5670")
	}
	evs, _ := refusedEvents(h.harness)
	if len(evs) != 8 {
		t.Fatalf("%d Refused events, want 8", len(evs))
	}
	for _, r := range evs {
		if r.Count != 0 {
			t.Fatalf("a summary (%d) for a trickle", r.Count)
		}
	}
}

func errorsIsKeyMismatchOrUnbound(err error) bool {
	return errors.Is(err, ErrKeyMismatch) || errors.Is(err, ErrUnbound)
}
