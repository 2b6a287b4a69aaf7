package zmtp

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// BenchmarkDealerToRouter measures one Dealer streaming to one Router on
// loopback. Compare with testdata/libzmq_thr.c (see spec/zmtp.md).
func BenchmarkDealerToRouter(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int
	}{{"64B", 64}, {"4KiB", 4 << 10}, {"1MiB", 1 << 20}} {
		b.Run(bc.name, func(b *testing.B) {
			r, err := ListenRouter("tcp", "127.0.0.1:0", Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			d, err := DialDealer("tcp", r.Addr().String(), Options{Identity: []byte("bench")})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			msg := make([]byte, bc.size)
			// Warm up: connection established.
			d.SendContext(ctx, msg)
			if _, err := r.Recv(ctx); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(bc.size))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			done := make(chan error, 1)
			go func() {
				for range b.N {
					if err := d.SendContext(ctx, msg); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			for range b.N {
				if _, err := r.Recv(ctx); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			el := time.Since(start).Seconds()
			b.ReportMetric(float64(b.N)/el, "msg/s")
			b.ReportMetric(float64(b.N)*float64(bc.size)/el/1e6, "MB/s")
		})
	}
}

// BenchmarkLibzmqDealerToRouter runs the same measurement with libzmq
// (testdata/libzmq_thr.c, compiled here) for comparison on this machine.
func BenchmarkLibzmqDealerToRouter(b *testing.B) {
	if _, err := exec.LookPath("cc"); err != nil {
		b.Skip("no C compiler")
	}
	if _, err := os.Stat("/usr/include/zmq.h"); err != nil {
		b.Skip("no libzmq3-dev")
	}
	bin := filepath.Join(b.TempDir(), "libzmq_thr")
	if out, err := exec.Command("cc", "-O2", "-o", bin, "testdata/libzmq_thr.c", "-lzmq", "-lpthread").CombinedOutput(); err != nil {
		b.Fatalf("building libzmq_thr: %v\n%s", err, out)
	}
	for _, bc := range []struct {
		name string
		size int
	}{{"64B", 64}, {"4KiB", 4 << 10}, {"1MiB", 1 << 20}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, bin, strconv.Itoa(bc.size), strconv.Itoa(b.N)).Output()
			if err != nil {
				b.Fatalf("libzmq_thr: %v", err)
			}
			var ns int64
			if _, err := fmt.Sscanf(string(out), "elapsed_ns %d", &ns); err != nil || ns <= 0 {
				b.Fatalf("libzmq_thr said %q", out)
			}
			el := time.Duration(ns).Seconds()
			b.SetBytes(int64(bc.size))
			b.ReportMetric(float64(b.N)/el, "msg/s")
			b.ReportMetric(float64(b.N)*float64(bc.size)/el/1e6, "MB/s")
			b.ReportMetric(float64(ns)/float64(b.N), "ns/op")
		})
	}
}
