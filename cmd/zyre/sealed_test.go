package main

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/privgroup/zyregroup"
	"github.com/zyre-go/zyre/zre"
)

// sealedLine: a sender-key WHISPER is shown as SEALED with its size, never
// its octets; plain SHOUTs and WHISPERs, and a SHOUT that is no privgroup
// record, are not sealed.
func TestSealedLine(t *testing.T) {
	id := uuid.MustParse("0d5db8cf-0000-4000-8000-000000000001")
	h := zre.EventHeader{Peer: id, Name: "room"}
	for _, tc := range []struct {
		name string
		e    zre.Event
		want string // "" means not sealed
	}{
		{"key whisper", &zre.Whisper{EventHeader: h, Content: [][]byte{[]byte(zyregroup.WhisperPrefix), []byte("family"), {0x13, 0xff, 0, 1}}},
			"SEALED room 0d5db8cf family 4 octets (sender key)"},
		{"plain shout", &zre.Shout{EventHeader: h, Group: "family", Content: [][]byte{[]byte("hello")}}, ""},
		{"binary shout, not a record", &zre.Shout{EventHeader: h, Group: "family", Content: [][]byte{{0x11, 1, 2}}}, ""},
		{"two frames", &zre.Shout{EventHeader: h, Group: "family", Content: [][]byte{{0x11}, {0x12}}}, ""},
		{"plain whisper", &zre.Whisper{EventHeader: h, Content: [][]byte{[]byte("hi")}}, ""},
	} {
		got, ok := sealedLine(tc.e)
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("%s: %q %v, want %q", tc.name, got, ok, tc.want)
		}
	}
	got, ok := sealedAgentLine(client.Event{Type: "WHISPER", Peer: id.String(), Name: "room",
		Content: [][]byte{[]byte(zyregroup.WhisperPrefix), []byte("family"), {0x13}}})
	if !ok || !strings.HasPrefix(got, "SEALED room 0d5db8cf family 1 octets") {
		t.Errorf("agent event: %q %v", got, ok)
	}
}
