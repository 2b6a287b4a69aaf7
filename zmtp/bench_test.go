package zmtp_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/zyre-go/zyre/internal/testenv"
	"github.com/zyre-go/zyre/zmtp"
)

// benchSizes are the message sizes every throughput benchmark uses.
var benchSizes = []struct {
	name string
	size int
}{{"64B", 64}, {"4KiB", 4 << 10}, {"1MiB", 1 << 20}}

// BenchmarkDealerToRouter measures one Dealer streaming to one Router on
// loopback. Compare with testdata/libzmq_thr.c (see spec/zmtp.md).
func BenchmarkDealerToRouter(b *testing.B) {
	for _, bc := range benchSizes {
		b.Run(bc.name, func(b *testing.B) {
			r, err := zmtp.ListenRouter("tcp", "127.0.0.1:0", zmtp.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			d, err := zmtp.DialDealer("tcp", r.Addr().String(), zmtp.Options{Identity: []byte("bench")})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			benchStream(b, r, d, bc.size)
		})
	}
}

// BenchmarkDealerToRouterBound is BenchmarkDealerToRouter with
// Options.SendBound on both sides (100 ms, as the node's default), its
// TCP_NOTSENT_LOWAT included: on loopback the measured rate makes the
// bound far larger than SendHWM's messages, so it should cost nothing.
func BenchmarkDealerToRouterBound(b *testing.B) {
	bound := zmtp.SendBound{Target: 100 * time.Millisecond}
	for _, bc := range benchSizes {
		b.Run(bc.name, func(b *testing.B) {
			r, err := zmtp.ListenRouter("tcp", "127.0.0.1:0", zmtp.Options{SendBound: bound})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			d, err := zmtp.DialDealer("tcp", r.Addr().String(), zmtp.Options{Identity: []byte("bench"), SendBound: bound})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			benchStream(b, r, d, bc.size)
		})
	}
}

// benchStream streams b.N one-frame messages of size octets from d to r,
// after one warm-up message (the connection and its handshake), and reports
// msg/s and MB/s.
func benchStream(b *testing.B, r *zmtp.Router, d *zmtp.Dealer, size int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	msg := make([]byte, size)
	if err := d.SendContext(ctx, msg); err != nil {
		b.Fatal(err)
	}
	if _, err := r.Recv(ctx); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), testenv.ProcessCPU()
	vcs0, ics0 := contextSwitches()
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
		m, err := r.Recv(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(m.Frames) != 1 || len(m.Frames[0]) != size {
			b.Fatalf("got %d frames, first of %d octets", len(m.Frames), len(m.Frames[0]))
		}
		// As libzmq_thr.c closes each message (zmq_msg_close), which
		// gives its memory back to malloc.
		m.Release()
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	el := time.Since(start).Seconds()
	b.ReportMetric(float64(b.N)/el, "msg/s")
	b.ReportMetric(float64(b.N)*float64(size)/el/1e6, "MB/s")
	reportCPU(b, testenv.ProcessCPU()-cpu0)
	vcs, ics := contextSwitches()
	b.ReportMetric(float64(vcs-vcs0)/float64(b.N), "vcsw/op")
	b.ReportMetric(float64(ics-ics0)/float64(b.N), "ivcsw/op")
}

// reportCPU reports cpu, the CPU time of every thread of the process that
// did b.N operations (sender and receiver, for a stream), per operation:
// less sensitive than msg/s to what else runs on the machine.
func reportCPU(b *testing.B, cpu time.Duration) {
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// BenchmarkLibzmqDealerToRouter runs the same measurement with libzmq
// (testdata/libzmq_thr.c, compiled here) for comparison on this machine.
func BenchmarkLibzmqDealerToRouter(b *testing.B) {
	bin := libzmqThrBinary(b)
	for _, bc := range benchSizes {
		b.Run(bc.name, func(b *testing.B) {
			reportLibzmq(b, bc.size, runLibzmq(b, bin, strconv.Itoa(bc.size), strconv.Itoa(b.N)))
		})
	}
}

// libzmqThrBinary builds testdata/libzmq_thr.c against libzmq.
func libzmqThrBinary(b *testing.B) string {
	b.Helper()
	return testenv.BuildC(b, "libzmq_thr", "zmq.h", "libzmq3-dev", "-lzmq", "-lpthread")
}

// runLibzmq runs a C benchmark program that prints "elapsed_ns N".
func runLibzmq(b *testing.B, bin string, args ...string) time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("%s %q: %v", filepath.Base(bin), args, err)
	}
	// The whole process: its setup and the warm-up message too, which a
	// run of a second makes negligible.
	reportCPU(b, cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime())
	var ns int64
	if _, err := fmt.Sscanf(string(out), "elapsed_ns %d", &ns); err != nil || ns <= 0 {
		b.Fatalf("%s said %q", filepath.Base(bin), out)
	}
	return time.Duration(ns)
}

