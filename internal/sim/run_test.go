package sim

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	if _, err := Run(context.Background(), Options{Nodes: 1}); err == nil {
		t.Fatal("Run with 1 node: no error")
	}
	r, err := Run(context.Background(), Options{Nodes: 5, Shouts: 3, Senders: 2, Timeout: testTimeout})
	if err != nil {
		t.Fatal(err)
	}
	if r.Nodes != 5 || r.Links != 20 || r.Shouts != 6 || r.Deliveries != 6*4 {
		t.Fatalf("result %+v", r)
	}
	if r.MeshTime <= 0 || r.ShoutTime <= 0 || r.HeapMesh == 0 || r.Goroutines == 0 {
		t.Fatalf("figures missing: %+v", r)
	}
	// HELLO both ways for every pair, then the shouts.
	if r.Network.Messages != 20+24 || r.Network.Refused != 0 || r.Network.Lost != 0 {
		t.Fatalf("network %+v", r.Network)
	}
	var out bytes.Buffer
	r.Write(&out)
	for _, want := range []string{"nodes 5, links 20", "every node saw 4 ENTER", "shout fan-out: 6 shouts, 24 deliveries"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("Write output lacks %q:\n%s", want, out.String())
		}
	}
	// No shouts.
	r, err = Run(context.Background(), Options{Nodes: 3, Shouts: -1, Timeout: testTimeout})
	if err != nil || r.Shouts != 0 || r.Deliveries != 0 {
		t.Fatalf("no shouts: %+v, %v", r, err)
	}
}

// TestRunSecure: 20 secure nodes (a key pair each) reach full mesh on the
// in-memory network and every shout arrives, with nothing refused.
func TestRunSecure(t *testing.T) {
	r, err := Run(context.Background(), Options{Nodes: 20, Shouts: 1, Secure: true, Timeout: testTimeout})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Secure || r.Shouts != 20 || r.Deliveries != 20*19 {
		t.Fatalf("result %+v", r)
	}
	if r.Refused != 0 || r.Exits != 0 || r.SequenceGaps != 0 || r.EventsDropped != 0 || r.Network.Lost != 0 {
		t.Fatalf("refused %d, exits %d, gaps %d, dropped %d, lost %d: want none", r.Refused, r.Exits, r.SequenceGaps, r.EventsDropped, r.Network.Lost)
	}
	var out bytes.Buffer
	r.Write(&out)
	if !strings.Contains(out.String(), "links 380 (in memory, secure)") {
		t.Errorf("Write output does not say secure:\n%s", out.String())
	}
}
