package main

import (
	"fmt"
	"strings"
	"testing"
)

func TestPeers(t *testing.T) {
	port := randomBeaconPort()
	a := testPeer(t, port, "visible", "lab", "ops")
	b := testPeer(t, port, "other")
	r := startCmd(t, strings.NewReader(""), "peers", "--loopback", "--port", fmt.Sprint(port), "--wait", "3s")
	if code := r.wait(t); code != 0 {
		t.Fatalf("exit %d: %s", code, r.stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(r.stdout.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") {
		t.Fatalf("output:\n%s", r.stdout.String())
	}
	// Sorted by name: other, visible.
	for i, want := range [][]string{
		{"other", uuidText(b.UUID()), b.Endpoint(), "-"},
		{"visible", uuidText(a.UUID()), a.Endpoint(), "lab,ops"},
	} {
		if f := strings.Fields(lines[i+1]); strings.Join(f, " ") != strings.Join(want, " ") {
			t.Errorf("line %d = %q, want %q", i+1, f, want)
		}
	}
}
