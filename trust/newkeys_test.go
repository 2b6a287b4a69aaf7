package trust

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zyre-go/zyre/curve"
)

// TestBeforeHelloRecordsNothing: usertry5 #8. A key seen only at the
// connection stage (CURVE handshake, no HELLO) is decided on by the
// usual rules and never recorded, in memory or on disk; the same key is
// pinned at its HELLO; known keys and key changes behave as before.
func TestBeforeHelloRecordsNothing(t *testing.T) {
	home := filepath.Join(t.TempDir(), "zyre")
	s := openStore(t, home, Options{})
	fam := newPeer(1, "phone1")
	mustVerify(t, s, fam)
	before := onDisk(t, s)
	for i := range 200 {
		o := Observation{UUID: randomUUID(i), Key: newPeer(100+i, "").key, Addr: "10.85.0.4:40000", BeforeHello: true}
		v := mustAdmit(t, s, o, t0.Add(time.Duration(i)*time.Second))
		if !v.Allow || !v.New || !v.Unrecorded || v.Record.Key == o.Key {
			t.Fatalf("stranger %d before HELLO: %+v", i, v)
		}
	}
	if onDisk(t, s) != before {
		t.Fatal("connections without HELLO wrote to the store")
	}
	if recs, _ := s.List(); len(recs) != 1 {
		t.Fatalf("%d records after 200 strangers without HELLO, want the verified one", len(recs))
	}
	if st := s.Stats(); st.BeforeHello != 200 || st.Recorded != 0 || st.Unrecorded != 0 {
		t.Fatalf("stats %+v", st)
	}

	// An honest unbound peer: admitted at its connection, pinned at its
	// HELLO.
	c := newPeer(50, "c-node")
	c.id = randomUUID(50)
	pre := c.obs()
	pre.Name, pre.BeforeHello = "", true
	if v := mustAdmit(t, s, pre, t0); !v.Allow || !v.Unrecorded {
		t.Fatalf("c-node at its connection: %+v", v)
	}
	if _, ok, _ := s.Lookup(c.key); ok {
		t.Fatal("c-node recorded before its HELLO")
	}
	if v := mustAdmit(t, s, c.obs(), t0); !v.Allow || !v.New || v.Unrecorded || v.Record.State != StateTOFU {
		t.Fatalf("c-node at its HELLO: %+v", v)
	}
	// Pinned: its next connection is a known key (updated as before),
	// another key under its UUID a key change (recorded on its record).
	if v := mustAdmit(t, s, pre, t0.Add(time.Hour)); !v.Allow || v.New || v.Record.Key != c.key || !v.Record.LastSeen.Equal(t0.Add(time.Hour)) {
		t.Fatalf("c-node connecting again: %+v", v)
	}
	imp := Observation{UUID: c.id, Key: newPeer(51, "").key, BeforeHello: true}
	if v := mustAdmit(t, s, imp, t0.Add(time.Hour)); v.Allow || v.KeyChange == nil {
		t.Fatalf("impostor of c-node before HELLO: %+v", v)
	}
	if r, _, _ := s.Lookup(c.key); r.KeyChange == nil || r.KeyChange.New != imp.Key {
		t.Fatalf("key change not recorded: %+v", r)
	}
	// Strict mode: a new key is refused at the connection, as at HELLO.
	setMode(t, s, ModeStrict)
	if v := mustAdmit(t, s, Observation{UUID: randomUUID(999), Key: newPeer(999, "").key, BeforeHello: true}, t0); v.Allow {
		t.Fatalf("strict: unknown key admitted before HELLO: %+v", v)
	}
	// Read back by another process: the verified peer and c-node only.
	recs, err := openStore(t, home, Options{}).List()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("%d records on disk, want 2", len(recs))
	}
}

// logBuffer is a slog destination that tests read.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) lines(sub string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.b.String(), "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return out
}

