package zyregroup

import (
	"bytes"
	"context"
	"io"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/zre"
)

// Open reads the node's events itself: a sender streams to the group and
// a receiver reads it with Open and ReadFirst only, no event pump of its
// own; the events the group does not consume reach other.
func TestOpenReadFirst(t *testing.T) {
	port := testBeaconPort()
	a := newNode(t, "alice", port, false)
	b := newNode(t, "bob", port, false)
	trusted := map[curve.PublicKey]bool{a.n.PublicKey(): true, b.n.PublicKey(): true}
	trust := func(_ uuid.UUID, k curve.PublicKey) bool { return trusted[k] }
	var others atomic.Int64
	gb, err := Open(b.n, "room", Options{Secret: b.sk, Trusted: trust}, func(zre.Event) { others.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer gb.Close()
	ga, err := Open(a.n, "room", Options{Secret: a.sk, Trusted: trust}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ga.Close()

	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	rd, err := gb.ReadFirst(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	// Bob holds alice's key: she gave it to him, he is her member.
	want := bytes.Repeat([]byte("the video of room 1207 "), 5000)
	w, err := ga.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(want); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	stop := context.AfterFunc(ctx, func() { rd.Close() })
	defer stop()
	got, err := io.ReadAll(rd)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %d octets (%v), want %d", len(got), err, len(want))
	}
	if others.Load() == 0 {
		t.Error("no event reached other (ENTER and JOIN of alice at least)")
	}
}
