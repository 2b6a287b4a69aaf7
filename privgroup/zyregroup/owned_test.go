package zyregroup

import (
	"bytes"
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/privgroup"
	"github.com/zyre-go/zyre/zre"
)

// The Writer hands each sealed record to the node with ShoutOwned, in a
// buffer of its own that nobody changes afterwards: the node keeps it
// without the copy of Node.Shout (issue 19).
func TestWriterGivesItsRecordsAway(t *testing.T) {
	f := newFakeGroup(t, 0xff)
	node := f.g.node.(*fakeNode)
	node.mu.Lock()
	shouts, owned := len(node.shouts), node.owned
	node.mu.Unlock()
	w, err := f.g.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 8*privgroup.DefaultChunkSize)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	node.mu.Lock()
	defer node.mu.Unlock()
	recs := node.shouts[shouts:]
	if len(recs) < 9 || node.owned-owned != len(recs) {
		t.Fatalf("%d records, %d of them by ShoutOwned; want at least 9, all", len(recs), node.owned-owned)
	}
	seen := map[*byte]bool{}
	for i, c := range recs {
		if seen[&c[0][:1][0]] {
			t.Fatalf("record %d shares its buffer with an earlier one", i)
		}
		seen[&c[0][:1][0]] = true
		if _, err := privgroup.ParseHeader(c[0]); err != nil {
			t.Fatalf("record %d changed after it was given away: %v", i, err)
		}
	}
}

// BenchmarkWriterChunk writes one chunk per op through a Group on a
// running node (no peer: what is measured is the Group's and the node's
// cost up to the peers' queues). With ShoutOwned the node no longer
// copies the chunk: compare allocs/op and ns/op with the Node.Shout path.
func BenchmarkWriterChunk(b *testing.B) {
	_, sk, err := curve.GenerateKeyPair(nil)
	if err != nil {
		b.Fatal(err)
	}
	n, err := zre.New(zre.Config{Name: "bench", Secure: &zre.SecureConfig{Secret: sk},
		Beacon: zre.BeaconConfig{Port: testBeaconPort(), Loopback: true}})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	if err := n.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	g, err := Attach(n, group, Options{Secret: sk, Trusted: func(uuid.UUID, curve.PublicKey) bool { return true },
		Crypto: privgroup.Options{Suite: privgroup.SuiteChaCha20SHA256}})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	w, err := g.NewWriter()
	if err != nil {
		b.Fatal(err)
	}
	chunk := bytes.Repeat([]byte{7}, privgroup.DefaultChunkSize)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := w.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
}
