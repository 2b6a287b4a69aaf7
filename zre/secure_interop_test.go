package zre

import (
	"bytes"
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/testenv"
)

// TestInteropLibzmqCurvePeer talks CURVE with a ZRE peer on real libzmq
// (testdata/zre_curve_peer.py) that behaves as a C zyre node in CURVE mode:
// a CURVE-server ROUTER with its own keypair, a CURVE-client DEALER with
// our key, HELLO with X-PUBLICKEY and a random (unbound) UUID. Our node
// enters it through ConnectPeerKey; they exchange WHISPERs both ways.
func TestInteropLibzmqCurvePeer(t *testing.T) {
	testenv.RequirePyZMQ(t)
	n := startNode(t, Config{
		Name:   "go-node",
		Beacon: BeaconConfig{Disabled: true},
		Bind:   "127.0.0.1",
		Secure: &SecureConfig{Secret: mustSecret(t)},
	})
	if err := n.Join("GLOBAL"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	py := startPyPeer(t, ctx, "testdata/zre_curve_peer.py", n.PublicKey().Z85(), n.Name())
	var pyEndpoint, pyKeyText, pyUUIDText string
	for pyEndpoint == "" || pyKeyText == "" || pyUUIDText == "" {
		k, v, _ := strings.Cut(py.line(t), " ")
		switch k {
		case "ENDPOINT":
			pyEndpoint = v
		case "KEY":
			pyKeyText = v
		case "UUID":
			pyUUIDText = v
		}
	}
	pyKey, err := curve.ParsePublicKey(pyKeyText)
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(pyUUIDText)
	if err != nil || len(b) != 16 {
		t.Fatalf("UUID %q", pyUUIDText)
	}
	pyUUID := uuid.UUID(b)
	if IsBound(pyUUID, pyKey) {
		t.Fatal("the python peer's random UUID is bound?")
	}
	if err := n.ConnectPeerKey(ctx, pyEndpoint, pyKey); err != nil {
		t.Fatal(err)
	}
	e := waitEvent(t, n, eventTimeout, "ENTER", isEnter(pyUUID)).(*Enter)
	if v, _ := headerValue(e.Headers, HeaderPublicKey); e.Name != "c-node-py" || e.Addr != pyEndpoint || v != pyKeyText {
		t.Fatalf("enter %+v", e)
	}
	w := waitEvent(t, n, eventTimeout, "WHISPER", func(e Event) bool { _, ok := e.(*Whisper); return ok }).(*Whisper)
	if w.Peer != pyUUID || len(w.Content) != 2 || string(w.Content[0]) != "Hello over CURVE" || !bytes.Equal(w.Content[1], []byte{0, 1, 0xff}) {
		t.Fatalf("whisper %+v", w)
	}
	s := waitEvent(t, n, eventTimeout, "SHOUT", func(e Event) bool { _, ok := e.(*Shout); return ok }).(*Shout)
	if s.Group != "GLOBAL" || string(s.Content[0]) != "Shout over CURVE" {
		t.Fatalf("shout %+v", s)
	}
	infos := n.PeerInfos()
	if len(infos) != 1 || infos[0].Key != pyKey || infos[0].Bound {
		t.Fatalf("peer infos %+v", infos)
	}
	if err := n.Whisper(pyUUID, []byte("from go over CURVE")); err != nil {
		t.Fatal(err)
	}
	py.finish(t)
	if st := n.Stats(); st.SequenceGaps != 0 || st.ProtocolErrors != 0 || st.PeersRefused != 0 {
		t.Fatalf("stats %+v", st)
	}
}
