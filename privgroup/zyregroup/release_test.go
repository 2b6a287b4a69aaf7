package zyregroup

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/zyre-go/zyre/privgroup"
	"github.com/zyre-go/zyre/zre"
)

// The Group hands the content of the records it received back to the node
// (zre's Shout.Release) only once it is done with it: records waiting in a
// sender's queue keep their buffers while the node reads later messages
// (more records, and plain whispers that the application releases) into
// the buffers released before, and the stream then reads back intact —
// a record released too early would be overwritten and fail to open
// (Dropped, a gap). Records the Reader opened are released (most of them:
// the last one is held until the next read). Under both suites, chunks
// from 1 KiB up (the node pools frames of 1 KiB to 4 MiB).
func TestReleaseAfterOpen(t *testing.T) {
	for _, c := range []struct {
		name  string
		chunk int
		suite privgroup.Suite
	}{
		{"1KiB", 1 << 10, privgroup.SuiteChaCha20SHA256},
		{"20KiB", 20 << 10, privgroup.SuiteAESGCMBLAKE3},
	} {
		t.Run(c.name, func(t *testing.T) {
			port := testBeaconPort()
			a, b := newNode(t, "alice", port, false), newNode(t, "bob", port, false)
			trusted := trustKeys(a, b)
			a.attach(group, Options{Trusted: trusted, ChunkSize: c.chunk, Crypto: privgroup.Options{Suite: c.suite}})
			b.attach(group, Options{Trusted: trusted})
			b.awaitSender(a)
			w, err := a.g.NewWriter()
			if err != nil {
				t.Fatal(err)
			}
			const chunks = 150
			data := randomBytes(chunks*c.chunk, 19)
			ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
			defer cancel()
			// Phase 1: the first half is queued at bob, no Reader yet.
			half := len(data) / 2
			if _, err := w.Write(data[:half]); err != nil {
				t.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			queued := b.g.Stats().Records
			waitFor(t, "the first half queued", func() bool {
				st := b.g.Stats()
				queued = st.Records
				return st.Records >= chunks/2
			})
			// Plain whispers of the chunk size, released by bob's
			// application: the node reads later messages into their buffers.
			for i := range 40 {
				if err := a.n.WhisperOwned(ctx, b.n.UUID(), bytes.Repeat([]byte{byte(i)}, c.chunk)); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 40 {
				e := b.await("a plain whisper", func(e zre.Event) bool { _, ok := e.(*zre.Whisper); return ok })
				wh := e.(*zre.Whisper)
				if len(wh.Content) != 1 || len(wh.Content[0]) != c.chunk || wh.Content[0][0] != byte(i) {
					t.Fatalf("plain whisper %d: wrong content", i)
				}
				wh.Release()
			}
			rd, err := b.g.NewReader(a.n.UUID())
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			// Phase 2: the second half is sent while bob reads.
			go func() {
				if _, err := w.Write(data[half:]); err != nil {
					t.Errorf("write: %v", err)
				}
				if err := w.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			}()
			got := make([]byte, 0, len(data))
			buf := make([]byte, 7000)
			for {
				n, err := rd.Read(buf)
				got = append(got, buf[:n]...)
				if err == io.EOF {
					break
				}
				var gap *privgroup.GapError
				if errors.As(err, &gap) {
					t.Fatalf("gap after %d octets (%d records queued before reading): %v; %d dropped", len(got), queued, err, rd.Dropped())
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("read %d octets, not the %d written (or changed); %d records dropped", len(got), len(data), rd.Dropped())
			}
			if rd.Dropped() != 0 {
				t.Fatalf("%d records dropped", rd.Dropped())
			}
			if r, st := b.g.released.Load(), b.g.Stats(); r < st.Records-1 {
				t.Fatalf("%d events released, want at least %d of the %d records read", r, st.Records-1, st.Records)
			}
		})
	}
}
