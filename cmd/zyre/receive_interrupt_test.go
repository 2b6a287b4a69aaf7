package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestReceiveInterruptedTellsSender: Ctrl-C of "zyre receive" mid-transfer
// (its context ends) tells the sender, which ends within seconds, not
// frozen: "bob stopped receiving after X of 256.0 MiB (N%); it keeps what
// it holds: ...", exit 1; the receiver says what it kept and how to
// resume; and a new receive is offered the rest when the same send runs
// again (usertry5 #1). One-shot, and with agents on both sides.
func TestReceiveInterruptedTellsSender(t *testing.T) {
	for _, through := range []string{"one-shot", "agent"} {
		t.Run(through, func(t *testing.T) {
			homeA, homeB, _ := streamPeers(t)
			port := fmt.Sprint(randomBeaconPort())
			file := filepath.Join(t.TempDir(), "big.bin")
			f, err := os.Create(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Truncate(256 << 20); err != nil { // sparse: quick to make, slow enough to send
				t.Fatal(err)
			}
			f.Close()
			dst := t.TempDir()
			alice := []string{"--no-agent", "--loopback", "--port", port, "--home", homeA}
			bob := []string{"--no-agent", "--loopback", "--port", port, "--home", homeB}
			if through == "agent" {
				sockA := filepath.Join(t.TempDir(), "a.sock")
				agA := startCmd(t, strings.NewReader(""), "agent", "--home", homeA, "--loopback", "--port", port, "--socket", sockA)
				agA.stderr.waitFor(t, "control socket "+sockA)
				sockB := filepath.Join(t.TempDir(), "b.sock")
				agB := startCmd(t, strings.NewReader(""), "agent", "--home", homeB, "--loopback", "--port", port, "--socket", sockB)
				agB.stderr.waitFor(t, "control socket "+sockB)
				alice, bob = []string{"--socket", sockA}, []string{"--socket", sockB}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			rctx, interrupt := context.WithCancel(ctx)
			recv, bobOut := startStreamCmdLive(rctx, nil, append([]string{"receive", "--dir", dst, "--yes", "--progress", "10ms", "--wait", "1m"}, bob...)...)
			send, _ := startStreamCmdLive(ctx, nil, append([]string{"send", "bob", file, "--progress", "10ms", "--wait", "1m"}, alice...)...)
			awaitOutput(t, "bob receiving", func() bool { return regexp.MustCompile(`zyre: receiving: [1-9]`).MatchString(bobOut.stderr.String()) })
			interrupt()
			r := waitStreamCmd(t, "receive", recv)
			if r.code != 1 || !regexp.MustCompile(`\nzyre: interrupted after [\d.]+ (B|KiB|MiB) of 256\.0 MiB \(\d+%\): kept in `+regexp.QuoteMeta(filepath.Join(dst, ".zyre-partial"))+
				` \(the sender was told\); run zyre receive --dir `+regexp.QuoteMeta(dst)+` again, and the same send, to resume\n$`).MatchString(r.stderr.String()) {
				t.Errorf("receive exit %d, stderr:\n%s", r.code, r.stderr)
			}
			// The sender is told: it ends (the test's 60 s, where
			// before it sent on for ever).
			s := waitStreamCmd(t, "send", send)
			if s.code != 1 || !regexp.MustCompile(`\nzyre: bob stopped receiving after [\d.]+ (B|KiB|MiB) of 256\.0 MiB \(\d+%\); it keeps what it holds: send the same files again to resume\n$`).MatchString(s.stderr.String()) {
				t.Errorf("send exit %d, stderr:\n%s", s.code, s.stderr)
			}
			// Again: the new receive is offered the rest.
			rctx2, stop := context.WithCancel(ctx)
			defer stop()
			recv2, bobOut2 := startStreamCmdLive(rctx2, nil, append([]string{"receive", "--dir", dst, "--yes", "--progress", "0", "--wait", "1m"}, bob...)...)
			send2, _ := startStreamCmdLive(rctx2, nil, append([]string{"send", "bob", file, "--progress", "0", "--wait", "1m"}, alice...)...)
			awaitOutput(t, "bob resuming", func() bool {
				return regexp.MustCompile(`zyre: accepted 1 file\(s\), 256\.0 MiB, from alice \w+ \([\d.]+ (B|KiB|MiB) held from an earlier attempt\)`).MatchString(bobOut2.stderr.String())
			})
			stop()
			waitStreamCmd(t, "receive again", recv2)
			waitStreamCmd(t, "send again", send2)
		})
	}
}

// TestSendInterruptedTellsReceiver: Ctrl-C of "zyre send" mid-transfer
// tells the receiver, which ends at once saying who stopped, how far it
// got and that what arrived is kept (its partial file stays), not "stopped
// sending (interrupted?)" and a wait of minutes. One-shot, and with agents
// on both sides.
func TestSendInterruptedTellsReceiver(t *testing.T) {
	for _, through := range []string{"one-shot", "agent"} {
		t.Run(through, func(t *testing.T) {
			homeA, homeB, _ := streamPeers(t)
			port := fmt.Sprint(randomBeaconPort())
			file := filepath.Join(t.TempDir(), "big.bin")
			f, err := os.Create(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Truncate(256 << 20); err != nil {
				t.Fatal(err)
			}
			f.Close()
			dst := t.TempDir()
			alice := []string{"--no-agent", "--loopback", "--port", port, "--home", homeA}
			bob := []string{"--no-agent", "--loopback", "--port", port, "--home", homeB}
			if through == "agent" {
				sockA := filepath.Join(t.TempDir(), "a.sock")
				agA := startCmd(t, strings.NewReader(""), "agent", "--home", homeA, "--loopback", "--port", port, "--socket", sockA)
				agA.stderr.waitFor(t, "control socket "+sockA)
				sockB := filepath.Join(t.TempDir(), "b.sock")
				agB := startCmd(t, strings.NewReader(""), "agent", "--home", homeB, "--loopback", "--port", port, "--socket", sockB)
				agB.stderr.waitFor(t, "control socket "+sockB)
				alice, bob = []string{"--socket", sockA}, []string{"--socket", sockB}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			// --wait 5m: only the sender's word ends the receive within
			// the test's 60 s.
			recv, bobOut := startStreamCmdLive(ctx, nil, append([]string{"receive", "--dir", dst, "--yes", "--progress", "10ms", "--wait", "5m"}, bob...)...)
			sctx, interrupt := context.WithCancel(ctx)
			send, _ := startStreamCmdLive(sctx, nil, append([]string{"send", "bob", file, "--progress", "10ms", "--wait", "1m"}, alice...)...)
			awaitOutput(t, "bob receiving", func() bool { return regexp.MustCompile(`zyre: receiving: [1-9]`).MatchString(bobOut.stderr.String()) })
			interrupt()
			waitStreamCmd(t, "send", send)
			r := waitCmdSaying(t, "receive", recv, bobOut)
			if r.code != 1 || !regexp.MustCompile(`\nzyre: alice stopped sending after [\d.]+ (B|KiB|MiB) of 256\.0 MiB \(\d+%\); what arrived is kept: receive again while it sends the same files again to resume\n$`).MatchString(r.stderr.String()) {
				t.Errorf("receive exit %d, stderr:\n%s", r.code, r.stderr)
			}
			parts, _ := filepath.Glob(filepath.Join(dst, ".zyre-partial", "*", "0"))
			if len(parts) != 1 {
				t.Errorf("partial files %v", parts)
			}
		})
	}
}

// TestReceiverAgentStopsMidTransfer: the receiver's agent stopping
// mid-transfer (SIGTERM) tells the sender, which ends at once with how far
// it got, and the receive says the agent stopped and what was kept, not
// "client: transfer: EOF" or "context canceled".
func TestReceiverAgentStopsMidTransfer(t *testing.T) {
	homeA, homeB, _ := streamPeers(t)
	port := fmt.Sprint(randomBeaconPort())
	file := filepath.Join(t.TempDir(), "big.bin")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(256 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	dst := t.TempDir()
	sockA := filepath.Join(t.TempDir(), "a.sock")
	agA := startCmd(t, strings.NewReader(""), "agent", "--home", homeA, "--loopback", "--port", port, "--socket", sockA)
	agA.stderr.waitFor(t, "control socket "+sockA)
	sockB := filepath.Join(t.TempDir(), "b.sock")
	agB := startCmd(t, strings.NewReader(""), "agent", "--home", homeB, "--loopback", "--port", port, "--socket", sockB)
	agB.stderr.waitFor(t, "control socket "+sockB)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	recv, bobOut := startStreamCmdLive(ctx, nil, "receive", "--dir", dst, "--yes", "--progress", "10ms", "--wait", "5m", "--socket", sockB)
	send, _ := startStreamCmdLive(ctx, nil, "send", "bob", file, "--progress", "10ms", "--wait", "5m", "--socket", sockA)
	awaitOutput(t, "bob receiving", func() bool { return regexp.MustCompile(`zyre: receiving: [1-9]`).MatchString(bobOut.stderr.String()) })
	agB.cancel() // its SIGTERM
	s := waitStreamCmd(t, "send", send)
	if s.code != 1 || !regexp.MustCompile(`\nzyre: bob stopped receiving after [\d.]+ (B|KiB|MiB) of 256\.0 MiB \(\d+%\); it keeps what it holds: send the same files again to resume\n$`).MatchString(s.stderr.String()) {
		t.Errorf("send exit %d, stderr:\n%s", s.code, s.stderr)
	}
	r := waitStreamCmd(t, "receive", recv)
	if r.code != 1 || !regexp.MustCompile(`\nzyre: the agent stopped after [\d.]+ (B|KiB|MiB) of 256\.0 MiB \(\d+%\) arrived: kept in `+regexp.QuoteMeta(filepath.Join(dst, ".zyre-partial"))+`; start the agent and run zyre receive --dir `+regexp.QuoteMeta(dst)+` again, and the same send, to resume\n$`).MatchString(r.stderr.String()) {
		t.Errorf("receive exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

// waitCmdSaying is waitStreamCmd that shows what the command said so far
// when it does not end.
func waitCmdSaying(t *testing.T, what string, ch chan streamCmdResult, live streamCmdResult) streamCmdResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not end within 60s; it said:\n%s", what, live.stderr)
		return streamCmdResult{}
	}
}
