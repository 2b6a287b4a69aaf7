package curve

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/zyre-go/zyre/internal/testenv"
	"golang.org/x/crypto/nacl/secretbox"
)

// BenchmarkSecretbox measures XSalsa20-Poly1305, the box of every CURVE
// MESSAGE, as golang.org/x/crypto/nacl/secretbox does it (our transport)
// and as libsodium does it (libzmq's; testdata/sodium_secretbox.c, built
// here against Debian's libsodium-dev), one core each, no I/O, sealing
// into and opening into reused buffers. Ours and libsodium's alternate
// within one run:
//
//	go test -run '^$' -bench Secretbox -benchtime 1s ./curve/
func BenchmarkSecretbox(b *testing.B) {
	var key [32]byte
	var nonce [24]byte
	for _, size := range []int{1 << 10, 64 << 10, 1 << 20} {
		name := fmt.Sprintf("%dKiB", size>>10)
		b.Run(name+"/x-crypto/seal", func(b *testing.B) {
			msg := make([]byte, size)
			box := make([]byte, 0, size+secretbox.Overhead)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				nonce[23]++
				box = secretbox.Seal(box[:0], msg, &nonce, &key)
			}
		})
		b.Run(name+"/libsodium/seal", func(b *testing.B) {
			seal, _ := sodiumRun(b, size)
			reportSodium(b, size, seal)
		})
		b.Run(name+"/x-crypto/open", func(b *testing.B) {
			box := secretbox.Seal(nil, make([]byte, size), &nonce, &key)
			out := make([]byte, 0, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				var ok bool
				if out, ok = secretbox.Open(out[:0], box, &nonce, &key); !ok {
					b.Fatal("box does not open")
				}
			}
		})
		b.Run(name+"/libsodium/open", func(b *testing.B) {
			_, open := sodiumRun(b, size)
			reportSodium(b, size, open)
		})
	}
}

// sodiumRun builds testdata/sodium_secretbox.c (once per benchmark
// binary's temporary directory) and runs b.N seals and b.N opens of size
// octets.
func sodiumRun(b *testing.B, size int) (seal, open time.Duration) {
	b.Helper()
	bin := testenv.BuildC(b, "sodium_secretbox", "sodium.h", "libsodium-dev", "-lsodium")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, strconv.Itoa(size), strconv.Itoa(b.N)).Output()
	if err != nil {
		b.Fatalf("sodium_secretbox: %v", err)
	}
	var s, o int64
	if _, err := fmt.Sscanf(string(out), "seal_ns %d open_ns %d", &s, &o); err != nil || s <= 0 || o <= 0 {
		b.Fatalf("sodium_secretbox said %q", out)
	}
	return time.Duration(s), time.Duration(o)
}

// reportSodium reports the C program's time for b.N operations on size
// octets (the benchmark's own timer also counts building the program).
func reportSodium(b *testing.B, size int, el time.Duration) {
	b.ReportMetric(float64(el.Nanoseconds())/float64(b.N), "ns/op")
	b.ReportMetric(float64(size)*float64(b.N)/el.Seconds()/1e6, "MB/s")
}
