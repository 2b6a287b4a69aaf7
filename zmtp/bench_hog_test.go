package zmtp_test

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/zyre-go/zyre/zmtp"
)

const (
	hogEnv = "ZYRE_CPU_HOG"
	// hogMax bounds a hog's life, should the benchmark that started it die
	// without stopping it.
	hogMax = 2 * time.Minute
)

// BenchmarkHogDealerToRouter is BenchmarkDealerToRouter,
// BenchmarkLibzmqDealerToRouter and their CURVE versions at 64 B and 4 KiB
// while another process keeps one core busy: a single-threaded busy loop
// (this test binary re-executed, TestCPUHogHelper) that each sub-benchmark
// starts before its measurement and kills after it. On a 2-core machine
// the transport then has about one core for its sender, writer, reader and
// receiver, and what costs is how often they wake one another. Ours and
// libzmq's alternate within one run:
//
//	go test -run '^$' -bench HogDealerToRouter -benchtime 2s ./zmtp/
func BenchmarkHogDealerToRouter(b *testing.B) {
	thr, curvePerf := libzmqThrBinary(b), curvePerfBinary(b)
	for _, size := range []struct {
		name string
		n    int
	}{{"64B", 64}, {"4KiB", 4 << 10}} {
		b.Run("zmtp-null/"+size.name, func(b *testing.B) {
			r := curveListen(b, zmtp.Options{})
			d := curveDial(b, r.Addr().String(), zmtp.Options{Identity: []byte("bench")})
			defer hog(b)()
			benchStream(b, r, d, size.n)
		})
		b.Run("libzmq-null/"+size.name, func(b *testing.B) {
			defer hog(b)()
			b.ResetTimer()
			reportLibzmq(b, size.n, runLibzmq(b, thr, strconv.Itoa(size.n), strconv.Itoa(b.N)))
		})
		b.Run("zmtp-curve/"+size.name, func(b *testing.B) {
			r, d := curveBenchPair(b)
			defer hog(b)()
			benchStream(b, r, d, size.n)
		})
		b.Run("libzmq-curve/"+size.name, func(b *testing.B) {
			defer hog(b)()
			b.ResetTimer()
			reportLibzmq(b, size.n, runLibzmq(b, curvePerf, "thr", strconv.Itoa(size.n), strconv.Itoa(b.N)))
		})
	}
}

// hog starts a process that keeps one core busy, and returns what stops it.
func hog(b *testing.B) (stop func()) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCPUHogHelper$")
	cmd.Env = append(os.Environ(), hogEnv+"=1", "GOMAXPROCS=1")
	if err := cmd.Start(); err != nil {
		b.Fatalf("starting the CPU hog: %v", err)
	}
	return func() {
		cmd.Process.Kill()
		cmd.Wait()
	}
}

// TestCPUHogHelper is the CPU hog of BenchmarkHogDealerToRouter; it runs
// only when the benchmark re-executes the test binary, and spins on one
// core until killed, for hogMax at most.
func TestCPUHogHelper(t *testing.T) {
	if os.Getenv(hogEnv) == "" {
		t.Skip("the CPU hog of BenchmarkHogDealerToRouter")
	}
	end := time.Now().Add(hogMax)
	x := 0
	for time.Now().Before(end) {
		for i := range 1 << 20 {
			x += i ^ x
		}
	}
	if x == 42 {
		t.Log(x)
	}
}
