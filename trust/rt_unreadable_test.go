package trust

import (
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// TestUnreadableStoreReadOncePerInterval: a store that does not parse is
// not read again by every call (the node's loop calls Admit for every
// connection: a 64 MiB corrupt file re-read each time stalls it); it is
// read again at most once per PollInterval.
func TestUnreadableStoreReadOncePerInterval(t *testing.T) {
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, FileName), []byte("{\"version\": 2, oops"), 0o600); err != nil {
		t.Fatal(err)
	}
	var reads atomic.Int64
	readHook = func(string) { reads.Add(1) }
	defer func() { readHook = nil }()
	s := openStore(t, home, Options{PollInterval: time.Hour})
	p := newPeer(1, "alice")
	for i := 0; i < 50; i++ {
		if _, err := s.Admit(ctx, p.obs(), t0); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Admit = %v, want ErrCorrupt", err)
		}
	}
	if n := reads.Load(); n > 2 {
		t.Fatalf("the corrupt store was read %d times by 50 calls", n)
	}
}
