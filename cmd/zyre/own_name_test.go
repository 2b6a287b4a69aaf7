package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zyre-go/zyre/trust"
)

// A stranger using this device's own name (another "phone1" beside
// phone1) is refused on phone1 itself, said once, and never shows as a
// second phone1 in its chat (usertry3 #4: "ENTER phone1 ..." and "JOIN
// phone1 family" on phone1); its own chat and through its agent.
func TestOwnNameStrangerRefused(t *testing.T) {
	for _, mode := range []string{"one-shot", "agent"} {
		t.Run(mode, func(t *testing.T) {
			home, id := streamHome(t, "phone1")
			port := fmt.Sprint(randomBeaconPort())
			args := []string{"chat", "--group", "family", "--home", home, "--loopback", "--port", port}
			var ag *cmdRun
			if mode == "agent" {
				sock := filepath.Join(t.TempDir(), "a.sock")
				ag = startCmd(t, strings.NewReader(""), "agent", "--home", home, "--loopback", "--port", port, "--socket", sock)
				ag.stderr.waitFor(t, "control socket "+sock)
				args = []string{"chat", "--group", "family", "--socket", sock}
			}
			inA, _ := io.Pipe()
			a := startCmd(t, inA, args...)
			a.stderr.waitFor(t, "private chat in family")
			inS, _ := io.Pipe()
			startCmd(t, inS, "chat", "--ephemeral", "--name", "phone1", "--public", "--group", "family", "--loopback", "--port", port)
			mine := "the name of this device (" + trust.Fingerprint(id.CurveKey) + "); refused"
			a.stdout.waitFor(t, mine)
			if ag != nil {
				ag.stderr.waitFor(t, mine)
			}
			time.Sleep(3 * time.Second) // what is checked is an absence
			out := a.stdout.String()
			if strings.Count(out, mine) != 1 || strings.Contains(out, "ENTER phone1") || strings.Contains(out, "JOIN phone1") {
				t.Fatalf("phone1's chat:\n%s", out)
			}
		})
	}
}
