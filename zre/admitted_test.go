package zre

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/zmtp"
)

// rawNullDealer opens a plain ZMTP connection to n's inbox as a ZRE
// DEALER with a random UUID (greeting and READY written; what the inbox
// sends is left unread).
func rawNullDealer(t *testing.T, n *Node) net.Conn {
	t.Helper()
	nc, err := tryRawNullDealer(t, n)
	if err != nil {
		t.Fatal(err)
	}
	return nc
}

// tryRawNullDealer is rawNullDealer for a connection the inbox may refuse.
func tryRawNullDealer(t *testing.T, n *Node) (net.Conn, error) {
	nc, err := net.Dial("tcp", strings.TrimPrefix(n.Endpoint(), "tcp://"))
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { nc.Close() })
	meta := zmtp.AppendMetadata(nil, zmtp.Metadata{{Name: "Socket-Type", Value: []byte("DEALER")}, {Name: "Identity", Value: Identity(uuid.New())}})
	ready := append([]byte{5, 'R', 'E', 'A', 'D', 'Y'}, meta...)
	b := zmtp.AppendGreeting(nil, zmtp.Greeting{Major: 3, Minor: 1, Mechanism: "NULL"})
	b = append(b, zmtp.FlagCommand, byte(len(ready)))
	_, err = nc.Write(append(b, ready...))
	return nc, err
}

// closedByPeer waits until the other side closes nc.
func closedByPeer(t *testing.T, nc net.Conn, what string) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(eventTimeout))
	_, err := io.Copy(io.Discard, nc)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: the inbox did not close the connection", what)
	}
}

// meshPair starts two nodes (secure or plain) and waits until each
// entered the other.
func meshPair(t *testing.T, secure bool) (a, b *Node) {
	port := testBeaconPort()
	cfg := func(name string) Config {
		if secure {
			return secureConfig(t, name, port)
		}
		return Config{Name: name, Beacon: BeaconConfig{Port: port}}
	}
	a, b = startNode(t, cfg("alpha")), startNode(t, cfg("beta"))
	waitEvent(t, a, eventTimeout, "ENTER beta", func(e Event) bool { _, ok := e.(*Enter); return ok })
	waitEvent(t, b, eventTimeout, "ENTER alpha", func(e Event) bool { _, ok := e.(*Enter); return ok })
	return a, b
}

// whisperBig: b whispers 1 MiB to a, which gets it whole (an admitted
// peer sends up to the zmtp maximum).
func whisperBig(t *testing.T, a, b *Node, what string) {
	t.Helper()
	big := bytes.Repeat([]byte(what[:1]), 1<<20)
	if err := b.WhisperContext(t.Context(), a.UUID(), big); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, a, eventTimeout, "1 MiB WHISPER "+what, func(e Event) bool {
		w, ok := e.(*Whisper)
		return ok && len(w.Content) == 1 && bytes.Equal(w.Content[0], big)
	})
}

// TestInboxBeforeHelloPlain: in plain mode, a connection that has not
// said HELLO and claims a frame of 2^62 octets, or really sends 64 MiB in
// one frame, is closed at once: the node's heap stays where it was and
// Stats counts them; the peers' own large messages go through.
func TestInboxBeforeHelloPlain(t *testing.T) {
	a, b := meshPair(t, false)
	whisperBig(t, a, b, "before")
	before := heapInUse()

	liar := rawNullDealer(t, a)
	liar.Write(append([]byte{zmtp.FlagLong, 0x40, 0, 0, 0, 0, 0, 0, 0}, make([]byte, 1000)...))
	closedByPeer(t, liar, "a 2^62 header")

	chunk := bytes.Repeat([]byte{0x5A}, 1<<20)
	done := make(chan int64, 3)
	for range 3 {
		nc := rawNullDealer(t, a)
		go func() {
			var sent int64
			if _, err := nc.Write(binary.BigEndian.AppendUint64([]byte{zmtp.FlagLong}, 64<<20)); err == nil {
				nc.SetWriteDeadline(time.Now().Add(eventTimeout))
				for sent < 64<<20 {
					n, err := nc.Write(chunk)
					sent += int64(n)
					if err != nil {
						break
					}
				}
			}
			done <- sent
		}()
		closedByPeer(t, nc, "a 64 MiB frame")
	}
	for range 3 {
		if sent := <-done; sent >= 64<<20 {
			t.Error("a stranger wrote a whole 64 MiB frame: the inbox read it")
		}
	}
	after := heapInUse()
	t.Logf("heap %d -> %d octets", before, after)
	if after > before+16<<20 {
		t.Errorf("heap in use went from %d to %d octets", before, after)
	}
	if got := a.Stats().InboxUnadmitted; got != 4 {
		t.Errorf("InboxUnadmitted = %d, want 4", got)
	}
	whisperBig(t, a, b, "after")
}

