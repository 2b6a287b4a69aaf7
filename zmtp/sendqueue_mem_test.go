package zmtp_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/zyre-go/zyre/internal/testenv"
	"github.com/zyre-go/zyre/zmtp"
)

// TestSendQueueMemory dials many Dealers with a large SendHWM to one
// Router, as `zyre bench remote` does (SendHWM 100 000 on every node's
// DEALERs): a connection, both ends, must cost what its queues hold, not
// its SendHWM. Queues made at their HWM cost 3.2 MB each, two per
// connection. The Dealers take RecvHWM 1, as the node's do (their
// receive channel is made at RecvHWM).
func TestSendQueueMemory(t *testing.T) {
	testenv.NoLeak(t, 20*time.Second)
	const conns, hwm = 100, 100000
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	heap := func() int64 {
		runtime.GC()
		runtime.GC() // what the first one's finalizers and sync.Pools let go
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	r, err := zmtp.ListenRouter("tcp", "127.0.0.1:0", zmtp.Options{SendHWM: hwm})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	before := heap()
	for i := range conns {
		id := []byte(fmt.Sprint("d", i))
		d, err := zmtp.DialDealer("tcp", r.Addr().String(), zmtp.Options{SendHWM: hwm, RecvHWM: 1, Identity: id})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if err := d.Send([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Recv(ctx); err != nil {
			t.Fatal(err)
		}
		if err := r.Send(id, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Recv(ctx); err != nil {
			t.Fatal(err)
		}
	}
	per := float64(heap()-before) / conns
	t.Logf("%.0f octets of heap per connection (both ends, SendHWM %d)", per, hwm)
	if per > 256<<10 {
		t.Fatalf("%.0f octets of heap per connection with SendHWM %d: queues sized by their HWM?", per, hwm)
	}
}
