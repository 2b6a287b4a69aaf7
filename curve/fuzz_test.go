package curve

import (
	"bytes"
	"errors"
	"testing"
)

// Every parser of peer input has a fuzz target seeded with the vector's
// bodies. Each checks that the parser never panics, that every failure
// wraps the package's sentinel, and that a success is plausible.

func seedTruncations(f *testing.F, body []byte) {
	f.Add(body)
	f.Add(body[:len(body)/2])
	f.Add(body[:min(len(body), 9)])
	f.Add(append(bytes.Clone(body), 0))
	f.Add([]byte{})
}

func FuzzServerHello(f *testing.F) {
	v := loadVector(f)
	seedTruncations(f, v.hello)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, _ := v.server(t)
		w, err := s.Hello(b)
		if err != nil {
			if !errors.Is(err, ErrHandshake) {
				t.Fatalf("error does not wrap ErrHandshake: %v", err)
			}
			return
		}
		if len(b) != HelloSize || len(w) != WelcomeSize {
			t.Fatalf("accepted a %d-octet HELLO, made a %d-octet WELCOME", len(b), len(w))
		}
	})
}

func FuzzServerInitiate(f *testing.F) {
	v := loadVector(f)
	seedTruncations(f, v.initiate)
	f.Fuzz(func(t *testing.T, b []byte) {
		client, _, err := v.welcomedServer(t).Initiate(b)
		if err != nil {
			if !errors.Is(err, ErrHandshake) {
				t.Fatalf("error does not wrap ErrHandshake: %v", err)
			}
			return
		}
		if !client.Equal(v.keyB) {
			t.Fatalf("accepted client key %s that only the vector's secrets could vouch for", client)
		}
	})
}

func FuzzClientWelcome(f *testing.F) {
	v := loadVector(f)
	seedTruncations(f, v.welcome)
	f.Add(ErrorCommand("400"))
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := v.helloClient(t).Welcome(b, v.clientMetadata)
		if err != nil {
			if !errors.Is(err, ErrHandshake) && !errors.Is(err, ErrRejected) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		if len(b) != WelcomeSize || len(in) != MinInitiateSize+len(v.clientMetadata) {
			t.Fatalf("accepted a %d-octet WELCOME, made a %d-octet INITIATE", len(b), len(in))
		}
	})
}

func FuzzClientReady(f *testing.F) {
	v := loadVector(f)
	seedTruncations(f, v.ready)
	f.Add(ErrorCommand("400"))
	f.Fuzz(func(t *testing.T, b []byte) {
		md, sess, err := v.initiatedClient(t).Ready(b)
		if err != nil {
			if !errors.Is(err, ErrHandshake) && !errors.Is(err, ErrRejected) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		if sess == nil || len(md) != len(b)-MinReadySize {
			t.Fatalf("accepted a %d-octet READY with %d octets of metadata", len(b), len(md))
		}
	})
}

func FuzzOpen(f *testing.F) {
	v := loadVector(f)
	for _, m := range v.messages {
		seedTruncations(f, m)
	}
	// Each input gets a fresh copy of one session (a failure ends its
	// receive side), not a handshake of its own: the target runs at the
	// speed of Open.
	base := v.serverSession(f)
	fresh := func() *Session {
		s := *base
		s.send.buf, s.recv.buf = nil, nil
		return &s
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// A failure writes nothing into a dst of the core's kind (no
		// unauthenticated plaintext where the caller looks).
		sentinel := bytes.Repeat([]byte{0xA5}, len(b))
		dst0 := bytes.Clone(sentinel)[:0]
		if _, p0, err := fresh().Open(dst0, b); err != nil {
			if len(p0) != 0 || !bytes.Equal(dst0[:len(sentinel)], sentinel) {
				t.Fatalf("failed open returned %d octets or wrote into dst: %v", len(p0), err)
			}
		}
		flags, p, err := fresh().Open(nil, b)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error does not wrap ErrBadMessage: %v", err)
			}
			return
		}
		if flags&^flagMask != 0 || len(p) != len(b)-MessageOverhead {
			t.Fatalf("opened flags %#x and %d octets from %d", flags, len(p), len(b))
		}
		// Straight into a dst of the core's kind (empty, room enough, no
		// overlap), the same result.
		dst := make([]byte, 0, len(b))
		flags2, p2, err := fresh().Open(dst, b)
		if err != nil || flags2 != flags || !bytes.Equal(p2, p) {
			t.Fatalf("opened into dst: flags %#x, %d octets, %v; through scratch: flags %#x, %d octets", flags2, len(p2), err, flags, len(p))
		}
		if len(p2) > 0 && &p2[0] != &dst[:2][1] {
			t.Fatal("opened into dst: the payload is not in dst's storage")
		}
	})
}

func FuzzParseError(f *testing.F) {
	f.Add(ErrorCommand("400"))
	f.Add(ErrorCommand(""))
	f.Add([]byte("\x05ERROR\x05short"))
	f.Add([]byte("\x05ERROR"))
	f.Fuzz(func(t *testing.T, b []byte) {
		reason, err := ParseError(b)
		if err != nil {
			if !errors.Is(err, ErrHandshake) {
				t.Fatalf("error does not wrap ErrHandshake: %v", err)
			}
			return
		}
		if back := ErrorCommand(reason); !bytes.Equal(back, b) {
			t.Fatalf("ParseError(%x) = %q, which encodes as %x", b, reason, back)
		}
	})
}

func FuzzSplitCommand(f *testing.F) {
	f.Add([]byte("\x05HELLO\x01\x00"))
	f.Add([]byte("\x07MESSAGE"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		name, data, err := SplitCommand(b)
		if err != nil {
			return
		}
		if back := AppendCommand(nil, string(name), data); !bytes.Equal(back, b) {
			t.Fatalf("SplitCommand(%x) does not round-trip", b)
		}
	})
}

func TestCheckPeerKey(t *testing.T) {
	v := loadVector(t)
	for _, tc := range []struct {
		hex string
		ok  bool
	}{
		{"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", true}, // p-1, canonical
		{"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", false},
		{"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", false},
		{"0900000000000000000000000000000000000000000000000000000000000080", false}, // top bit
	} {
		k, _ := NewPublicKey(mustHex(t, tc.hex))
		if err := checkPeerKey(k); (err == nil) != tc.ok {
			t.Errorf("checkPeerKey(%s) = %v", tc.hex[:8], err)
		}
	}
	if err := checkPeerKey(v.keyA); err != nil {
		t.Errorf("key A rejected: %v", err)
	}
	// The long-term client key C with its top bit set (same X25519 point)
	// is refused, so one client cannot present two spellings of its key.
	c := v.helloClient(t)
	c.pub.b[31] |= 0x80
	initiate, err := c.Welcome(v.welcome, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.welcomedServer(t).Initiate(initiate); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("INITIATE with non-canonical C: %v", err)
	}
}
