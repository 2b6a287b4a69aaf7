//go:build linux

package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/keystore"
	"github.com/zyre-go/zyre/trust"
)

// markVerified records p in home's trust store as verified by QR, as a
// pairing with it did.
func markVerified(t *testing.T, ctx context.Context, home string, p *keystore.PublicIdentity) {
	t.Helper()
	st, err := trust.Open(home, trust.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.MarkVerified(ctx, p.CurveKey, p.UUID, p.Name, "qr", p.SigningKey); err != nil {
		t.Fatal(err)
	}
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// startShowIn runs "zyre pair" showing a token with stdin as its input;
// it returns the run and the token.
func startShowIn(t *testing.T, home string, stdin io.Reader) (*cmdRun, string) {
	t.Helper()
	r := startCmd(t, stdin, "pair", "--home", home, "--loopback", "--listen", "127.0.0.1:0", "--timeout", "60s")
	r.stdout.waitFor(t, "code endpoint: ")
	for _, l := range strings.Split(r.stdout.String(), "\n") {
		if v, ok := strings.CutPrefix(l, "token: "); ok {
			return r, v
		}
	}
	t.Fatal("zyre pair printed no token")
	return nil, ""
}

// notRecordedIn fails when home's trust store holds p.
func notRecordedIn(t *testing.T, home string, p *keystore.PublicIdentity) {
	t.Helper()
	st, err := trust.Open(home, trust.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r, ok, _ := st.Lookup(p.CurveKey); ok {
		t.Fatalf("%s: recorded %s %s as %s", home, p.Name, r.Fingerprint, r.State)
	}
}

// User trial 4 #1: the camera has a verified phone1; a stranger whose
// identity is named phone1 scans the camera's QR code first. The camera
// says plainly that this is ANOTHER device, naming the verified phone1,
// and pairs only on the stranger's id typed at the terminal: a "y" is
// not enough, and without a terminal it refuses with that sentence. The
// other way, a phone scanning a stranger's code under the camera's name
// is refused the same way. Loopback only.
func TestPairCLIKnownNameAnotherDevice(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	homeCam, cam := initHome(t, ctx, "room")
	homePh, phone := initHome(t, ctx, "phone1")
	homeStr, str := initHome(t, ctx, "phone1")
	markVerified(t, ctx, homeCam, phone)
	markVerified(t, ctx, homePh, cam)
	sentence := "this device calls itself phone1, but your verified phone1 is " + keystore.Fingerprint(phone.CurveKey) + " (" + phone.UUID.String()[:8] + "); this is ANOTHER device"

	// At a terminal: the warning, and a "y" does not pair.
	show, master, _, _, tok := startShowTerminal(t, homeCam)
	strDone := make(chan int, 1)
	go func() {
		c, _, _ := runPairCmd(ctx, "--loopback", "--home", homeStr, "--yes", "--timeout", "60s", tok)
		strDone <- c
	}()
	show.stderr.waitFor(t, "zyre: WARNING: "+sentence+"\n")
	show.stderr.waitFor(t, `pair with "phone1" `+str.UUID.String()[:8]+" "+keystore.Fingerprint(str.CurveKey)+" from 127.0.0.1 anyway? only if it is a new device of yours that you expect: type its id "+str.UUID.String()[:8]+" to pair with it")
	if strings.Contains(show.stderr.String(), "[y/N]") {
		t.Fatalf("a plain y/N question for a device under a known name:\n%s", show.stderr.String())
	}
	if _, err := master.Write([]byte("y\n")); err != nil {
		t.Fatal(err)
	}
	if c := pairExitOf(t, show, "the camera's zyre pair"); c != 1 || !strings.Contains(show.stderr.String(), "its id was not typed; nothing was recorded") {
		t.Fatalf("camera: exit %d\nstderr:\n%s", c, show.stderr.String())
	}
	if c := <-strDone; c != 1 {
		t.Fatalf("stranger: exit %d, want 1", c)
	}
	notRecordedIn(t, homeCam, str)

	// Without a terminal (and --yes is no answer): refused, in the same words.
	show, tok = startShowIn(t, homeCam, strings.NewReader(""))
	// The scanner says which device it is and what it waits for (trial 4
	// #6: a QR scanner printed nothing until it was told).
	if c, _, errs := runPairCmd(ctx, "--loopback", "--home", homeStr, "--timeout", "60s", tok); c != 1 ||
		!strings.Contains(errs, `zyre: this device is "phone1" `+str.UUID.String()[:8]+" "+keystore.Fingerprint(str.CurveKey)) ||
		!strings.Contains(errs, "zyre: looking for the showing device at 127.0.0.1:") {
		t.Fatalf("stranger: exit %d\n%s", c, errs)
	}
	if c := pairExitOf(t, show, "the camera's headless zyre pair"); c != 1 ||
		!strings.Contains(show.stderr.String(), "zyre: "+sentence+": not paired without a terminal (--yes does not cover it); nothing was recorded") {
		t.Fatalf("headless camera: exit %d\nstderr:\n%s", c, show.stderr.String())
	}
	notRecordedIn(t, homeCam, str)

	// The scanner's side: a stranger shows a code under the camera's name.
	homeFake, fake := initHome(t, ctx, "room")
	show, tok = startShowIn(t, homeFake, strings.NewReader(""))
	c, _, errs := runPairCmd(ctx, "--loopback", "--home", homePh, "--yes", "--timeout", "60s", tok)
	want := "the showing device calls itself room, but your verified room is " + keystore.Fingerprint(cam.CurveKey) + " (" + cam.UUID.String()[:8] + "); this is ANOTHER device: not paired without a terminal"
	if c != 1 || !strings.Contains(errs, want) {
		t.Fatalf("phone scanning the fake room: exit %d, want 1 and %q\n%s", c, want, errs)
	}
	pairExitOf(t, show, "the fake room's zyre pair")
	notRecordedIn(t, homePh, fake)
}

// A device that gave no name but is known here by its key is named by
// its record in the questions (trial 4 #6).
func TestDescribePairPeerKnown(t *testing.T) {
	p := client.PairPeer{UUID: "8b0744b8-0000-5000-8000-000000000000", Fingerprint: "FAWY-FLPA-OCBC-GSIW", Addr: "10.84.0.2:4711"}
	if got, want := describePairPeer(p), "a device that gave no name, 8b0744b8 FAWY-FLPA-OCBC-GSIW from 10.84.0.2"; got != want {
		t.Fatalf("nameless: %q, want %q", got, want)
	}
	p.Known = `your verified "phone1"`
	if got, want := describePairPeer(p), `your verified "phone1" (by its key; it gave no name yet) 8b0744b8 FAWY-FLPA-OCBC-GSIW from 10.84.0.2`; got != want {
		t.Fatalf("known: %q, want %q", got, want)
	}
}
