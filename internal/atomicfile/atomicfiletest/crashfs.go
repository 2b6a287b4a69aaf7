// Package atomicfiletest gives tests a file system that "crashes" at a
// chosen step, to show that atomicfile's callers never leave a partial file.
package atomicfiletest

import (
	"errors"
	"os"

	"github.com/zyre-go/zyre/internal/atomicfile"
)

// ErrCrash is what every step fails with from the crash on.
var ErrCrash = errors.New("injected crash")

// CrashFS is an atomicfile.FS that crashes at its At-th step (counting from
// 1; 0 never): that step and every later one fail without touching the disk,
// as if the process had died there. With Torn set, a crashing Write first
// writes half its data (a torn write). Steps records every step's name.
type CrashFS struct {
	At    int
	Torn  bool
	Steps []string
}

func (c *CrashFS) do(name string) error {
	c.Steps = append(c.Steps, name)
	if c.At > 0 && len(c.Steps) >= c.At {
		return ErrCrash
	}
	return nil
}

// CreateTemp implements atomicfile.FS.
func (c *CrashFS) CreateTemp(dir, pattern string) (atomicfile.File, error) {
	if err := c.do("create"); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return &crashFile{f: f, c: c}, nil
}

// Rename implements atomicfile.FS.
func (c *CrashFS) Rename(o, n string) error {
	if err := c.do("rename"); err != nil {
		return err
	}
	return os.Rename(o, n)
}

// Remove implements atomicfile.FS.
func (c *CrashFS) Remove(name string) error {
	if err := c.do("remove"); err != nil {
		return err
	}
	return os.Remove(name)
}

// SyncDir implements atomicfile.FS.
func (c *CrashFS) SyncDir(dir string) error {
	if err := c.do("syncdir"); err != nil {
		return err
	}
	return atomicfile.OSFS{}.SyncDir(dir)
}

type crashFile struct {
	f *os.File
	c *CrashFS
}

func (f *crashFile) Name() string { return f.f.Name() }

func (f *crashFile) Write(p []byte) (int, error) {
	if err := f.c.do("write"); err != nil {
		if f.c.Torn {
			n, _ := f.f.Write(p[:len(p)/2])
			return n, err
		}
		return 0, err
	}
	return f.f.Write(p)
}

func (f *crashFile) Chmod(m os.FileMode) error {
	if err := f.c.do("chmod"); err != nil {
		return err
	}
	return f.f.Chmod(m)
}

func (f *crashFile) Sync() error {
	if err := f.c.do("sync"); err != nil {
		return err
	}
	return f.f.Sync()
}

func (f *crashFile) Close() error {
	// The descriptor is always released (a dead process's are, too).
	err := f.c.do("close")
	cerr := f.f.Close()
	if err != nil {
		return err
	}
	return cerr
}
