package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/zyre-go/zyre/keystore"
	"github.com/zyre-go/zyre/trust"
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
	res := make(chan streamCmdResult, 1)
	out, errb := &lockedBuffer{}, &lockedBuffer{}
	env := &cliEnv{stdin: bytes.NewReader(stdin), stdout: out, stderr: errb, getenv: func(string) string { return "" }}
	go func() { res <- streamCmdResult{run(ctx, env, args), out, errb} }()
	return res
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
	for _, want := range []string{"zyre stream: received 683.6 KiB in ", "/s", "Mbit/s", "reading the stream of alice"} {
		if !strings.Contains(r.stderr.String(), want) {
			t.Errorf("recv stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if !strings.Contains(s.stderr.String(), "zyre stream: sent 683.6 KiB in ") || !strings.Contains(s.stderr.String(), `of "hotel-room" (aes256gcm-blake3)`) {
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
		{"stream", "send", "--loopback", "g"}, // a flag where GROUP belongs
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
		if !strings.Contains(errb.String(), "zyre stream") || strings.Contains(errb.String(), "ephemeral key") {
			t.Errorf("%q: want the usage and no node; stderr:\n%s", args, errb.String())
		}
	}
}

// zyre demo --private: bob reads alice's private stream, carol (in the
// group, untrusted) sees only ciphertext and cannot open it.
func TestDemoPrivate(t *testing.T) {
	got := demoOutput(t, "--private")
	checkDemo(t, got,
		`private group "demo-private"`,
		"alice  gives her sender key to 1 trusted member(s) by WHISPER over CURVE, passes over 1",
		"bob    holds alice's sender key",
		`bob    reads 512 octets, authenticated, in order: "room 1207`,
		"carol  is in \"demo-private\" too and receives all ",
		"    data   293 octets  11",
		"carol  cannot open them: privgroup: open data: unknown sender key",
		"alice  refuses carol's sender key",
		"every node stopped, 0 events dropped",
	)
	if i := strings.Index(got, "carol  is in"); i >= 0 && strings.Contains(got[i:], "room 1207") {
		t.Error("carol's part of the output shows plaintext")
	}
}
