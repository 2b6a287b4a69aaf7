package main

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/agent"
	"github.com/zyre-go/zyre/zre"
)

// TestDeniedLines: a peer that refuses our key is one line in monitor
// (one-shot and through the agent), saying why and what to do; its name
// and reason are the peer's text: escaped, never raw.
func TestDeniedLines(t *testing.T) {
	peer := uuid.MustParse("3de44c0d-1917-5730-a837-1b22526b7653")
	for _, tc := range []struct {
		name, reason string
		want         []string
	}{
		{"phone1", "key not authorized", []string{
			"DENIED phone1 3de44c0d tcp://10.0.0.2:5670: phone1 refuses this device's key (we are not trusted there): pair with it first (its node said: key not authorized)"}},
		{"phone1", "key revoked", []string{"(it is revoked there)", "zyre keys rotate"}},
		{"", "name of another device here", []string{"DENIED unknown 3de44c0d", ": 3de44c0d refuses this device's key (it knows another device by this device's name)"}},
		{"evil\x1b[2J\nzyre: fake", "no\x07", []string{`"evil\x1b[2J\nzyre: fake" refuses this device`}},
	} {
		e := &zre.Denied{EventHeader: zre.EventHeader{Peer: peer, Name: tc.name}, Addr: "tcp://10.0.0.2:5670", Reason: zre.CleanReason(tc.reason)}
		for _, line := range []string{eventLine(e), agentEventLine(agent.EventOf(e, e.Time))} {
			if strings.ContainsAny(line, "\x1b\n\x07") {
				t.Errorf("line %q carries control characters", line)
			}
			for _, w := range tc.want {
				if !strings.Contains(line, w) {
					t.Errorf("line %q\nwant %q in it", line, w)
				}
			}
		}
	}
}
