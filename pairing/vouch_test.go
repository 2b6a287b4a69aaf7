package pairing

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/privgroup/zyregroup"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

// storyTimeout bounds each wait of the story: generous, for a loaded
// machine under -race.
const storyTimeout = 60 * time.Second

// startNode runs n as a secure node with its trust store and signing key,
// beacons on loopback port; closed when the test ends.
func startNode(t *testing.T, n node, port int) *zre.Node {
	t.Helper()
	_, sec := n.id.CurveKeyPair()
	zn, err := zre.New(zre.Config{
		Name:   n.id.Name,
		Beacon: zre.BeaconConfig{Port: port, Loopback: true, Interval: 100 * time.Millisecond},
		Secure: &zre.SecureConfig{Secret: sec, Trust: &zre.TrustConfig{Store: n.trust, Signer: n.id.Signer()}},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { zn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), storyTimeout)
	defer cancel()
	if err := zn.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return zn
}

// waitFor polls cond (a look at a trust store, which raises no event)
// until it holds, failing after storyTimeout with what() said.
func waitFor(t *testing.T, what string, cond func() bool, state func() string) {
	t.Helper()
	deadline := time.Now().Add(storyTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v: %s", what, storyTimeout, state())
		}
		<-tick.C
	}
}

func (n node) recordOf(t *testing.T, of node) (trust.Record, bool) {
	t.Helper()
	r, ok, err := n.trust.Lookup(of.key())
	if err != nil {
		t.Fatal(err)
	}
	return r, ok
}

// TestVouchStory is the hotel room of the user trial: a room camera pairs
// with phone 1 and with phone 2, which never pair with each other. The
// room's vouches reach each phone over zyre-trust, each phone then trusts
// the other as introduced by the room, and phone 1's private group
// stream reaches phone 2. A stranger paired with phone 1 only is vouched
// for by a peer phone 2 trusts only as introduced: depth 1, it stays tofu
// at phone 2.
func TestVouchStory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*storyTimeout)
	defer cancel()
	room, ph1, ph2, stranger := newNode(t, "room"), newNode(t, "phone1"), newNode(t, "phone2"), newNode(t, "stranger")
	pairQR(t, ctx, room, ph1)
	pairQR(t, ctx, room, ph2)
	pairQR(t, ctx, ph1, stranger)
	// Each pairing signed a vouch on both sides.
	for _, c := range []struct {
		n    node
		head uint64
	}{{room, 2}, {ph1, 2}, {ph2, 1}, {stranger, 1}} {
		if seq, _, err := c.n.trust.Head(c.n.id.SigningKey); err != nil || seq != c.head {
			t.Fatalf("%s's log: head %d (%v), want %d", c.n.id.Name, seq, err, c.head)
		}
	}
	if r, ok := ph2.recordOf(t, ph1); ok {
		t.Fatalf("phone2 knows phone1 before any node ran: %+v", r)
	}

	port := 20000 + rand.IntN(40000)
	startNode(t, room, port)
	n1, n2 := startNode(t, ph1, port), startNode(t, ph2, port)
	startNode(t, stranger, port)

	// Each phone comes to trust the other, introduced by the room.
	for _, c := range []struct{ at, of node }{{ph1, ph2}, {ph2, ph1}} {
		waitFor(t, c.at.id.Name+" trusting "+c.of.id.Name, func() bool {
			return c.at.trust.Trusted(c.of.id.UUID, c.of.key())
		}, func() string { r, _ := c.at.recordOf(t, c.of); return r.State.String() })
		if r, _ := c.at.recordOf(t, c.of); r.State != trust.StateIntroduced || r.IntroducedBy != room.key() {
			t.Fatalf("%s at %s: %s, introduced by %s", c.of.id.Name, c.at.id.Name, r.State, trust.Fingerprint(r.IntroducedBy))
		}
	}

	// A private group: phone1's stream reaches phone2.
	g1, err := zyregroup.Open(n1, "family", zyregroup.Options{Secret: secretOf(ph1), Trust: ph1.trust}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g1.Close() })
	g2, err := zyregroup.Open(n2, "family", zyregroup.Options{Secret: secretOf(ph2), Trust: ph2.trust}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g2.Close() })
	wctx, wcancel := context.WithTimeout(ctx, storyTimeout)
	defer wcancel()
	if _, err := g2.AwaitSender(wctx, func(p uuid.UUID) bool { return p == ph1.id.UUID }); err != nil {
		t.Fatalf("phone2 never got phone1's sender key: %v (stats %+v)", err, g2.Stats())
	}
	rd, err := g2.NewReader(ph1.id.UUID)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	w, err := g1.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	const line = "hello from phone1"
	if _, err := io.WriteString(w, line); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(rd); got <- b }()
	select {
	case b := <-got:
		if string(b) != line {
			t.Fatalf("phone2 read %q, want %q", b, line)
		}
	case <-time.After(storyTimeout):
		t.Fatalf("phone2 read nothing of phone1's stream (stats %+v)", g2.Stats())
	}

	// The stranger: phone1 vouched for it, phone2 holds that vouch, and
	// phone1 is only introduced at phone2, so it counts for nothing.
	waitFor(t, "phone1's log at phone2", func() bool {
		seq, _, _ := ph2.trust.Head(ph1.id.SigningKey)
		_, known := ph2.recordOf(t, stranger)
		return seq >= 2 && known
	}, func() string { seq, _, _ := ph2.trust.Head(ph1.id.SigningKey); return fmt.Sprintf("head %d", seq) })
	if r, _ := ph2.recordOf(t, stranger); r.State != trust.StateTOFU || ph2.trust.Trusted(stranger.id.UUID, stranger.key()) {
		t.Fatalf("stranger at phone2: %+v", r)
	}
	// At the room, which verified phone1, phone1's vouch introduces the
	// stranger.
	waitFor(t, "the stranger introduced at the room", func() bool {
		r, _ := room.recordOf(t, stranger)
		return r.State == trust.StateIntroduced && r.IntroducedBy == ph1.key()
	}, func() string { r, _ := room.recordOf(t, stranger); return r.State.String() })
}

func secretOf(n node) curve.SecretKey {
	_, sec := n.id.CurveKeyPair()
	return sec
}
