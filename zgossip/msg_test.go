package zgossip

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func TestMsgRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		m    Msg
		hex  string
	}{
		{"hello", Msg{ID: MsgHello}, "aaa00101"},
		{"ping", Msg{ID: MsgPing}, "aaa00301"},
		{"pong", Msg{ID: MsgPong}, "aaa00401"},
		{"invalid", Msg{ID: MsgInvalid}, "aaa00501"},
		{"publish", Msg{ID: MsgPublish, Key: "AB", Value: "tcp://1:2", TTL: 0x01020304},
			"aaa00201" + "02" + hex.EncodeToString([]byte("AB")) + "00000009" + hex.EncodeToString([]byte("tcp://1:2")) + "01020304"},
		{"publish empty", Msg{ID: MsgPublish}, "aaa00201" + "00" + "00000000" + "00000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.m.Append(nil)
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(b) != tt.hex {
				t.Fatalf("encoded %x, want %s", b, tt.hex)
			}
			m, err := Decode(b)
			if err != nil || m != tt.m {
				t.Fatalf("decoded %+v, %v", m, err)
			}
		})
	}
}

func TestMsgDecodeErrors(t *testing.T) {
	pub, _ := (&Msg{ID: MsgPublish, Key: "k", Value: "v"}).Append(nil)
	tests := []struct {
		name, want string
		b          []byte
	}{
		{"empty", "at least 4", nil},
		{"signature", "signature", []byte{0xaa, 0xa1, 1, 1}},
		{"unknown id", "unknown message id 6", []byte{0xaa, 0xa0, 6, 1}},
		{"id 0", "unknown message id 0", []byte{0xaa, 0xa0, 0, 1}},
		{"version", "version 2", []byte{0xaa, 0xa0, 1, 2}},
		{"trailing", "trailing", []byte{0xaa, 0xa0, 3, 1, 0}},
		{"key cut", "key cut short", pub[:5]},
		{"value cut", "value of 1 octets, 0 there", pub[:10]},
		{"ttl cut", "ttl cut short", pub[:len(pub)-1]},
		{"publish trailing", "trailing", append(bytes.Clone(pub), 9)},
		{"huge value", "at most", []byte{0xaa, 0xa0, 2, 1, 0, 0xff, 0xff, 0xff, 0xff}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.b)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
		})
	}
}

func TestMsgEncodeErrors(t *testing.T) {
	for _, m := range []Msg{
		{ID: 0}, {ID: 6},
		{ID: MsgPublish, Key: strings.Repeat("k", 256)},
		{ID: MsgPublish, Value: strings.Repeat("v", MaxValue+1)},
	} {
		if _, err := m.Append(nil); err == nil {
			t.Errorf("%v %d/%d encoded", m.ID, len(m.Key), len(m.Value))
		}
	}
}

// FuzzDecode: Decode never panics, and what it accepts encodes back to the
// same octets.
func FuzzDecode(f *testing.F) {
	for _, m := range []Msg{{ID: MsgHello}, {ID: MsgPing}, {ID: MsgPong}, {ID: MsgInvalid},
		{ID: MsgPublish, Key: "0F1E2D3C4B5A69788796A5B4C3D2E1F0", Value: "tcp://10.0.0.1:49152|rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", TTL: 0}} {
		b, _ := m.Append(nil)
		f.Add(b)
	}
	f.Add([]byte{0xaa, 0xa0, 2, 1, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		out, err := m.Append(nil)
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", m, err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("round trip %x -> %x", b, out)
		}
	})
}
