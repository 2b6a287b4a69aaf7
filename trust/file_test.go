package trust

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zyre-go/zyre/internal/atomicfile/atomicfiletest"
)

// populated returns a store with every kind of record and a log.
func populated(t testing.TB) *Store {
	t.Helper()
	s := newTestStore(t)
	a, b, c, d := newPeer(1, "alice"), newPeer(2, "bob"), newPeer(3, "carol"), newPeer(4, "dave")
	c.id = randomUUID(3)
	mustAdmit(t, s, a.obs(), t0)
	mustVerify(t, s, b)
	mustAdmit(t, s, c.obs(), t0)
	imp := newPeer(5, "carol")
	imp.id = randomUUID(5)
	mustAdmit(t, s, imp.obs(), t0) // a pending key change on carol
	if _, err := s.Apply(ctx, sign(t, b, 1, nil, t0, &Revoke{Key: d.key, Reason: "gone"}).Raw); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sign(ctx, a, &Vouch{Key: b.key, UUID: b.id, Name: "bob"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetNotes(ctx, a.key, "met at the café"); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFileRoundTrip(t *testing.T) {
	s := populated(t)
	data := readFile(t, s.Path())
	st, err := parseFile(data)
	if err != nil {
		t.Fatal(err)
	}
	again, err := st.marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, data) {
		t.Fatalf("re-encoding differs:\n%s\n----\n%s", again, data)
	}
	if len(st.recs) != 4 || len(st.logs) != 2 {
		t.Fatalf("%d records, %d logs", len(st.recs), len(st.logs))
	}
	for _, want := range []string{`"version": 1`, `"state": "verified"`, `"key_change"`, `"state": "revoked"`, `"mode": "tofu"`} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("file lacks %s", want)
		}
	}
}

func TestCorruptFile(t *testing.T) {
	good := string(readFile(t, populated(t).Path()))
	tests := []struct {
		name string
		data string
		line int
		want error
	}{
		{"empty", "", 1, ErrCorrupt},
		{"not json", "hello", 1, ErrCorrupt},
		{"array", "[]", 1, ErrCorrupt},
		{"truncated", good[:len(good)/2], 0, ErrCorrupt},
		{"syntax error line 3", "{\n  \"version\": 1,\n  \"policy\": {\"mode\": tofu}\n}", 3, ErrCorrupt},
		{"newer version", "{\n  \"version\": 2\n}", 2, ErrUnsupportedVersion},
		{"no policy", "{\"version\": 1}", 1, ErrCorrupt},
		{"bad mode", "{\"version\": 1,\n\"policy\": {\"mode\": \"lax\"}}", 2, ErrCorrupt},
		{"unknown field", "{\"version\": 1,\n\"policy\": {\"mode\": \"tofu\"},\n\"extra\": 1}", 3, ErrCorrupt},
		{"duplicate field", "{\"version\": 1,\n\"version\": 1}", 2, ErrCorrupt},
		{"trailing data", good + "{}", 0, ErrCorrupt},
		{"bad key", strings.Replace(good, `"key": "`, `"key": "x`, 1), 0, ErrCorrupt},
		{"bad fingerprint", strings.Replace(good, `"fingerprint": "`, `"fingerprint": "Z`, 1), 0, ErrCorrupt},
		{"bad state", strings.Replace(good, `"state": "tofu"`, `"state": "trusted"`, 1), 0, ErrCorrupt},
		{"bound lie", strings.Replace(good, `"bound": true`, `"bound": false`, 1), 0, ErrCorrupt},
		{"unknown record field", strings.Replace(good, `"bound": true`, `"bound": true, "admin": true`, 1), 0, ErrCorrupt},
		{"bad statement", strings.Replace(good, `"statements": [`+"\n"+`        "`, `"statements": [`+"\n"+`        "AAAA`, 1), 0, ErrCorrupt},
		{"wrong type", strings.Replace(good, `"version": 1`, `"version": "1"`, 1), 2, ErrCorrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.data == good {
				t.Fatal("test case did not change the file")
			}
			home := t.TempDir()
			path := filepath.Join(home, FileName)
			if err := os.WriteFile(path, []byte(tc.data), 0o600); err != nil {
				t.Fatal(err)
			}
			s := openStore(t, home, Options{})
			_, err := s.List()
			if !errors.Is(err, tc.want) {
				t.Fatalf("List = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), "trust.json: ") || !strings.Contains(err.Error(), ": line ") {
				t.Fatalf("error %q does not name the file and line", err)
			}
			if tc.line > 0 && !strings.Contains(err.Error(), fmt.Sprintf("line %d:", tc.line)) {
				t.Fatalf("error %q, want line %d", err, tc.line)
			}
			// Changes are refused and the file is left alone.
			if _, err := s.Admit(ctx, newPeer(9, "z").obs(), t0); !errors.Is(err, tc.want) {
				t.Fatalf("Admit = %v", err)
			}
			if _, err := s.Revoke(ctx, newPeer(9, "z").key, ""); !errors.Is(err, tc.want) {
				t.Fatalf("Revoke = %v", err)
			}
			if got := readFile(t, path); string(got) != tc.data {
				t.Fatal("corrupt file was overwritten")
			}
		})
	}
}

