package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	mrand "math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/zre"
)

// A private chat through the agent is sealed: a stranger's node in the
// group (a secure node nobody trusts) gets none of the chat's SHOUTs (it
// used to get them all, as ciphertext: usertry4 #3), nor the line in
// clear, while the tablet reads the line.
func TestPrivateChatSealedFromStranger(t *testing.T) {
	port := 20000 + mrand.IntN(40000)
	a, b := newSecureAgent(t, port, "laptop"), newSecureAgent(t, port, "tablet")
	a.verify(t, b)
	b.verify(t, a)
	waitMember(t, dial(t, a.sock), "tablet")
	waitMember(t, dial(t, b.sock), "laptop")
	_, sec, err := curve.GenerateKeyPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := zre.New(zre.Config{Name: "stranger", Beacon: zre.BeaconConfig{Port: port, Loopback: true, Interval: 100 * time.Millisecond},
		Secure: &zre.SecureConfig{Secret: sec}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Join("lab"); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	// The laptop's node knows the stranger is in lab before the line goes.
	ac := dial(t, a.sock)
	for m := waitMember(t, ac, "stranger"); !slices.Contains(m.Groups, "lab"); m = waitMember(t, ac, "stranger") {
		select {
		case <-ctx.Done():
			t.Fatalf("the stranger never joined lab: %+v", m)
		case <-time.After(50 * time.Millisecond):
		}
	}

	ca, _, err := dial(t, a.sock).ChatPrivate(ctx, "lab")
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	cb, _, err := dial(t, b.sock).ChatPrivate(ctx, "lab")
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	next := func(c *client.PrivateChat, kind string) client.StreamMsg {
		t.Helper()
		for {
			m, err := c.Next()
			if err != nil {
				t.Fatalf("waiting for %s: %v", kind, err)
			}
			if m.Kind == kind {
				return m
			}
		}
	}
	// Sent once the tablet holds our key (the CLI waits the same way).
	for {
		m := next(ca, client.ChatMembers)
		if m.Members >= 1 {
			break
		}
	}
	const secret = "the secret line for the tablet only"
	if err := ca.Send(secret); err != nil {
		t.Fatal(err)
	}
	if m := next(cb, client.ChatLine); m.Text != secret {
		t.Fatalf("tablet got %+v", m)
	}
	// A clear marker after it: the laptop's node sends to the stranger
	// over one connection, in order, so the marker comes after every
	// record of the line.
	const mark = "xr-marker-after-the-line"
	if err := ac.Shout(ctx, "lab", []byte(mark)); err != nil {
		t.Fatal(err)
	}
	shouts := 0
	for {
		select {
		case e := <-s.Events():
			sh, ok := e.(*zre.Shout)
			if !ok || sh.Peer != a.n.UUID() || sh.Group != "lab" {
				if w, ok := e.(*zre.Whisper); ok && bytes.Contains(bytes.Join(w.Content, nil), []byte(secret)) {
					t.Fatal("the stranger got the line in clear in a WHISPER")
				}
				continue
			}
			all := bytes.Join(sh.Content, nil)
			if bytes.Contains(all, []byte(secret)) {
				t.Fatalf("the stranger got the line in clear: %q", all)
			}
			if string(all) == mark {
				if shouts != 0 {
					t.Fatalf("the stranger got %d SHOUTs of the chat before the marker: records go only to the members", shouts)
				}
				return
			}
			shouts++
		case <-ctx.Done():
			t.Fatalf("the stranger never got the marker (%d SHOUTs of lab)", shouts)
		}
	}
}
