//go:build linux

package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/zyre-go/zyre/keystore"
)

// lastField is the value of the last line of s that starts with prefix.
func lastField(t *testing.T, s, prefix string) string {
	t.Helper()
	v := ""
	for _, l := range strings.Split(s, "\n") {
		if x, ok := strings.CutPrefix(l, prefix); ok {
			v = x
		}
	}
	if v == "" {
		t.Fatalf("no %q line in:\n%s", prefix, s)
	}
	return v
}

// waitCount waits until the output holds want n times.
func waitCount(t *testing.T, b *syncBuffer, want string, n int) {
	t.Helper()
	deadline := time.NewTimer(cmdTimeout)
	defer deadline.Stop()
	for strings.Count(b.String(), want) < n {
		select {
		case <-b.wrote:
		case <-deadline.C:
			t.Fatalf("output lacks %d times %q after %v:\n%s", n, want, cmdTimeout, b.String())
		}
	}
}

// wrongOf is code (1234-5678-9012) with its first digit changed.
func wrongOf(code string) string {
	w := []byte(code)
	w[0] = '0' + (w[0]-'0'+1)%10
	return string(w)
}

// A wrong short code (user trial 5 #2: a stranger's script answers the
// announcement with one wrong attempt; here the phone's own typo) spends
// that code only: the showing device names the device and shows a fresh
// code at once, and the fresh code pairs. Loopback only.
func TestPairCLIFreshCodeAfterWrongCode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	homeCam, _ := initHome(t, ctx, "room")
	homePh, phone := initHome(t, ctx, "phone1")
	cam := startCmd(t, strings.NewReader(""), "pair", "--home", homeCam, "--loopback", "--listen", "127.0.0.1:0", "--timeout", "60s", "--yes")
	cam.stdout.waitFor(t, "code endpoint: ")
	code, ep := lastField(t, cam.stdout.String(), "code: "), lastField(t, cam.stdout.String(), "code endpoint: ")

	c, out, errs := runPairCmd(ctx, "--loopback", "--home", homePh, "--code", wrongOf(code), "--peer", ep, "--yes", "--timeout", "60s")
	const told = "zyre: the short code did not match (mistyped, or the showing device shows another code now); this code is spent and nothing was recorded\n" +
		"zyre: hint: type the new code the showing device shows now (it shows a fresh one after a failed try; if it was not yours, tell the person there)\n"
	if c != 1 || !strings.HasSuffix(errs, told) || strings.Contains(errs, "pairing:") || strings.Contains(errs, "level=") {
		t.Fatalf("joining side with a wrong code: exit %d\nstdout:\n%s\nstderr:\n%s", c, out, errs)
	}
	cam.stderr.waitFor(t, "zyre: a device that gave no name, "+phone.UUID.String()[:8]+" "+keystore.Fingerprint(phone.CurveKey)+" from 127.0.0.1 tried a wrong code; this code is spent\n")
	cam.stdout.waitFor(t, "new code (the one above is spent), on the same network:\n  zyre pair --code ")
	fresh := lastField(t, cam.stdout.String(), "code: ")
	if fresh == code || lastField(t, cam.stdout.String(), "  (from elsewhere add: --peer ") != ep+")" {
		t.Fatalf("no fresh code shown:\n%s", cam.stdout.String())
	}
	noRecordsIn(t, homeCam, homePh)
	// Said once, in words (usertry #9): no "pairing: ..." layers, no slog line.
	if e := cam.stderr.String(); strings.Contains(e, "pairing:") || strings.Contains(e, "level=") {
		t.Fatalf("camera's stderr:\n%s", e)
	}

	if c, out, errs := runPairCmd(ctx, "--loopback", "--home", homePh, "--code", fresh, "--peer", ep, "--yes", "--timeout", "60s"); c != 0 {
		t.Fatalf("the fresh code: exit %d\nstdout:\n%s\nstderr:\n%s", c, out, errs)
	}
	if c := pairExitOf(t, cam, "the camera's zyre pair"); c != 0 {
		t.Fatalf("camera: exit %d\nstdout:\n%s\nstderr:\n%s", c, cam.stdout.String(), cam.stderr.String())
	}
	verifiedIn(t, homeCam, "code")
	verifiedIn(t, homePh, "code")
}

