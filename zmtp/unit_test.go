package zmtp

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/golden"
)

func TestGreetingEncode(t *testing.T) {
	tests := []struct {
		name string
		g    Greeting
		want string // hex of the 64 octets
	}{
		{"null empty identity", Greeting{Major: 3, Minor: 1, Mechanism: "NULL"},
			"ff00000000000000017f03014e554c4c" + strings.Repeat("00", 48)},
		{"curve client 17-octet identity", Greeting{Major: 3, Minor: 1, Mechanism: "CURVE", IdentityLen: 17},
			"ff00000000000000127f0301435552564500" + strings.Repeat("00", 46)},
		{"as-server", Greeting{Major: 3, Minor: 1, Mechanism: "CURVE", AsServer: true},
			"ff00000000000000017f03014355525645" + strings.Repeat("00", 15) + "01" + strings.Repeat("00", 31)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := hex.EncodeToString(AppendGreeting(nil, tt.g))
			if got != tt.want {
				t.Fatalf("greeting\n got %s\nwant %s", got, tt.want)
			}
			back, err := ParseGreeting(AppendGreeting(nil, tt.g))
			if err != nil {
				t.Fatal(err)
			}
			if back != tt.g {
				t.Fatalf("round trip: got %+v, want %+v", back, tt.g)
			}
		})
	}
}

// TestGreetingGolden checks our greeting against the ones libzmq wrote in the
// CURVE golden vectors, byte for byte.
func TestGreetingGolden(t *testing.T) {
	for _, tc := range []struct {
		file string
		g    Greeting
	}{
		{"curvezmq_client_to_server.hex", Greeting{Major: 3, Minor: 1, Mechanism: "CURVE", IdentityLen: 17}},
		// libzmq's CURVE server in the C reference puts as-server 0 on the wire.
		{"curvezmq_server_to_client.hex", Greeting{Major: 3, Minor: 1, Mechanism: "CURVE"}},
	} {
		want := golden.HexLines(t, tc.file)[0]
		got := AppendGreeting(nil, tc.g)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: greeting\n got % x\nwant % x", tc.file, got, want)
		}
		pg, err := ParseGreeting(want)
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if pg != tc.g {
			t.Errorf("%s: parsed %+v, want %+v", tc.file, pg, tc.g)
		}
	}
}

func TestGreetingErrors(t *testing.T) {
	good := AppendGreeting(nil, Greeting{Major: 3, Minor: 1, Mechanism: "NULL"})
	mod := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	tests := []struct {
		name, want string
		b          []byte
	}{
		{"short", "greeting of 10", good[:10]},
		{"zmtp 1.0 signature", "bad greeting signature", mod(func(b []byte) { b[0] = 5 })},
		{"no 0x7f", "bad greeting signature", mod(func(b []byte) { b[9] = 0 })},
		{"version 2.0", "ZMTP 2.0, need 3.0", mod(func(b []byte) { b[10], b[11] = 2, 0 })},
		{"garbage in mechanism", "bad character", mod(func(b []byte) { b[12] = 'n' })},
		{"mechanism not zero padded", "malformed mechanism", mod(func(b []byte) { b[20] = 'X' })},
		{"as-server 2", "as-server", mod(func(b []byte) { b[32] = 2 })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseGreeting(tt.b)
			if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrProtocol containing %q", err, tt.want)
			}
		})
	}
	// 3.0 is accepted.
	if _, err := ParseGreeting(mod(func(b []byte) { b[11] = 0 })); err != nil {
		t.Fatalf("ZMTP 3.0: %v", err)
	}
}

func TestMetadataRoundTrip(t *testing.T) {
	m := Metadata{{"Socket-Type", []byte("DEALER")}, {"Identity", []byte{}}, {"X-Big", bytes.Repeat([]byte{7}, 300)}}
	b := AppendMetadata(nil, m)
	back, err := ParseMetadata(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(m) {
		t.Fatalf("got %d properties, want %d", len(back), len(m))
	}
	for i := range m {
		if back[i].Name != m[i].Name || !bytes.Equal(back[i].Value, m[i].Value) {
			t.Fatalf("property %d: got %+v, want %+v", i, back[i], m[i])
		}
	}
	if v, ok := back.Get("socket-TYPE"); !ok || string(v) != "DEALER" {
		t.Fatalf("Get is not case-insensitive: %q %v", v, ok)
	}
	if _, ok := back.Get("Nope"); ok {
		t.Fatal("Get found a missing property")
	}
	if !bytes.Equal(AppendMetadata(nil, back), b) {
		t.Fatal("re-encoding differs")
	}
}

func TestParseMetadataErrors(t *testing.T) {
	tests := []struct {
		name, want string
		b          []byte
	}{
		{"empty name", "empty property name", []byte{0}},
		{"name past end", "past the end", []byte{9, 'a'}},
		{"truncated value length", "truncated value length", []byte{1, 'a', 0, 0}},
		{"value past end", "past the end", []byte{1, 'a', 0xff, 0xff, 0xff, 0xff, 1}},
		{"bad name char", "bad character", []byte{1, ' ', 0, 0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMetadata(tt.b)
			if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrProtocol containing %q", err, tt.want)
			}
		})
	}
}

