package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/privgroup/zyregroup"
)

// The agent's terminal says what a user needs in the CLI's own style, not
// a library's slog records (usertry2 #14): a group key it refuses is one
// "zyre agent:" line naming the device, the group and why.
func TestAgentSaysRefusedKey(t *testing.T) {
	homeA, _ := streamHome(t, "alice")
	homeB, idB := streamHome(t, "bob")
	streamVerify(t, homeA, idB) // alice trusts bob; bob only meets alice (tofu)
	port := fmt.Sprint(randomBeaconPort())
	dir := t.TempDir()
	sockA, sockB := filepath.Join(dir, "a.sock"), filepath.Join(dir, "b.sock")
	agB := startCmd(t, strings.NewReader(""), "agent", "--home", homeB, "--loopback", "--port", port, "--socket", sockB)
	agB.stderr.waitFor(t, "control socket "+sockB)
	agA := startCmd(t, strings.NewReader(""), "agent", "--home", homeA, "--loopback", "--port", port, "--socket", sockA)
	agA.stderr.waitFor(t, "control socket "+sockA)
	defer func() {
		if t.Failed() {
			t.Logf("bob's agent stderr:\n%s", agB.stderr.String())
		}
	}()
	// bob's agent opens family (a stream receiver), then alice's chat
	// there gives bob her key: bob refuses it.
	startCmd(t, strings.NewReader(""), "stream", "recv", "family", "--socket", sockB, "--wait", "2m", "--progress", "0")
	awaitMember(t, sockA, "bob", "family")
	in, inw := io.Pipe()
	defer inw.Close()
	chat := startCmd(t, in, "chat", "--socket", sockA, "--group", "family")
	chat.stderr.waitFor(t, "private chat in family through the agent alice")
	agB.stderr.waitFor(t, `zyre agent: refused alice's group key for "family": alice is not trusted here`)
	if s := agB.stderr.String(); strings.Contains(s, "level=") || strings.Contains(s, "msg=") {
		t.Errorf("slog records on the agent's terminal without --verbose:\n%s", s)
	}
}

// The CLI's log rule (logs.go): slog records only with --verbose; without
// it, warnings as one line in the CLI's style, known ones in a sentence,
// the same line at most once a minute, no info or debug.
func TestTermLog(t *testing.T) {
	peer := uuid.MustParse("0a1b2c3d-0000-4000-8000-000000000000")
	refused := func(l interface {
		Warn(string, ...any)
	}) {
		l.Warn("zyregroup: sender key refused", "group", "family", "peer", peer, "err", fmt.Errorf("privgroup: x: %w", zyregroup.ErrUntrusted))
	}
	for _, tc := range []struct {
		name string
		o    logOptions
		want string
	}{
		{"plain", logOptions{}, "zyre: refused 0a1b2c3d's group key for \"family\": 0a1b2c3d is not trusted here (zyre trust list)\n" +
			"zyre: zyregroup: rotate in \"family\": boom\n"},
		{"agent", logOptions{prefix: "zyre agent"}, "zyre agent: refused 0a1b2c3d's group key for \"family\": 0a1b2c3d is not trusted here (zyre trust list)\n" +
			"zyre agent: zyregroup: rotate in \"family\": boom\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			log := termLog(&cliEnv{stderr: &b}, tc.o)
			log.Debug("zyregroup: sender key", "group", "family")
			log.Info("zyregroup: a member opens our suite slowly; changing suite", "group", "family")
			refused(log)
			refused(log) // again at once: said once
			log.Warn("zyregroup: rotate", "group", "family", "err", errors.New("boom"))
			if b.String() != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", b.String(), tc.want)
			}
		})
	}
	var b strings.Builder
	log := termLog(&cliEnv{stderr: &b}, logOptions{verbose: true})
	log.Debug("zyregroup: sender key", "group", "family")
	refused(log)
	if s := b.String(); !strings.Contains(s, `level=DEBUG msg="zyregroup: sender key"`) || !strings.Contains(s, `level=WARN msg="zyregroup: sender key refused"`) {
		t.Fatalf("--verbose: want the slog records, got\n%s", s)
	}
}
