package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/keystore"
	"github.com/zyre-go/zyre/trust"
)

// TestMain lets the test binary run as the zyre command in the scripts.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"zyre": main})
}

// TestScripts runs the CLI's scripts in testdata/script: each a txtar
// archive of commands and files (see the testscript package). Every
// script's files are made private (0600); every script gets its own
// runtime directory (so its own agent socket) and a random beacon port in
// $PORT; scripts that start a node pass --loopback.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script"),
		RequireExplicitExec: true,
		Setup: func(e *testscript.Env) error {
			run := filepath.Join(e.WorkDir, "run")
			if err := os.Mkdir(run, 0o700); err != nil {
				return err
			}
			// The archive's files are private (0600), as a user keeps a
			// passphrase file, which the CLI refuses otherwise; a script
			// that wants another mode says so (chmod).
			ents, err := os.ReadDir(e.WorkDir)
			if err != nil {
				return err
			}
			for _, ent := range ents {
				if ent.Type().IsRegular() {
					if err := os.Chmod(filepath.Join(e.WorkDir, ent.Name()), 0o600); err != nil {
						return err
					}
				}
			}
			e.Setenv("XDG_RUNTIME_DIR", run)
			e.Setenv("PORT", strconv.Itoa(randomBeaconPort()))
			e.Setenv("PORT2", strconv.Itoa(randomBeaconPort()))
			return nil
		},
		Cmds: map[string]func(*testscript.TestScript, bool, []string){
			"exits":      cmdExits,
			"waitfile":   cmdWaitFile,
			"waitmember": cmdWaitMember,
			"waittrust":  cmdWaitTrust,
			"verify":     cmdVerify,
			"waitrecv":   cmdWaitRecv, // send_agent_test.go
		},
	})
}

// cmdExits: exits N PROGRAM [ARGS...] runs the program and wants exit
// status N; its output is kept for stdout and stderr.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits N PROGRAM [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: bad status %q", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("exits: %v", err)
	}
	if got != want {
		ts.Fatalf("exit status %d, want %d", got, want)
	}
}

// cmdWaitFile: waitfile PATH waits (at most a minute) until PATH exists.
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitfile PATH")
	}
	p := ts.MkAbs(args[0])
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(p); err == nil {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s did not appear in a minute", p)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cmdWaitMember: waitmember SOCKET NAME waits (at most a minute) until the
// agent at SOCKET answers and lists a member named NAME.
func cmdWaitMember(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitmember SOCKET NAME")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The socket's file appears at bind(), before the agent's listen():
	// a connection in between is refused, so "waitfile SOCKET" does not
	// mean the agent answers yet. Dial until it does.
	var c *client.Client
	for {
		var err error
		if c, err = client.Dial(ctx, ts.MkAbs(args[0])); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			ts.Fatalf("no agent answering at %s in a minute: %v", args[0], err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	defer c.Close()
	for {
		ms, err := c.Members(ctx)
		ts.Check(err)
		for _, m := range ms {
			if m.Name == args[1] {
				return
			}
		}
		select {
		case <-ctx.Done():
			ts.Fatalf("no member %q in a minute: %+v", args[1], ms)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// cmdWaitTrust: waittrust HOME NAME waits (at most a minute) until the
// trust store of HOME, read by this process, has a record named NAME.
func cmdWaitTrust(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waittrust HOME NAME")
	}
	st, err := trust.Open(ts.MkAbs(args[0]), trust.Options{})
	ts.Check(err)
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := st.Find(args[1]); err == nil {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("no record %q in %s in a minute", args[1], args[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cmdVerify: verify HOME OTHER marks the identity of the home OTHER as
// verified in HOME's trust store, as a pairing would.
func cmdVerify(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: verify HOME OTHER")
	}
	ks, err := keystore.Open(ts.MkAbs(args[1]), keystore.Options{})
	ts.Check(err)
	p, err := ks.Public()
	ts.Check(err)
	st, err := trust.Open(ts.MkAbs(args[0]), trust.Options{})
	ts.Check(err)
	_, err = st.MarkVerified(context.Background(), p.CurveKey, p.UUID, p.Name, "test", p.SigningKey)
	ts.Check(err)
}