func FuzzParseFile(f *testing.F) {
	f.Add(readFile(f, populated(f).Path()))
	f.Add([]byte(`{"version":1,"policy":{"mode":"strict","introductions":false,"verified_revoke":true},"peers":null,"logs":[]}`))
	f.Add([]byte(`{"version":1,"policy":{"mode":"open"},"peers":[{}]}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := parseFile(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedVersion) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			if !strings.Contains(err.Error(), "line ") && !strings.Contains(err.Error(), "appears twice") {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		// What parses re-encodes to a fixed point.
		b1, err := st.marshal()
		if err != nil {
			t.Fatal(err)
		}
		st2, err := parseFile(b1)
		if err != nil {
			t.Fatalf("re-parse of our own encoding: %v\n%s", err, b1)
		}
		b2, _ := st2.marshal()
		if !bytes.Equal(b1, b2) {
			t.Fatalf("encoding not stable:\n%s\n%s", b1, b2)
		}
	})
}

// TestCrashSafety crashes the write of a change at every step: the file
// holds the old state or the new one, whole, and the store works after.
func TestCrashSafety(t *testing.T) {
	const steps = 7 // create chmod write sync close rename syncdir
	for n := 1; n <= steps; n++ {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			home := t.TempDir()
			s := openStore(t, home, Options{})
			a, b := newPeer(1, "alice"), newPeer(2, "bob")
			mustAdmit(t, s, a.obs(), t0)
			old := readFile(t, s.Path())
			c := &atomicfiletest.CrashFS{At: n, Torn: true}
			cs := openStore(t, home, Options{FS: c})
			_, err := cs.Admit(ctx, b.obs(), t0)
			if !errors.Is(err, atomicfiletest.ErrCrash) {
				t.Fatalf("Admit = %v, want the crash", err)
			}
			got := readFile(t, s.Path())
			st, perr := parseFile(got)
			if perr != nil {
				t.Fatalf("after a crash at step %d the file does not parse: %v", n, perr)
			}
			switch {
			case bytes.Equal(got, old) && n <= 6:
			case len(st.recs) == 2 && n > 6:
			default:
				t.Fatalf("crash at step %d left %d records", n, len(st.recs))
			}
			// A fresh store (a restarted process) works and adds bob.
			s2 := openStore(t, home, Options{})
			if v := mustAdmit(t, s2, b.obs(), t0); !v.Allow {
				t.Fatalf("after crash: %+v", v)
			}
			if recs, _ := s2.List(); len(recs) != 2 {
				t.Fatalf("%d records after recovery", len(recs))
			}
		})
	}
}

// TestConcurrentWriters has goroutines, each with its own Store on the same
// file (as separate processes would), pin peers, verify and annotate them:
// nothing is lost.
func TestConcurrentWriters(t *testing.T) {
	home := t.TempDir()
	const writers, each = 4, 12
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := openStore(t, home, Options{})
			for i := range each {
				p := newPeer(w*100+i, fmt.Sprintf("peer-%d-%d", w, i))
				switch i % 3 {
				case 0:
					if v, err := s.Admit(ctx, p.obs(), t0); err != nil || !v.Allow {
						errs <- fmt.Errorf("admit %s: %v %v", p.name, v.Reason, err)
					}
				case 1:
					if _, err := s.MarkVerified(ctx, p.key, p.id, p.name, "code", p.signPub()); err != nil {
						errs <- err
					}
				case 2:
					if _, err := s.Revoke(ctx, p.key, "test"); err != nil {
						errs <- err
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s := openStore(t, home, Options{})
	recs, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != writers*each {
		t.Fatalf("%d records, want %d", len(recs), writers*each)
	}
	count := map[State]int{}
	for _, r := range recs {
		count[r.State]++
	}
	if count[StateTOFU] != writers*each/3 || count[StateVerified] != writers*each/3 || count[StateRevoked] != writers*each/3 {
		t.Fatalf("states %v", count)
	}
}

// helperEnv makes the test binary, run as a subprocess, act as a second
// process writing to the store (see TestMain).
const helperEnv = "ZYRE_TRUST_TEST_HELPER"

func TestMain(m *testing.M) {
	if spec := os.Getenv(helperEnv); spec != "" {
		os.Exit(helperProcess(spec))
	}
	os.Exit(m.Run())
}

// helperProcess pins peers first..first+count-1 in the store at home;
// spec is "home:first:count".
func helperProcess(spec string) int {
	parts := strings.Split(spec, ":")
	if len(parts) != 3 {
		fmt.Fprintln(os.Stderr, "bad helper spec", spec)
		return 2
	}
	first, _ := strconv.Atoi(parts[1])
	count, _ := strconv.Atoi(parts[2])
	s, err := Open(parts[0], Options{Logger: quietLogger()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := first; i < first+count; i++ {
		p := newPeer(i, fmt.Sprintf("proc-%d", i))
		v, err := s.Admit(c, p.obs(), t0)
		if err != nil || !v.Allow {
			fmt.Fprintln(os.Stderr, "admit:", v.Reason, err)
			return 1
		}
	}
	return 0
}

func TestTwoProcesses(t *testing.T) {
	home := t.TempDir()
	const count = 15
	var cmds []*exec.Cmd
	for i := range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s:%d:%d", helperEnv, home, 1000*(i+1), count))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("helper %d stderr: %s", i, stderr.String())
			}
		})
	}
	// Meanwhile this process revokes and verifies its own peers.
	s := openStore(t, home, Options{})
	for i := range count {
		p := newPeer(5000+i, fmt.Sprintf("local-%d", i))
		if i%2 == 0 {
			mustVerify(t, s, p)
		} else if _, err := s.Revoke(ctx, p.key, "local"); err != nil {
			t.Fatal(err)
		}
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper %d: %v", i, err)
		}
	}
	recs, err := openStore(t, home, Options{}).List()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3*count {
		t.Fatalf("%d records, want %d", len(recs), 3*count)
	}
}
