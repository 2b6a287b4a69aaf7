package trust

import (
	"testing"
	"time"
)

// BenchmarkAdmitKnown is the hot path: a known peer connects again.
func BenchmarkAdmitKnown(b *testing.B) {
	s := newTestStore(b)
	var peers []testPeer
	for i := range 100 {
		p := newPeer(i, "peer")
		mustAdmit(b, s, p.obs(), t0)
		peers = append(peers, p)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		v, err := s.Admit(ctx, peers[i%len(peers)].obs(), t0.Add(time.Second))
		if err != nil || !v.Allow {
			b.Fatal(v.Reason, err)
		}
	}
}

// BenchmarkApply measures verifying and storing a statement.
func BenchmarkApply(b *testing.B) {
	s := openStore(b, b.TempDir(), Options{MaxStatementsPerSigner: 1 << 30})
	bob := newPeer(2, "bob")
	mustVerify(b, s, bob)
	var prev *Statement
	var raws [][]byte
	for i := range 200 {
		prev = sign(b, bob, uint64(i+1), prev, t0, &Vouch{Key: newPeer(10, "k").key})
		raws = append(raws, prev.Raw)
	}
	b.ResetTimer()
	n := 0
	for b.Loop() {
		if n == len(raws) {
			b.StopTimer()
			s = openStore(b, b.TempDir(), Options{})
			mustVerify(b, s, bob)
			n = 0
			b.StartTimer()
		}
		if _, err := s.Apply(ctx, raws[n]); err != nil {
			b.Fatal(err)
		}
		n++
	}
}
