package privgroup

import (
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
)

const testGroup = "hotel-room"

// clock is an injected clock that only moves when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 24, 20, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// detRand is a deterministic randomness source for tests.
func detRand(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	return rand.NewChaCha8(s)
}

// member is one node of a test group: its long-term key, UUID and
// Receiver.
type member struct {
	name string
	pub  curve.PublicKey
	sec  curve.SecretKey
	id   uuid.UUID
	recv *Receiver
}

func newMember(t testing.TB, name string, seed uint64, opts Options) *member {
	t.Helper()
	pub, sec, err := curve.GenerateKeyPair(detRand(seed))
	if err != nil {
		t.Fatal(err)
	}
	m := &member{name: name, pub: pub, sec: sec, id: uuid.NewSHA1(uuid.NameSpaceOID, pub.Bytes())}
	m.recv, err = NewReceiver(testGroup, &m.sec, opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (m *member) sender(t testing.TB, opts Options) *Sender {
	t.Helper()
	s, err := NewSender(testGroup, m.id, &m.sec, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// give delivers s's current sender key (made by from) to each member.
func give(t testing.TB, s *Sender, from *member, to ...*member) {
	t.Helper()
	for _, m := range to {
		rec, err := s.KeyFor(m.pub)
		if err != nil {
			t.Fatalf("KeyFor(%s): %v", m.name, err)
		}
		if _, err := m.recv.AddSenderKey(rec, from.pub); err != nil {
			t.Fatalf("%s: AddSenderKey: %v", m.name, err)
		}
	}
}

func seal(t testing.TB, s *Sender, text string) []byte {
	t.Helper()
	msg, err := s.Seal(nil, []byte(text))
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	return msg
}

func batch(t testing.TB, s *Sender) []byte {
	t.Helper()
	rec, err := s.Batch(nil)
	if err != nil {
		t.Fatalf("Batch: %v", err)
	}
	return rec
}

func mustOpen(t testing.TB, m *member, msg []byte) ([]byte, Info) {
	t.Helper()
	pt, info, err := m.recv.Open(nil, msg)
	if err != nil {
		t.Fatalf("%s: Open: %v", m.name, err)
	}
	return pt, info
}

func wantErr(t testing.TB, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want one wrapping %v", err, want)
	}
}

// authenticated returns the counters that info's settlements authenticated.
func authenticated(info Info) map[uint32]bool {
	out := map[uint32]bool{}
	for _, s := range info.Settlements() {
		if s.Authenticated {
			for i := s.First; i < s.First+s.Count; i++ {
				out[i] = true
			}
		}
	}
	return out
}

func testOpts(c *clock, seed uint64) Options {
	return Options{Rand: detRand(seed), Now: c.Now}
}

// suites are the wire suites; forEachSuite runs a test once for each.
var suites = []Suite{SuiteChaCha20SHA256, SuiteAESGCMBLAKE3}

func forEachSuite(t *testing.T, f func(*testing.T, Suite)) {
	for _, s := range suites {
		t.Run(s.String(), func(t *testing.T) { f(t, s) })
	}
}

// suiteOpts is testOpts with the senders' suite set.
func suiteOpts(c *clock, suite Suite, seed uint64) Options {
	o := testOpts(c, seed)
	o.Suite = suite
	return o
}

// senderPair is the usual fixture: member a sends with suite, member b
// holds a's sender key; c is their clock.
func senderPair(t *testing.T, suite Suite) (*clock, *member, *member, *Sender) {
	t.Helper()
	c := newClock()
	a, b := newMember(t, "a", 1, suiteOpts(c, suite, 11)), newMember(t, "b", 2, suiteOpts(c, suite, 12))
	s := a.sender(t, suiteOpts(c, suite, 13))
	give(t, s, a, b)
	return c, a, b, s
}
