package zmtp

import (
	"crypto/rand"
	"sync"
	"testing"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/testenv"
)

// drawLog records every read from crypto/rand, by size.
type drawLog struct {
	mu    sync.Mutex
	draws map[int][][]byte
}

func (d *drawLog) Read(p []byte) (int, error) {
	n, err := rand.Read(p)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.draws == nil {
		d.draws = map[int][][]byte{}
	}
	d.draws[len(p)] = append(d.draws[len(p)], append([]byte(nil), p[:n]...))
	return n, err
}

// TestCurveTransientKeysPerConnection: a CURVE server prepares its
// transient key S' while the greetings cross, and a client its C' and
// HELLO: each connection, reconnections included, draws its own, never one
// kept from an earlier connection (which would break forward secrecy).
func TestCurveTransientKeysPerConnection(t *testing.T) {
	testenv.NoLeak(t, testDeadline)
	spub, ssec, _ := curve.GenerateKeyPair(nil)
	cpub, csec, _ := curve.GenerateKeyPair(nil)
	var sr, cr drawLog
	r := listen(t, Options{Mechanism: CurveServer(CurveServerConfig{Public: spub, Secret: ssec, Rand: &sr})})
	const conns = 3
	for i := range conns {
		d := dial(t, r.Addr().String(), Options{Identity: []byte{'a' + byte(i)}, Mechanism: CurveClient(CurveClientConfig{Public: cpub, Secret: csec, ServerKey: spub, Rand: &cr})})
		if err := d.SendContext(testCtx(t), []byte("x")); err != nil {
			t.Fatal(err)
		}
		m := recvR(t, r)
		m.Release()
		d.Close()
	}
	for _, l := range []struct {
		name string
		d    *drawLog
		min  int // 32-octet draws per connection: s' and the cookie key; c'
	}{{"server", &sr, 2}, {"client", &cr, 1}} {
		l.d.mu.Lock()
		keys := l.d.draws[32]
		l.d.mu.Unlock()
		if len(keys) < conns*l.min {
			t.Fatalf("%s: %d secret keys drawn for %d connections, want %d", l.name, len(keys), conns, conns*l.min)
		}
		seen := map[string]bool{}
		for _, k := range keys {
			if seen[string(k)] {
				t.Fatalf("%s: one secret drawn twice", l.name)
			}
			seen[string(k)] = true
		}
	}
}
