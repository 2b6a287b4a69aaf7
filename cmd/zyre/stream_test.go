package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/keystore"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

// streamHome makes a node home with a plaintext identity named name (one
// whose key a secure node accepts) and returns it with the identity.
func streamHome(t *testing.T, name string) (string, *keystore.Identity) {
	t.Helper()
	for range 20 {
		home := t.TempDir()
		ks, err := keystore.Open(home, keystore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		id, err := ks.Init(context.Background(), keystore.InitOptions{Name: name, Protection: keystore.Protection{Plaintext: true}})
		if err != nil {
			t.Fatal(err)
		}
		if id.CurveKey.Bytes()[0] != 0 { // C zyre reads a key starting with 0x00 as none
			return home, id
		}
	}
	t.Fatal("no usable identity in 20 tries")
	return "", nil
}

// verify marks the identities verified in home's trust store.
func streamVerify(t *testing.T, home string, ids ...*keystore.Identity) {
	t.Helper()
	st, err := trust.Open(home, trust.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, err := st.MarkVerified(context.Background(), id.CurveKey, id.UUID, id.Name, "test", nil); err != nil {
			t.Fatal(err)
		}
	}
}

type streamCmdResult struct {
	code           int
	stdout, stderr *lockedBuffer
}

// startStreamCmd runs a zyre command line in the background.
func startStreamCmd(ctx context.Context, stdin []byte, args ...string) chan streamCmdResult {
	return startStreamCmdReader(ctx, bytes.NewReader(stdin), args...)
}

// startStreamCmdReader is startStreamCmd with stdin read from r.
func startStreamCmdReader(ctx context.Context, r io.Reader, args ...string) chan streamCmdResult {
	res, _ := startStreamCmdLive(ctx, r, args...)
	return res
}

// startStreamCmdLive is startStreamCmdReader that also returns the
// command's stdout and stderr to watch while it runs.
func startStreamCmdLive(ctx context.Context, r io.Reader, args ...string) (chan streamCmdResult, streamCmdResult) {
	if r == nil {
		r = bytes.NewReader(nil)
	}
	res := make(chan streamCmdResult, 1)
	live := streamCmdResult{stdout: &lockedBuffer{}, stderr: &lockedBuffer{}}
	env := &cliEnv{stdin: r, stdout: live.stdout, stderr: live.stderr, getenv: func(string) string { return "" }}
	go func() { res <- streamCmdResult{run(ctx, env, args), live.stdout, live.stderr} }()
	return res, live
}

// awaitOutput waits until what holds of a running command's live output.
func awaitOutput(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// streamPeers makes two homes, alice and bob, that trust each other, and a
// random beacon port.
func streamPeers(t *testing.T) (homeA, homeB, port string) {
	homeA, idA := streamHome(t, "alice")
	homeB, idB := streamHome(t, "bob")
	streamVerify(t, homeA, idB)
	streamVerify(t, homeB, idA)
	return homeA, homeB, fmt.Sprint(20000 + rand.IntN(40000))
}

func waitStreamCmd(t *testing.T, what string, ch chan streamCmdResult) streamCmdResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not end within 60s", what)
		return streamCmdResult{}
	}
}

