package zre

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sys/unix"

	"github.com/zyre-go/zyre/zmtp"
	"github.com/zyre-go/zyre/zre/zremsg"
)

// TestHostileInbox throws garbage at a node's inbox and beacon port and
// checks that it keeps serving a real peer.
func TestHostileInbox(t *testing.T) {
	port := testBeaconPort()
	victim := startNode(t, Config{Name: "victim", Beacon: BeaconConfig{Port: port}})
	friend := startNode(t, Config{Name: "friend", Beacon: BeaconConfig{Port: port}})
	waitEvent(t, victim, eventTimeout, "ENTER friend", isEnter(friend.UUID()))
	// (Friend's HELLO reaching victim does not mean victim's reached
	// friend: wait for both before friend whispers.)
	waitEvent(t, friend, eventTimeout, "ENTER victim", isEnter(victim.UUID()))
	addr := victim.Endpoint()[len("tcp://"):]

	// An attacker with a well-formed identity.
	evil := uuid.New()
	d, err := zmtp.DialDealer("tcp", addr, zmtp.Options{Identity: Identity(evil)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	hello := mustFrames(&zremsg.Msg{ID: zremsg.MsgHello, Sequence: 1, Endpoint: "tcp://127.0.0.1:9", Status: 250, Name: "evil"})
	sends := [][][]byte{
		{[]byte("garbage")},
		{{}},
		{{0xAA, 0xA1}},
		{{0xAA, 0xA1, 1, 2, 0, 1, 255, 255, 255}},                   // truncated HELLO
		mustFrames(&zremsg.Msg{ID: zremsg.MsgWhisper, Sequence: 1}), // before HELLO
		{withVersion(hello[0], 1)}, {withVersion(hello[0], 3)},      // wrong versions
		{withVersion(hello[0], 255)},
		{{0xAA, 0xA1, 99, 2, 0, 1}}, // unknown id
		append(mustFrames(&zremsg.Msg{ID: zremsg.MsgPing, Sequence: 1}), []byte("extra")), // extra frame
		hello, // bogus status 250: a HELLO's status is the peer's to choose
		mustFrames(&zremsg.Msg{ID: zremsg.MsgJoin, Sequence: 2, Group: "g", Status: 7}), // want 251: reset
		mustFrames(&zremsg.Msg{ID: zremsg.MsgWhisper, Sequence: 3}),                     // after the reset: dropped
		mustFrames(&zremsg.Msg{ID: zremsg.MsgHello, Sequence: 1, Endpoint: "bogus"}),    // bad endpoint
		mustFrames(&zremsg.Msg{ID: zremsg.MsgHello, Sequence: 9, Endpoint: "tcp://127.0.0.1:9"}),
	}
	for i := range 200 { // random frames, bounded
		f := make([]byte, 1+i%40)
		rand.Read(f)
		if i%2 == 0 {
			copy(f, []byte{0xAA, 0xA1, byte(1 + i%10), 2})
		}
		sends = append(sends, [][]byte{f})
	}
	for _, frames := range sends {
		if err := d.SendContext(context.Background(), frames...); err != nil {
			t.Fatal(err)
		}
	}
	// Identities that are not 17 octets.
	for _, id := range [][]byte{{1, 2, 3}, bytes.Repeat([]byte{1}, 18), append([]byte{1}, bytes.Repeat([]byte{7}, 15)...)} {
		d2, err := zmtp.DialDealer("tcp", addr, zmtp.Options{Identity: id})
		if err != nil {
			t.Fatal(err)
		}
		d2.Send(hello...)
		defer d2.Close()
	}
	// Raw garbage on TCP (the ZMTP layer's problem, but the node must live).
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Write(bytes.Repeat([]byte{0xff, 0, 0x7f}, 100))
		c.Close()
	}
	// A bounded flood of garbage beacons on the loopback beacon port,
	// including port-0 beacons for the friend from a forger... which the
	// protocol cannot tell from the real thing, so not those: we forge
	// beacons for unknown UUIDs with port 1 and malformed ones.
	flood := floodBeacons(t, port, 2000)

	// The real peer still gets through, and the node still answers.
	if err := friend.Whisper(victim.UUID(), []byte("still there?")); err != nil {
		t.Fatal(err)
	}
	w := waitEvent(t, victim, eventTimeout, "WHISPER from friend", func(e Event) bool {
		if e.PeerUUID() == evil {
			if _, ok := e.(*Enter); !ok {
				if _, ok := e.(*Exit); !ok {
					if _, ok := e.(*Join); !ok {
						t.Errorf("event from the attacker: %s", e.Type())
					}
				}
			}
		}
		_, ok := e.(*Whisper)
		return ok && e.PeerUUID() == friend.UUID()
	}).(*Whisper)
	if string(w.Content[0]) != "still there?" {
		t.Fatalf("whisper %q", w.Content)
	}
	if err := victim.Whisper(friend.UUID(), []byte("yes")); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, friend, eventTimeout, "WHISPER back", func(e Event) bool { _, ok := e.(*Whisper); return ok })

	// Everything was counted; wait (bounded) until the flood was read.
	deadline := time.Now().Add(eventTimeout)
	for {
		st := victim.Stats()
		if st.BeaconsInvalid > 0 && st.MessagesDropped >= 10 && st.ProtocolErrors >= 1 {
			t.Logf("stats after %d beacons: %+v", flood, st)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not counted: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if p := victim.PeerName(evil); p != "" && victim.PeerAddress(evil) == "" {
		t.Fatalf("attacker half-known: %q", p)
	}
}

// floodBeacons broadcasts n bogus datagrams on lo to 127.255.255.255:port.
func floodBeacons(t *testing.T, port, n int) int {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1) })
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	dst, err := net.ResolveUDPAddr("udp4", net.JoinHostPort("127.255.255.255", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	sent := 0
	for i := range n {
		var p []byte
		switch i % 4 {
		case 0:
			p = make([]byte, i%60)
			rand.Read(p)
		case 1:
			p = []byte("ZRE\x02")
			p = append(p, make([]byte, 18)...)
		case 2:
			b := Beacon{Version: BeaconV1, UUID: uuid.New(), Port: 1}
			p = b.AppendMarshal(nil)
			p = p[:len(p)-1] // truncated
		case 3:
			p = append([]byte("ZRE\x01"), make([]byte, 30)...)
			binary.BigEndian.PutUint16(p[20:], 1)
		}
		if _, err := pc.WriteTo(p, dst); err == nil {
			sent++
		}
	}
	return sent
}