func newTestReader(b []byte) *frameReader {
	return &frameReader{r: bufio.NewReader(bytes.NewReader(b))}
}

func TestFrames(t *testing.T) {
	var w bytes.Buffer
	fw := frameWriter{w: &w}
	bodies := [][]byte{nil, []byte("x"), bytes.Repeat([]byte{1}, 255), bytes.Repeat([]byte{2}, 256), bytes.Repeat([]byte{3}, 200000)}
	for i, b := range bodies {
		if err := fw.writeFrame(byte(i%2)*FlagMore, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := fw.flush(); err != nil {
		t.Fatal(err)
	}
	raw := w.Bytes()
	if raw[0] != 0 || raw[1] != 0 {
		t.Fatalf("empty frame header % x", raw[:2])
	}
	// The 256-octet frame uses the long form.
	if off := 2 + 3 + 257; raw[off] != FlagLong|FlagMore || !bytes.Equal(raw[off+1:off+9], []byte{0, 0, 0, 0, 0, 0, 1, 0}) {
		t.Fatalf("long header % x", raw[off:off+9])
	}
	fr := newTestReader(raw)
	for i, want := range bodies {
		flags, got, err := fr.readFrame(-1)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if flags != byte(i%2)*FlagMore || !bytes.Equal(got, want) {
			t.Fatalf("frame %d: flags %#x len %d", i, flags, len(got))
		}
	}
	if _, _, err := fr.readFrame(-1); err != io.EOF {
		t.Fatalf("at end: %v, want EOF", err)
	}
}

func TestFrameErrors(t *testing.T) {
	tib := []byte{FlagLong, 0, 0, 1, 0, 0, 0, 0, 0}
	tests := []struct {
		name  string
		b     []byte
		limit int64
		is    error
	}{
		{"1 TiB header over limit", tib, DefaultMaxMsgSize, ErrTooLarge},
		{"size over limit", []byte{0, 10, 1, 2, 3}, 5, ErrTooLarge},
		{"absurd size without limit", []byte{FlagLong, 0xff, 0, 0, 0, 0, 0, 0, 0}, -1, ErrTooLarge},
		{"reserved bits", []byte{0x80, 0}, -1, ErrProtocol},
		{"truncated short size", []byte{0}, -1, io.ErrUnexpectedEOF},
		{"truncated long size", []byte{FlagLong, 0, 0}, -1, io.ErrUnexpectedEOF},
		{"truncated body", []byte{0, 5, 1}, -1, io.ErrUnexpectedEOF},
		// Without a limit a 1 TiB header costs only what arrives.
		{"1 TiB header, no limit", append(tib, 1, 2, 3), -1, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := newTestReader(tt.b).readFrame(tt.limit)
			if !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
		})
	}
}

func TestCommands(t *testing.T) {
	b := appendCommand(nil, "READY", []byte{1, 2})
	name, data, err := parseCommand(b)
	if err != nil || name != "READY" || !bytes.Equal(data, []byte{1, 2}) {
		t.Fatalf("parseCommand = %q %v %v", name, data, err)
	}
	for _, bad := range [][]byte{nil, {0}, {6, 'R'}} {
		if _, _, err := parseCommand(bad); !errors.Is(err, ErrProtocol) {
			t.Errorf("parseCommand(% x) err = %v", bad, err)
		}
	}
	if err := ParseError([]byte{3, 'n', 'o', 'p'}); !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), `"nop"`) {
		t.Errorf("ParseError = %v", err)
	}
	if err := ParseError([]byte{9, 'n'}); !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "malformed") {
		t.Errorf("ParseError malformed = %v", err)
	}
	// The reason, for whoever reports the refusal (as sent: hostile).
	var de *DeniedError
	if err := parseError([]byte{4, 'n', 'o', '\x1b', 'p'}, "READY"); !errors.As(err, &de) || de.Reason != "no\x1bp" || de.Instead != "READY" {
		t.Errorf("parseError = %v (%+v), want a DeniedError with the reason", err, de)
	}
}