// reportLibzmq reports b.N messages of size octets in el as msg/s, MB/s
// and ns/op.
func reportLibzmq(b *testing.B, size int, el time.Duration) {
	b.SetBytes(int64(size))
	b.ReportMetric(float64(b.N)/el.Seconds(), "msg/s")
	b.ReportMetric(float64(b.N)*float64(size)/el.Seconds()/1e6, "MB/s")
	b.ReportMetric(float64(el.Nanoseconds())/float64(b.N), "ns/op")
}

// BenchmarkRawTCP is the wire's bound for BenchmarkDealerToRouter: one
// goroutine writes length-prefixed messages through a 64 KiB bufio.Writer
// (flushed when nothing more is queued, as our writer does), another reads
// them through a 64 KiB bufio.Reader into one reused buffer; no protocol,
// no allocation per message. The 1MiB-writev row is the tighter bound for
// large messages: each message is one writev(2) of its 4-octet header and
// body (net.Buffers), and the reader reads the header, then the body
// straight into one reused buffer, with no bufio.Reader between. The
// 1MiB-writev-lowat row (Linux) adds what our reader does for a large
// body: the socket's receive low-water mark raised to what the body still
// needs, at most 512 KiB, while it is read.
func BenchmarkRawTCP(b *testing.B) {
	for _, bc := range benchSizes {
		b.Run(bc.name, func(b *testing.B) { benchRawTCP(b, bc.size, false, false) })
	}
	b.Run("1MiB-writev", func(b *testing.B) { benchRawTCP(b, 1<<20, true, false) })
	if rawLowat != nil {
		b.Run("1MiB-writev-lowat", func(b *testing.B) { benchRawTCP(b, 1<<20, true, true) })
	}
}

// rawLowat sets a TCP connection's receive low-water mark, where the
// system has one (bench_lowat_linux_test.go).
var rawLowat func(c net.Conn, n int)

func benchRawTCP(b *testing.B, size int, direct, lowat bool) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	wc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer wc.Close()
	rc, ok := <-accepted
	if !ok {
		b.Fatal("accept failed")
	}
	defer rc.Close()
	msg := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), testenv.ProcessCPU()
	done := make(chan error, 1)
	go func() {
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], uint32(size))
		if direct {
			for range b.N {
				v := net.Buffers{hdr[:], msg}
				if _, err := v.WriteTo(wc); err != nil {
					done <- err
					return
				}
			}
			done <- nil
			return
		}
		bw := bufio.NewWriterSize(wc, 64<<10)
		for i := range b.N {
			bw.Write(hdr[:])
			bw.Write(msg)
			if i%64 == 63 || i == b.N-1 {
				if err := bw.Flush(); err != nil {
					done <- err
					return
				}
			}
		}
		done <- nil
	}()
	var r io.Reader = rc
	if !direct {
		r = bufio.NewReaderSize(rc, 64<<10)
	}
	buf := make([]byte, size)
	var hdr [4]byte
	for range b.N {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			b.Fatal(err)
		}
		if n := binary.BigEndian.Uint32(hdr[:]); n != uint32(size) {
			b.Fatalf("length %d", n)
		}
		if !lowat {
			if _, err := io.ReadFull(r, buf); err != nil {
				b.Fatal(err)
			}
			continue
		}
		set := 0
		for off := 0; off < size; {
			if want := min(size-off, 512<<10); set == 0 || want < set {
				rawLowat(rc, want)
				set = want
			}
			n, err := r.Read(buf[off:])
			if err != nil {
				b.Fatal(err)
			}
			off += n
		}
		rawLowat(rc, 1)
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	el := time.Since(start).Seconds()
	b.ReportMetric(float64(b.N)/el, "msg/s")
	b.ReportMetric(float64(b.N)*float64(size)/el/1e6, "MB/s")
	reportCPU(b, testenv.ProcessCPU()-cpu0)
}
