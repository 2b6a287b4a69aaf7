package zre

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/zmtp"
)

// Spoofed beacons from eight loopback addresses (127.0.2.1-8) for 264
// made-up peers, each at an endpoint of its own that completes the ZMTP
// handshake and then says nothing, refreshed twice a second: they keep a
// node's total pending cap full for as long as the attacker likes (no
// dial is ever given up). A new honest peer that beacons meanwhile is
// still dialled and enters on both sides. (The peer's node does not
// listen to beacons, so the only way in is our node dialling it on its
// beacon; first come, first served, that beacon was refused for as long
// as the flood went on.) The flood is bounded: 500 beacons a second for at
// most 25 s.
func TestHostilePendingFloodNewPeer(t *testing.T) {
	t.Parallel()
	port := testBeaconPort()
	a := startNode(t, Config{Name: "a", Beacon: BeaconConfig{Port: port}})
	wa := watch(a, nil)
	b := startNode(t, Config{Name: "b", Beacon: BeaconConfig{Disabled: true}})
	wb := watch(b, nil)

	const addrs, perAddr = 8, 33
	type fake struct {
		s *beaconSender
		b Beacon
	}
	var fakes []fake
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for i := range addrs {
		host := fmt.Sprintf("127.0.2.%d", i+1)
		s := newBeaconSender(t, port, host)
		for range perAddr {
			ln, err := net.Listen("tcp", host+":0")
			if err != nil {
				t.Fatal(err)
			}
			r := zmtp.NewRouter(ln, zmtp.Options{Logger: quiet})
			t.Cleanup(func() { r.Close() })
			fakes = append(fakes, fake{s, Beacon{Version: BeaconV1, UUID: uuid.New(), Port: uint16(ln.Addr().(*net.TCPAddr).Port)}})
		}
	}
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		n := 0
		tick := time.NewTicker(2 * time.Millisecond) // one fake at a time: each every 0.5 s
		defer tick.Stop()
		for deadline := time.Now().Add(25 * time.Second); time.Now().Before(deadline); n++ {
			f := fakes[n%len(fakes)]
			f.s.send(f.b)
			select {
			case <-stop:
				done <- n
				return
			case <-tick.C:
			}
		}
		done <- n
	}()
	defer func() {
		close(stop)
		t.Logf("%d spoofed beacons", <-done)
	}()
	waitFor(t, "the flood to fill the total pending cap", func() bool { return a.Stats().PendingRefused >= 2*addrs })
	limit := a.cfg.Limits.MaxPending

	honest := newBeaconSender(t, port, "127.0.0.1")
	beacon := Beacon{Version: BeaconV1, UUID: b.UUID(), Port: inboxPort(t, b)}
	start := time.Now()
	for len(wa.entersOf(b.UUID())) == 0 || len(wb.entersOf(a.UUID())) == 0 {
		if time.Since(start) > 15*time.Second {
			st := a.Stats()
			t.Fatalf("new peer not in after %v of flood (cap %d, pending refused %d)", time.Since(start), limit, st.PendingRefused)
		}
		if err := honest.send(beacon); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // the peer's beacon interval
	}
	t.Logf("new peer entered after %v; pending refused or evicted: %d", time.Since(start).Round(time.Millisecond), a.Stats().PendingRefused)
}
