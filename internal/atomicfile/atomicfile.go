// Package atomicfile replaces small files atomically and serialises
// read-modify-write cycles between processes with an advisory lock. It owns
// the crash-safety of the key and trust stores: after a crash at any point a
// file written with Write holds either its old or its new contents, whole.
//
// Write follows the usual recipe: create a temporary file in the same
// directory, write, fsync, close, rename over the target, fsync the
// directory. The file-system steps go through the FS interface so tests can
// inject failures (or "crash") between any two of them.
//
// Lock takes an exclusive flock(2) on PATH.lock, waiting until it is free or
// the context is done. The lock is advisory: it protects against other
// cooperating zyre processes (and goroutines, since every Lock call opens its
// own file description), not against other programs. The .lock file is
// never removed: removing it would let two processes hold "the" lock on two
// different files.
package atomicfile

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// File is the part of *os.File that Write uses.
type File interface {
	Name() string
	Write(p []byte) (int, error)
	Chmod(mode os.FileMode) error
	Sync() error
	Close() error
}

// FS is the set of file-system steps Write takes, in this order:
// CreateTemp, File.Chmod, File.Write, File.Sync, File.Close, Rename, SyncDir;
// Remove only cleans up the temporary file after a failure. Tests implement
// it to inject failures; OSFS is the real one.
type FS interface {
	CreateTemp(dir, pattern string) (File, error)
	Rename(oldpath, newpath string) error
	Remove(name string) error
	SyncDir(dir string) error
}

// OSFS is the operating system's file system.
type OSFS struct{}

// CreateTemp calls os.CreateTemp.
func (OSFS) CreateTemp(dir, pattern string) (File, error) { return os.CreateTemp(dir, pattern) }

// Rename calls os.Rename.
func (OSFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// Remove calls os.Remove.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// SyncDir opens the directory and fsyncs it, so a rename inside it is durable.
func (OSFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

var _ FS = OSFS{}

// Options tune WriteWith. The zero value uses the real file system.
type Options struct {
	// FS performs the file-system steps; nil means OSFS.
	FS FS
}

// Write atomically replaces (or creates) path with data and mode perm,
// using the real file system. See WriteWith.
func Write(path string, data []byte, perm os.FileMode) error {
	return WriteWith(path, data, perm, Options{})
}

// WriteWith atomically replaces (or creates) path with data and mode perm.
// A failure before the rename leaves path untouched and removes the
// temporary file (best effort; a leftover ".NAME.tmp*" file is harmless and
// is never read). A failure of the final directory fsync is returned, but by
// then path already holds the new contents; they may not be durable yet.
// Temporary files are named ".BASE.tmp*" in path's directory.
func WriteWith(path string, data []byte, perm os.FileMode, opts Options) (err error) {
	fsys := opts.FS
	if fsys == nil {
		fsys = OSFS{}
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := fsys.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("atomicfile: write %s: failed to create temporary file: %w", path, err)
	}
	tmp := f.Name()
	closed, renamed := false, false
	defer func() {
		if err != nil && !renamed {
			if !closed {
				f.Close()
			}
			fsys.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("atomicfile: write %s: failed to set mode: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("atomicfile: write %s: failed to write: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("atomicfile: write %s: failed to sync: %w", path, err)
	}
	closed = true
	if err := f.Close(); err != nil {
		return fmt.Errorf("atomicfile: write %s: failed to close: %w", path, err)
	}
	if err := fsys.Rename(tmp, path); err != nil {
		return fmt.Errorf("atomicfile: write %s: failed to rename: %w", path, err)
	}
	renamed = true
	if err := fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("atomicfile: write %s: replaced, but failed to sync directory: %w", path, err)
	}
	return nil
}

// ErrLocked is wrapped by the error Lock returns when the context ends while
// another holder still has the lock.
var ErrLocked = errors.New("atomicfile: locked by another process")

// Lock takes an exclusive advisory lock on path + ".lock" (created with mode
// 0600 if needed) and returns the function that releases it. It waits until
// the lock is free or ctx is done; then the error wraps both ErrLocked and
// ctx.Err(). Each call opens its own file description, so Lock also
// excludes other goroutines of the same process. unlock is safe to call
// more than once.
func Lock(ctx context.Context, path string) (unlock func() error, err error) {
	name := path + ".lock"
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("atomicfile: lock %s: %w", name, err)
	}
	fd := int(f.Fd())
	delay := time.Millisecond
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("atomicfile: lock %s: %w", name, &fs.PathError{Op: "flock", Path: name, Err: err})
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("atomicfile: lock %s: %w: %w", name, ErrLocked, ctx.Err())
		case <-t.C:
		}
		if delay < 50*time.Millisecond {
			delay *= 2
		}
	}
	done := false
	return func() error {
		if done {
			return nil
		}
		done = true
		// Closing the descriptor releases the flock.
		if err := f.Close(); err != nil {
			return fmt.Errorf("atomicfile: unlock %s: %w", name, err)
		}
		return nil
	}, nil
}
