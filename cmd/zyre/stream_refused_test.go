package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A member whose agent refuses the sender's key (the sender is not
// trusted there) says so (REFUSED, in answer to STREAMING): the sender
// waits for no acknowledgement of it, and names it in its summary
// (usertry2 #7: it waited its whole --wait). Alice sends with a node of
// her own or through her agent; bob (who does not trust alice) receives
// through his agent, and carol (who does) with a node of her own.
func TestStreamSenderKnowsRefusedKey(t *testing.T) {
	for _, through := range []string{"one-shot", "agent"} {
		t.Run(through, func(t *testing.T) {
			homeA, idA := streamHome(t, "alice")
			homeB, idB := streamHome(t, "bob")
			homeC, idC := streamHome(t, "carol")
			streamVerify(t, homeA, idB, idC) // alice gives bob and carol her key
			streamVerify(t, homeC, idA)      // carol reads alice; bob does not trust her
			port := fmt.Sprint(randomBeaconPort())
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			dir := t.TempDir()
			sockB := filepath.Join(dir, "b.sock")
			agB := startCmd(t, strings.NewReader(""), "agent", "--home", homeB, "--loopback", "--port", port, "--socket", sockB)
			agB.stderr.waitFor(t, "control socket "+sockB)
			alice := []string{"--loopback", "--port", port, "--home", homeA}
			if through == "agent" {
				sockA := filepath.Join(dir, "a.sock")
				agA := startCmd(t, strings.NewReader(""), "agent", "--home", homeA, "--loopback", "--port", port, "--socket", sockA)
				agA.stderr.waitFor(t, "control socket "+sockA)
				alice = []string{"--socket", sockA}
			}
			// bob's recv opens family in his agent; carol's recv reads alice.
			startStreamCmd(ctx, nil, "stream", "recv", "family", "--socket", sockB, "--progress", "0", "--wait", "2m")
			carol := startStreamCmd(ctx, nil, "stream", "recv", "family", "--loopback", "--port", port, "--home", homeC, "--progress", "0", "--wait", "2m")
			data := bytes.Repeat([]byte("frame of the video\n"), 2000)
			began := time.Now()
			send := startStreamCmd(ctx, data, append([]string{"stream", "send", "family", "--members", "2", "--progress", "0", "--wait", "2m"}, alice...)...)
			s := waitStreamCmd(t, "alice's send", send)
			took := time.Since(began)
			c := waitStreamCmd(t, "carol's recv", carol)
			if s.code != 0 || c.code != 0 || !bytes.Equal(c.stdout.Bytes(), data) {
				t.Fatalf("alice's send: exit %d:\n%s\ncarol's recv: exit %d, %d of %d octets:\n%s", s.code, s.stderr, c.code, c.stdout.Len(), len(data), c.stderr)
			}
			// Only carol could read it: bob, who refused our key, is named
			// apart, not counted among those it was sent to (usertry3).
			if !strings.Contains(s.stderr.String(), "zyre: sent to 1 member(s) of \"family\": ") {
				t.Errorf("alice's summary counts more than carol as sent to:\n%s", s.stderr)
			}
			want := "refused our key (we are not trusted there): bob " + shortID(idB.UUID)
			if !strings.Contains(s.stderr.String(), want) || !strings.Contains(s.stderr.String(), "1 acknowledged the end: carol "+shortID(idC.UUID)) {
				t.Errorf("alice's summary does not name bob as refusing her key (want %q):\n%s", want, s.stderr)
			}
			// It waited for no acknowledgement of bob's: far less than --wait.
			if took > time.Minute {
				t.Errorf("alice's send took %v: it waited for bob", took)
			}
		})
	}
}
