package trust

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/zyre-go/zyre/curve"
)

// floodObs is the observation of flood key n: a key made from n (any 32
// octets are a public key; the store never needs the secret) and its
// bound UUID, as a peer making fresh keys would present.
func floodObs(n int) Observation {
	var b [32]byte
	binary.BigEndian.PutUint64(b[:], uint64(n)+1<<40)
	b[31] = 0x42
	k, err := curve.NewPublicKey(b[:])
	if err != nil {
		panic(err)
	}
	return Observation{UUID: keyUUID(k), Key: k, Name: fmt.Sprintf("flood-%d", n), Addr: "tcp://127.0.0.1:9"}
}

// TestTOFUFlood admits 100 000 fresh keys, as a peer making new keys
// would make a node do: a verified peer, a tofu peer that keeps talking
// and a new honest peer arriving at any point are all admitted; the
// records, the memory and the files stay bounded; and it takes seconds,
// not minutes (the store is driven directly).
func TestTOFUFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("100 000 admissions")
	}
	const flood, maxPeers = 100_000, 4096
	home := t.TempDir()
	// Writes every 10 ms, so that the flood goes to disk while it lasts.
	// No bound on new keys a minute: every flood key is recorded, the
	// worst case for the cap, the evictions and the journal
	// (TestNewKeysPerMinute has the bound).
	s := openStore(t, home, Options{MaxPeers: maxPeers, MaxNewPerMinute: -1, SeenResolution: time.Hour, WriteDelay: 10 * time.Millisecond})
	maxJournal := int64(0)
	verified, regular := newPeer(1, "verified"), newPeer(2, "regular")
	mustVerify(t, s, verified)
	mustAdmit(t, s, regular.obs(), t0)
	start := time.Now()
	for i := range flood {
		now := t0.Add(time.Duration(i) * time.Millisecond)
		if v := mustAdmit(t, s, floodObs(i), now); !v.Allow {
			t.Fatalf("flood key %d refused: %s", i, v.Reason)
		}
		if i%1000 == 0 { // a tofu peer that keeps talking stays pinned
			if v := mustAdmit(t, s, regular.obs(), now); !v.Allow || v.New {
				t.Fatalf("regular tofu peer during the flood (key %d): %+v", i, v)
			}
		}
		if i%10_000 == 5000 { // a new honest peer arrives
			h := newPeer(100+i, fmt.Sprintf("honest-%d", i))
			if v := mustAdmit(t, s, h.obs(), now); !v.Allow {
				t.Fatalf("new honest peer locked out after %d flood keys: %s", i, v.Reason)
			}
		}
		if i%25_000 == 0 {
			if v := mustAdmit(t, s, verified.obs(), now); !v.Allow || v.Record.State != StateVerified {
				t.Fatalf("verified peer after %d flood keys: %+v", i, v)
			}
		}
		if i%2000 == 0 {
			if fi, err := os.Stat(s.jpath); err == nil {
				maxJournal = max(maxJournal, fi.Size())
			}
		}
	}
	admitted := time.Since(start)
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	total := time.Since(start)
	t.Logf("%d fresh keys: admitted in %v (%.0f/s), written in %v", flood, admitted.Round(time.Millisecond), flood/admitted.Seconds(), total.Round(time.Millisecond))
	// Bounded: a loaded 2-core machine does this in seconds (about 3 s
	// unloaded); a regression to rewriting the store per key takes hours.
	if total > 3*time.Minute {
		t.Fatalf("the flood took %v", total)
	}
	recs, _ := s.List()
	if len(recs) > maxPeers+1 {
		t.Fatalf("%d records after the flood, want at most %d", len(recs), maxPeers+1)
	}
	snap, _ := os.Stat(s.path)
	jr, _ := os.Stat(s.jpath)
	t.Logf("records %d, trust.json %d octets, trust.journal %d octets (at most %d during the flood)", len(recs), snap.Size(), jr.Size(), maxJournal)
	if bound := compactRatio*max(compactMin, snap.Size()) + 2*snap.Size(); max(jr.Size(), maxJournal) > bound {
		t.Fatalf("journal of %d octets beside a trust.json of %d: not compacted", max(jr.Size(), maxJournal), snap.Size())
	}
	// After a restart (another process), the same: nobody is locked out.
	s2 := openStore(t, home, Options{MaxPeers: maxPeers})
	for _, p := range []testPeer{verified, regular, newPeer(999_999, "late")} {
		if v := mustAdmit(t, s2, p.obs(), t0.Add(time.Hour)); !v.Allow {
			t.Fatalf("%s after the flood and a restart: %s", p.name, v.Reason)
		}
	}
	if r, _, _ := s2.Lookup(verified.key); r.State != StateVerified {
		t.Fatalf("verified peer is %s after the flood", r.State)
	}
}

// BenchmarkAdmitNew is admissions of new keys per second with the store
// at a steady size (each new tofu record evicts the least recently seen),
// the writes to disk included (the Flush at the end is timed).
func BenchmarkAdmitNew(b *testing.B) {
	for _, n := range []int{100, 10_000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			s := openStore(b, b.TempDir(), Options{MaxPeers: n, MaxNewPerMinute: -1})
			for i := range n {
				mustAdmit(b, s, floodObs(i), t0)
			}
			if err := s.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			runtime.GC()
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			i := n
			for b.Loop() {
				if v, err := s.Admit(ctx, floodObs(i), t0); err != nil || !v.Allow {
					b.Fatal(v.Reason, err)
				}
				i++
			}
			if err := s.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			// CPU of the process (the store's goroutine included) per
			// admission: steadier than wall time on a shared machine.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(i-n), "cpu-ns/op")
			if recs, _ := s.List(); len(recs) != n {
				b.Fatalf("%d records, want %d", len(recs), n)
			}
		})
	}
}

// cpuTime is the CPU time of the process (user and system), in ns.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
