// Package testenv is the test kit every package shares. It decides whether
// a real peer or privilege is there and what to do when it is not: under CI
// (CI set to a true value) a missing interop peer fails the test, elsewhere
// it skips with the reason. It also waits for states no event announces
// (WaitFor) and checks that tests leave no goroutine behind (NoLeak,
// NoGoroutines).
package testenv

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// Python is the interpreter that has Debian's python3-zmq.
const Python = "/usr/bin/python3"

// InCI reports whether the tests run under CI.
func InCI() bool {
	v, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && v
}

// Missing fails the test under CI and skips it elsewhere, saying what is
// missing and how to get it.
func Missing(t testing.TB, what, fix string) {
	t.Helper()
	if InCI() {
		t.Fatalf("interop peer missing under CI: %s (%s)", what, fix)
	}
	t.Skipf("skipping: %s is missing (%s; scripts/test installs it)", what, fix)
}

// RequirePyZMQ makes sure /usr/bin/python3 can import zmq (Debian's
// python3-zmq, a binding of the real libzmq).
func RequirePyZMQ(t testing.TB) {
	t.Helper()
	if err := exec.Command(Python, "-c", "import zmq").Run(); err != nil {
		Missing(t, "python3-zmq for "+Python, "apt-get install python3-zmq")
	}
}

// RequireCZMQ makes sure a C compiler and czmq's headers are there.
func RequireCZMQ(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("cc"); err != nil {
		Missing(t, "a C compiler", "apt-get install gcc")
	}
	if _, err := os.Stat("/usr/include/czmq.h"); err != nil {
		Missing(t, "czmq headers", "apt-get install libczmq-dev")
	}
}

// RequireRoot skips the test when it cannot create network namespaces.
// This is a privilege, not a peer, so it skips even under CI, and says so.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: network-namespace tests need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		Missing(t, "ip (iproute2)", "apt-get install iproute2")
	}
}
