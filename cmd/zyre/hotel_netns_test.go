package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/netns"
	"github.com/zyre-go/zyre/keystore"
	"github.com/zyre-go/zyre/trust"
)

// netnsProc is a zyre command running in a namespace of the lab.
type netnsProc struct {
	cmd            *exec.Cmd
	stdout, stderr *lockedBuffer
	done           chan struct{}
	err            error
}

// startIn starts the binary in namespace i; stdin may be nil, stdout nil
// means a buffer.
func startIn(t *testing.T, lab *netns.Lab, i int, bin string, stdin io.Reader, stdout io.Writer, args ...string) *netnsProc {
	t.Helper()
	p := &netnsProc{cmd: lab.Command(i, bin, args...), stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd.Stdin = stdin
	p.cmd.Stdout = p.stdout
	if stdout != nil {
		p.cmd.Stdout = stdout
	}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.done })
	return p
}

// wait waits for the command's end, at most pairNetnsDeadline.
func (p *netnsProc) wait(t *testing.T, what string) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(pairNetnsDeadline):
		p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("%s did not end within %v:\n%s", what, pairNetnsDeadline, p.stderr)
		return nil
	}
}

// TestHotelNetns is the hotel scenario of issue 15 with the zyre binary
// only, in three namespaces on one bridge (names starting with "pv-"): the
// room camera, the phone and a stranger's laptop on the same Wi-Fi. Keys
// init on each; the room and the phone pair by token and again by short
// code, with no --listen and no --peer; a private chat and a private stream
// of 50 MB (matching sha256) between them while the stranger, in the same
// group, receives none of their records and is trusted by neither; the room
// revokes the phone mid-stream (the phone exits with a clear error, the
// room names the removed member); the room forgets the stranger.
func TestHotelNetns(t *testing.T) {
	if testing.Short() {
		t.Skip("a 50 MB stream in namespaces")
	}
	bin := buildZyre(t)
	lab := netns.NewWith(t, 3, netns.Options{Prefix: "pv-"})
	const room, phone, stranger = 0, 1, 2
	homes := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	names := []string{"room", "phone", "stranger"}
	for i, h := range homes {
		if out, err := runIn(t, lab, i, bin, "keys", "init", "--home", h, "--name", names[i], "--insecure-plaintext"); err != nil {
			t.Fatalf("keys init %s: %v\n%s", names[i], err, out)
		}
	}

	// Pairing: by token, then by short code.
	for _, byCode := range []bool{false, true} {
		show := startPairShow(t, lab, bin, homes[room])
		arg := show.token
		if byCode {
			arg = "--code=" + show.code
		}
		out, err := runIn(t, lab, phone, bin, "pair", "--home", homes[phone], "--timeout", "60s", "--yes", arg)
		if err != nil {
			t.Fatalf("pair (code %v), phone: %v\n%s", byCode, err, out)
		}
		if outA, err := show.wait(t); err != nil {
			t.Fatalf("pair (code %v), room: %v\n%s", byCode, err, outA)
		}
	}
	verifiedIn(t, homes[room], "code")
	verifiedIn(t, homes[phone], "code")

	// The stranger watches the group "family" all along.
	mon := startIn(t, lab, stranger, bin, nil, nil, "monitor", "--secure", "--home", homes[stranger], "--group", "family")

	// A private chat: a line typed before the phone is there waits.
	roomIn, roomInW := io.Pipe()
	defer roomInW.Close()
	chatRoom := startIn(t, lab, room, bin, roomIn, nil, "chat", "--secure", "--home", homes[room], "--group", "family")
	if _, err := io.WriteString(roomInW, "the key is under the mat\n"); err != nil {
		t.Fatal(err)
	}
	phoneIn, phoneInW := io.Pipe()
	defer phoneInW.Close()
	chatPhone := startIn(t, lab, phone, bin, phoneIn, nil, "chat", "--secure", "--home", homes[phone], "--group", "family")
	awaitOutput(t, "the phone reads the room's line", func() bool {
		return strings.Contains(chatPhone.stdout.String(), "SHOUT room ") && strings.Contains(chatPhone.stdout.String(), " family the key is under the mat\n")
	})
	if _, err := io.WriteString(phoneInW, "on my way\n"); err != nil {
		t.Fatal(err)
	}
	awaitOutput(t, "the room reads the phone's line", func() bool {
		return strings.Contains(chatRoom.stdout.String(), " family on my way\n")
	})
	roomInW.Close()
	phoneInW.Close()
	for what, p := range map[string]*netnsProc{"room's chat": chatRoom, "phone's chat": chatPhone} {
		if err := p.wait(t, what); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, p.stderr)
		}
	}

	// A private stream of 50 MB.
	src := filepath.Join(t.TempDir(), "video")
	data := make([]byte, 50<<20)
	rng := rand.NewChaCha8([32]byte{7})
	rng.Read(data)
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	dst, err := os.Create(filepath.Join(t.TempDir(), "received"))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	recv := startIn(t, lab, phone, bin, nil, dst, "stream", "recv", "family", "--home", homes[phone], "--progress", "0")
	send := startIn(t, lab, room, bin, nil, nil, "stream", "send", "family", src, "--home", homes[room], "--progress", "0")
	if err := send.wait(t, "stream send"); err != nil {
		t.Fatalf("stream send: %v\n%s", err, send.stderr)
	}
	if err := recv.wait(t, "stream recv"); err != nil {
		t.Fatalf("stream recv: %v\n%s", err, recv.stderr)
	}
	got, err := os.ReadFile(dst.Name())
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("received %d octets, sha256 differs from the %d sent", len(got), len(data))
	}
	sum := sha256.Sum256(data)
	for what, p := range map[string]*netnsProc{"send": send, "recv": recv} {
		if !strings.Contains(p.stderr.String(), "sha256 "+hex.EncodeToString(sum[:])) {
			t.Errorf("stream %s does not print the sha256:\n%s", what, p.stderr)
		}
	}

	// Revoking the phone mid-stream.
	feedR, feedW := io.Pipe()
	defer feedW.Close()
	recv2 := startIn(t, lab, phone, bin, nil, nil, "stream", "recv", "family", "--home", homes[phone], "--progress", "0")
	send2 := startIn(t, lab, room, bin, feedR, nil, "stream", "send", "family", "--home", homes[room], "--progress", "0")
	fed := make(chan error, 1)
	go func() {
		chunk := data[:1<<20]
		for range 2000 { // at most 2 GB, ended by the revocation
			if _, err := feedW.Write(chunk); err != nil {
				fed <- err
				return
			}
			select {
			case <-recv2.done:
				fed <- nil
				return
			default:
			}
		}
		fed <- nil
	}()
	awaitOutput(t, "the phone receives the second stream", func() bool { return recv2.stdout.Len() > 0 })
	revokedAt := time.Now()
	if out, err := runIn(t, lab, room, bin, "trust", "revoke", "phone", "--home", homes[room], "--reason", "phone stolen"); err != nil {
		t.Fatalf("trust revoke: %v\n%s", err, out)
	}
	select {
	case <-recv2.done:
	case <-time.After(pairNetnsDeadline):
		t.Fatalf("the revoked phone still receives %v after its revocation:\n%s\nroom:\n%s", pairNetnsDeadline, recv2.stderr, send2.stderr)
	}
	err = recv2.wait(t, "the revoked phone's stream recv")
	t.Logf("the phone stopped %v after the revoke command started: %s", time.Since(revokedAt), lastLine(recv2.stderr.String()))
	if err == nil || !strings.Contains(recv2.stderr.String(), "from the private group") {
		t.Errorf("the revoked phone: %v, want a non-zero exit with a clear error:\n%s", err, recv2.stderr)
	}
	feedW.Close()
	if err := <-fed; err != nil && err != io.ErrClosedPipe {
		t.Logf("feeding the stream: %v", err)
	}
	closedAt := time.Now()
	if err := send2.wait(t, "stream send after the revocation"); err != nil {
		t.Errorf("stream send after the revocation: %v\n%s", err, send2.stderr)
	}
	t.Logf("the room's stream ended %v after its input did", time.Since(closedAt))
	if s := send2.stderr.String(); !strings.Contains(s, "removed phone ") || !strings.Contains(s, "its key is revoked (phone stolen)") {
		t.Errorf("the room does not name the removed member:\n%s", s)
	}

	// The stranger, in the group with both, received none of their records
	// or keys (it used to get them all, sealed: usertry4 #3), and never a
	// line or the stream in clear.
	mon.cmd.Process.Signal(os.Interrupt)
	mon.wait(t, "monitor")
	seen := mon.stdout.String()
	if !strings.Contains(seen, "JOIN room ") || !strings.Contains(seen, "JOIN phone ") {
		t.Errorf("the stranger's monitor did not see both in the group:\n%.4000s", seen)
	}
	if strings.Contains(seen, "SEALED ") {
		t.Errorf("the stranger received sealed records or keys:\n%.4000s", seen)
	}
	for _, l := range strings.Split(seen, "\n") {
		if (strings.HasPrefix(l, "SHOUT ") || strings.HasPrefix(l, "WHISPER ")) && !strings.Contains(l, " zyre-trust ") {
			t.Errorf("the stranger received a record not sealed: %.200s", l)
		}
	}
	for _, clear := range []string{"under the mat", "on my way"} {
		if strings.Contains(seen, clear) {
			t.Errorf("the stranger read %q", clear)
		}
	}

	// Neither device trusts the stranger; the room forgets it.
	strangerID := loadKey(t, homes[stranger])
	for _, i := range []int{room, phone} {
		st, err := trust.Open(homes[i], trust.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if r, ok, err := st.Lookup(strangerID); err != nil || (ok && r.Trusted()) {
			t.Errorf("%s's record of the stranger: %+v %v %v", names[i], r, ok, err)
		}
	}
	if out, err := runIn(t, lab, room, bin, "trust", "forget", "stranger", "--home", homes[room]); err != nil {
		t.Fatalf("trust forget: %v\n%s", err, out)
	}
	st, err := trust.Open(homes[room], trust.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := st.Lookup(strangerID); ok || err != nil {
		t.Errorf("the room still holds the stranger after trust forget (%v)", err)
	}
}

// loadKey returns the CURVE key of the plaintext identity in home.
func loadKey(t *testing.T, home string) curve.PublicKey {
	t.Helper()
	ks, err := keystore.Open(home, keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := ks.Load(context.Background(), keystore.Unlock{})
	if err != nil {
		t.Fatal(err)
	}
	return id.CurveKey
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	return ls[len(ls)-1]
}
