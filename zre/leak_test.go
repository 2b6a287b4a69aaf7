package zre

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/internal/testenv"
)

// ourGoroutines returns the stacks of goroutines running code of this
// module (other than the test's own).
func ourGoroutines() []string {
	return testenv.Goroutines(isOurs)
}

func isOurs(g string) bool {
	return strings.Contains(g, "zyre-go/zyre/") && !strings.Contains(g, "TestCloseLeaksNoGoroutine") &&
		!strings.Contains(g, "testing.tRunner") && !strings.Contains(g, "testing.(*T).Run")
}

// noneOfOurs fails t unless every goroutine of ours ends soon: a Close
// returned, and goroutines that only just returned may still be on their
// way out.
func noneOfOurs(t *testing.T) {
	t.Helper()
	testenv.NoGoroutines(t, 5*time.Second, isOurs)
}

func TestCloseLeaksNoGoroutine(t *testing.T) {
	port := testBeaconPort()
	var nodes []*Node
	for _, name := range []string{"a", "b"} {
		n, err := New(Config{Name: name, Beacon: BeaconConfig{Port: port, Loopback: true, Interval: 50 * time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		n.Join("g")
		nodes = append(nodes, n)
	}
	waitEvent(t, nodes[0], eventTimeout, "ENTER", isEnter(nodes[1].UUID()))
	waitEvent(t, nodes[1], eventTimeout, "ENTER", isEnter(nodes[0].UUID()))
	// A pending ConnectPeer, a stopped node and a plain Close.
	nodes[0].ConnectPeer(context.Background(), "tcp://127.0.0.1:9", uuid.Nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nodes[1].Stop(ctx)
	if len(ourGoroutines()) == 0 {
		t.Fatal("the leak check sees no goroutine of a running node: it cannot detect leaks")
	}
	for _, n := range nodes {
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		n.Close()
	}
	// Close returned: every goroutine of ours must be gone.
	noneOfOurs(t)
}
