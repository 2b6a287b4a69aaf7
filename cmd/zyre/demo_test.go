package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// demoOutput runs "zyre demo args..." and returns its output; a failed run
// fails the test. The output is logged if the test fails.
func demoOutput(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	if code := run(context.Background(), env, append([]string{"demo"}, args...)); code != 0 {
		t.Fatalf("zyre demo %v: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, out.String(), errb.String())
	}
	got := out.String()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("output:\n%s", got)
		}
	})
	return got
}

// checkDemo checks that the output has every line part in wants and shows
// only loopback endpoints.
func checkDemo(t *testing.T, got string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if i := strings.Index(l, "tcp://"); i >= 0 && !strings.HasPrefix(l[i:], "tcp://127.0.0.1:") {
			t.Errorf("non-loopback endpoint: %q", l)
		}
	}
}

func TestDemo(t *testing.T) {
	start := time.Now()
	got := demoOutput(t)
	if d := time.Since(start); d > demoTimeout+2*time.Second {
		t.Fatalf("demo took %v", d)
	}
	checkDemo(t, got,
		"3 nodes on loopback",
		"alice  sees ENTER bob ",
		"alice  sees ENTER carol ",
		"bob    sees ENTER alice ",
		"carol  sees ENTER bob ",
		"X-DEMO=carol",
		"carol  sees JOIN alice ",
		"bob    gets WHISPER alice ",
		"hello bob, this is for you only",
		"alice  gets SHOUT carol ",
		"bob    gets SHOUT carol ",
		" demo hello everyone",
		"alice  sees LEAVE bob ",
		"carol  sees LEAVE bob ",
		"alice  sees EXIT carol ",
		"bob    sees EXIT carol ",
		"every node stopped, 0 events dropped",
	)
}

func TestDemoRefusesInterface(t *testing.T) {
	var out, errb bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	if code := run(context.Background(), env, []string{"demo", "--interface", "eth0"}); code != 2 {
		t.Fatalf("exit %d, want 2 (usage)", code)
	}
	if !strings.Contains(errb.String(), "loopback only") {
		t.Fatalf("stderr %q", errb.String())
	}
}

func TestDemoSecure(t *testing.T) {
	got := demoOutput(t, "--secure")
	// ENTER lines leave out the long headers zyre sends itself (the key
	// is in the node list above them).
	for _, long := range []string{"X-PUBLICKEY=", "X-ZYRE-BINDING="} {
		if strings.Contains(got, long) {
			t.Errorf("output holds %s", long)
		}
	}
	checkDemo(t, got,
		"3 secure nodes on loopback",
		"alice  sees ENTER bob ",
		"X-DEMO=bob",
		"a forger claims bob's UUID",
		"alice  REFUSED unknown ",
		" beacon key=",
		" connection key=",
		"zre: key mismatch",
		"bob    REFUSED unknown ",
		"beacon claims our own UUID",
		"carol  REFUSED unknown ",
		"alice  still has the real bob",
		"the forger got no connection",
		"bob    gets WHISPER alice ",
		"alice  gets SHOUT carol ",
		"bob    sees EXIT carol ",
		"every node stopped, 0 events dropped",
	)
}
