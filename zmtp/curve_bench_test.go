package zmtp_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/zyre-go/zyre/internal/testenv"
	"github.com/zyre-go/zyre/zmtp"
)

// curveBenchPair is a CURVE Router and a Dealer connected to it.
func curveBenchPair(b *testing.B) (*zmtp.Router, *zmtp.Dealer) {
	b.Helper()
	srv, cli := curveNewKeys(b), curveNewKeys(b)
	r := curveListen(b, zmtp.Options{Mechanism: zmtp.CurveServer(zmtp.CurveServerConfig{Public: srv.pub, Secret: srv.sec})})
	d := curveDial(b, r.Addr().String(), zmtp.Options{
		Identity:  []byte("bench"),
		Mechanism: zmtp.CurveClient(zmtp.CurveClientConfig{Public: cli.pub, Secret: cli.sec, ServerKey: srv.pub}),
	})
	return r, d
}

// BenchmarkCurveDealerToRouter measures one CURVE Dealer streaming to one
// CURVE Router on loopback; compare with BenchmarkCurveLibzmqDealerToRouter
// (spec/curve.md, section "CURVE").
func BenchmarkCurveDealerToRouter(b *testing.B) {
	for _, bc := range benchSizes {
		b.Run(bc.name, func(b *testing.B) {
			r, d := curveBenchPair(b)
			benchStream(b, r, d, bc.size)
		})
	}
}

// BenchmarkCurveHandshake measures a whole connection: TCP connect, greeting,
// CURVE handshake, one 1-octet message received by the Router, close.
func BenchmarkCurveHandshake(b *testing.B) {
	srv, cli := curveNewKeys(b), curveNewKeys(b)
	r := curveListen(b, zmtp.Options{Mechanism: zmtp.CurveServer(zmtp.CurveServerConfig{Public: srv.pub, Secret: srv.sec})})
	mech := zmtp.CurveClient(zmtp.CurveClientConfig{Public: cli.pub, Secret: cli.sec, ServerKey: srv.pub})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), testenv.ProcessCPU()
	for range b.N {
		d, err := zmtp.DialDealer("tcp", r.Addr().String(), zmtp.Options{Mechanism: mech})
		if err != nil {
			b.Fatal(err)
		}
		if err := d.SendContext(ctx, []byte("x")); err != nil {
			b.Fatal(err)
		}
		if _, err := r.Recv(ctx); err != nil {
			b.Fatal(err)
		}
		d.Close()
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "conn/s")
	reportCPU(b, testenv.ProcessCPU()-cpu0)
}

// curvePerfBinary builds testdata/curve_perf.c against libzmq.
func curvePerfBinary(b *testing.B) string {
	b.Helper()
	return testenv.BuildC(b, "curve_perf", "zmq.h", "libzmq3-dev", "-lzmq", "-lpthread")
}

// BenchmarkCurveLibzmqDealerToRouter runs the same stream with libzmq CURVE
// (testdata/curve_perf.c, compiled here) on this machine.
func BenchmarkCurveLibzmqDealerToRouter(b *testing.B) {
	bin := curvePerfBinary(b)
	for _, bc := range benchSizes {
		b.Run(bc.name, func(b *testing.B) {
			reportLibzmq(b, bc.size, runLibzmq(b, bin, "thr", strconv.Itoa(bc.size), strconv.Itoa(b.N)))
		})
	}
}

// BenchmarkCurveLibzmqHandshake is BenchmarkCurveHandshake with libzmq.
func BenchmarkCurveLibzmqHandshake(b *testing.B) {
	bin := curvePerfBinary(b)
	el := runLibzmq(b, bin, "hs", strconv.Itoa(b.N))
	b.ReportMetric(float64(b.N)/el.Seconds(), "conn/s")
	b.ReportMetric(float64(el.Nanoseconds())/float64(b.N), "ns/op")
}