// A stranger's wrong code does not end the pairing: the camera names it,
// shows a fresh code, and the phone that types the fresh code pairs once
// the camera's user picks it by id (the stranger tried: exposure).
func TestPairCLIStrangerSpendsCode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	homeCam, _ := initHome(t, ctx, "room")
	homeStr, guest := initHome(t, ctx, "A35B3B")
	homePh, phone := initHome(t, ctx, "phone1")
	cam, master, code, ep, _ := startShowTerminal(t, homeCam)
	if c, out, errs := runPairCmd(ctx, "--loopback", "--home", homeStr, "--code", wrongOf(code), "--peer", ep, "--yes", "--timeout", "60s"); c != 1 {
		t.Fatalf("stranger: exit %d\nstdout:\n%s\nstderr:\n%s", c, out, errs)
	}
	cam.stderr.waitFor(t, "zyre: a device that gave no name, "+guest.UUID.String()[:8]+" "+keystore.Fingerprint(guest.CurveKey)+" from 127.0.0.1 tried a wrong code; this code is spent\n")
	cam.stdout.waitFor(t, "new code (the one above is spent)")
	fresh := lastField(t, cam.stdout.String(), "code: ")

	phDone := make(chan int, 1)
	var phOut, phErr lockedBuffer
	go func() {
		phDone <- run(ctx, pairEnv(&phOut, &phErr), []string{"pair", "--loopback", "--home", homePh, "--code", fresh, "--peer", ep, "--yes", "--timeout", "60s"})
	}()
	cam.stderr.waitFor(t, `zyre: WARNING: 2 devices tried this code: "phone1" `+phone.UUID.String()[:8])
	cam.stderr.waitFor(t, "a device that gave no name, "+guest.UUID.String()[:8])
	cam.stderr.waitFor(t, "type its id "+phone.UUID.String()[:8]+" to pair with it")
	noRecordsIn(t, homeCam, homeStr, homePh)
	if _, err := master.Write([]byte(phone.UUID.String()[:8] + "\n")); err != nil {
		t.Fatal(err)
	}
	if c := <-phDone; c != 0 {
		t.Fatalf("phone: exit %d\nstdout:\n%s\nstderr:\n%s", c, phOut.String(), phErr.String())
	}
	if c := pairExitOf(t, cam, "the camera's zyre pair"); c != 0 {
		t.Fatalf("camera: exit %d\nstdout:\n%s\nstderr:\n%s", c, cam.stdout.String(), cam.stderr.String())
	}
	verifiedIn(t, homeCam, "code")
	verifiedIn(t, homePh, "code")
	noRecordsIn(t, homeStr)
}

// After 6 codes spent the camera shows no more and says so; whoever types
// a code is told to pair by the QR code, which still pairs.
func TestPairCLICodesRunOut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	homeCam, _ := initHome(t, ctx, "room")
	homePh, _ := initHome(t, ctx, "phone1")
	cam := startCmd(t, strings.NewReader(""), "pair", "--home", homeCam, "--loopback", "--listen", "127.0.0.1:0", "--timeout", "60s")
	cam.stdout.waitFor(t, "code endpoint: ")
	code, ep := lastField(t, cam.stdout.String(), "code: "), lastField(t, cam.stdout.String(), "code endpoint: ")
	tok := lastField(t, cam.stdout.String(), "token: ")
	for i := 1; i <= 6; i++ {
		if c, out, errs := runPairCmd(ctx, "--loopback", "--home", homePh, "--code", wrongOf(code), "--peer", ep, "--yes", "--timeout", "60s"); c != 1 {
			t.Fatalf("wrong code %d: exit %d\nstdout:\n%s\nstderr:\n%s", i, c, out, errs)
		}
		if i < 6 {
			waitCount(t, cam.stdout, "new code (the one above is spent)", i)
			code = lastField(t, cam.stdout.String(), "code: ")
		}
	}
	cam.stderr.waitFor(t, "zyre: WARNING: 6 short codes were spent: someone on this network keeps spending them, so no more codes are shown; pair by the QR code")
	c, out, errs := runPairCmd(ctx, "--loopback", "--home", homePh, "--code", code, "--peer", ep, "--yes", "--timeout", "60s")
	if c != 1 || !strings.Contains(errs, "every short code the showing device showed was spent by devices on this network") || !strings.Contains(errs, "pair by the showing device's QR code") {
		t.Fatalf("a code after the last: exit %d\nstdout:\n%s\nstderr:\n%s", c, out, errs)
	}
	if c, out, errs := runPairCmd(ctx, "--loopback", "--home", homePh, "--timeout", "60s", tok); c != 0 {
		t.Fatalf("the QR code after the codes ran out: exit %d\nstdout:\n%s\nstderr:\n%s", c, out, errs)
	}
	if c := pairExitOf(t, cam, "the camera's zyre pair"); c != 0 {
		t.Fatalf("camera: exit %d\nstdout:\n%s\nstderr:\n%s", c, cam.stdout.String(), cam.stderr.String())
	}
	verifiedIn(t, homeCam, "qr")
}
