package trust

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestStatementRoundTrip(t *testing.T) {
	p, q := newPeer(1, "alice"), newPeer(2, "bob")
	prev := sign(t, p, 1, nil, t0, &Vouch{Key: q.key})
	tests := []struct {
		name string
		seq  uint64
		prev *Statement
		body Body
	}{
		{"binding", 0, nil, &Binding{Key: p.key}},
		{"vouch", 1, nil, &Vouch{Key: q.key, UUID: q.id, Name: "bob ☺"}},
		{"vouch no name", 2, prev, &Vouch{Key: q.key}},
		{"revoke", 2, prev, &Revoke{Key: q.key, Reason: strings.Repeat("r", 255)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := sign(t, p, tc.seq, tc.prev, t0.Add(1500*time.Millisecond), tc.body)
			got, err := ParseStatement(s.Raw)
			if err != nil {
				t.Fatal(err)
			}
			if got.Seq != tc.seq || got.Prev != s.Prev || !got.Time.Equal(t0.Add(time.Second)) ||
				!got.Signer.Equal(p.signPub()) || got.Kind() != tc.body.Kind() || !bytes.Equal(got.Raw, s.Raw) {
				t.Fatalf("parsed %v, want %v", got, s)
			}
			if !bytes.Equal(got.Body.appendBody(nil), tc.body.appendBody(nil)) {
				t.Fatal("body differs")
			}
			if len(s.Raw) > MaxStatementSize {
				t.Fatalf("%d octets", len(s.Raw))
			}
		})
	}
}

// resign signs modified unsigned octets with p's key, so the parser's
// checks beyond the signature are reached.
func resign(p testPeer, unsigned []byte) []byte {
	sig := ed25519.Sign(p.sign, signedMessage(unsigned))
	return append(append([]byte(nil), unsigned...), sig...)
}

func TestParseStatementErrors(t *testing.T) {
	p, q := newPeer(1, "alice"), newPeer(2, "bob")
	good := sign(t, p, 1, nil, t0, &Vouch{Key: q.key, Name: "bob"})
	unsigned := good.Raw[:len(good.Raw)-sigSize]
	edit := func(f func(b []byte) []byte) []byte {
		return resign(p, f(append([]byte(nil), unsigned...)))
	}
	tests := []struct {
		name string
		raw  []byte
		want error
		msg  string
	}{
		{"empty", nil, ErrMalformed, "too short"},
		{"short", good.Raw[:100], ErrMalformed, "too short"},
		{"too large", make([]byte, 2000), ErrTooLarge, "at most 1024"},
		{"bad magic", edit(func(b []byte) []byte { b[0] = 'X'; return b }), ErrMalformed, "magic"},
		{"version 2", edit(func(b []byte) []byte { b[3] = 2; return b }), ErrMalformed, "version 2"},
		{"unknown kind", edit(func(b []byte) []byte { b[4] = 9; return b }), ErrMalformed, "unknown kind"},
		{"body length", edit(func(b []byte) []byte { b[86]++; return b }), ErrMalformed, "body length"},
		{"trailing octets", edit(func(b []byte) []byte { b[86]++; return append(b, 0) }), ErrMalformed, "trailing"},
		{"short name", edit(func(b []byte) []byte { b[len(b)-4] = 200; return b }), ErrMalformed, "short name"},
		{"control character", edit(func(b []byte) []byte { b[len(b)-1] = '\x1b'; return b }), ErrMalformed, "control"},
		{"bad UTF-8", edit(func(b []byte) []byte { b[len(b)-1] = 0xff; return b }), ErrMalformed, "UTF-8"},
		{"zero key", edit(func(b []byte) []byte { copy(b[headerSize:], make([]byte, 32)); return b }), ErrMalformed, "zero key"},
		{"seq 0 vouch", edit(func(b []byte) []byte { binary.BigEndian.PutUint64(b[37:], 0); return b }), ErrMalformed, "sequence number 0"},
		{"first with prev", edit(func(b []byte) []byte { b[50] = 1; return b }), ErrMalformed, "previous"},
		{"time out of range", edit(func(b []byte) []byte { binary.BigEndian.PutUint64(b[77:], 1<<62); return b }), ErrMalformed, "time"},
		{"bad signature", append(append([]byte(nil), unsigned...), make([]byte, 64)...), ErrBadSignature, "signature"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseStatement(tc.raw)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("ParseStatement = %v, want %v containing %q", err, tc.want, tc.msg)
			}
		})
	}
	if _, err := signStatement(p.sign, 1, [32]byte{}, t0, &Vouch{Key: q.key, Name: strings.Repeat("n", 256)}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("signing a 256-octet name = %v", err)
	}
}

func FuzzParseStatement(f *testing.F) {
	p, q := newPeer(1, "alice"), newPeer(2, "bob")
	s1 := sign(f, p, 1, nil, t0, &Vouch{Key: q.key, UUID: q.id, Name: "bob"})
	f.Add(s1.Raw)
	f.Add(sign(f, p, 2, s1, t0, &Revoke{Key: q.key, Reason: "gone"}).Raw)
	f.Add(mustBinding(f, p))
	f.Add(s1.Raw[:headerSize+sigSize])
	f.Add([]byte("ZTS\x01"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := parseUnverified(raw)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		// Canonical: re-encoding the parsed fields gives the same octets.
		again := appendUnsigned(nil, s.Signer, s.Seq, s.Prev, s.Time, s.Body)
		again = append(again, s.Sig...)
		if !bytes.Equal(again, raw) {
			t.Fatalf("re-encoding differs:\n%x\n%x", again, raw)
		}
		_ = s.String()
		if _, err := ParseStatement(raw); err != nil && !errors.Is(err, ErrBadSignature) {
			t.Fatalf("ParseStatement = %v after parseUnverified succeeded", err)
		}
	})
}

func TestBindingHeader(t *testing.T) {
	p := newPeer(1, "alice")
	b := mustBinding(t, p)
	got, err := DecodeBindingHeader(EncodeBindingHeader(b))
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("round trip: %v", err)
	}
	if _, err := DecodeBindingHeader("!!"); !errors.Is(err, ErrMalformed) {
		t.Fatalf("bad base64 = %v", err)
	}
	if _, err := DecodeBindingHeader(strings.Repeat("A", 4000)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("huge header = %v", err)
	}
}
