package zre

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// ourGoroutines returns the stacks of goroutines running code of this
// module (other than the test's own).
func ourGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "zyre-go/zyre/") && !strings.Contains(g, "TestCloseLeaksNoGoroutine") &&
			!strings.Contains(g, "testing.tRunner") && !strings.Contains(g, "testing.(*T).Run") {
			out = append(out, g)
		}
	}
	return out
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
	// Close returned: every goroutine of ours must be gone. Goroutines that
	// only just returned may still be on their way out, so look a few times.
	var left []string
	for range 100 {
		if left = ourGoroutines(); len(left) == 0 {
			return
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%d goroutines left after Close:\n%s", len(left), strings.Join(left, "\n\n"))
}
