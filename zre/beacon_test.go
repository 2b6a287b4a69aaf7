package zre

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/golden"
)

func TestBeaconVectors(t *testing.T) {
	uuidA := uuid.MustParse("7d1c5a0e9b4f4e2a8c3d6b5a4f3e2d1c")
	keyA, err := curve.ParsePublicKey("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7")
	if err != nil {
		t.Fatal(err)
	}
	capV1 := uuid.MustParse("a75cd26eda7149dfa00454db972d567a")
	capV3 := uuid.MustParse("25b2ee8daef847ce89b27637d302f002")
	tests := []struct {
		file string
		want Beacon
	}{
		{"beacon_v1.hex", Beacon{Version: 1, UUID: uuidA, Port: 49152}},
		{"beacon_v1_stop.hex", Beacon{Version: 1, UUID: uuidA, Port: 0}},
		{"beacon_v3.hex", Beacon{Version: 3, UUID: uuidA, Port: 49152, PublicKey: keyA}},
		{"beacon_v3_stop.hex", Beacon{Version: 3, UUID: uuidA, Port: 0, PublicKey: keyA}},
		{"captured_beacon_v1.hex", Beacon{Version: 1, UUID: capV1, Port: 49152}},
		{"captured_beacon_v1_stop.hex", Beacon{Version: 1, UUID: capV1, Port: 0}},
		{"captured_beacon_v3.hex", Beacon{Version: 3, UUID: capV3, Port: 49152, PublicKey: keyA}},
		{"captured_beacon_v3_stop.hex", Beacon{Version: 3, UUID: capV3, Port: 0, PublicKey: keyA}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			p := golden.HexLines(t, tt.file)[0]
			b, err := ParseBeacon(p)
			if err != nil {
				t.Fatal(err)
			}
			if b != tt.want {
				t.Fatalf("parsed %+v, want %+v", b, tt.want)
			}
			if b.Stopping() != (tt.want.Port == 0) {
				t.Errorf("Stopping() = %v", b.Stopping())
			}
			if b.HasKey() != (tt.want.Version == 3) {
				t.Errorf("HasKey() = %v", b.HasKey())
			}
			if out := b.AppendMarshal(nil); !bytes.Equal(out, p) {
				t.Errorf("re-marshalled %x, want %x", out, p)
			}
		})
	}
}

func TestBeaconNoKey(t *testing.T) {
	p := golden.HexLines(t, "beacon_v3.hex")[0]
	p[22] = 0 // the C reference reads a key starting with 0x00 as "no key"
	b, err := ParseBeacon(p)
	if err != nil {
		t.Fatal(err)
	}
	if b.HasKey() {
		t.Error("HasKey() = true for a key starting with 0x00")
	}
	if !bytes.Equal(b.AppendMarshal(nil), p) {
		t.Error("does not re-marshal byte for byte")
	}
	if (Beacon{Version: 1}).HasKey() {
		t.Error("v1 beacon HasKey")
	}
}

func TestBeaconZeroValueMarshalsV1(t *testing.T) {
	out := Beacon{Port: 7}.AppendMarshal([]byte("x"))
	if len(out) != 1+BeaconV1Size || string(out[:5]) != "xZRE\x01" {
		t.Fatalf("got %x", out)
	}
}

func TestParseBeaconErrors(t *testing.T) {
	v1 := golden.HexLines(t, "beacon_v1.hex")[0]
	v3 := golden.HexLines(t, "beacon_v3.hex")[0]
	with := func(p []byte, i int, c byte) []byte { p = bytes.Clone(p); p[i] = c; return p }
	tests := []struct {
		name string
		p    []byte
		want string
	}{
		{"empty", nil, "0 octets"},
		{"3 octets", []byte("ZRE"), "3 octets"},
		{"bad prefix", with(v1, 0, 'X'), `prefix "XRE"`},
		{"version 2", with(v1, 3, 2), "bad version 2"},
		{"version 0", with(v1, 3, 0), "bad version 0"},
		{"v1 short", v1[:21], "version 1 beacon is 21 octets, want 22"},
		{"v1 long", append(bytes.Clone(v1), 0), "is 23 octets, want 22"},
		{"v1 with key", with(v3, 3, 1), "is 54 octets, want 22"},
		{"v3 short", v3[:53], "version 3 beacon is 53 octets, want 54"},
		{"v3 without key", with(v1, 3, 3), "is 22 octets, want 54"},
		{"v3 long", append(bytes.Clone(v3), 0), "is 55 octets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseBeacon(tt.p)
			if !errors.Is(err, ErrBadBeacon) {
				t.Fatalf("err = %v, want ErrBadBeacon", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func FuzzParseBeacon(f *testing.F) {
	for _, name := range []string{"beacon_v1.hex", "beacon_v1_stop.hex", "beacon_v3.hex", "beacon_v3_stop.hex",
		"captured_beacon_v1.hex", "captured_beacon_v1_stop.hex", "captured_beacon_v3.hex", "captured_beacon_v3_stop.hex"} {
		f.Add(golden.HexLines(f, name)[0])
	}
	f.Add([]byte("ZRE"))
	f.Add([]byte("ZRE\x02"))
	f.Fuzz(func(t *testing.T, p []byte) {
		b, err := ParseBeacon(p)
		if err != nil {
			if !errors.Is(err, ErrBadBeacon) {
				t.Fatalf("error %v does not wrap ErrBadBeacon", err)
			}
			return
		}
		if out := b.AppendMarshal(nil); !bytes.Equal(out, p) {
			t.Fatalf("re-marshalled %x, want %x", out, p)
		}
	})
}

func BenchmarkParseBeacon(b *testing.B) {
	p := golden.HexLines(b, "beacon_v3.hex")[0]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseBeacon(p); err != nil {
			b.Fatal(err)
		}
	}
}
