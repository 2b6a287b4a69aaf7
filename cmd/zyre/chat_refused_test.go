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

// A chat says each refusal once per peer and key, in one plain line,
// whichever stage refused it; every one, in full, only with --verbose
// (usertry3 #11: REFUSED and KEY CHANGED lines that repeat themselves,
// and the same refusal again and again for one peer).
func TestChatRefusalsOnce(t *testing.T) {
	const peer, other = "9ec346dd-0000-4000-8000-000000000001", "0966780b-0000-4000-8000-000000000002"
	nameTaken := "zre: peer not authorized: trust store: a device with another key (JEN7-LSOS-4H4W-FUNT) calls itself room; your verified room is OAJ4-HQ6F-E3VU-K73Y; refused. If it is the same device with a new key, pair with it again"
	type ev struct {
		r    refusal
		want string // "" for nothing printed
	}
	for _, c := range []struct {
		name    string
		verbose bool
		evs     []ev
	}{
		{"another device with a known name", false, []ev{
			{refusal{name: "room", peer: other, addr: "10.79.0.4:5670", key: "K2", reason: nameTaken},
				"REFUSED room 0966780b from 10.79.0.4: a device with another key (JEN7-LSOS-4H4W-FUNT) calls itself room; your verified room is OAJ4-HQ6F-E3VU-K73Y; refused. If it is the same device with a new key, pair with it again"},
			{refusal{name: "room", peer: other, addr: "10.79.0.4:41000", key: "K2", reason: nameTaken}, ""},
		}},
		{"revoked: beacon, connection, hello", false, []ev{
			{refusal{peer: peer, addr: "10.79.0.3:5670", key: "K1", reason: "zre: key revoked: beacon for 9EC346DD with key K1"},
				"REFUSED unknown 9ec346dd from 10.79.0.3: its key is revoked (see zyre trust show 9ec346dd)"},
			{refusal{peer: peer, addr: "10.79.0.3:40000", key: "K1", reason: "zre: peer not authorized: zre: key revoked: key revoked locally: lost"}, ""},
			{refusal{name: "phone2", peer: peer, addr: "10.79.0.3:40000", key: "K1", reason: "zre: peer not authorized: zre: key revoked: key revoked locally: lost"}, ""},
			// another key of the same UUID is another refusal
			{refusal{name: "phone2", peer: peer, addr: "10.79.0.3:40001", key: "K9", reason: "zre: peer not authorized: zre: key revoked: key revoked by room 39f8045c: lost"},
				"REFUSED phone2 9ec346dd from 10.79.0.3: its key was revoked by room 39f8045c: lost"},
		}},
		{"key change, then its refusal", false, []ev{
			{refusal{keyChange: true, name: "cam", peer: peer, addr: "10.79.0.2:40000", key: "K3", oldFP: "MHYV-AAAA", newFP: "IE6T-BBBB"},
				"KEY-CHANGED cam 9ec346dd from 10.79.0.2: its key changed from MHYV-AAAA to IE6T-BBBB; refused: someone may be impersonating this peer. If the change is expected, run: zyre trust accept IE6T-BBBB"},
			{refusal{name: "cam", peer: peer, addr: "10.79.0.2:40000", key: "K3", reason: "zre: key mismatch: trust store: key changed (old MHYV-AAAA, new IE6T-BBBB)"}, ""},
			{refusal{keyChange: true, name: "cam", peer: peer, addr: "10.79.0.2:40000", key: "K3", oldFP: "MHYV-AAAA", newFP: "IE6T-BBBB"}, ""},
		}},
		{"other reasons without the layers", false, []ev{
			{refusal{name: "eve", peer: peer, addr: "10.79.0.5:1", key: "K4", reason: "zre: peer not authorized: trust store: strict policy: key is only tofu, not verified or introduced"},
				"REFUSED eve 9ec346dd from 10.79.0.5: peer not authorized: strict policy: key is only tofu, not verified or introduced"},
		}},
		{"verbose says every one in full", true, []ev{
			{refusal{name: "room", peer: other, key: "K2", reason: nameTaken}, "LONG"},
			{refusal{name: "room", peer: other, key: "K2", reason: nameTaken}, "LONG"},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rs := &chatRefusals{verbose: c.verbose}
			for i, e := range c.evs {
				got, ok := rs.line(e.r, "LONG")
				if !ok {
					got = ""
				}
				if got != e.want {
					t.Errorf("event %d: got  %q\nwant %q", i, got, e.want)
				}
			}
		})
	}
}

// The same through the commands: a stranger that calls itself like the
// verified room, in a private chat of its own and through the agent.
func TestChatRefusedStrangerOnce(t *testing.T) {
	for _, mode := range []string{"one-shot", "agent"} {
		t.Run(mode, func(t *testing.T) {
			homeA, _ := streamHome(t, "alice")
			_, idR := streamHome(t, "room")
			homeS, idS := streamHome(t, "room")
			streamVerify(t, homeA, idR)
			port := fmt.Sprint(randomBeaconPort())
			inS, _ := io.Pipe()
			startCmd(t, inS, "chat", "--group", "family", "--home", homeS, "--loopback", "--port", port)
			args := []string{"chat", "--group", "family", "--home", homeA, "--loopback", "--port", port}
			if mode == "agent" {
				sock := filepath.Join(t.TempDir(), "a.sock")
				ag := startCmd(t, strings.NewReader(""), "agent", "--home", homeA, "--loopback", "--port", port, "--socket", sock)
				ag.stderr.waitFor(t, "control socket "+sock)
				args = []string{"chat", "--group", "family", "--socket", sock}
			}
			inA, _ := io.Pipe()
			a := startCmd(t, inA, args...)
			want := "REFUSED room " + shortID(idS.UUID) + " from 127.0.0.1: a device with another key (" + trust.Fingerprint(idS.CurveKey) + ") calls itself room; your verified room is " + trust.Fingerprint(idR.CurveKey) + "; refused."
			a.stdout.waitFor(t, want)
			// The stranger's other stages (its beacon, its connection)
			// and its reconnections add nothing (a window: what is
			// checked is an absence).
			time.Sleep(3 * time.Second)
			out := a.stdout.String()
			if strings.Count(out, shortID(idS.UUID)) != 1 || strings.Contains(out, "key=") || strings.Contains(out, "zre:") {
				t.Fatalf("alice's chat says the stranger more than once, or not plainly:\n%s", out)
			}
		})
	}
}
