//go:build linux

package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/zyre-go/zyre/keystore"
	"github.com/zyre-go/zyre/trust"
)

// initHome makes an identity named name in a new home (plaintext keys).
func initHome(t *testing.T, ctx context.Context, name string) (string, *keystore.PublicIdentity) {
	t.Helper()
	home := t.TempDir()
	if code, out, errs := runCmdOut(ctx, "keys", "init", "--home", home, "--name", name, "--insecure-plaintext"); code != 0 {
		t.Fatalf("keys init %s: %d\n%s\n%s", name, code, out, errs)
	}
	ks, err := keystore.Open(home, keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := ks.Public()
	if err != nil {
		t.Fatal(err)
	}
	return home, p
}

func noRecordsIn(t *testing.T, homes ...string) {
	t.Helper()
	for _, h := range homes {
		st, err := trust.Open(h, trust.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if recs, _ := st.List(); len(recs) != 0 {
			t.Fatalf("%s: recorded %+v", h, recs)
		}
	}
}

// startShowTerminal runs "zyre pair" showing a token with a terminal as
// stdin; it returns the run, the code, the code endpoint and the token.
func startShowTerminal(t *testing.T, home string) (*cmdRun, *os.File, string, string, string) {
	t.Helper()
	master, slave := openPTY(t)
	cam := startCmd(t, slave, "pair", "--home", home, "--loopback", "--listen", "127.0.0.1:0", "--timeout", "60s")
	cam.stdout.waitFor(t, "code endpoint: ")
	field := func(prefix string) string {
		for _, l := range strings.Split(cam.stdout.String(), "\n") {
			if v, ok := strings.CutPrefix(l, prefix); ok {
				return v
			}
		}
		t.Fatalf("zyre pair printed no %q", prefix)
		return ""
	}
	return cam, master, field("code: "), field("code endpoint: "), field("token: ")
}

func pairExitOf(t *testing.T, r *cmdRun, what string) int {
	t.Helper()
	select {
	case c := <-r.code:
		r.code <- c // for startCmd's cleanup
		return c
	case <-time.After(cmdTimeout):
		t.Fatalf("%s did not end\nstdout:\n%s\nstderr:\n%s", what, r.stdout.String(), r.stderr.String())
		return -1
	}
}

// The hotel room at the terminal (usertry3 #2): the camera shows a code; a
// stranger types it first. The camera's question names the stranger
// ("guest", its UUID prefix, fingerprint, address); the phone that types
// the right code second is told that another device used it (not "a typo
// finds nobody"); the camera warns at once that two devices tried, asks
// again, and pairs nobody when its user picks neither. Loopback only.
func TestPairCLIRaceStrangerFirst(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	homeCam, _ := initHome(t, ctx, "room")
	homeStr, guest := initHome(t, ctx, "guest")
	homePh, phone := initHome(t, ctx, "phone1")
	cam, master, code, ep, _ := startShowTerminal(t, homeCam)

	type outcome struct {
		code      int
		out, errs string
	}
	strDone := make(chan outcome, 1)
	go func() {
		c, o, e := runPairCmd(ctx, "--loopback", "--home", homeStr, "--code", code, "--peer", ep, "--yes", "--timeout", "60s")
		strDone <- outcome{c, o, e}
	}()
	want := `pair with "guest" ` + guest.UUID.String()[:8] + " " + keystore.Fingerprint(guest.CurveKey) + " from 127.0.0.1? does the other screen show "
	cam.stderr.waitFor(t, want)
	noRecordsIn(t, homeCam, homeStr, homePh)

	// The phone types the same code a moment later.
	c, out, errs := runPairCmd(ctx, "--loopback", "--home", homePh, "--code", code, "--peer", ep, "--yes", "--timeout", "60s")
	if c != 1 || !strings.Contains(errs, "the code was spent by another device on this network before yours (the showing device's screen says which)") || strings.Contains(errs, "typo") ||
		!strings.Contains(errs, `zyre: this device is "phone1" `+phone.UUID.String()[:8]) {
		t.Fatalf("the phone that came second: exit %d\nstdout:\n%s\nstderr:\n%s", c, out, errs)
	}
	cam.stderr.waitFor(t, `zyre: WARNING: 2 devices tried this code: "guest" `+guest.UUID.String()[:8])
	cam.stderr.waitFor(t, "and a device that gave no name, "+phone.UUID.String()[:8]+" "+keystore.Fingerprint(phone.CurveKey)+" from 127.0.0.1; someone else may have seen it")
	cam.stderr.waitFor(t, "type its id "+guest.UUID.String()[:8]+" to pair with it, or press Enter to refuse")
	noRecordsIn(t, homeCam, homeStr, homePh)

	if _, err := master.Write([]byte("\n")); err != nil { // neither is the phone in hand
		t.Fatal(err)
	}
	if c := pairExitOf(t, cam, "the camera's zyre pair"); c != 1 || !strings.Contains(cam.stderr.String(), "none was picked") {
		t.Fatalf("camera: exit %d\nstdout:\n%s\nstderr:\n%s", c, cam.stdout.String(), cam.stderr.String())
	}
	s := <-strDone
	if s.code != 1 || !strings.Contains(s.errs, "did not pick this one") ||
		!strings.Contains(s.errs, `zyre: this device is "guest" `+guest.UUID.String()[:8]+" "+keystore.Fingerprint(guest.CurveKey)) {
		t.Fatalf("stranger: exit %d\nstdout:\n%s\nstderr:\n%s", s.code, s.out, s.errs)
	}
	noRecordsIn(t, homeCam, homeStr, homePh)
}

// The QR path asks too, at a terminal: the camera's user sees who scanned
// the code before anything is recorded.
func TestPairCLIQRAsksWho(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	homeCam, _ := initHome(t, ctx, "room")
	homePh, phone := initHome(t, ctx, "phone1")
	cam, master, _, _, tok := startShowTerminal(t, homeCam)
	phDone := make(chan int, 1)
	var phErr lockedBuffer
	go func() {
		var out lockedBuffer
		phDone <- run(ctx, pairEnv(&out, &phErr), []string{"pair", "--loopback", "--home", homePh, "--timeout", "60s", tok})
	}()
	cam.stderr.waitFor(t, `pair with "phone1" `+phone.UUID.String()[:8]+" "+keystore.Fingerprint(phone.CurveKey)+" from 127.0.0.1? [y/N]")
	noRecordsIn(t, homeCam, homePh)
	if _, err := master.Write([]byte("y\n")); err != nil {
		t.Fatal(err)
	}
	if c := <-phDone; c != 0 {
		t.Fatalf("phone: exit %d\n%s", c, phErr.String())
	}
	if c := pairExitOf(t, cam, "the camera's zyre pair"); c != 0 {
		t.Fatalf("camera: exit %d\n%s", c, cam.stderr.String())
	}
	verifiedIn(t, homeCam, "qr")
	verifiedIn(t, homePh, "qr")
}
