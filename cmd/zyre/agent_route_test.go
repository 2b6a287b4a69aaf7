package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zyre-go/zyre/zre"
)

// TestMonitorSecureThroughAgent: "zyre monitor --secure --group G" (the
// README's form) beside an agent of this home goes through the agent
// (usertry2 #3); with another --port it asks for a second node with the
// agent's identity, and is refused before any passphrase.
func TestMonitorSecureThroughAgent(t *testing.T) {
	home := t.TempDir()
	var out, errb bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	if code := run(context.Background(), env, []string{"keys", "init", "--home", home, "--name", "agentsec", "--insecure-plaintext"}); code != 0 {
		t.Fatalf("keys init: exit %d: %s", code, errb.String())
	}
	port := randomBeaconPort()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ag := startCmd(t, strings.NewReader(""), "agent", "--home", home, "--loopback", "--port", fmt.Sprint(port), "--socket", sock)
	ag.stderr.waitFor(t, "control socket "+sock)
	peer := testSecurePeer(t, port, "tester", "room")

	mon := startCmd(t, strings.NewReader(""), "monitor", "--secure", "--home", home, "--group", "room", "--socket", sock, "--loopback")
	mon.stderr.waitFor(t, "monitoring through the agent agentsec")
	awaitEvent(t, peer, "JOIN agentsec room", func(e zre.Event) bool {
		j, ok := e.(*zre.Join)
		return ok && j.Name == "agentsec" && j.Group == "room"
	})
	if err := peer.Shout("room", []byte("to the agent")); err != nil {
		t.Fatal(err)
	}
	mon.stdout.waitFor(t, "SHOUT tester "+shortID(peer.UUID())+" room to the agent\n")
	mon.cancel()
	if code := mon.wait(t); code != 0 {
		t.Fatalf("monitor exit %d: %s", code, mon.stderr.String())
	}
	if s := mon.stderr.String(); strings.Contains(s, "secure mode with the identity") {
		t.Fatalf("monitor ran a node of its own:\n%s", s)
	}

	// Another port: a second node with the agent's identity.
	r := startCmd(t, strings.NewReader(""), "monitor", "--secure", "--home", home, "--socket", sock, "--loopback", "--port", fmt.Sprint(port+1))
	if code := r.wait(t); code != 1 || !strings.Contains(r.stderr.String(), "runs this identity (agentsec ") ||
		!strings.Contains(r.stderr.String(), fmt.Sprintf("--port %d (the agent's: %d) asks for a second node", port+1, port)) {
		t.Fatalf("monitor --port beside the agent: exit %d: %s", code, r.stderr.String())
	}
}
