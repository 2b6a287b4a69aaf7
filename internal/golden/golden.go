// Package golden reads, for tests, the golden vectors that the C reference
// made (testdata/zre at the module root; see its README).
package golden

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Path is the path of the golden file name, wherever the test runs from.
func Path(name string) string {
	_, here, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(here), "..", "..", "testdata", "zre", name)
}

// HexLines reads a golden file of lowercase hex, one unit (a frame, or a
// raw ZMTP unit) a line; an empty line is an empty unit, the newline at the
// end is not. It fails tb on any error.
func HexLines(tb testing.TB, name string) [][]byte {
	tb.Helper()
	data, err := os.ReadFile(Path(name))
	if err != nil {
		tb.Fatal(err)
	}
	var lines [][]byte
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		b, err := hex.DecodeString(strings.TrimSpace(line))
		if err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		lines = append(lines, b)
	}
	return lines
}
