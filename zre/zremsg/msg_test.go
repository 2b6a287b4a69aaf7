package zremsg

import (
	"bytes"
	"encoding/hex"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/zyre-go/zyre/internal/golden"
)

// messageVectors lists every ZRE message vector (all *.hex files but the
// beacons, identity and CurveZMQ files) with the fields the README gives.
func messageVectors() map[string]Msg {
	const uuidB = "0F1E2D3C4B5A69788796A5B4C3D2E1F0"
	hdrs := []Header{{"X-ROLE", "tester"}, {"X-COLOR", "blue"}}
	return map[string]Msg{
		"hello.hex": {ID: MsgHello, Version: 2, Sequence: 1, Endpoint: "tcp://10.77.0.1:49152",
			Groups: []string{"GLOBAL", "chat"}, Status: 2, Name: "node-a", Headers: hdrs},
		"captured_hello_node_b.hex": {ID: MsgHello, Version: 2, Sequence: 1, Endpoint: "tcp://10.77.0.2:49152",
			Groups: []string{"GLOBAL", "chat"}, Status: 2, Name: "node-b", Headers: hdrs},
		"hello_empty.hex": {ID: MsgHello, Version: 2, Sequence: 1, Endpoint: "tcp://10.77.0.2:49152",
			Status: 0, Name: "0F1E2D"},
		"hello_curve.hex": {ID: MsgHello, Version: 2, Sequence: 1, Endpoint: "tcp://10.77.0.1:49152",
			Groups: []string{"GLOBAL"}, Status: 1, Name: "node-a",
			Headers: []Header{{"X-PUBLICKEY", "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"}}},
		"whisper.hex": {ID: MsgWhisper, Version: 2, Sequence: 2,
			Content: [][]byte{[]byte("Hello"), {0x00, 0x01, 0x7f, 0x80, 0xff}}},
		"whisper_nocontent.hex": {ID: MsgWhisper, Version: 2, Sequence: 2},
		"shout.hex": {ID: MsgShout, Version: 2, Sequence: 3, Group: "GLOBAL",
			Content: [][]byte{[]byte("Hello, World")}},
		"shout_2frames.hex": {ID: MsgShout, Version: 2, Sequence: 3, Group: "chat",
			Content: [][]byte{[]byte("part1"), []byte("part2")}},
		"join.hex":          {ID: MsgJoin, Version: 2, Sequence: 4, Group: "ops", Status: 3},
		"leave.hex":         {ID: MsgLeave, Version: 2, Sequence: 5, Group: "ops", Status: 4},
		"ping.hex":          {ID: MsgPing, Version: 2, Sequence: 6},
		"ping_ok.hex":       {ID: MsgPingOK, Version: 2, Sequence: 7},
		"ping_seq65535.hex": {ID: MsgPing, Version: 2, Sequence: 65535},
		"ping_seq0.hex":     {ID: MsgPing, Version: 2, Sequence: 0},
		"elect.hex":         {ID: MsgElect, Version: 2, Sequence: 2, Group: "GLOBAL", ChallengerID: uuidB},
		"leader.hex":        {ID: MsgLeader, Version: 2, Sequence: 3, Group: "GLOBAL", LeaderID: uuidB},
		"goodbye.hex":       {ID: MsgGoodbye, Version: 2, Sequence: 4},
	}
}

// normalize makes nil and empty slices compare equal.
func normalize(m Msg) Msg {
	if len(m.Groups) == 0 {
		m.Groups = nil
	}
	if len(m.Headers) == 0 {
		m.Headers = nil
	}
	if len(m.Content) == 0 {
		m.Content = nil
	}
	return m
}

func TestVectorsCoverEveryMessageFile(t *testing.T) {
	files, err := filepath.Glob(golden.Path("*.hex"))
	if err != nil {
		t.Fatal(err)
	}
	want := messageVectors()
	n := 0
	for _, f := range files {
		name := filepath.Base(f)
		if strings.Contains(name, "beacon") || name == "identity.hex" || strings.HasPrefix(name, "curvezmq_") {
			continue
		}
		n++
		if _, ok := want[name]; !ok {
			t.Errorf("vector %s has no expected fields in messageVectors", name)
		}
	}
	if n != len(want) {
		t.Errorf("found %d message vectors, table has %d", n, len(want))
	}
}

