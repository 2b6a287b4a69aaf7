package agent

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/keystore"
	"github.com/zyre-go/zyre/pairing"
)

// A phone whose agent knows the verified room scans the code of a
// stranger named room: the agent asks its client (a QR scanner is
// otherwise not asked), naming the verified room (NameHolder); the
// client's no records nothing.
func TestPairAgentKnownNameAsksScanner(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	room, phone, fake := newDevice(t, "room"), newDevice(t, "phone1"), newDevice(t, "room")
	if _, err := phone.ts.MarkVerified(ctx, room.id.CurveKey, room.id.UUID, "room", "qr", room.id.SigningKey); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "run", client.SocketName)
	startSecureAgent(t, phone, sock)

	d, tok, err := pairing.NewDisplayer(pairing.Options{Identity: fake.id, Recorder: fake.ts, Loopback: true, DisableDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c, err := client.Dial(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	asked := make(chan client.PairProgress, 1)
	_, err = c.Pair(ctx, client.PairArgs{Token: tok.URI(), Loopback: true}, client.PairHandler{
		ConfirmPeer: func(_ context.Context, q client.PairProgress) error {
			asked <- q
			return errors.New("not my room")
		},
	})
	if err == nil {
		t.Fatal("paired with the fake room")
	}
	var q client.PairProgress
	select {
	case q = <-asked:
	default:
		t.Fatalf("the scanner's client was not asked; pair: %v", err)
	}
	k := q.NameHolder
	if k == nil || k.Fingerprint != keystore.Fingerprint(room.id.CurveKey) || k.State != "verified" || k.Name != "room" ||
		q.Method != "qr" || q.AsDisplayer || q.Peer == nil || q.Peer.Fingerprint != keystore.Fingerprint(fake.id.CurveKey) {
		t.Fatalf("question %+v (name holder %+v): want the fake room, naming the verified room", q, k)
	}
	if want := "your verified room is " + k.Fingerprint + " (" + room.id.UUID.String()[:8] + ")"; k.Text != want {
		t.Fatalf("text %q, want %q", k.Text, want)
	}
	if _, found, _ := phone.ts.Lookup(fake.id.CurveKey); found {
		t.Fatal("the fake room was recorded")
	}
}
