package zgossip

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/zmtp"
)

const testTimeout = 20 * time.Second

// waitTuples reads s's deliveries until every key of want was delivered
// with its value.
func waitTuples(t *testing.T, name string, s *Service, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	deadline := time.After(testTimeout)
	for {
		done := true
		for k, v := range want {
			if got[k] != v {
				done = false
			}
		}
		if done {
			return
		}
		select {
		case tp, ok := <-s.Deliveries():
			if !ok {
				t.Fatalf("%s: deliveries closed", name)
			}
			got[tp.Key] = tp.Value
		case <-deadline:
			t.Fatalf("%s: got %v, want %v", name, got, want)
		}
	}
}

func newService(t *testing.T, cfg Config) *Service {
	s := New(cfg)
	t.Cleanup(func() { s.Close() })
	return s
}

// TestServiceHubAndLeaves: two leaves connected to one hub learn each
// other's tuples and the hub's, plain and with CURVE; a leaf that
// connects later gets everything the hub holds.
func TestServiceHubAndLeaves(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "curve"}[secure], func(t *testing.T) {
			var hubCfg Config
			var hubKey curve.PublicKey
			if secure {
				pub, sec, err := curve.GenerateKeyPair(nil)
				if err != nil {
					t.Fatal(err)
				}
				hubCfg.Public, hubCfg.Secret, hubKey = pub, sec, pub
			}
			hub := newService(t, hubCfg)
			addr, err := hub.Bind("tcp://127.0.0.1:*")
			if err != nil {
				t.Fatal(err)
			}
			ep := "tcp://" + addr.String()
			a, b := newService(t, Config{}), newService(t, Config{})
			for _, s := range []*Service{a, b} {
				if err := s.Connect(ep, hubKey); err != nil {
					t.Fatal(err)
				}
			}
			hub.Publish("hub", "tcp://h:1")
			a.Publish("a", "tcp://a:1")
			b.Publish("b", "tcp://b:1")
			all := map[string]string{"hub": "tcp://h:1", "a": "tcp://a:1", "b": "tcp://b:1"}
			waitTuples(t, "hub", hub, all)
			waitTuples(t, "a", a, all)
			waitTuples(t, "b", b, all)

			late := newService(t, Config{})
			if err := late.Connect(ep, hubKey); err != nil {
				t.Fatal(err)
			}
			waitTuples(t, "late", late, all)
			// A changed value is new; the same one again is not.
			a.Publish("a", "tcp://a:2")
			waitTuples(t, "b again", b, map[string]string{"a": "tcp://a:2"})
			if st := hub.Stats(); st.Tuples != 3 || st.Dropped != 0 {
				t.Fatalf("hub stats %+v", st)
			}
		})
	}
}

// TestServiceCurveWrongKey: a client that expects another server key gets
// nothing (the CURVE handshake fails); a plain client of a CURVE hub too.
func TestServiceCurveWrongKey(t *testing.T) {
	pub, sec, _ := curve.GenerateKeyPair(nil)
	other, _, _ := curve.GenerateKeyPair(nil)
	hub := newService(t, Config{Public: pub, Secret: sec})
	addr, err := hub.Bind("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hub.Publish("secret", "tcp://h:1")
	wrong, plain, right := newService(t, Config{}), newService(t, Config{}), newService(t, Config{})
	wrong.Connect("tcp://"+addr.String(), other)
	plain.Connect("tcp://"+addr.String(), curve.PublicKey{})
	right.Connect("tcp://"+addr.String(), pub)
	waitTuples(t, "right", right, map[string]string{"secret": "tcp://h:1"})
	// The right client got it; the others had the same time and more.
	time.Sleep(200 * time.Millisecond) // not a wait the test relies on: a bound for a wrong delivery to show
	for name, s := range map[string]*Service{"wrong key": wrong, "plain": plain} {
		select {
		case tp := <-s.Deliveries():
			t.Fatalf("%s client got %+v", name, tp)
		default:
		}
	}
}

// TestServiceInvalid: a PUBLISH before HELLO gets INVALID (and is not
// taken); PING gets PONG in any state; a malformed message is dropped.
func TestServiceInvalid(t *testing.T) {
	hub := newService(t, Config{})
	addr, err := hub.Bind("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d, err := zmtp.DialDealer("tcp", addr.String(), zmtp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	send := func(m Msg) {
		b, err := m.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Send(b); err != nil {
			t.Fatal(err)
		}
	}
	recv := func() MsgID {
		m, err := d.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		g, err := Decode(m.Frames[0])
		if err != nil {
			t.Fatal(err)
		}
		return g.ID
	}
	send(Msg{ID: MsgPing})
	if id := recv(); id != MsgPong {
		t.Fatalf("got %v, want PONG", id)
	}
	send(Msg{ID: MsgPublish, Key: "k", Value: "v"})
	if id := recv(); id != MsgInvalid {
		t.Fatalf("got %v, want INVALID", id)
	}
	d.Send([]byte("garbage"))
	send(Msg{ID: MsgHello})
	send(Msg{ID: MsgPublish, Key: "k", Value: "v"})
	waitTuples(t, "hub", hub, map[string]string{"k": "v"})
	if st := hub.Stats(); st.Invalid != 1 || st.Dropped != 1 {
		t.Fatalf("stats %+v", st)
	}
	if ts := hub.Tuples(); len(ts) != 1 || ts[0] != (Tuple{Key: "k", Value: "v"}) {
		t.Fatalf("tuples %+v", ts)
	}
	hub.Unpublish("k")
	if ts := hub.Tuples(); len(ts) != 0 {
		t.Fatalf("tuples after Unpublish %+v", ts)
	}
}

func TestServiceErrors(t *testing.T) {
	s := newService(t, Config{})
	if err := s.Connect("10.0.0.1:5", curve.PublicKey{}); err == nil || !strings.Contains(err.Error(), "tcp://") {
		t.Fatalf("err %v", err)
	}
	if _, err := s.Bind("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Bind("127.0.0.1:0"); err == nil {
		t.Fatal("bound twice")
	}
	if err := s.Publish(strings.Repeat("k", 256), "v"); err == nil {
		t.Fatal("published a long key")
	}
	s.Close()
	if err := s.Publish("k", "v"); err != ErrClosed {
		t.Fatalf("after Close: %v", err)
	}
}
