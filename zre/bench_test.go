package zre_test

import (
	"context"
	"testing"
	"time"

	"github.com/zyre-go/zyre/internal/sim"
)

// benchSim runs the in-memory simulation of nodes nodes b.N times and
// reports its figures per run: time to full mesh, CPU and live heap per
// node, and shout fan-out (every node shouts once).
//
//	go test -run XXX -bench 'Sim' -benchtime 1x ./zre/
func benchSim(b *testing.B, nodes int) {
	var r sim.Result
	for b.Loop() {
		var err error
		r, err = sim.Run(context.Background(), sim.Options{Nodes: nodes, Shouts: 1, Timeout: 10 * time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		if want := uint64(nodes) * uint64(nodes-1); r.Deliveries != want {
			b.Fatalf("%d deliveries, want %d", r.Deliveries, want)
		}
	}
	b.ReportMetric(float64(r.MeshTime.Milliseconds()), "mesh-ms")
	b.ReportMetric(float64(r.MeshCPU.Microseconds())/1000/float64(nodes), "cpu-ms/node")
	b.ReportMetric(r.HeapPerNode()/1024, "heap-KiB/node")
	b.ReportMetric(r.ShoutRate(), "shout-msg/s")
}

func BenchmarkSim100(b *testing.B)  { benchSim(b, 100) }
func BenchmarkSim300(b *testing.B)  { benchSim(b, 300) }
func BenchmarkSim1000(b *testing.B) { benchSim(b, 1000) }
