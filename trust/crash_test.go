package trust

import (
	"bytes"
	"errors"
	"testing"

	"github.com/zyre-go/zyre/internal/atomicfile/atomicfiletest"
)

// crashAfterLine is a fileOps whose appends crash after writing their
// first line whole (the rest never reaches the disk).
type crashAfterLine struct{ osFileOps }

func (c crashAfterLine) append(path string, off int64, data []byte) error {
	n := bytes.IndexByte(data, '\n') + 1
	if err := c.osFileOps.append(path, off, data[:n]); err != nil {
		return err
	}
	return atomicfiletest.ErrCrash
}

// TestSignIsAllOrNothingOnDisk: a crash in the middle of writing a signed
// revocation leaves both the statement and the revocation on disk, or
// neither: never a statement in our log (which the node would shout)
// while the key is not revoked here — nor, for a revocation from the
// network, a statement kept (a replay is refused later) whose effect was
// lost.
func TestSignIsAllOrNothingOnDisk(t *testing.T) {
	me, alice, phone := newPeer(2, "me"), newPeer(1, "alice"), newPeer(4, "phone")
	check := func(t *testing.T, home string, signer testPeer) {
		t.Helper()
		s2 := openStore(t, home, Options{})
		seq, _, err := s2.Head(signer.signPub())
		if err != nil {
			t.Fatal(err)
		}
		r, _, _ := s2.Lookup(phone.key)
		if revoked := r.State == StateRevoked; revoked != (seq == 1) {
			t.Fatalf("after the crash: statement #%d in the log, phone %s", seq, r.State)
		}
	}
	t.Run("sign", func(t *testing.T) {
		home := t.TempDir()
		s := openStore(t, home, Options{})
		mustVerify(t, s, phone)
		s.fs = crashAfterLine{}
		if _, err := s.Sign(ctx, me, &Revoke{Key: phone.key, Reason: "lost"}); !errors.Is(err, atomicfiletest.ErrCrash) {
			t.Fatalf("Sign = %v, want the crash", err)
		}
		check(t, home, me)
	})
	t.Run("apply", func(t *testing.T) {
		home := t.TempDir()
		s := openStore(t, home, Options{})
		mustVerify(t, s, alice)
		mustVerify(t, s, phone)
		s.fs = crashAfterLine{}
		mustApply(t, s, signed(t, newTestStore(t), alice, &Revoke{Key: phone.key, Reason: "lost"}))
		if err := s.Flush(ctx); !errors.Is(err, atomicfiletest.ErrCrash) {
			t.Fatalf("Flush = %v, want the crash", err)
		}
		check(t, home, alice)
	})
}

// crashAt is a fileOps whose appends write only their first n octets.
type crashAt struct {
	osFileOps
	n int
}

func (c crashAt) append(path string, off int64, data []byte) error {
	if err := c.osFileOps.append(path, off, data[:min(c.n, len(data))]); err != nil {
		return err
	}
	return atomicfiletest.ErrCrash
}

// TestCrashAtEveryOctet cuts the append of a signed revocation after every
// third octet (and before the last): a restarted process finds the revocation whole or not at all,
// and a write after it (which cuts the torn tail) leaves a store that
// reads back whole.
func TestCrashAtEveryOctet(t *testing.T) {
	me, phone, carol := newPeer(2, "me"), newPeer(4, "phone"), newPeer(3, "carol")
	// The size of the append: made once without a crash.
	probe := openStore(t, t.TempDir(), Options{})
	mustVerify(t, probe, phone)
	before := probe.disk.jOff
	if _, err := probe.Sign(ctx, me, &Revoke{Key: phone.key, Reason: "lost"}); err != nil {
		t.Fatal(err)
	}
	size := int(probe.disk.jOff - before)
	for n := 0; n < size; n = min(n+3, max(n+1, size-1)) { // every third octet, and the last
		home := t.TempDir()
		s := openStore(t, home, Options{})
		mustVerify(t, s, phone)
		s.fs = crashAt{n: n}
		if _, err := s.Sign(ctx, me, &Revoke{Key: phone.key, Reason: "lost"}); !errors.Is(err, atomicfiletest.ErrCrash) {
			t.Fatalf("cut at %d of %d: Sign = %v, want the crash", n, size, err)
		}
		s2 := openStore(t, home, Options{})
		seq, _, err := s2.Head(me.signPub())
		if err != nil {
			t.Fatalf("cut at %d of %d: %v", n, size, err)
		}
		r, _, _ := s2.Lookup(phone.key)
		if seq != 0 || r.State != StateVerified {
			t.Fatalf("cut at %d of %d: statement #%d, phone %s: a partial write counts", n, size, seq, r.State)
		}
		if _, err := s2.MarkVerified(ctx, carol.key, carol.id, "carol", "qr", nil); err != nil {
			t.Fatalf("cut at %d of %d: write after the crash: %v", n, size, err)
		}
		s3 := openStore(t, home, Options{})
		if _, ok, err := s3.Lookup(carol.key); !ok || err != nil {
			t.Fatalf("cut at %d of %d: after the next write: %v", n, size, err)
		}
	}
}
