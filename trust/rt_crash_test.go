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
