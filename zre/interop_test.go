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
		Headers: []Header{{Key: "X-LANG", Value: "go"}, {Key: "X-ROLE", Value: "interop"}},
		Beacon:  BeaconConfig{Disabled: true},
		Bind:    "127.0.0.1",
	})
	if err := n.Join("GLOBAL"); err != nil {
		t.Fatal(err)
	}
	pyUUID := uuid.New()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	py := startPyPeer(t, ctx, "testdata/zre_peer.py",
		hex.EncodeToString(pyUUID[:]), hex.EncodeToString(nodeUUIDBytes(n)), n.Name())
	pyEndpoint, _ := strings.CutPrefix(py.line(t), "ENDPOINT ")
	expect := uuid.Nil
	if knownUUID {
		expect = pyUUID
	}
	if err := n.ConnectPeer(ctx, pyEndpoint, expect); err != nil {
		t.Fatal(err)
	}

	e := waitEvent(t, n, eventTimeout, "ENTER", isEnter(pyUUID)).(*Enter)
	if e.Name != "node-py" || e.Addr != pyEndpoint ||
		len(e.Headers) != 2 || e.Headers[0] != (Header{Key: "X-ROLE", Value: "tester"}) || e.Headers[1] != (Header{Key: "X-COLOR", Value: "blue"}) {
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
	py.finish(t)
	if st := n.Stats(); st.SequenceGaps != 0 || st.ProtocolErrors != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func nodeUUIDBytes(n *Node) []byte { id := n.UUID(); return id[:] }

// pyPeer is a Python test peer (testdata/*.py) run on the real libzmq
// (python3-zmq), talking to the test through its stdout lines.
type pyPeer struct {
	lines  chan string
	done   chan error
	stderr bytes.Buffer
}

// startPyPeer runs script with args under testenv.Python, bounded by ctx.
func startPyPeer(t *testing.T, ctx context.Context, script string, args ...string) *pyPeer {
	t.Helper()
	cmd := exec.CommandContext(ctx, testenv.Python, append([]string{script}, args...)...)
	p := &pyPeer{lines: make(chan string, 16), done: make(chan error, 1)}
	cmd.Stderr = &p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.done <- cmd.Wait()
	}()
	return p
}

// line returns the peer's next stdout line; the test fails if the peer
// exits or stays silent.
func (p *pyPeer) line(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			t.Fatalf("python peer exited: %v: %s", <-p.done, p.stderr.String())
		}
		return l
	case <-time.After(eventTimeout):
		t.Fatalf("python peer said nothing: %s", p.stderr.String())
	}
	return ""
}

// finish waits for the peer to end; it must exit 0 with "OK" as its last line.
func (p *pyPeer) finish(t *testing.T) {
	t.Helper()
	var out []string
	timeout := time.After(eventTimeout)
	for {
		select {
		case l, ok := <-p.lines:
			if ok {
				out = append(out, l)
				continue
			}
			if err := <-p.done; err != nil || len(out) == 0 || out[len(out)-1] != "OK" {
				t.Fatalf("python peer: %v, stdout %q, stderr:\n%s", err, out, p.stderr.String())
			}
			return
		case <-timeout:
			t.Fatalf("python peer did not finish: %s", p.stderr.String())
		}
	}
}