func TestDecodeVectors(t *testing.T) {
	for name, want := range messageVectors() {
		t.Run(name, func(t *testing.T) {
			frames := golden.HexLines(t, name)
			m, err := Decode(frames)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got := normalize(*m); !reflect.DeepEqual(got, normalize(want)) {
				t.Fatalf("decoded\n %+v\nwant\n %+v", got, want)
			}
			again, err := m.Frames()
			if err != nil {
				t.Fatalf("Frames: %v", err)
			}
			if len(again) != len(frames) {
				t.Fatalf("re-encoded %d frames, vector has %d", len(again), len(frames))
			}
			for i := range frames {
				if !bytes.Equal(again[i], frames[i]) {
					t.Errorf("frame %d:\n got %x\nwant %x", i, again[i], frames[i])
				}
			}
			// Encoding the expected fields from scratch gives the same bytes.
			fresh := want
			built, err := fresh.Frames()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(built, frames) {
				t.Errorf("encoding the README fields:\n got %x\nwant %x", built, frames)
			}
		})
	}
}

func TestHeaderLookup(t *testing.T) {
	m, err := Decode(golden.HexLines(t, "hello_curve.hex"))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := m.Header("X-PUBLICKEY"); !ok || v != "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7" {
		t.Errorf("Header(X-PUBLICKEY) = %q, %v", v, ok)
	}
	if _, ok := m.Header("X-NONE"); ok {
		t.Error("Header(X-NONE) found")
	}
}

func TestDecodeVersions(t *testing.T) {
	base := golden.HexLines(t, "hello.hex")
	for v := 0; v < 256; v++ {
		f := bytes.Clone(base[0])
		f[3] = byte(v)
		m, err := Decode([][]byte{f})
		if v == 2 || v == 3 {
			if err != nil {
				t.Errorf("version %d refused: %v", v, err)
				continue
			}
			if m.Version != uint8(v) {
				t.Errorf("version %d decoded as %d", v, m.Version)
			}
			out, _ := m.AppendEncode(nil)
			if out[3] != Version || !bytes.Equal(out[4:], f[4:]) {
				t.Errorf("version %d: re-encoded %x", v, out)
			}
			continue
		}
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("version %d: err = %v, want ErrMalformed", v, err)
		} else if !strings.Contains(err.Error(), "version") {
			t.Errorf("version %d: error %q does not name the version", v, err)
		}
	}
}

// TestDecodeTruncated cuts every vector's first frame at every offset.
func TestDecodeTruncated(t *testing.T) {
	for name := range messageVectors() {
		frames := golden.HexLines(t, name)
		for cut := 0; cut < len(frames[0]); cut++ {
			in := append([][]byte{frames[0][:cut]}, frames[1:]...)
			m, err := Decode(in)
			if err == nil {
				t.Errorf("%s cut at %d: decoded %+v", name, cut, m)
				continue
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("%s cut at %d: %v does not wrap ErrMalformed", name, cut, err)
			}
		}
		// One octet too many is an error too.
		in := append([][]byte{append(bytes.Clone(frames[0]), 0)}, frames[1:]...)
		if _, err := Decode(in); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "trailing") {
			t.Errorf("%s + 1 octet: err = %v", name, err)
		}
	}
}

