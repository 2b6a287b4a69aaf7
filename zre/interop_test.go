package zre

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/internal/testenv"
)

// TestInteropLibzmqPeer talks to a ZRE peer on real libzmq
// (testdata/zre_peer.py) that speaks as the C node does: it reads our HELLO
// with the C wire layout, connects back with identity 0x01+UUID, says HELLO,
// WHISPER and SHOUT, and checks our WHISPER. No beacons: ConnectPeer.
func TestInteropLibzmqPeer(t *testing.T) {
	testenv.RequirePyZMQ(t)
	t.Run("expected UUID", func(t *testing.T) { interopLibzmqPeer(t, true) })
	t.Run("UUID from HELLO", func(t *testing.T) { interopLibzmqPeer(t, false) })
}

func interopLibzmqPeer(t *testing.T, knownUUID bool) {
	n := startNode(t, Config{
		Name:    "go-node",
		Headers: []Header{{"X-LANG", "go"}, {"X-ROLE", "interop"}},
		Beacon:  BeaconConfig{Disabled: true},
		Bind:    "127.0.0.1",
	})
	if err := n.Join("GLOBAL"); err != nil {
		t.Fatal(err)
	}
	pyUUID := uuid.New()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.Python, "testdata/zre_peer.py",
		hex.EncodeToString(pyUUID[:]), hex.EncodeToString(nodeUUIDBytes(n)), n.Name())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		done <- cmd.Wait()
	}()
	var pyEndpoint string
	select {
	case l := <-lines:
		pyEndpoint, _ = strings.CutPrefix(l, "ENDPOINT ")
	case <-time.After(eventTimeout):
		t.Fatalf("python peer did not start: %s", stderr.String())
	}
	expect := uuid.Nil
	if knownUUID {
		expect = pyUUID
	}
	if err := n.ConnectPeer(ctx, pyEndpoint, expect); err != nil {
		t.Fatal(err)
	}

	e := waitEvent(t, n, eventTimeout, "ENTER", isEnter(pyUUID)).(*Enter)
	if e.Name != "node-py" || e.Addr != pyEndpoint ||
		len(e.Headers) != 2 || e.Headers[0] != (Header{"X-ROLE", "tester"}) || e.Headers[1] != (Header{"X-COLOR", "blue"}) {
		t.Fatalf("enter %+v", e)
	}
	var joins []string
	w := waitEvent(t, n, eventTimeout, "WHISPER", func(e Event) bool {
		if j, ok := e.(*Join); ok {
			joins = append(joins, j.Group)
		}
		_, ok := e.(*Whisper)
		return ok
	}).(*Whisper)
	if strings.Join(joins, ",") != "GLOBAL,chat" {
		t.Fatalf("joins %q", joins)
	}
	if len(w.Content) != 2 || string(w.Content[0]) != "Hello" || !bytes.Equal(w.Content[1], []byte{0, 1, 0x7f, 0x80, 0xff}) {
		t.Fatalf("whisper %q", w.Content)
	}
	s := waitEvent(t, n, eventTimeout, "SHOUT", func(e Event) bool { _, ok := e.(*Shout); return ok }).(*Shout)
	if s.Group != "GLOBAL" || len(s.Content) != 1 || string(s.Content[0]) != "Hello, World" {
		t.Fatalf("shout %+v", s)
	}
	if err := n.Whisper(pyUUID, []byte("from go"), []byte{0, 0xff}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		var out []string
		for l := range lines {
			out = append(out, l)
		}
		if err != nil || len(out) == 0 || out[len(out)-1] != "OK" {
			t.Fatalf("python peer: %v, stdout %q, stderr:\n%s", err, out, stderr.String())
		}
	case <-time.After(eventTimeout):
		t.Fatalf("python peer did not finish: %s", stderr.String())
	}
	if st := n.Stats(); st.SequenceGaps != 0 || st.ProtocolErrors != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func nodeUUIDBytes(n *Node) []byte { id := n.UUID(); return id[:] }
