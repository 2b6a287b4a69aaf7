// Package autoaccept owns the per-peer auto-accept list of file transfers:
// the peers whose offers "zyre receive" (one-shot or through the agent)
// and the agent take without asking. It is one small JSON file in the
// node's home, auto-accept.json, replaced atomically (internal/atomicfile)
// under a lock, so several processes (the CLI and the agent) may change it
// and read it at once. An entry names a peer by its UUID and its key: a
// peer that comes with another key is not auto-accepted.
package autoaccept

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/atomicfile"
)

// FileName is the list's file name in the home directory.
const FileName = "auto-accept.json"

// Bounds on the file: it is read on every offer.
const (
	MaxFileSize = 1 << 20
	MaxEntries  = 1000
	maxName     = 256
)

// version is the file format's version.
const version = 1

// Entry is one peer whose offers are accepted without asking.
type Entry struct {
	UUID        uuid.UUID `json:"uuid"`
	Name        string    `json:"name"`        // as the trust store knew it (untrusted text)
	Key         string    `json:"key"`         // its CURVE public key, Z85
	Fingerprint string    `json:"fingerprint"` // of Key
	Dir         string    `json:"dir,omitempty"`
	Added       time.Time `json:"added"`
}

type file struct {
	Version int     `json:"version"`
	Peers   []Entry `json:"peers"`
}

// ErrNotFound: no entry matches.
var ErrNotFound = errors.New("autoaccept: no such peer in the list")

// List is the auto-accept list of one home directory.
type List struct {
	path string
}

// Open returns the list of home; nothing is read or made until used.
func Open(home string) *List { return &List{path: filepath.Join(home, FileName)} }

// Path returns the list's file.
func (l *List) Path() string { return l.path }

// Entries reads the list; a missing file is an empty list.
func (l *List) Entries() ([]Entry, error) {
	f, err := os.Open(l.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("autoaccept: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("autoaccept: %s: %w", l.path, err)
	}
	es, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("autoaccept: %s: %w", l.path, err)
	}
	return es, nil
}

// Parse decodes and checks the file's contents.
func Parse(b []byte) ([]Entry, error) {
	if len(b) > MaxFileSize {
		return nil, fmt.Errorf("longer than %d octets", MaxFileSize)
	}
	var f file
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("bad JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("bad JSON: data after the object")
	}
	if f.Version != version {
		return nil, fmt.Errorf("version %d, want %d", f.Version, version)
	}
	if len(f.Peers) > MaxEntries {
		return nil, fmt.Errorf("%d entries, at most %d", len(f.Peers), MaxEntries)
	}
	seen := map[uuid.UUID]bool{}
	for i, e := range f.Peers {
		if err := e.check(); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		if seen[e.UUID] {
			return nil, fmt.Errorf("entry %d: UUID %s twice", i, e.UUID)
		}
		seen[e.UUID] = true
	}
	return f.Peers, nil
}

func (e *Entry) check() error {
	if e.UUID == uuid.Nil {
		return errors.New("no UUID")
	}
	if _, err := curve.ParsePublicKey(e.Key); err != nil {
		return fmt.Errorf("key: %w", err)
	}
	if len(e.Name) > maxName || len(e.Fingerprint) > maxName || len(e.Dir) > 4096 {
		return errors.New("a field too long")
	}
	return nil
}

// Allows reports whether offers of peer, presenting key, are accepted
// without asking; an unreadable list allows nobody (and says why).
func (l *List) Allows(peer uuid.UUID, key curve.PublicKey) (bool, error) {
	es, err := l.Entries()
	if err != nil {
		return false, err
	}
	for _, e := range es {
		if e.UUID == peer {
			k, err := curve.ParsePublicKey(e.Key)
			return err == nil && k.Equal(key), nil
		}
	}
	return false, nil
}

// Add puts e in the list, replacing an entry of the same UUID; it returns
// whether one was replaced.
func (l *List) Add(ctx context.Context, e Entry) (replaced bool, err error) {
	if e.Added.IsZero() {
		e.Added = time.Now().UTC().Truncate(time.Second)
	}
	if err := e.check(); err != nil {
		return false, fmt.Errorf("autoaccept: %w", err)
	}
	err = l.update(ctx, func(es []Entry) ([]Entry, error) {
		i := slices.IndexFunc(es, func(x Entry) bool { return x.UUID == e.UUID })
		if i >= 0 {
			replaced = true
			es[i] = e
			return es, nil
		}
		if len(es) >= MaxEntries {
			return nil, fmt.Errorf("autoaccept: the list is full (%d peers)", MaxEntries)
		}
		return append(es, e), nil
	})
	return replaced, err
}

// Remove takes out the entry whose UUID, UUID prefix (without dashes or
// with), name or fingerprint is q; more than one match is an error.
func (l *List) Remove(ctx context.Context, q string) (Entry, error) {
	var gone Entry
	err := l.update(ctx, func(es []Entry) ([]Entry, error) {
		i, err := match(es, q)
		if err != nil {
			return nil, err
		}
		gone = es[i]
		return slices.Delete(es, i, i+1), nil
	})
	return gone, err
}

// match finds q among es.
func match(es []Entry, q string) (int, error) {
	if q == "" {
		return -1, fmt.Errorf("%w: empty name", ErrNotFound)
	}
	lq := strings.ToLower(strings.ReplaceAll(q, "-", ""))
	var hits []int
	for i, e := range es {
		id := strings.ReplaceAll(e.UUID.String(), "-", "")
		if e.Name == q || lq != "" && strings.HasPrefix(id, lq) || e.Fingerprint != "" && strings.EqualFold(e.Fingerprint, q) {
			hits = append(hits, i)
		}
	}
	switch len(hits) {
	case 0:
		return -1, fmt.Errorf("%w: %q", ErrNotFound, q)
	case 1:
		return hits[0], nil
	}
	return -1, fmt.Errorf("autoaccept: %q matches %d peers: use a longer UUID prefix", q, len(hits))
}

func (l *List) update(ctx context.Context, f func([]Entry) ([]Entry, error)) error {
	if err := os.MkdirAll(filepath.Dir(l.path), 0o700); err != nil {
		return fmt.Errorf("autoaccept: %w", err)
	}
	unlock, err := atomicfile.Lock(ctx, l.path)
	if err != nil {
		return fmt.Errorf("autoaccept: %w", err)
	}
	defer unlock()
	es, err := l.Entries()
	if err != nil {
		return err
	}
	es, err = f(es)
	if err != nil {
		return err
	}
	if es == nil {
		es = []Entry{}
	}
	b, err := json.MarshalIndent(file{Version: version, Peers: es}, "", "  ")
	if err != nil {
		return fmt.Errorf("autoaccept: %w", err)
	}
	if err := atomicfile.Write(l.path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("autoaccept: %w", err)
	}
	return nil
}