func hx(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

type malformedCase struct {
	name   string
	frames [][]byte
	want   string // substring of the error
}

// malformedCases are hostile or broken messages; FuzzDecode uses them as
// seeds too.
func malformedCases(tb testing.TB) []malformedCase {
	hello := golden.HexLines(tb, "hello.hex")[0]
	ping := golden.HexLines(tb, "ping.hex")[0]
	return []malformedCase{
		{"no frames", nil, "no frames"},
		{"empty frame", [][]byte{{}}, "shorter than"},
		{"bad signature", [][]byte{hx("aaa2 06 02 0006")}, "signature"},
		{"id 0", [][]byte{hx("aaa1 00 02 0006")}, "unknown message id 0"},
		{"id 11", [][]byte{hx("aaa1 0b 02 0006")}, "unknown message id 11"},
		{"HELLO with 2 frames", [][]byte{hello, []byte("x")}, "extra frames"},
		{"PING with 2 frames", [][]byte{ping, {}}, "extra frames"},
		{"JOIN with 2 frames", [][]byte{hx("aaa104020004036f707303"), {}}, "extra frames"},
		// The brief's example: groups count 0xffffffff with 12 octets left.
		{"huge groups count", [][]byte{hx("aaa1 01 02 0001 00 ffffffff 000000000000000000000000")},
			"HELLO: groups count 4294967295 exceeds remaining 12 octets"},
		{"huge headers count", [][]byte{hx("aaa1 01 02 0001 00 00000000 00 00 ffffffff")},
			"headers count 4294967295 exceeds remaining 0 octets"},
		{"group longstr too long", [][]byte{hx("aaa1 01 02 0001 00 00000001 00000010 41")},
			"group length 16 exceeds remaining 1 octets"},
		{"endpoint too long", [][]byte{hx("aaa1 01 02 0001 05 4142")}, "endpoint length 5 exceeds remaining 2"},
		{"header value too long", [][]byte{hx("aaa1 01 02 0001 00 00000000 00 00 00000001 01 4b 7fffffff")},
			"header value length 2147483647"},
		{"duplicate header", [][]byte{hx("aaa1 01 02 0001 00 00000000 00 00 00000002 01 4b 00000001 31 01 4b 00000001 32")},
			`duplicate header "K"`},
		{"NUL in group", [][]byte{hx("aaa1 04 02 0004 03 6f0073 03")}, "group contains a NUL octet"},
		{"NUL in header value", [][]byte{hx("aaa1 01 02 0001 00 00000000 00 00 00000001 01 4b 00000002 3100")},
			"header value contains a NUL octet"},
		{"JOIN without status", [][]byte{hx("aaa1 04 02 0004 03 6f7073")}, "status: truncated"},
		{"ELECT without challenger", [][]byte{hx("aaa1 08 02 0002 00")}, "challenger_id length: truncated"},
		{"PING with payload", [][]byte{hx("aaa1 06 02 0006 00")}, "1 trailing octets"},
		{"WHISPER with fields", [][]byte{hx("aaa1 02 02 0002 00")}, "1 trailing octets"},
	}
}

func TestDecodeMalformed(t *testing.T) {
	tests := malformedCases(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode(tt.frames)
			if err == nil {
				t.Fatalf("decoded %+v", m)
			}
			if m != nil {
				t.Errorf("returned a message with the error")
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("%v does not wrap ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestDuplicateHeadersMany(t *testing.T) {
	m := Msg{ID: MsgHello}
	for i := range 40 {
		m.Headers = append(m.Headers, Header{Key: string(rune('A' + i)), Value: "v"})
	}
	f, err := m.AppendEncode(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode([][]byte{f}); err != nil {
		t.Fatalf("40 distinct headers: %v", err)
	}
	m.Headers = append(m.Headers, Header{Key: "C", Value: "again"})
	f, _ = m.AppendEncode(nil)
	if _, err := Decode([][]byte{f}); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "duplicate") {
		t.Fatalf("duplicate among 41 headers: err = %v", err)
	}
}

func TestEncodeErrors(t *testing.T) {
	long := strings.Repeat("x", 256)
	tests := []struct {
		name string
		m    Msg
		want string
	}{
		{"unknown id", Msg{ID: 0}, "unknown message id 0"},
		{"id 11", Msg{ID: 11}, "unknown message id 11"},
		{"long endpoint", Msg{ID: MsgHello, Endpoint: long}, "endpoint is 256 octets"},
		{"long name", Msg{ID: MsgHello, Name: long}, "name is 256 octets"},
		{"long header key", Msg{ID: MsgHello, Headers: []Header{{long, ""}}}, "header key is 256 octets"},
		{"long group", Msg{ID: MsgJoin, Group: long}, "group is 256 octets"},
		{"long shout group", Msg{ID: MsgShout, Group: long}, "group is 256 octets"},
		{"long challenger", Msg{ID: MsgElect, ChallengerID: long}, "challenger_id is 256 octets"},
		{"long leader", Msg{ID: MsgLeader, LeaderID: long}, "leader_id is 256 octets"},
		{"NUL in name", Msg{ID: MsgHello, Name: "a\x00b"}, "name contains a NUL octet"},
		{"NUL in group", Msg{ID: MsgHello, Groups: []string{"\x00"}}, "group contains a NUL octet"},
		{"NUL in header value", Msg{ID: MsgHello, Headers: []Header{{"K", "v\x00"}}}, "header value contains a NUL octet"},
		{"content on PING", Msg{ID: MsgPing, Content: [][]byte{{1}}}, "without content"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tt.m.AppendEncode([]byte("keep"))
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("AppendEncode err = %v, want %q", err, tt.want)
			}
			if string(out) != "keep" {
				t.Errorf("AppendEncode changed dst on error: %q", out)
			}
			if _, err := tt.m.Frames(); err == nil {
				t.Errorf("Frames succeeded")
			}
		})
	}
	// 255 octets is the limit, not an error.
	m := Msg{ID: MsgJoin, Group: long[:255]}
	if _, err := m.AppendEncode(nil); err != nil {
		t.Errorf("255-octet group: %v", err)
	}
}

func TestMsgIDString(t *testing.T) {
	want := []string{"MsgID(0)", "HELLO", "WHISPER", "SHOUT", "JOIN", "LEAVE", "PING", "PING-OK", "ELECT", "LEADER", "GOODBYE", "MsgID(11)"}
	for i, w := range want {
		if got := MsgID(i).String(); got != w {
			t.Errorf("MsgID(%d).String() = %q, want %q", i, got, w)
		}
	}
}

func TestUnmarshalFramesReuse(t *testing.T) {
	whisper := golden.HexLines(t, "whisper.hex")
	var m Msg
	if err := m.UnmarshalFrames(golden.HexLines(t, "hello.hex")); err != nil {
		t.Fatal(err)
	}
	if err := m.UnmarshalFrames(whisper); err != nil {
		t.Fatal(err)
	}
	if m.Name != "" || m.Groups != nil || len(m.Content) != 2 {
		t.Fatalf("fields of the previous message left over: %+v", m)
	}
	if err := m.UnmarshalFrames([][]byte{{0xaa}}); err == nil || !reflect.DeepEqual(m, Msg{}) {
		t.Fatalf("after an error: %v, %+v", err, m)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if err := m.UnmarshalFrames(whisper); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("UnmarshalFrames(WHISPER): %v allocs", allocs)
	}
}

func TestAppendEncodeNoAlloc(t *testing.T) {
	m, err := Decode(golden.HexLines(t, "hello.hex"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 512)
	allocs := testing.AllocsPerRun(100, func() {
		buf, _ = m.AppendEncode(buf[:0])
	})
	if allocs != 0 {
		t.Errorf("AppendEncode into a big enough buffer: %v allocs", allocs)
	}
}

// FuzzDecode is a round-trip fuzzer: decode → encode → decode gives the
// same message, and a version-2 input re-encodes to the same frames.
func FuzzDecode(f *testing.F) {
	for name := range messageVectors() {
		frames := golden.HexLines(f, name)
		f.Add(joinFrames(frames))
	}
	for _, c := range malformedCases(f) {
		f.Add(joinFrames(c.frames))
	}
	f.Add(joinFrames([][]byte{hx("aaa1 01 03 0001 00 00000000 00 00 00000000")}))
	f.Fuzz(func(t *testing.T, data []byte) {
		frames := splitFrames(data)
		m, err := Decode(frames)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		out, err := m.Frames()
		if err != nil {
			t.Fatalf("decoded message does not encode: %v (%+v)", err, m)
		}
		if m.Version == Version {
			if !reflect.DeepEqual(out, frames) {
				t.Fatalf("re-encoded\n %x\nwant\n %x", out, frames)
			}
		} else if !bytes.Equal(out[0][4:], frames[0][4:]) || out[0][3] != Version {
			t.Fatalf("version %d re-encoded as %x", m.Version, out[0])
		}
		m2, err := Decode(out)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		m.Version = Version
		if !reflect.DeepEqual(normalize(*m), normalize(*m2)) {
			t.Fatalf("round trip changed the message:\n %+v\n %+v", m, m2)
		}
	})
}

// joinFrames and splitFrames map a list of frames to one fuzz input and
// back: each frame is a u16 big-endian length and its octets.
func joinFrames(frames [][]byte) []byte {
	var b []byte
	for _, f := range frames {
		b = append(b, byte(len(f)>>8), byte(len(f)))
		b = append(b, f...)
	}
	return b
}

func splitFrames(b []byte) [][]byte {
	var frames [][]byte
	for len(b) >= 2 {
		n := int(b[0])<<8 | int(b[1])
		b = b[2:]
		n = min(n, len(b))
		frames = append(frames, b[:n])
		b = b[n:]
	}
	return frames
}

// benchSink keeps decoded messages alive so that benchmarks count the
// allocation of the Msg, as a real caller would see it.
var benchSink *Msg

func BenchmarkDecodeWhisper(b *testing.B) {
	frames := golden.HexLines(b, "whisper.hex")
	b.ReportAllocs()
	for b.Loop() {
		m, err := Decode(frames)
		if err != nil {
			b.Fatal(err)
		}
		benchSink = m
	}
}

func BenchmarkEncodeWhisper(b *testing.B) {
	m := Msg{ID: MsgWhisper, Sequence: 2, Content: [][]byte{[]byte("Hello"), {0, 1, 0x7f, 0x80, 0xff}}}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = m.AppendEncode(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFramesWhisper(b *testing.B) {
	m := Msg{ID: MsgWhisper, Sequence: 2, Content: [][]byte{[]byte("Hello"), {0, 1, 0x7f, 0x80, 0xff}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Frames(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeHello(b *testing.B) {
	frames := golden.HexLines(b, "hello.hex")
	b.ReportAllocs()
	for b.Loop() {
		m, err := Decode(frames)
		if err != nil {
			b.Fatal(err)
		}
		benchSink = m
	}
}
