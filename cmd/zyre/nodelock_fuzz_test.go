package main

import (
	"strings"
	"testing"
	"unicode"
)

// FuzzNodeHolder: whatever another process left in a home's node.lock,
// the refusal that names it is one line of printable text, and a holder
// that does not parse is "another process".
func FuzzNodeHolder(f *testing.F) {
	for _, s := range []string{
		`{"pid":4242,"command":"zyre monitor"}`,
		`{"pid":7,"command":"zyre agent","socket":"/run/user/0/zyre/agent.sock"}`,
		`{"pid":-1,"command":"zyre agent"}`,
		`{"pid":1,"command":"zyre agent\u001b[2J","socket":"\n/tmp/x"}`,
		`{"pid":99999999999999999999}`,
		`{"pid":1,"command":`,
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > maxHolder {
			b = b[:maxHolder]
		}
		h := parseHolder(b)
		if h.PID <= 0 && h != (nodeHolder{}) {
			t.Fatalf("holder %+v without a pid", h)
		}
		for _, cmd := range []string{"zyre monitor", "zyre agent"} {
			err := nodeInUse(h, cmd, "alice 1a2b3c4d", true)
			msg := err.Error()
			for _, hint := range hints(err) {
				msg += " " + hint
			}
			if i := strings.IndexFunc(msg, func(r rune) bool { return !unicode.IsPrint(r) }); i >= 0 {
				t.Fatalf("refusal has a non-printable character at %d: %q", i, msg)
			}
			if h == (nodeHolder{}) && !strings.Contains(msg, "another process") {
				t.Fatalf("unparsed holder not named another process: %q", msg)
			}
		}
	})
}
