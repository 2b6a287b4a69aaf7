package atomicfile_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zyre-go/zyre/internal/atomicfile"
	"github.com/zyre-go/zyre/internal/atomicfile/atomicfiletest"
)

func TestWriteNewFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := atomicfile.Write(p, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil || string(got) != "hello" {
		t.Fatalf("read %q, %v", got, err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if err := atomicfile.Write(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, _ = os.Stat(p)
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode after rewrite %v, want 0644", fi.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory has %d entries, want only the file", len(ents))
	}
}

// TestWriteCrashAtEveryStep crashes Write at each of its steps (after the
// temp file is created, after the write, after the fsync, before and after
// the rename, ...) and checks the target holds the old or the new contents,
// whole, and that a later Write repairs everything.
func TestWriteCrashAtEveryStep(t *testing.T) {
	old := []byte(strings.Repeat("old contents\n", 100))
	neu := []byte(strings.Repeat("NEW CONTENTS!\n", 120))
	// Count the steps of a successful write.
	var probe atomicfiletest.CrashFS
	if err := atomicfile.WriteWith(filepath.Join(t.TempDir(), "f"), neu, 0o600, atomicfile.Options{FS: &probe}); err != nil {
		t.Fatal(err)
	}
	want := "create chmod write sync close rename syncdir"
	if got := strings.Join(probe.Steps, " "); got != want {
		t.Fatalf("steps %q, want %q", got, want)
	}
	for _, partial := range []bool{false, true} {
		for n := 1; n <= len(probe.Steps); n++ {
			t.Run(fmt.Sprintf("crash-at-%s-partial=%v", probe.Steps[n-1], partial), func(t *testing.T) {
				dir := t.TempDir()
				p := filepath.Join(dir, "key")
				if err := atomicfile.Write(p, old, 0o600); err != nil {
					t.Fatal(err)
				}
				c := &atomicfiletest.CrashFS{At: n, Torn: partial}
				err := atomicfile.WriteWith(p, neu, 0o600, atomicfile.Options{FS: c})
				if !errors.Is(err, atomicfiletest.ErrCrash) {
					t.Fatalf("WriteWith = %v, want the injected crash", err)
				}
				got, rerr := os.ReadFile(p)
				if rerr != nil {
					t.Fatalf("after crash the file is gone: %v", rerr)
				}
				renamed := n > 6 // step 6 is the rename: it ran only if the crash came later
				switch {
				case bytes.Equal(got, old) && !renamed:
				case bytes.Equal(got, neu) && renamed:
				default:
					t.Fatalf("after crash at step %d the file has %d bytes, neither old (%d) nor new (%d) as expected", n, len(got), len(old), len(neu))
				}
				// A later successful write works despite leftovers.
				if err := atomicfile.Write(p, neu, 0o600); err != nil {
					t.Fatal(err)
				}
				if got, _ := os.ReadFile(p); !bytes.Equal(got, neu) {
					t.Fatal("rewrite after crash did not take")
				}
			})
		}
	}
}

// TestWriteErrorCleansUp makes one step fail with an ordinary error (not a
// crash): Write must clean up its temporary file and leave the target
// untouched.
func TestWriteErrorCleansUp(t *testing.T) {
	for _, step := range []string{"chmod", "write", "sync", "close", "rename"} {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "f")
			if err := atomicfile.Write(p, []byte("old"), 0o600); err != nil {
				t.Fatal(err)
			}
			fs := &stepFailFS{fail: step}
			err := atomicfile.WriteWith(p, []byte("new"), 0o600, atomicfile.Options{FS: fs})
			if err == nil || !strings.Contains(err.Error(), p) {
				t.Fatalf("error %v should name the file", err)
			}
			if got, _ := os.ReadFile(p); string(got) != "old" {
				t.Fatalf("target changed to %q", got)
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != 1 {
				t.Fatalf("temporary file left behind: %d entries", len(ents))
			}
		})
	}
}

// stepFailFS fails the named step once with an I/O error; cleanup works.
type stepFailFS struct {
	fail string
}

var errIO = errors.New("injected I/O error")

