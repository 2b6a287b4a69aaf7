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
	if err := s.compactNow(ctx); err != nil { // all of it in trust.json
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
	if len(st.byKey) != 4 || len(st.logs) != 2 {
		t.Fatalf("%d records, %d logs", len(st.byKey), len(st.logs))
	}
	for _, want := range []string{`"version": 2`, `"state": "verified"`, `"key_change"`, `"state": "revoked"`, `"mode": "tofu"`} {
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
		{"newer version", "{\n  \"version\": 3\n}", 2, ErrUnsupportedVersion},
		{"version 2 without generation", "{\"version\": 2,\n\"policy\": {\"mode\": \"tofu\"}}", 1, ErrCorrupt},
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
		{"wrong type", strings.Replace(good, `"version": 2`, `"version": "2"`, 1), 2, ErrCorrupt},
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

// FuzzParseFile fuzzes trust.json. Its seeds are small on purpose: the
// fuzzer minimizes every input that finds new coverage, for up to
// -fuzzminimizetime (a minute by default), and a kilobyte-sized seed made
// each minimization last that minute: the target ran a handful of inputs
// a minute. The populated store is a seed of TestCorruptFile instead.
func FuzzParseFile(f *testing.F) {
	f.Add([]byte(`{"version":2,"generation":1,"policy":{"mode":"strict","introductions":false,"verified_revoke":true},"peers":null,"logs":[]}`))
	f.Add([]byte(`{"version":1,"policy":{"mode":"open"},"peers":[{}]}`))
	f.Add([]byte(`{"version":1,"policy":{"mode":"tofu"},"peers":[{"uuid":"fd383cf5-7281-5e42-ab19-b35af7fc506f","key":"GOB%A6hH}mqkIXxpRxS:GO$]B)Md9{BVMDuTGG3r","fingerprint":"5QQI-KDBY-XFWP-BNV4","bound":true,"state":"revoked"}]}`))
	f.Add([]byte(`{"version":3}`))
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
		// What parses re-encodes to a fixed point (at the same generation).
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

// crashAppend is a fileOps whose appends crash after writing half their
// data (a torn write), as if the process died there.
type crashAppend struct{ osFileOps }

func (c crashAppend) append(path string, off int64, data []byte) error {
	if err := c.osFileOps.append(path, off, data[:len(data)/2]); err != nil {
		return err
	}
	return atomicfiletest.ErrCrash
}

// TestCrashSafety crashes the writes of the store at every step: a torn
// append to the journal, and a compaction cut at each step of its two
// atomic replacements. Afterwards a fresh store (a restarted process)
// reads every record written before, and works.
func TestCrashSafety(t *testing.T) {
	a, b, c := newPeer(1, "alice"), newPeer(2, "bob"), newPeer(3, "carol")
	check := func(t *testing.T, home string, want ...testPeer) {
		t.Helper()
		s2 := openStore(t, home, Options{})
		for _, p := range want {
			if _, ok, err := s2.Lookup(p.key); err != nil || !ok {
				t.Fatalf("after the crash %s is lost (%v)", p.name, err)
			}
		}
		if v := mustAdmit(t, s2, c.obs(), t0); !v.Allow {
			t.Fatalf("after the crash: %+v", v)
		}
		if err := s2.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := openStore(t, home, Options{}).Lookup(c.key); !ok {
			t.Fatal("the store does not work after the crash")
		}
	}
	t.Run("torn append", func(t *testing.T) {
		home := t.TempDir()
		s := openStore(t, home, Options{})
		mustAdmit(t, s, a.obs(), t0)
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		cs := openStore(t, home, Options{})
		cs.fs = crashAppend{osFileOps{}}
		mustAdmit(t, cs, b.obs(), t0)
		if err := cs.Flush(ctx); !errors.Is(err, atomicfiletest.ErrCrash) {
			t.Fatalf("Flush = %v, want the crash", err)
		}
		if _, err := cs.Revoke(ctx, b.key, "x"); !errors.Is(err, atomicfiletest.ErrCrash) {
			t.Fatalf("Revoke = %v, want the crash", err)
		}
		if r, ok, _ := cs.Lookup(b.key); ok && r.State == StateRevoked {
			t.Fatal("a revocation that was not written is in memory")
		}
		check(t, home, a)
	})
	const steps = 7 // create chmod write sync close rename syncdir
	for n := 1; n <= 2*steps; n++ {
		t.Run("compaction step "+strconv.Itoa(n), func(t *testing.T) {
			home := t.TempDir()
			s := openStore(t, home, Options{})
			mustAdmit(t, s, a.obs(), t0)
			mustVerify(t, s, b)
			cs := openStore(t, home, Options{})
			cs.fs = osFileOps{fs: &atomicfiletest.CrashFS{At: n, Torn: true}}
			if err := cs.compactNow(ctx); !errors.Is(err, atomicfiletest.ErrCrash) {
				t.Fatalf("compaction = %v, want the crash", err)
			}
			check(t, home, a, b)
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
	if spec := os.Getenv(writerEnv); spec != "" {
		os.Exit(writerProcess(spec))
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
	if err := s.Flush(c); err != nil {
		fmt.Fprintln(os.Stderr, "flush:", err)
		return 1
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

// FuzzParseJournal fuzzes journal lines: never a panic, errors wrap
// ErrCorrupt, and what parses replays on a state without panicking.
func FuzzParseJournal(f *testing.F) {
	r := newPeer(1, "alice")
	fr := fromRecord(&Record{UUID: r.id, Name: "alice", Key: r.key, Fingerprint: Fingerprint(r.key), Bound: true, State: StateTOFU, FirstSeen: t0})
	var seed []byte
	seed = append(seed, headerEntry(0)...)
	seed = appendEntry(seed, &journalEntry{Put: &fr})
	seed = appendEntry(seed, &journalEntry{Del: r.key.Z85()})
	seed = appendEntry(seed, &journalEntry{Policy: &filePolicy{Mode: "strict"}})
	seed = appendCommit(seed, 3)
	f.Add(seed, true)
	f.Add(seed[:len(seed)-7], true)
	f.Add([]byte("00000000 {}\n"), false)
	f.Fuzz(func(t *testing.T, data []byte, first bool) {
		pj, err := parseJournal(data, first)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if pj.used > len(data) {
			t.Fatalf("used %d of %d octets", pj.used, len(data))
		}
		st := newState()
		for i := range pj.entries {
			st.applyEntry(&pj.entries[i]) // errors are fine, panics are not
		}
	})
}
