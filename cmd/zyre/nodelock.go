package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/zyre-go/zyre/keystore"
)

// nodeLockName is the file in a home whose advisory lock (flock(2)) the
// one process that runs a node with the home's identity holds: the agent,
// or a command with a secure node of its own. Two nodes with one identity
// (one key, one UUID) would confuse every peer (ENTER, EXIT, ENTER), so a
// second is refused before any passphrase is asked. The kernel releases the
// lock when its holder ends, even by a crash: no stale lock is left. The
// file says who holds it (nodeHolder, JSON) and is never removed (removing
// it would let two processes lock two different files).
const nodeLockName = "node.lock"

// nodeHolder is what the lock's holder writes in the file, for the
// refusal to name it.
type nodeHolder struct {
	PID     int    `json:"pid"`
	Command string `json:"command"`          // "zyre monitor", "zyre agent", ...
	Socket  string `json:"socket,omitempty"` // the agent's control socket
}

// lockNode takes the node lock of home for holder and returns the
// function that releases it (closing the file; safe to call twice). A
// home that does not exist or has no readable public identity gets no
// lock (nil, nil): loading the identity then says what is wrong. When
// another process holds it, the error names that process and says what to
// do; ephemeralOK adds --ephemeral to the hint.
func lockNode(home string, holder nodeHolder, ephemeralOK bool) (func(), error) {
	st, err := keystore.Open(home, keystore.Options{Logger: quietLog()})
	if err != nil {
		return nil, nil
	}
	pub, err := st.Public()
	if err != nil {
		return nil, nil
	}
	name := filepath.Join(home, nodeLockName)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking this identity's node (%s): %w", name, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if errors.Is(err, unix.EWOULDBLOCK) {
		b, _ := io.ReadAll(io.LimitReader(f, maxHolder))
		f.Close()
		return nil, nodeInUse(parseHolder(b), holder.Command, fmt.Sprintf("%s %s", safe(pub.Name), shortID(pub.UUID)), ephemeralOK)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking this identity's node (%s): %w", name, err)
	}
	holder.PID = os.Getpid()
	b, _ := json.Marshal(holder)
	// Best effort: the lock, not the text, keeps a second node out.
	if f.Truncate(0) == nil {
		f.WriteAt(append(b, '\n'), 0)
	}
	done := false
	return func() {
		if !done {
			done = true
			f.Close()
		}
	}, nil
}

// maxHolder bounds what is read of a lock file's text.
const maxHolder = 4096

// parseHolder reads the text of a lock file, written by another process
// (perhaps an older or a hostile one, or one still writing it): anything
// that does not parse names "another process".
func parseHolder(b []byte) nodeHolder {
	var h nodeHolder
	if json.Unmarshal(b, &h) != nil || h.PID <= 0 {
		return nodeHolder{}
	}
	return h
}

// nodeInUse is the refusal of a second node, of the command cmd, with the
// identity ident ("alice 1a2b3c4d") that h runs.
func nodeInUse(h nodeHolder, cmd, ident string, ephemeralOK bool) error {
	who := "another process"
	if h.Command != "" && h.PID > 0 {
		who = fmt.Sprintf("%q (pid %d)", safe(h.Command), h.PID)
	}
	if h.Command == "zyre agent" {
		at := ""
		if h.Socket != "" {
			at = " at " + safe(h.Socket)
		}
		hint := "go through the agent (leave out --no-agent and the flags of a node of this command's own; --socket if it is not the default), or stop it while this command runs"
		if cmd == "zyre agent" {
			hint = "one agent per identity: use that one, or stop it first"
		}
		return withHint(fmt.Errorf("the agent%s (pid %d) runs this identity (%s) already: a second node with it would confuse its peers", at, h.PID, ident), hint)
	}
	hint := `start "zyre agent", which every command then goes through, or wait for that command to end`
	if ephemeralOK {
		hint = `start "zyre agent", which every command then goes through, or pass --ephemeral for a key of this run only`
	}
	return withHint(fmt.Errorf("%s runs this identity (%s) already: a second node with it would confuse its peers", who, ident), hint)
}
