package golden

import "testing"

func TestHexLines(t *testing.T) {
	c2s := HexLines(t, "curvezmq_client_to_server.hex")
	if len(c2s) == 0 || len(c2s[0]) == 0 {
		t.Fatalf("%d units", len(c2s))
	}
	if id := HexLines(t, "identity.hex"); len(id) != 1 {
		t.Fatalf("identity.hex: %d lines, want 1", len(id))
	}
}