func TestCheckSend(t *testing.T) {
	if err := checkSend(nil, -1); !errors.Is(err, ErrProtocol) {
		t.Errorf("no frames: %v", err)
	}
	if err := checkSend([][]byte{make([]byte, 6)}, 5); !errors.Is(err, ErrTooLarge) {
		t.Errorf("too large: %v", err)
	}
	if err := checkSend([][]byte{make([]byte, 6)}, -1); err != nil {
		t.Errorf("no limit: %v", err)
	}
}

func TestCompatible(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		ok   bool
	}{
		{"ROUTER", "DEALER", true}, {"DEALER", "ROUTER", true}, {"ROUTER", "ROUTER", true},
		{"ROUTER", "PUB", false}, {"DEALER", "SUB", false}, {"DEALER", "", false},
	} {
		if compatible(tc.a, tc.b) != tc.ok {
			t.Errorf("compatible(%s, %s) != %v", tc.a, tc.b, tc.ok)
		}
	}
}

// TestBufPoolClasses: every size from poolMin to chunk gets a buffer of
// the smallest class that holds it, and put takes back exactly the
// capacities of the classes.
func TestBufPoolClasses(t *testing.T) {
	var p bufPool
	for _, n := range []int{poolMin, 2 << 10, 2<<10 + 1, 4 << 10, 5000, 64 << 10, 64<<10 + 1, 1 << 20, 1<<20 + 33, chunk} {
		b := p.get(n)
		i := classOf(n)
		if len(*b) != n || cap(*b) != classCap(i) || classCap(i) < n || (i > 0 && classCap(i-1) >= n) {
			t.Errorf("get(%d): len %d cap %d, class %d", n, len(*b), cap(*b), i)
		}
		p.put(b)
	}
	for i := range poolClasses {
		if c := classCap(i); classOf(c) != i {
			t.Errorf("class %d: cap %d maps back to class %d", i, c, classOf(c))
		}
	}
	if classCap(poolClasses-1) != chunk {
		t.Errorf("last class holds %d, want chunk %d", classCap(poolClasses-1), chunk)
	}
	// Buffers that are not of a class's capacity are dropped.
	for _, c := range []int{100, 3000, 70000, chunk + poolStep} {
		b := make([]byte, c)
		p.put(&b)
	}
	for _, n := range []int{3000, 70000} {
		if b := p.get(n); cap(*b) != classCap(classOf(n)) {
			t.Errorf("get(%d) after puts of odd capacities: cap %d", n, cap(*b))
		}
	}
}

// TestReleasePooling: until its receiver releases a message, a Router
// reads frames at their size (nothing would come back to a pool); after a
// Release, frames of 1 KiB to 4 MiB come from its pool's classes, and a
// released buffer is read into again.
func TestReleasePooling(t *testing.T) {
	for _, mech := range []struct {
		name string
		opts func() (Options, Options)
	}{
		{"NULL", func() (Options, Options) { return Options{}, Options{Identity: []byte("p")} }},
		{"CURVE", func() (Options, Options) {
			spub, ssec, _ := curve.GenerateKeyPair(nil)
			cpub, csec, _ := curve.GenerateKeyPair(nil)
			return Options{Mechanism: CurveServer(CurveServerConfig{Public: spub, Secret: ssec})},
				Options{Identity: []byte("p"), Mechanism: CurveClient(CurveClientConfig{Public: cpub, Secret: csec, ServerKey: spub})}
		}},
	} {
		t.Run(mech.name, func(t *testing.T) {
			ro, do := mech.opts()
			r := listen(t, ro)
			d := dial(t, r.Addr().String(), do)
			const size = 5000 // class 8 KiB
			send := func(b byte) {
				if err := d.SendContext(testCtx(t), bytes.Repeat([]byte{b}, size)); err != nil {
					t.Fatal(err)
				}
			}
			send(1)
			m := recvR(t, r)
			if f := m.Frames[0]; len(f) != size || len(m.pooledBufs()) != 0 {
				t.Fatalf("before any Release: frame of %d octets, %d pooled buffers", len(f), len(m.pooledBufs()))
			}
			m.Release()
			if m.Frames != nil {
				t.Fatal("Release left the frames")
			}
			send(2)
			m = recvR(t, r)
			if f := m.Frames[0]; len(m.pooledBufs()) != 1 || cap(*m.pooledBufs()[0]) != classCap(classOf(size)) || !bytes.Equal(f, bytes.Repeat([]byte{2}, size)) {
				t.Fatalf("after a Release: %d pooled buffers, frame intact %v", len(m.pooledBufs()), bytes.Equal(f, bytes.Repeat([]byte{2}, size)))
			}
			m.Release()
			m.Release() // a second time: nothing
			send(3)
			m = recvR(t, r)
			if !bytes.Equal(m.Frames[0], bytes.Repeat([]byte{3}, size)) {
				t.Fatal("a frame read into a released buffer is not intact")
			}
		})
	}
}