// TestInboxBeforeHelloSecure: a CURVE client with a key nobody trusts
// completes the handshake (admission is at HELLO) and sends 8 MiB at
// once: closed without reading it, counted; the peers are unaffected.
func TestInboxBeforeHelloSecure(t *testing.T) {
	a, b := meshPair(t, true)
	pub, sec := genKeys(t)
	d, err := zmtp.DialDealer("tcp", strings.TrimPrefix(a.Endpoint(), "tcp://"), zmtp.Options{
		Identity:  Identity(uuid.New()),
		Mechanism: zmtp.CurveClient(zmtp.CurveClientConfig{Public: pub, Secret: sec, ServerKey: a.PublicKey()}),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.SendContext(t.Context(), make([]byte, 8<<20)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stranger's connection closed", func() bool { return a.Stats().InboxUnadmitted >= 1 })
	whisperBig(t, a, b, "secure")
}

// TestPeerBacklog: nothing waits for an idle peer; once the peer is gone
// (its node closed without a word), what we whisper to it waits in its
// DEALER's queue and PeerBacklog says so. An unknown peer has none.
func TestPeerBacklog(t *testing.T) {
	a, b := meshPair(t, false)
	if got := a.PeerBacklog(uuid.New()); got != 0 {
		t.Fatalf("unknown peer: %d", got)
	}
	if err := a.WhisperContext(t.Context(), b.UUID(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "an idle peer's backlog at 0", func() bool { return a.PeerBacklog(b.UUID()) == 0 })
	id := b.UUID()
	b.Close()
	waitFor(t, "a backlog towards a closed peer", func() bool {
		a.Whisper(id, []byte("are you there?"))
		return a.PeerBacklog(id) != 0
	})
}

// TestInboxManyStrangersBounded: strangers fill the inbox from one
// address (Limits.MaxConnsPerAddr, 64 with the honest peer's), each
// sending a 60 KiB message that is no HELLO and then a header claiming
// 1 GiB: each is left waiting for a verdict that never comes, reading
// nothing more, and all of them together hold a bounded heap; the
// connections past the cap are refused at once; the peers still talk.
func TestInboxManyStrangersBounded(t *testing.T) {
	a, b := meshPair(t, false)
	before := heapInUse()
	msg := append(binary.BigEndian.AppendUint64([]byte{zmtp.FlagLong}, 60<<10), make([]byte, 60<<10)...)
	claim := binary.BigEndian.AppendUint64([]byte{zmtp.FlagLong}, 1<<30)
	var conns []net.Conn
	for range 80 {
		nc, err := tryRawNullDealer(t, a)
		if err != nil {
			continue // refused (reset) as it was accepted
		}
		nc.Write(append(append(bytes.Clone(msg), claim...), make([]byte, 4096)...))
		conns = append(conns, nc)
	}
	waitFor(t, "the strangers' messages dropped and the extra connections refused", func() bool {
		st := a.Stats()
		return st.MessagesDropped >= 60 && st.InboxRefused >= 16
	})
	after := heapInUse()
	t.Logf("heap %d -> %d octets with %d strangers waiting, %+v", before, after, len(conns), a.Stats())
	if after > before+24<<20 {
		t.Errorf("heap in use went from %d to %d octets with %d strangers waiting", before, after, len(conns))
	}
	if st := a.Stats(); st.InboxUnadmitted != 0 {
		t.Errorf("InboxUnadmitted = %d before Expired: the strangers should wait", st.InboxUnadmitted)
	}
	whisperBig(t, a, b, "with strangers")
}
