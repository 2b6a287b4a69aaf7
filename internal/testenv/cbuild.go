package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// BuildC compiles testdata/NAME.c (cc -O2, then libs) into a temporary
// folder of tb and returns the binary. It skips tb when there is no C
// compiler or no /usr/include/HEADER (Debian's package pkg has it): the
// programs it builds are benchmarks' comparisons, not interop peers, so
// it skips even under CI. It fails tb if the program does not build.
func BuildC(tb testing.TB, name, header, pkg string, libs ...string) string {
	tb.Helper()
	bin, missing := TryBuildC(tb, name, header, pkg, libs...)
	if missing != "" {
		tb.Skip(missing)
	}
	return bin
}

// TryBuildC is BuildC that, instead of skipping, returns what is missing
// ("" when the program was built).
func TryBuildC(tb testing.TB, name, header, pkg string, libs ...string) (bin, missing string) {
	tb.Helper()
	if _, err := exec.LookPath("cc"); err != nil {
		return "", "no C compiler"
	}
	if _, err := os.Stat(filepath.Join("/usr/include", header)); err != nil {
		return "", "no " + pkg
	}
	bin = filepath.Join(tb.TempDir(), name)
	args := append([]string{"-O2", "-o", bin, filepath.Join("testdata", name+".c")}, libs...)
	if out, err := exec.Command("cc", args...).CombinedOutput(); err != nil {
		tb.Fatalf("building %s: %v\n%s", name, err, out)
	}
	return bin, ""
}

// BuildCZMQ compiles testdata/NAME.c against Debian's libczmq (flags from
// pkg-config) into a temporary folder of tb and returns the binary; a
// missing compiler, czmq or pkg-config is Missing.
func BuildCZMQ(tb testing.TB, name string) string {
	tb.Helper()
	return BuildCZMQFile(tb, filepath.Join("testdata", name+".c"))
}

// BuildCZMQFile is BuildCZMQ for a C file at path (another package's
// testdata, say).
func BuildCZMQFile(tb testing.TB, path string) string {
	tb.Helper()
	RequireCZMQ(tb)
	flags, err := exec.Command("pkg-config", "--cflags", "--libs", "libczmq").Output()
	if err != nil {
		Missing(tb, "pkg-config libczmq", "apt-get install libczmq-dev pkg-config")
	}
	bin := filepath.Join(tb.TempDir(), strings.TrimSuffix(filepath.Base(path), ".c"))
	args := append([]string{"-o", bin, path}, strings.Fields(string(flags))...)
	if out, err := exec.Command("cc", args...).CombinedOutput(); err != nil {
		tb.Fatalf("cc %v: %v\n%s", args, err, out)
	}
	return bin
}
