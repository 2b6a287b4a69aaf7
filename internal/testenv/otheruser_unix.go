//go:build unix

package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// OtherUID is the uid (and gid) a test runs a child as to play another
// user: nobody's.
const OtherUID = 65534

// OtherUserExe prepares a child run as OtherUID: it skips t unless the
// test runs as root, else makes a temporary folder of mode dirMode
// (removed when the test ends; not t.TempDir, whose parent only root may
// enter), copies the test binary into it as name, and returns the folder
// and the copy. Run it with AsOtherUser.
func OtherUserExe(t testing.TB, name string, dirMode os.FileMode) (dir, exe string) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to run a child as another uid")
	}
	dir, err := os.MkdirTemp("", name+"-uid-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, dirMode); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	exe = filepath.Join(dir, name+".test")
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, exe
}

// AsOtherUser makes cmd run as OtherUID.
func AsOtherUser(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: OtherUID, Gid: OtherUID}}
}
