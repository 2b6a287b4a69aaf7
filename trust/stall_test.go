package trust

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zyre-go/zyre/internal/atomicfile"
)

// writerEnv makes the test binary, run as a subprocess, act as the zyre
// CLI writing the store beside a running node (see TestMain).
const writerEnv = "ZYRE_TRUST_TEST_WRITER"

// writerProcess makes count user changes in the store at home (each
// written and synced before the next), compacting the store every 50:
// spec is "home:count".
func writerProcess(spec string) int {
	home, n, _ := strings.Cut(spec, ":")
	count, _ := strconv.Atoi(n)
	s, err := Open(home, Options{Logger: quietLogger()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := range count {
		p := newPeer(50_000+i, fmt.Sprintf("cli-%d", i))
		var err error
		switch i % 3 {
		case 0:
			_, err = s.MarkVerified(c, p.key, p.id, p.name, "code", nil)
		case 1:
			_, err = s.Revoke(c, p.key, "test")
		case 2:
			err = s.SetNotes(c, newPeer(50_000+i-2, "").key, "note "+strconv.Itoa(i))
		}
		if err == nil && i%50 == 49 {
			err = s.compactNow(c)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "change", i, err)
			return 1
		}
	}
	return 0
}

// readLatencies calls what a node's loop calls (Admit of a known peer and
// of a new one, Lookup, Version, Head) until done is closed, and returns
// the latency of each round.
func readLatencies(t *testing.T, s *Store, known testPeer, done <-chan struct{}) []time.Duration {
	t.Helper()
	var lat []time.Duration
	for i := 0; ; i++ {
		select {
		case <-done:
			return lat
		default:
		}
		start := time.Now()
		if v, err := s.Admit(ctx, known.obs(), t0); err != nil || !v.Allow {
			t.Fatalf("admit known: %v %v", v.Reason, err)
		}
		if v, err := s.Admit(ctx, floodObs(i), t0); err != nil || !v.Allow {
			t.Fatalf("admit new: %v %v", v.Reason, err)
		}
		s.Lookup(known.key)
		s.Version()
		s.Head(known.signPub())
		lat = append(lat, time.Since(start))
		if i%8 == 7 {
			time.Sleep(200 * time.Microsecond) // a node's loop does other work too
		}
	}
}

func summary(lat []time.Duration) (p50, p99, maxLat time.Duration) {
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
}

// TestReadsDoNotWaitForTheLock holds the store's file lock (as a CLI
// writing would, here for 3 s) while a "node" keeps reading and admitting
// new peers: its calls do not wait for the lock (before the store lived in
// memory, each new peer waited for it). The bound is generous: a call
// that waited would take the 3 s.
func TestReadsDoNotWaitForTheLock(t *testing.T) {
	home := t.TempDir()
	s := openStore(t, home, Options{WriteDelay: 10 * time.Millisecond, PollInterval: 10 * time.Millisecond})
	known := newPeer(1, "known")
	mustVerify(t, s, known)
	unlock, err := atomicfile.Lock(ctx, s.path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	time.AfterFunc(3*time.Second, func() { unlock(); close(done) })
	lat := readLatencies(t, s, known, done)
	p50, p99, maxLat := summary(lat)
	t.Logf("%d rounds under a held lock: p50 %v, p99 %v, max %v", len(lat), p50, p99, maxLat)
	if maxLat > time.Second {
		t.Fatalf("a call waited %v while another process held the lock", maxLat)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestWriterInAnotherProcess has another process make 300 changes
// (synced each, with compactions) while this one reads and admits as a
// node does, and picks up every change. It reports the latency of the
// node's calls in its log (go test -v -run WriterInAnotherProcess); the
// asserted bound is generous, since a loaded 2-core machine deschedules a
// goroutine for tens of ms whatever the store does.
func TestWriterInAnotherProcess(t *testing.T) {
	lat, s := readWhileWriting(t, 300)
	p50, p99, maxLat := summary(lat)
	t.Logf("%d rounds while another process wrote: p50 %v, p99 %v, max %v", len(lat), p50, p99, maxLat)
	if maxLat > time.Second {
		t.Fatalf("a call took %v while another process wrote", maxLat)
	}
	// Every change of the other process is here.
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		r, ok, _ := s.Lookup(newPeer(50_000+i, "").key)
		want := []State{StateVerified, StateRevoked, StateTOFU}[i%3]
		if i%3 == 2 {
			ok, want = true, r.State // not a record of its own
		}
		if !ok || r.State != want {
			t.Fatalf("change %d of the other process: %+v %v", i, r, ok)
		}
	}
}

func readWhileWriting(t *testing.T, changes int) ([]time.Duration, *Store) {
	home := t.TempDir()
	s := openStore(t, home, Options{PollInterval: 10 * time.Millisecond, WriteDelay: 10 * time.Millisecond})
	known := newPeer(1, "known")
	mustVerify(t, s, known)
	for i := range 2000 { // a store of some size, so reloads cost something
		mustAdmit(t, s, floodObs(1_000_000+i), t0)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s:%d", writerEnv, home, changes))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var werr error
	go func() { werr = cmd.Wait(); close(done) }()
	lat := readLatencies(t, s, known, done)
	if werr != nil {
		t.Fatalf("writer: %v: %s", werr, stderr.String())
	}
	return lat, s
}
