package agent

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

// nobodyStreams: every member whose key we hold must have said it
// streams nothing; NobodyText names each, sorted, with what it does.
func TestNobodyStreams(t *testing.T) {
	a := uuid.MustParse("0a000000-0000-4000-8000-000000000000")
	b := uuid.MustParse("0b000000-0000-4000-8000-000000000000")
	said := map[uuid.UUID]string{a: ChattingFrame, b: IdleFrame}
	answered := func(p uuid.UUID) string { return said[p] }
	for _, tc := range []struct {
		name    string
		senders []uuid.UUID
		said    map[uuid.UUID]string
		want    bool
	}{
		{"none", nil, said, false},
		{"all answered", []uuid.UUID{a, b}, said, true},
		{"one silent", []uuid.UUID{a, b}, map[uuid.UUID]string{a: ChattingFrame}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answers, key := nobodyStreams(tc.senders, func(p uuid.UUID) string { return tc.said[p] })
			if (answers != nil) != tc.want || (key != "") != tc.want {
				t.Fatalf("nobodyStreams = %v, %q; want answers: %v", answers, key, tc.want)
			}
		})
	}
	answers, _ := nobodyStreams([]uuid.UUID{a, b}, answered)
	names := map[uuid.UUID]string{a: "phone1", b: "room"}
	got := NobodyText("family", answers, func(p uuid.UUID) string { return names[p] }, 30*time.Second)
	want := `nothing is being streamed in "family" yet: phone1 0a000000 chats, room 0b000000 streams nothing; waiting up to 30s for a stream to start (--wait)`
	if got != want {
		t.Fatalf("NobodyText:\n got %s\nwant %s", got, want)
	}
}