// zyre stream send and recv in-process: two secure nodes on loopback with
// identities that trust each other (verified); the data arrives
// byte-exact, with a progress line on stderr.
func TestStreamSendRecv(t *testing.T) {
	homeA, idA := streamHome(t, "alice")
	homeB, idB := streamHome(t, "bob")
	streamVerify(t, homeA, idB)
	streamVerify(t, homeB, idA)
	port := fmt.Sprint(20000 + rand.IntN(40000))
	data := make([]byte, 700_000)
	for i := range data {
		data[i] = byte(i*7 + i/251)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	recv := startStreamCmd(ctx, nil, "stream", "recv", "hotel-room", "--loopback", "--port", port, "--home", homeB, "--peer-name", "alice", "--progress", "10ms")
	send := startStreamCmd(ctx, data, "stream", "send", "hotel-room", "--loopback", "--port", port, "--home", homeA, "--chunk", "4096", "--suite", "aes256gcm-blake3")
	s := waitStreamCmd(t, "stream send", send)
	r := waitStreamCmd(t, "stream recv", recv)
	if s.code != 0 || r.code != 0 {
		t.Fatalf("send exit %d, stderr:\n%s\nrecv exit %d, stderr:\n%s", s.code, s.stderr, r.code, r.stderr)
	}
	if got := r.stdout.Bytes(); !bytes.Equal(got, data) {
		t.Fatalf("received %d octets, want %d", len(got), len(data))
	}
	for _, want := range []string{"zyre: receiving", "683.6 KiB", `zyre: received from alice `, `in "hotel-room": 683.6 KiB (700000 octets) in `, "/s", "Mbit/s", "sha256 ", "; the stream ended\n", "reading the stream of alice"} {
		if !strings.Contains(r.stderr.String(), want) {
			t.Errorf("recv stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if !strings.Contains(s.stderr.String(), `zyre: sent to 1 member(s) of "hotel-room": 683.6 KiB (700000 octets) in `) || !strings.Contains(s.stderr.String(), `of "hotel-room" (aes256gcm-blake3)`) {
		t.Errorf("send stderr:\n%s", s.stderr)
	}
}

// --bytes stops the receiver; an untrusted receiver gets nothing and the
// sender says why it gives up.
func TestStreamLimitsAndTrust(t *testing.T) {
	homeA, idA := streamHome(t, "alice")
	homeB, idB := streamHome(t, "bob")
	homeC, _ := streamHome(t, "carol") // alice does not trust carol
	homeD, idD := streamHome(t, "dave")
	streamVerify(t, homeA, idB, idD)
	streamVerify(t, homeB, idA)
	streamVerify(t, homeC, idA)
	streamVerify(t, homeD, idA)
	port := fmt.Sprint(20000 + rand.IntN(40000))
	data := bytes.Repeat([]byte("0123456789"), 50_000)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	recv := startStreamCmd(ctx, nil, "stream", "recv", "g", "--loopback", "--port", port, "--home", homeB, "--bytes", "12345")
	dave := startStreamCmd(ctx, nil, "stream", "recv", "g", "--loopback", "--port", port, "--home", homeD, "--count", "3", "--chunk", "1000")
	// Bob, carol and dave are in the group, but only bob and dave are
	// trusted: alice waits for those two.
	send := startStreamCmd(ctx, data, "stream", "send", "g", "--loopback", "--port", port, "--home", homeA, "--members", "2", "--suite", "chacha20poly1305-sha256")
	carol := startStreamCmd(ctx, nil, "stream", "recv", "g", "--loopback", "--port", port, "--home", homeC, "--wait", "2s")
	r := waitStreamCmd(t, "stream recv", recv)
	if r.code != 0 || !bytes.Equal(r.stdout.Bytes(), data[:12345]) {
		t.Fatalf("recv exit %d with %d octets, stderr:\n%s", r.code, len(r.stdout.Bytes()), r.stderr)
	}
	d := waitStreamCmd(t, "dave's stream recv", dave)
	if d.code != 0 || !bytes.Equal(d.stdout.Bytes(), data[:3000]) {
		t.Fatalf("dave: exit %d with %d octets, stderr:\n%s", d.code, len(d.stdout.Bytes()), d.stderr)
	}
	c := waitStreamCmd(t, "carol's stream recv", carol)
	if c.code != 1 || len(c.stdout.Bytes()) != 0 || !strings.Contains(c.stderr.String(), "no trusted sender") {
		t.Fatalf("carol: exit %d, %d octets, stderr:\n%s", c.code, len(c.stdout.Bytes()), c.stderr)
	}
	cancel() // bob and dave stopped early and never acknowledge: stop alice
	waitStreamCmd(t, "stream send", send)
}

func TestStreamUsage(t *testing.T) {
	for _, args := range [][]string{
		{"stream"},
		{"stream", "push", "g"},
		{"stream", "send"},
		{"stream", "send", "g", "--secure=false"},
		{"stream", "send", "g", "--trust", "everyone"},
		{"stream", "send", "g", "--peer-name", "x"},
		{"stream", "send", "g", "--suite", "rot13"},
		{"stream", "recv", "g", "--chunk", "0"},
		{"stream", "recv", "g", "extra"},
		{"stream", "recv", strings.Repeat("g", 256)},
		{"stream", "send", "g", "file", "extra"},
		{"stream", "recv", "--loopback"}, // no GROUP
		{"stream", "frob", "g"},
	} {
		var out, errb bytes.Buffer
		env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		if code := run(context.Background(), env, args); code != 2 {
			t.Errorf("%q: exit %d, want 2; stderr:\n%s", args, code, errb.String())
		}
	}
}

// TestStreamHelp: --help after send or recv prints the usage and starts no
// node (it once took "--help" for the group name and ran a node on the
// default interface).
func TestStreamHelp(t *testing.T) {
	for _, args := range [][]string{{"stream", "--help"}, {"stream", "send", "--help"}, {"stream", "recv", "-h"}} {
		var out, errb bytes.Buffer
		env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		if code := run(context.Background(), env, args); code != 0 {
			t.Errorf("%q: exit %d, want 0; stderr:\n%s", args, code, errb.String())
		}
		if !strings.Contains(out.String(), "zyre stream") || strings.Contains(errb.String(), "ephemeral key") || errb.Len() > 0 {
			t.Errorf("%q: want the usage on stdout and no node; stdout:\n%s\nstderr:\n%s", args, out.String(), errb.String())
		}
	}
}

// zyre demo --private: bob reads alice's private stream, carol (in the
// group, untrusted) receives no record of it, not even ciphertext (she
// used to receive them all: usertry4 #3).
func TestDemoPrivate(t *testing.T) {
	got := demoOutput(t, "--private")
	checkDemo(t, got,
		`private group "demo-private"`,
		"alice  gives her sender key to 1 trusted member(s) by WHISPER over CURVE, passes over 1",
		"bob    holds alice's sender key",
		`bob    reads 512 octets, authenticated, in order: "room 1207`,
		"carol  is in \"demo-private\" too and receives none of alice's records, only the plain marker after them",
		"carol  holds no key of alice's, and her group counted 0 records, 0 opaque",
		"alice  refuses carol's sender key",
		"every node stopped, 0 events dropped",
	)
	if i := strings.Index(got, "carol  is in"); i >= 0 && strings.Contains(got[i:], "room 1207") {
		t.Error("carol's part of the output shows plaintext")
	}
}

// A send whose stdin fails half-way does not end the stream: the receiver
// sees it cut and exits 1, and the sender says it was stdin (found by
// review: the end mark went out and the receiver took half for all).
func TestStreamSendInputErrorCutsStream(t *testing.T) {
	homeA, homeB, port := streamPeers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	in, feed := io.Pipe()
	defer feed.Close()
	recv, bob := startStreamCmdLive(ctx, nil, "stream", "recv", "g", "--loopback", "--port", port, "--home", homeB, "--progress", "0")
	send := startStreamCmdReader(ctx, in, "stream", "send", "g", "--loopback", "--port", port, "--home", homeA, "--progress", "0", "--chunk", "1000")
	if _, err := feed.Write(make([]byte, 50_000)); err != nil {
		t.Fatal(err)
	}
	// The stream is under way (bob reads it), then stdin fails.
	awaitOutput(t, "bob reading alice's stream", func() bool { return len(bob.stdout.Bytes()) > 0 })
	feed.CloseWithError(errors.New("input/output error"))
	s := waitStreamCmd(t, "stream send", send)
	r := waitStreamCmd(t, "stream recv", recv)
	if s.code != 1 || !strings.Contains(s.stderr.String(), "reading stdin after 50000 octets: input/output error") {
		t.Fatalf("send exit %d, stderr:\n%s", s.code, s.stderr)
	}
	if r.code != 1 || !strings.Contains(r.stderr.String(), "before the end of its stream") {
		t.Fatalf("recv exit %d with %d octets, stderr:\n%s", r.code, len(r.stdout.Bytes()), r.stderr)
	}
	if strings.Contains(s.stderr.String()+r.stderr.String(), "zyre: sending") || strings.Contains(s.stderr.String()+r.stderr.String(), "zyre: receiving") {
		t.Fatalf("a progress line with --progress 0:\n%s\n%s", s.stderr, r.stderr)
	}
}

// recv --bytes N on a stream of exactly N octets acknowledges the end, so
// the sender knows its data arrived (found by review: it never did).
func TestStreamRecvExactLimitAcknowledges(t *testing.T) {
	homeA, homeB, port := streamPeers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	data := bytes.Repeat([]byte("exactly "), 1250)
	recv := startStreamCmd(ctx, nil, "stream", "recv", "g", "--loopback", "--port", port, "--home", homeB, "--bytes", fmt.Sprint(len(data)))
	send := startStreamCmd(ctx, data, "stream", "send", "g", "--loopback", "--port", port, "--home", homeA)
	s := waitStreamCmd(t, "stream send", send)
	r := waitStreamCmd(t, "stream recv", recv)
	if s.code != 0 || r.code != 0 || !bytes.Equal(r.stdout.Bytes(), data) {
		t.Fatalf("send exit %d, stderr:\n%s\nrecv exit %d with %d octets, stderr:\n%s", s.code, s.stderr, r.code, len(r.stdout.Bytes()), r.stderr)
	}
}

// Only trusted members holding our key acknowledge, each once, and only
// after the end was sent: an untrusted node that whispers acknowledgements
// all along does not make send report delivery (found by review).
func TestStreamAcknowledgementsOnlyFromMembers(t *testing.T) {
	homeA, homeB, port := streamPeers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mallory := newStreamAcker(t, port)
	// Bob stops after 1000 octets and so never acknowledges.
	recv := startStreamCmd(ctx, nil, "stream", "recv", "g", "--loopback", "--port", port, "--home", homeB, "--bytes", "1000")
	send := startStreamCmd(ctx, bytes.Repeat([]byte("z"), 500_000), "stream", "send", "g", "--loopback", "--port", port, "--home", homeA, "--wait", "5s")
	r := waitStreamCmd(t, "stream recv", recv)
	s := waitStreamCmd(t, "stream send", send)
	if r.code != 0 || len(r.stdout.Bytes()) != 1000 {
		t.Fatalf("recv exit %d with %d octets, stderr:\n%s", r.code, len(r.stdout.Bytes()), r.stderr)
	}
	if s.code != 1 || !strings.Contains(s.stderr.String(), "0 of 1 members acknowledged the end") {
		t.Fatalf("send exit %d, stderr:\n%s", s.code, s.stderr)
	}
	if mallory.sent.Load() == 0 {
		t.Fatal("the untrusted node sent no acknowledgement: the test proves nothing")
	}
}

// streamAcker is an untrusted secure node in group "g" that whispers a
// stream acknowledgement to whoever joins the group and after every SHOUT
// it gets there: before, during and after a stream's end.
type streamAcker struct{ sent atomic.Int64 }

func newStreamAcker(t *testing.T, port string) *streamAcker {
	t.Helper()
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	var sk curve.SecretKey
	for range 20 {
		pub, s, err := curve.GenerateKeyPair(nil)
		if err != nil {
			t.Fatal(err)
		}
		if sk = s; pub.Bytes()[0] != 0 { // C zyre reads a key starting with 0x00 as none
			break
		}
	}
	n := startTestPeer(t, zre.Config{Name: "mallory", Beacon: zre.BeaconConfig{Port: p, Loopback: true, Interval: 100 * time.Millisecond},
		Secure: &zre.SecureConfig{Secret: sk}}, []string{"g"})
	a := &streamAcker{}
	go func() {
		for ev := range n.Events() {
			var to uuid.UUID
			switch e := ev.(type) {
			case *zre.Join:
				to = e.Peer
			case *zre.Shout:
				to = e.Peer
			default:
				continue
			}
			if n.Whisper(to, []byte(streamAck), []byte("EOF"), []byte("g")) == nil {
				a.sent.Add(1)
			}
		}
	}()
	return a
}

// A receiver that joins a stream late writes what it gets from there, but
// its output lacks the start: without --live it exits 1 and says so, and
// does not acknowledge; the member that got it all does.
func TestStreamRecvWithGapFails(t *testing.T) {
	homeA, idA := streamHome(t, "alice")
	homeB, idB := streamHome(t, "bob")
	homeC, idC := streamHome(t, "carol")
	streamVerify(t, homeA, idB, idC)
	streamVerify(t, homeB, idA)
	streamVerify(t, homeC, idA)
	port := fmt.Sprint(20000 + rand.IntN(40000))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	part1, part2 := bytes.Repeat([]byte("early "), 5000), bytes.Repeat([]byte("late "), 5000)
	in, feed := io.Pipe()
	defer feed.Close()
	bob := startStreamCmd(ctx, nil, "stream", "recv", "g", "--loopback", "--port", port, "--home", homeB, "--progress", "0")
	send := startStreamCmdReader(ctx, in, "stream", "send", "g", "--loopback", "--port", port, "--home", homeA, "--progress", "0", "--chunk", "1000")
	if _, err := feed.Write(part1); err != nil {
		t.Fatal(err)
	}
	// Carol starts once part 1 went out.
	carol, live := startStreamCmdLive(ctx, nil, "stream", "recv", "g", "--loopback", "--port", port, "--home", homeC, "--progress", "0")
	awaitOutput(t, "carol reading alice's stream", func() bool { return strings.Contains(live.stderr.String(), "reading the stream of alice") })
	if _, err := feed.Write(part2); err != nil {
		t.Fatal(err)
	}
	feed.Close()
	s := waitStreamCmd(t, "stream send", send)
	b := waitStreamCmd(t, "bob's stream recv", bob)
	c := waitStreamCmd(t, "carol's stream recv", carol)
	if s.code != 0 || b.code != 0 || !bytes.Equal(b.stdout.Bytes(), append(part1, part2...)) {
		t.Fatalf("send exit %d, stderr:\n%s\nbob exit %d with %d octets, stderr:\n%s", s.code, s.stderr, b.code, len(b.stdout.Bytes()), b.stderr)
	}
	got := c.stdout.Bytes()
	if c.code != 1 || !strings.Contains(c.stderr.String(), "the output lacks the first 30000 octets: this receiver joined the stream late") || !bytes.HasSuffix(part2, got) && !bytes.HasSuffix(append(part1, part2...), got) {
		t.Fatalf("carol exit %d with %d octets, stderr:\n%s", c.code, len(got), c.stderr)
	}
}

// ^C (the context ends) while send waits on a stdin with nothing to say
// ends send at once, without ending the stream (found by review: the
// context was checked only between reads).
func TestStreamSendInterruptedWhileStdinWaits(t *testing.T) {
	homeA, homeB, port := streamPeers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sctx, interrupt := context.WithCancel(ctx)
	in, feed := io.Pipe() // never written
	defer feed.Close()
	recv := startStreamCmd(ctx, nil, "stream", "recv", "g", "--loopback", "--port", port, "--home", homeB, "--progress", "0")
	send, live := startStreamCmdLive(sctx, in, "stream", "send", "g", "--loopback", "--port", port, "--home", homeA, "--progress", "0")
	awaitOutput(t, "alice streaming", func() bool { return strings.Contains(live.stderr.String(), "streaming to 1 member(s)") })
	interrupt()
	s := waitStreamCmd(t, "stream send", send)
	if s.code != 1 || !strings.Contains(s.stderr.String(), "zyre: interrupted after 0 B: receivers see the stream cut") {
		t.Fatalf("send exit %d, stderr:\n%s", s.code, s.stderr)
	}
	if r := waitStreamCmd(t, "stream recv", recv); r.code != 1 || len(r.stdout.Bytes()) != 0 {
		t.Fatalf("recv exit %d with %d octets, stderr:\n%s", r.code, len(r.stdout.Bytes()), r.stderr)
	}
}
