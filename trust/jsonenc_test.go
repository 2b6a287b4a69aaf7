package trust

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// peerCache holds newPeer's results for entryOf: making keys would cost
// the fuzz target most of its time.
var peerCache sync.Map

func entryOf(name, addr, notes string, kc bool, sec int64) *journalEntry {
	n := int(sec % 1000)
	v, ok := peerCache.Load(n)
	if !ok {
		v, _ = peerCache.LoadOrStore(n, newPeer(n, ""))
	}
	p := v.(testPeer)
	r := &Record{UUID: p.id, Name: name, Key: p.key, Fingerprint: Fingerprint(p.key), Bound: true, State: StateRevoked,
		FirstSeen: time.Unix(sec, sec%1e9).UTC(), LastSeen: time.Unix(sec+5, 0).In(time.FixedZone("x", 3600)), LastAddr: addr,
		IntroducedBy: p.key, VerifiedMethod: notes, VerifiedAt: t0, SigningKey: p.signPub(), BindingTime: t0,
		RevokedAt: t0, RevokedBy: p.key, RevokeReason: name + notes, RevokedFrom: StateVerified, Notes: notes}
	if kc {
		r.KeyChange = &KeyChange{UUID: p.id, Name: name, New: p.key, NewFingerprint: Fingerprint(p.key), Seen: t0, Addr: addr}
	}
	fr := fromRecord(r)
	return &journalEntry{Put: &fr}
}

// TestEntryEncoding: the hand-written encoder writes what encoding/json
// writes.
func TestEntryEncoding(t *testing.T) {
	for _, e := range []*journalEntry{
		entryOf("alice", "tcp://127.0.0.1:5670", "", false, 1),
		entryOf("a\"b\\c\n\t\x01\x7f<>&\u2028\u2029é\xff", "", "multi\nline", true, 1764000000),
		entryOf("", "", "", true, -5),
		{Put: &fileRecord{}},
	} {
		got, want := appendEntry(nil, e), appendEntryJSON(nil, e)
		if !bytes.Equal(got, want) {
			t.Fatalf("encoding differs:\n%s\n%s", got, want)
		}
	}
}

func FuzzEntryEncoding(f *testing.F) {
	f.Add("alice", "tcp://127.0.0.1:5670", "", false, int64(1))
	f.Add("\x00\"\\\u2028\xff", "<&>", "x\ny", true, int64(-100))
	f.Fuzz(func(t *testing.T, name, addr, notes string, kc bool, sec int64) {
		if sec < -62135596800 || sec > 253402300799-10 {
			return // years 1..9999: what the store holds
		}
		e := entryOf(name, addr, notes, kc, sec)
		if got, want := appendEntry(nil, e), appendEntryJSON(nil, e); !bytes.Equal(got, want) {
			t.Fatalf("encoding differs:\n%q\n%q", got, want)
		}
	})
}
