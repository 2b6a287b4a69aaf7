package zre

import (
	"bufio"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/zyre-go/zyre/internal/testenv"
)

// TestGossipCZMQHub: our node connects to czmq's zgossip actor as a hub
// (../zgossip/testdata/zgossip_peer.c), the way a C zyre leaf does: the
// hub delivers our tuple (UUID as the C reference prints it, our inbox
// endpoint) to its application, as it would to a C zyre node; the hub's
// own tuple, not a ZRE one, is dropped by our node.
func TestGossipCZMQHub(t *testing.T) {
	bin := testenv.BuildCZMQFile(t, "../zgossip/testdata/zgossip_peer.c")
	cmd := exec.Command(bin, "server", "plain")
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() }()
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func(prefix string) string {
		t.Helper()
		deadline := time.After(eventTimeout)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("czmq hub exited before %q", prefix)
				}
				if strings.HasPrefix(l, prefix) {
					return l
				}
			case <-deadline:
				t.Fatalf("czmq hub: no %q", prefix)
			}
		}
	}
	port := strings.TrimPrefix(next("PORT "), "PORT ")
	n := startNode(t, Config{Name: "leaf", Bind: "127.0.0.1",
		Gossip: &GossipConfig{Connect: []GossipServer{{Endpoint: "tcp://127.0.0.1:" + port}}}})
	next("DELIVER " + uuidString(n.UUID()) + " " + n.Endpoint())
	if st := n.Stats(); st.BeaconsReceived != 0 || len(n.Peers()) != 0 {
		t.Fatalf("stats %+v peers %v", st, n.Peers())
	}
}
