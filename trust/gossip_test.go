package trust

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// TestGossipConverges runs the exchange between two stores the way two
// nodes would over zyre-trust: bob's statements reach alice although she
// hears only the last one, and a HEAD alone is enough to pull them.
func TestGossipConverges(t *testing.T) {
	b, c, d := newPeer(2, "bob"), newPeer(3, "carol"), newPeer(4, "dave")
	for _, start := range []string{"statement", "head"} {
		t.Run(start, func(t *testing.T) {
			bob, alice := newTestStore(t), newTestStore(t)
			mustVerify(t, alice, b)
			var last *Statement
			for _, body := range []Body{&Vouch{Key: c.key}, &Vouch{Key: d.key}, &Revoke{Key: d.key, Reason: "left"}} {
				var err error
				if last, err = bob.Sign(ctx, b, body); err != nil {
					t.Fatal(err)
				}
			}
			var first []byte
			if start == "statement" {
				first = StatementMessage(last.Raw)
			} else {
				var err error
				if first, err = bob.HeadMessage(b.signPub()); err != nil {
					t.Fatal(err)
				}
			}
			// Deliver messages back and forth until nobody has anything to say.
			type msg struct {
				to  *Store
				raw []byte
			}
			queue := []msg{{alice, first}}
			for rounds := 0; len(queue) > 0; rounds++ {
				if rounds > 20 {
					t.Fatal("exchange does not converge")
				}
				m := queue[0]
				queue = queue[1:]
				replies, _, err := m.to.Handle(ctx, m.raw)
				if err != nil {
					t.Fatalf("Handle: %v", err)
				}
				back := bob
				if m.to == bob {
					back = alice
				}
				for _, r := range replies {
					queue = append(queue, msg{back, r})
				}
			}
			seq, h, _ := alice.Head(b.signPub())
			if seq != 3 || h != last.Hash() {
				t.Fatalf("alice has bob's log up to #%d", seq)
			}
			if v := mustAdmit(t, alice, d.obs(), t0); v.Allow {
				t.Fatal("dave admitted after bob's revocation reached alice")
			}
			// A replay is dropped silently; a fork is reported.
			if r, a, err := alice.Handle(ctx, StatementMessage(last.Raw)); err != nil || r != nil || a != nil {
				t.Fatalf("replay: %v %v %v", r, a, err)
			}
			fork := sign(t, b, 3, mustStmt(t, alice, b, 2), t0.Add(time.Hour), &Vouch{Key: d.key})
			head := (&Message{Type: MsgHead, Signer: b.signPub(), Seq: 3, Hash: fork.Hash()}).AppendMarshal(nil)
			if _, _, err := alice.Handle(ctx, head); !errors.Is(err, ErrFork) {
				t.Fatalf("forked head = %v", err)
			}
		})
	}
}

func TestParseMessage(t *testing.T) {
	b := newPeer(2, "bob")
	for _, m := range []Message{
		{Type: MsgStatement, Statement: []byte("x")},
		{Type: MsgHead, Signer: b.signPub(), Seq: 7, Hash: [32]byte{1, 2}},
		{Type: MsgWant, Signer: b.signPub(), Seq: 3, Max: 10},
	} {
		raw := m.AppendMarshal(nil)
		got, err := ParseMessage(raw)
		if err != nil || !bytes.Equal(got.AppendMarshal(nil), raw) {
			t.Fatalf("round trip of type %d: %v", m.Type, err)
		}
	}
	for _, bad := range [][]byte{nil, []byte("ZTM"), []byte("ZTM\x02\x01"), []byte("ZTM\x01\x09"), []byte("ZTM\x01\x02short")} {
		if _, err := ParseMessage(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseMessage(%q) = %v", bad, err)
		}
	}
	if _, err := ParseMessage(append([]byte("ZTM\x01\x01"), make([]byte, 2000)...)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversize statement message = %v", err)
	}
}

func FuzzParseMessage(f *testing.F) {
	b := newPeer(2, "bob")
	f.Add(StatementMessage(sign(f, b, 1, nil, t0, &Vouch{Key: b.key}).Raw))
	f.Add((&Message{Type: MsgHead, Signer: b.signPub(), Seq: 1}).AppendMarshal(nil))
	f.Add((&Message{Type: MsgWant, Signer: b.signPub(), Max: 1}).AppendMarshal(nil))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := ParseMessage(raw)
		if err != nil {
			return
		}
		if !bytes.Equal(m.AppendMarshal(nil), raw) {
			t.Fatal("re-encoding differs")
		}
	})
}