// TestNewKeysPerMinute: a stranger that says HELLO with a fresh key again
// and again (the next step of usertry5 #8's attack) gets at most
// MaxNewPerMinute records a minute, and the tofu records stay at most
// MaxPeers, the least recently seen forgotten first: the records someone
// acted on (verified, introduced, revoked) stay, and so does a tofu peer
// that keeps talking. Each minute that left keys unrecorded or forgot
// records is logged once (a warning when keys were left unrecorded), and
// counted.
func TestNewKeysPerMinute(t *testing.T) {
	const maxPeers, perMinute, minutes, floodPerMinute = 8, 4, 6, 50
	home := filepath.Join(t.TempDir(), "zyre")
	now := t0
	var logs logBuffer
	s := openStore(t, home, Options{MaxPeers: maxPeers, MaxNewPerMinute: perMinute,
		Now:    func() time.Time { return now },
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})

	// The family: verified, introduced (vouched for by the verified one),
	// revoked; and two tofu peers met before the flood.
	room, phone, thief := newPeer(1, "room"), newPeer(2, "phone2"), newPeer(3, "old")
	mustVerify(t, s, room)
	mustApply(t, s, sign(t, room, 1, nil, t0, &Vouch{Key: phone.key, UUID: phone.id, Name: phone.name}).Raw)
	if v := mustAdmit(t, s, phone.obs(), now); v.Record.State != StateIntroduced {
		t.Fatalf("phone2: %+v", v)
	}
	if _, err := s.Revoke(ctx, thief.key, "lost"); err != nil {
		t.Fatal(err)
	}
	talker, quiet := newPeer(4, "talker"), newPeer(5, "quiet")
	mustAdmit(t, s, talker.obs(), now)
	mustAdmit(t, s, quiet.obs(), now)

	// The flood: 50 fresh keys a minute, each with its HELLO; the talker
	// stays connected (the node's tick: Seen every second).
	n := 0
	for m := range minutes {
		for i := range floodPerMinute {
			now = t0.Add(time.Duration(m)*time.Minute + time.Duration(i)*time.Second)
			if i%10 == 0 {
				s.Seen([]curve.PublicKey{talker.key})
			}
			v := mustAdmit(t, s, floodObs(n), now)
			n++
			if !v.Allow || !v.New {
				t.Fatalf("flood key %d refused: %+v", n, v)
			}
			budget := perMinute
			if m == 0 {
				budget -= 2 // talker and quiet were new in that minute
			}
			if want := i >= budget; v.Unrecorded != want {
				t.Fatalf("minute %d key %d: unrecorded %v, want %v", m, i, v.Unrecorded, want)
			}
		}
	}
	// An honest new peer in the middle of a flood minute is admitted
	// (nobody is locked out), without a record; at its next admission,
	// in a minute with room, it is pinned.
	honest := newPeer(6, "honest")
	if v := mustAdmit(t, s, honest.obs(), now); !v.Allow || !v.Unrecorded {
		t.Fatalf("honest peer during the flood: %+v", v)
	}
	now = now.Add(2 * time.Minute)
	if v := mustAdmit(t, s, honest.obs(), now); !v.Allow || v.Unrecorded || v.Record.State != StateTOFU {
		t.Fatalf("honest peer after the flood: %+v", v)
	}

	check := func(what string, s *Store) {
		t.Helper()
		recs, err := s.List()
		if err != nil {
			t.Fatal(err)
		}
		tofu := 0
		for _, r := range recs {
			if r.State == StateTOFU {
				tofu++
			}
		}
		if tofu > maxPeers {
			t.Errorf("%s: %d tofu records, want at most %d", what, tofu, maxPeers)
		}
		for _, tc := range []struct {
			p     testPeer
			state State
			kept  bool
		}{{room, StateVerified, true}, {phone, StateIntroduced, true}, {thief, StateRevoked, true},
			{talker, StateTOFU, true}, {honest, StateTOFU, true}, {quiet, StateTOFU, false}} {
			r, ok, _ := s.Lookup(tc.p.key)
			if ok != tc.kept || ok && r.State != tc.state {
				t.Errorf("%s: %s: kept %v (%s), want %v (%s)", what, tc.p.name, ok, r.State, tc.kept, tc.state)
			}
		}
	}
	check("in memory", s)
	onDisk(t, s)
	check("read by another process", openStore(t, home, Options{MaxPeers: maxPeers}))

	// Counted, and told once per minute.
	st := s.Stats()
	wantRecorded := uint64(minutes*perMinute + 1)                        // talker and quiet, the flood's, honest
	wantUnrecorded := uint64(minutes*(floodPerMinute-perMinute) + 2 + 1) // + honest once
	if st.Recorded != wantRecorded || st.Unrecorded != wantUnrecorded || st.Evicted == 0 {
		t.Fatalf("stats %+v, want %d recorded and %d unrecorded", st, wantRecorded, wantUnrecorded)
	}
	told := logs.lines("new unknown devices in the last minute")
	if len(told) != minutes || uint64(len(told)) != st.Minutes {
		t.Fatalf("%d lines told (stats %d), want one per flood minute (%d):\n%s", len(told), st.Minutes, minutes, strings.Join(told, "\n"))
	}
	want := fmt.Sprintf("%d new unknown devices in the last minute; recorded %d (at most %d a minute), %d admitted without a record; keeping the %d most recently seen",
		floodPerMinute, perMinute, perMinute, floodPerMinute-perMinute, maxPeers)
	if !strings.Contains(told[2], want) || !strings.Contains(told[2], "level=WARN") {
		t.Fatalf("told %q, want %q, a warning", told[2], want)
	}

	// A minute that only forgot records (a busy network, no flood) is
	// told as info.
	now = now.Add(time.Minute)
	s.Seen(nil)
	last := logs.lines("in the last minute")
	if want := "1 new unknown device in the last minute; recorded 1; keeping the 8 most recently seen (1 older forgotten)"; len(last) != minutes+1 ||
		!strings.Contains(last[minutes], want) || !strings.Contains(last[minutes], "level=INFO") {
		t.Fatalf("told %q, want %q at info level", last, want)
	}

	// The journal grows by the recorded keys only: a flood of
	// 6 x 50 keys wrote about 6 x 4 records.
	fi, err := os.Stat(filepath.Join(home, JournalName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > 64<<10 {
		t.Fatalf("journal of %d octets after the flood", fi.Size())
	}
	t.Logf("journal %d octets; stats %+v; told:\n%s", fi.Size(), st, strings.Join(told, "\n"))
}
