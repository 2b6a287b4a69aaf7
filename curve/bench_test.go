package curve

import (
	"fmt"
	"testing"
)

var benchSizes = []int{64, 4 << 10, 1 << 20}

func BenchmarkSeal(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			cs, _ := handshake(b)
			payload := make([]byte, n)
			dst := make([]byte, 0, SealedSize(n))
			if _, err := cs.Seal(dst, 0, payload); err != nil { // sizes the scratch buffer
				b.Fatal(err)
			}
			b.SetBytes(int64(n))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := cs.Seal(dst[:0], 0, payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			cs, ss := handshake(b)
			body, err := cs.Seal(nil, 0, make([]byte, n))
			if err != nil {
				b.Fatal(err)
			}
			dst := make([]byte, 0, n)
			ss.recv.last = 0
			if _, _, err := ss.Open(dst, body); err != nil { // sizes the scratch buffer
				b.Fatal(err)
			}
			b.SetBytes(int64(n))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				ss.recv.last = 0 // re-open the same body: benchmark only
				if _, _, err := ss.Open(dst[:0], body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkHandshake(b *testing.B) {
	spub, ssec, err := GenerateKeyPair(nil)
	if err != nil {
		b.Fatal(err)
	}
	cpub, csec, err := GenerateKeyPair(nil)
	if err != nil {
		b.Fatal(err)
	}
	md := []byte("\x0bSocket-Type\x00\x00\x00\x06DEALER")
	b.ReportAllocs()
	for b.Loop() {
		srv, err := NewServer(ServerConfig{Public: spub, Secret: ssec})
		if err != nil {
			b.Fatal(err)
		}
		cli, err := NewClient(ClientConfig{Public: cpub, Secret: csec, ServerKey: spub})
		if err != nil {
			b.Fatal(err)
		}
		hello, err := cli.Hello()
		if err != nil {
			b.Fatal(err)
		}
		welcome, err := srv.Hello(hello)
		if err != nil {
			b.Fatal(err)
		}
		initiate, err := cli.Welcome(welcome, md)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := srv.Initiate(initiate); err != nil {
			b.Fatal(err)
		}
		ready, _, err := srv.Ready(md)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := cli.Ready(ready); err != nil {
			b.Fatal(err)
		}
	}
}
