package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestProbeVerdict: the verdict "cut off" on a silent member waits while
// our own messages to it wait to go out (the probe is behind them), is
// not given when a message of the member arrives after the probe, and a
// member said to be cut off is known to be back once one arrives. A fake
// clock: no sleeps.
func TestProbeVerdict(t *testing.T) {
	p := uuid.New()
	t0 := time.Unix(1_000_000, 0)
	cut := func(g *streamGroup, backlog int, at time.Time) error {
		return g.cutOffAt(p, "phone1", "family", backlog, at)
	}

	g := &streamGroup{}
	if err := cut(g, 0, t0.Add(time.Hour)); err != nil {
		t.Fatalf("not probed: %v", err)
	}

	// A large transfer to the member fills our queue: however long it
	// drains, no verdict; the probe's wait starts once it went out.
	g.probed.Store(p, t0)
	for s := time.Duration(0); s <= time.Minute; s += time.Second {
		if err := cut(g, 1000, t0.Add(s)); err != nil {
			t.Fatalf("with our queue full at +%v: %v", s, err)
		}
	}
	if err := cut(g, -1, t0.Add(61*time.Second)); err != nil { // a sender waits for room
		t.Fatalf("with a sender waiting: %v", err)
	}
	drained := t0.Add(62 * time.Second)
	if err := cut(g, 1, drained); err != nil {
		t.Fatal(err)
	}
	if err := cut(g, 0, drained.Add(ProbeWait-time.Millisecond)); err != nil {
		t.Fatalf("before ProbeWait after the queue drained: %v", err)
	}
	// Its answer (or any message of it) comes: no verdict.
	g.heardFrom(p, drained.Add(ProbeWait/2))
	if err := cut(g, 0, drained.Add(time.Hour)); err != nil {
		t.Fatalf("after a message of the member: %v", err)
	}

	// A message that came before the probe answers nothing.
	g = &streamGroup{}
	g.heardFrom(p, t0.Add(-time.Second))
	g.probed.Store(p, t0)
	g.heardFrom(p, t0.Add(-time.Millisecond))
	err := cut(g, 0, t0.Add(ProbeWait))
	if err == nil || !strings.Contains(err.Error(), "answers no probe") {
		t.Fatalf("a probe unanswered for ProbeWait with nothing queued: %v", err)
	}
	// Said cut off at t1; back once a message arrives after.
	t1 := t0.Add(ProbeWait)
	if g.heardSince(p, t1) {
		t.Fatal("back before any message")
	}
	g.heardFrom(p, t1.Add(time.Second))
	if !g.heardSince(p, t1) {
		t.Fatal("not back after a message")
	}
	if txt := BackText("phone1", p, "family"); !strings.Contains(txt, "is back") || !strings.Contains(txt, p.String()[:8]) {
		t.Fatalf("back text %q", txt)
	}
}
