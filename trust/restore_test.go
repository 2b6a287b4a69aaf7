package trust

import (
	"errors"
	"testing"
	"time"
)

// failAppend is a fileOps whose appends fail (a full disk) while on.
type failAppend struct {
	osFileOps
	on     *bool
	during func() // runs inside a failing append (while the write is under way)
}

var errDiskFull = errors.New("disk full")

func (f failAppend) append(path string, off int64, data []byte) error {
	if *f.on {
		if f.during != nil {
			f.during()
		}
		return errDiskFull
	}
	return f.osFileOps.append(path, off, data)
}

// TestFailedWriteKeepsLogDrop: a stranger's log on disk is dropped (its
// record evicted), the write of that fails, and the stranger comes back
// with a different statement #1 before the next write: the drop must be
// written before the new log, or the journal forks the log on disk and
// the store is unreadable.
func TestFailedWriteKeepsLogDrop(t *testing.T) {
	home := t.TempDir()
	on := false
	s := openStore(t, home, Options{MaxPeers: 2})
	s.fs = failAppend{on: &on}
	p := newPeer(100, "stranger")
	knowWithBinding(t, s, p)
	mustApply(t, s, sign(t, p, 1, nil, t0, &Vouch{Key: newPeer(9, "x").key}).Raw)
	onDisk(t, s)
	for i := 0; i < 4; i++ { // evicts the stranger, and its log
		mustAdmit(t, s, newPeer(200+i, "").obs(), t0.Add(time.Duration(i+1)*time.Minute))
	}
	if seq, _, _ := s.Head(p.signPub()); seq != 0 {
		t.Fatalf("stranger's log not dropped with its record: head #%d", seq)
	}
	on = true
	s.fs = failAppend{on: &on, during: func() {
		on = false
		o := p.obs()
		b, _ := NewBinding(p.sign, p.key, t0)
		o.Binding = b
		mustAdmit(t, s, o, t0.Add(time.Hour))
		mustApply(t, s, sign(t, p, 1, nil, t0.Add(time.Hour), &Revoke{Key: newPeer(9, "x").key}).Raw)
	}}
	if err := s.Flush(ctx); err != nil && !errors.Is(err, errDiskFull) {
		t.Fatalf("Flush = %v", err)
	}
	onDisk(t, s)
	if _, err := openStore(t, home, Options{MaxPeers: 2}).List(); err != nil {
		t.Fatalf("store unreadable after the failed write: %v", err)
	}
}
