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
	s := openStore(t, home, Options{PollInterval: time.Hour})
	s.onRead = func(string) { reads.Add(1) }
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

// TestTornTailReadOnce: a torn tail (a crash's, or garbage) is not read
// again by every look for other processes' changes while it stays as it
// is; an append after it is read.
func TestTornTailReadOnce(t *testing.T) {
	home := t.TempDir()
	s := openStore(t, home, Options{})
	a, b := newPeer(1, "alice"), newPeer(2, "bob")
	mustVerify(t, s, a)
	f, err := os.OpenFile(filepath.Join(home, JournalName), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, 1<<20)); err != nil { // no newline: torn
		t.Fatal(err)
	}
	f.Close()
	var reads atomic.Int64
	s.wmu.Lock() // the store's goroutine reads onRead under wmu
	s.onRead = func(string) { reads.Add(1) }
	s.wmu.Unlock()
	for i := 0; i < 5; i++ {
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := reads.Load(); n > 1 {
		t.Fatalf("the torn tail was read %d times by 5 looks", n)
	}
	// Another process writes (cutting the tail): this one reads it.
	mustVerify(t, openStore(t, home, Options{}), b)
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Lookup(b.key); !ok {
		t.Fatal("the other process's write after the torn tail was not read")
	}
}