func (s *stepFailFS) CreateTemp(dir, pattern string) (atomicfile.File, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return &stepFailFile{File: f, fail: s.fail}, nil
}

func (s *stepFailFS) Rename(o, n string) error {
	if s.fail == "rename" {
		return errIO
	}
	return os.Rename(o, n)
}
func (s *stepFailFS) Remove(name string) error { return os.Remove(name) }
func (s *stepFailFS) SyncDir(dir string) error { return atomicfile.OSFS{}.SyncDir(dir) }

type stepFailFile struct {
	*os.File
	fail string
}

func (f *stepFailFile) Chmod(m os.FileMode) error {
	if f.fail == "chmod" {
		return errIO
	}
	return f.File.Chmod(m)
}

func (f *stepFailFile) Write(p []byte) (int, error) {
	if f.fail == "write" {
		n, _ := f.File.Write(p[:1])
		return n, errIO
	}
	return f.File.Write(p)
}

func (f *stepFailFile) Sync() error {
	if f.fail == "sync" {
		return errIO
	}
	return f.File.Sync()
}

func (f *stepFailFile) Close() error {
	err := f.File.Close()
	if f.fail == "close" {
		return errIO
	}
	return err
}

// TestLockNoLostUpdate runs two goroutines that each increment a counter
// file many times under the lock; no increment may be lost.
func TestLockNoLostUpdate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "counter")
	if err := atomicfile.Write(p, []byte("0"), 0o600); err != nil {
		t.Fatal(err)
	}
	const workers, rounds = 2, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				if err := increment(p); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	if string(got) != strconv.Itoa(workers*rounds) {
		t.Fatalf("counter = %s, want %d", got, workers*rounds)
	}
}

func increment(p string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	unlock, err := atomicfile.Lock(ctx, p)
	if err != nil {
		return err
	}
	defer unlock()
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(string(b))
	if err != nil {
		return err
	}
	return atomicfile.Write(p, []byte(strconv.Itoa(n+1)), 0o600)
}

func TestLockHonoursContext(t *testing.T) {
	p := filepath.Join(t.TempDir(), "store")
	unlock, err := atomicfile.Lock(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err = atomicfile.Lock(ctx, p)
	if !errors.Is(err, atomicfile.ErrLocked) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock while held = %v, want ErrLocked and DeadlineExceeded", err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if err := unlock(); err != nil {
		t.Fatalf("second unlock: %v", err)
	}
	unlock2, err := atomicfile.Lock(context.Background(), p)
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	unlock2()
	fi, err := os.Stat(p + ".lock")
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("lock file: %v %v", fi, err)
	}
}

func ExampleWrite() {
	dir, _ := os.MkdirTemp("", "atomicfile")
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "state")

	unlock, err := atomicfile.Lock(context.Background(), p)
	if err != nil {
		panic(err)
	}
	defer unlock()
	if err := atomicfile.Write(p, []byte("v1\n"), 0o600); err != nil {
		panic(err)
	}
	b, _ := os.ReadFile(p)
	fmt.Print(string(b))
	// Output: v1
}

// TestLockAcrossProcesses runs two copies of the test binary that each
// increment a counter file under the lock; no increment may be lost.
func TestLockAcrossProcesses(t *testing.T) {
	if p := os.Getenv("ATOMICFILE_TEST_INCREMENT"); p != "" {
		// Child: increment the counter file p, rounds times.
		for i := 0; i < 30; i++ {
			if err := increment(p); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
		os.Exit(0)
	}
	p := filepath.Join(t.TempDir(), "counter")
	if err := atomicfile.Write(p, []byte("0"), 0o600); err != nil {
		t.Fatal(err)
	}
	var cmds []*exec.Cmd
	for i := 0; i < 2; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestLockAcrossProcesses$")
		cmd.Env = append(os.Environ(), "ATOMICFILE_TEST_INCREMENT="+p)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("child: %v", err)
		}
	}
	got, _ := os.ReadFile(p)
	if string(got) != "60" {
		t.Fatalf("counter = %s, want 60", got)
	}
}
