package autoaccept_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/autoaccept"
)

func key(t testing.TB) curve.PublicKey {
	pub, _, err := curve.GenerateKeyPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func TestAddAllowsRemove(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	l := autoaccept.Open(home)
	if es, err := l.Entries(); err != nil || len(es) != 0 {
		t.Fatalf("a new list: %v, %v", es, err)
	}
	a, b := uuid.New(), uuid.New()
	ka, kb := key(t), key(t)
	if _, err := l.Add(ctx, autoaccept.Entry{UUID: a, Name: "tablet", Key: ka.Z85(), Fingerprint: "FP-A"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Add(ctx, autoaccept.Entry{UUID: b, Name: "phone", Key: kb.Z85()}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(l.Path())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the file: %v, %v", fi, err)
	}
	for _, c := range []struct {
		peer uuid.UUID
		key  curve.PublicKey
		want bool
	}{
		{a, ka, true},
		{b, kb, true},
		{a, kb, false}, // a's UUID with another key
		{uuid.New(), ka, false},
	} {
		got, err := l.Allows(c.peer, c.key)
		if err != nil || got != c.want {
			t.Errorf("Allows(%s, %s) = %v, %v; want %v", c.peer, c.key.Z85()[:8], got, err, c.want)
		}
	}
	// Replacing an entry keeps one per UUID.
	if rep, err := l.Add(ctx, autoaccept.Entry{UUID: a, Name: "tablet2", Key: kb.Z85()}); err != nil || !rep {
		t.Fatalf("replace: %v, %v", rep, err)
	}
	if ok, _ := l.Allows(a, ka); ok {
		t.Error("the replaced key is still allowed")
	}
	gone, err := l.Remove(ctx, "phone")
	if err != nil || gone.UUID != b {
		t.Fatalf("Remove phone: %+v, %v", gone, err)
	}
	if _, err := l.Remove(ctx, "phone"); !errors.Is(err, autoaccept.ErrNotFound) {
		t.Fatalf("Remove again: %v", err)
	}
	if gone, err := l.Remove(ctx, a.String()[:8]); err != nil || gone.UUID != a {
		t.Fatalf("Remove by prefix: %+v, %v", gone, err)
	}
	if es, err := l.Entries(); err != nil || len(es) != 0 {
		t.Fatalf("after removing all: %v, %v", es, err)
	}
}

func TestBadFile(t *testing.T) {
	k := key(t).Z85()
	id := uuid.New().String()
	for _, c := range []struct{ name, body, want string }{
		{"not JSON", "{", "bad JSON"},
		{"version", `{"version":2,"peers":[]}`, "version 2"},
		{"unknown field", `{"version":1,"peers":[],"x":1}`, "unknown field"},
		{"no uuid", `{"version":1,"peers":[{"key":"` + k + `"}]}`, "no UUID"},
		{"bad key", `{"version":1,"peers":[{"uuid":"` + id + `","key":"nope"}]}`, "key"},
		{"twice", `{"version":1,"peers":[{"uuid":"` + id + `","key":"` + k + `"},{"uuid":"` + id + `","key":"` + k + `"}]}`, "twice"},
		{"trailing", `{"version":1,"peers":[]} {}`, "after the object"},
		{"too long", strings.Repeat(" ", autoaccept.MaxFileSize+1), "longer than"},
	} {
		t.Run(c.name, func(t *testing.T) {
			home := t.TempDir()
			l := autoaccept.Open(home)
			if err := os.WriteFile(l.Path(), []byte(c.body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := l.Entries()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Entries: %v, want %q", err, c.want)
			}
			// Nobody is allowed, and nothing is written over it.
			if ok, err := l.Allows(uuid.MustParse(id), curve.PublicKey{}); ok || err == nil {
				t.Fatalf("Allows on a bad file: %v, %v", ok, err)
			}
			if _, err := l.Add(context.Background(), autoaccept.Entry{UUID: uuid.New(), Key: k}); err == nil {
				t.Fatal("Add over a bad file succeeded")
			}
			if b, _ := os.ReadFile(l.Path()); string(b) != c.body {
				t.Fatal("the bad file was changed")
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	k := key(f).Z85()
	f.Add([]byte(`{"version":1,"peers":[]}`))
	f.Add([]byte(`{"version":1,"peers":[{"uuid":"` + uuid.New().String() + `","name":"x","key":"` + k + `","fingerprint":"F","added":"2026-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"version":1,"peers":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := autoaccept.Parse(b)
		if err != nil {
			return
		}
		if len(es) > autoaccept.MaxEntries {
			t.Fatalf("%d entries", len(es))
		}
		for _, e := range es {
			if e.UUID == uuid.Nil {
				t.Fatal("an entry without UUID")
			}
			if _, err := curve.ParsePublicKey(e.Key); err != nil {
				t.Fatalf("an entry with a bad key: %v", err)
			}
		}
	})
}

func Example() {
	home, _ := os.MkdirTemp("", "zyre-example")
	defer os.RemoveAll(home)
	pub, _, _ := curve.GenerateKeyPair(rand.Reader)
	peer := uuid.MustParse("1964b942-a745-4b1c-9a3e-0123456789ab")
	l := autoaccept.Open(home)
	l.Add(context.Background(), autoaccept.Entry{UUID: peer, Name: "tablet", Key: pub.Z85()})
	ok, _ := l.Allows(peer, pub)
	fmt.Println(filepath.Base(l.Path()), ok)
	// Output: auto-accept.json true
}

// A query of dashes only is no UUID prefix: it matches nobody (it used to
// match every entry, so removed the only one).
func TestRemoveDashesOnly(t *testing.T) {
	ctx := context.Background()
	l := autoaccept.Open(t.TempDir())
	id := uuid.New()
	if _, err := l.Add(ctx, autoaccept.Entry{UUID: id, Name: "tablet", Key: key(t).Z85()}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"-", "---"} {
		if gone, err := l.Remove(ctx, q); !errors.Is(err, autoaccept.ErrNotFound) {
			t.Fatalf("Remove(%q): %+v, %v; want not found", q, gone, err)
		}
	}
	if ok, err := l.Allows(id, key(t)); err != nil || ok {
		t.Fatalf("Allows with another key: %v, %v", ok, err)
	}
	if es, err := l.Entries(); err != nil || len(es) != 1 {
		t.Fatalf("entries: %v, %v", es, err)
	}
}

// Adds from many goroutines at once (as from the CLI and the agent) all
// land: the lock serialises read, change and replace.
func TestConcurrentAdds(t *testing.T) {
	l := autoaccept.Open(t.TempDir())
	const n = 16
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		k := key(t).Z85()
		go func() {
			_, err := autoaccept.Open(filepath.Dir(l.Path())).Add(context.Background(), autoaccept.Entry{UUID: uuid.New(), Key: k})
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if es, err := l.Entries(); err != nil || len(es) != n {
		t.Fatalf("%d entries, want %d: %v", len(es), n, err)
	}
}
