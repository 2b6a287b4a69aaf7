package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReceiveDir: a missing --dir is created with mode 0700 (parents too)
// and the user told; an existing folder is taken as it is; a file is a
// usage error.
func TestReceiveDir(t *testing.T) {
	tmp := t.TempDir()
	file := filepath.Join(tmp, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		dir     string
		created bool
		usage   bool
	}{
		{"missing", filepath.Join(tmp, "inbox", "deep"), true, false},
		{"existing", tmp, false, false},
		{"file", file, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var errb strings.Builder
			err := receiveDir(&cliEnv{stderr: &errb}, tt.dir)
			if tt.usage {
				if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "not a folder") {
					t.Fatalf("receiveDir(%s) = %v, want a usage error: not a folder", tt.dir, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("receiveDir(%s): %v", tt.dir, err)
			}
			fi, err := os.Stat(tt.dir)
			if err != nil || !fi.IsDir() {
				t.Fatalf("after receiveDir: %v, %v", fi, err)
			}
			if got := strings.Contains(errb.String(), "created the folder"); got != tt.created {
				t.Fatalf("stderr %q: created told %v, want %v", errb.String(), got, tt.created)
			}
			if tt.created && fi.Mode().Perm() != 0o700 {
				t.Fatalf("mode %v, want 0700", fi.Mode().Perm())
			}
		})
	}
}
