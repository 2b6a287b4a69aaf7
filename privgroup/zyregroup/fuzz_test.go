package zyregroup

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/privgroup"
	"github.com/zyre-go/zyre/zmtp"
	"github.com/zyre-go/zyre/zre"
)

// fakeNode is a Node without a network: it records what the Group sends.
type fakeNode struct {
	id       uuid.UUID
	peers    []uuid.UUID
	mu       sync.Mutex
	whispers [][][]byte
	shouts   [][][]byte
	shoutsTo [][]uuid.UUID // the peers of each ShoutTo
	// shoutsToContent and shoutsToErr: the content and the result of each
	// ShoutTo.
	shoutsToContent [][][]byte
	shoutsToErr     []error
	// refuse, if set, is the error of a Shout (peers nil) or a ShoutTo.
	refuse func(peers []uuid.UUID) error
	// refuseWhisper, if set, is the error of a Whisper to peer (which
	// then sends nothing, as a full queue does).
	refuseWhisper func(peer uuid.UUID) error
	// sent logs what went out, in order: "whisper <peer>" for each
	// Whisper taken, "shout" for each Shout ("shout to nobody" for one
	// to an empty list of peers).
	sent []string
	// waits counts the calls of WhisperContext and ShoutToContext, owned
	// those of ShoutOwned.
	waits, owned int
}

func (f *fakeNode) UUID() uuid.UUID     { return f.id }
func (f *fakeNode) Join(string) error   { return nil }
func (f *fakeNode) OwnGroups() []string { return nil }
func (f *fakeNode) Leave(string) error  { return nil }

func (f *fakeNode) PeerKey(uuid.UUID) (curve.PublicKey, bool) { return curve.PublicKey{}, false }
func (f *fakeNode) Secure() bool                              { return false }
func (f *fakeNode) PublicKey() curve.PublicKey                { return curve.PublicKey{} }

func (f *fakeNode) PeersByGroup(string) []uuid.UUID {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.peers
}

func (f *fakeNode) setPeers(p []uuid.UUID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.peers = p
}

func (f *fakeNode) Whisper(peer uuid.UUID, content ...[]byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuseWhisper != nil {
		if err := f.refuseWhisper(peer); err != nil {
			return err
		}
	}
	f.whispers = append(f.whispers, cloneContent(content))
	f.sent = append(f.sent, "whisper "+peer.String())
	return nil
}

// WhisperContext is Whisper tried again, as the node's queue would take it
// once it has room, until ctx ends.
func (f *fakeNode) WhisperContext(ctx context.Context, peer uuid.UUID, content ...[]byte) error {
	f.mu.Lock()
	f.waits++
	f.mu.Unlock()
	return untilTaken(ctx, func() error { return f.Whisper(peer, content...) })
}

// ShoutToContext is ShoutTo tried again (each try recorded) while one of
// peers refuses it as a full queue does, until ctx ends.
func (f *fakeNode) ShoutToContext(ctx context.Context, group string, peers []uuid.UUID, content ...[]byte) error {
	f.mu.Lock()
	f.waits++
	f.mu.Unlock()
	return untilTaken(ctx, func() error {
		err := f.ShoutTo(group, peers, content...)
		for _, p := range peers {
			if e := peerErr(err, p); errors.Is(e, zmtp.ErrPeerNotResponding) {
				return e
			}
		}
		return err
	})
}

// untilTaken calls try until it does not fail with
// zmtp.ErrPeerNotResponding, or ctx ends (then an error wrapping both, as
// zre's).
func untilTaken(ctx context.Context, try func() error) error {
	t := time.NewTicker(100 * time.Microsecond)
	defer t.Stop()
	for {
		err := try()
		if !errors.Is(err, zmtp.ErrPeerNotResponding) {
			return err
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		if ctx.Err() != nil { // (a tick and the end together: the end, as the node's wait)
			return errors.Join(err, ctx.Err())
		}
	}
}

func cloneContent(content [][]byte) [][]byte {
	out := make([][]byte, len(content))
	for i, b := range content {
		out[i] = bytes.Clone(b)
	}
	return out
}

// Shout keeps a copy of content, as zre.Node does: callers reuse their
// buffers.
func (f *fakeNode) Shout(_ string, content ...[]byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shouts = append(f.shouts, cloneContent(content))
	f.sent = append(f.sent, "shout")
	if f.refuse != nil {
		return f.refuse(nil)
	}
	return nil
}

// ShoutToOwned keeps content as it is, as zre.Node does: the caller gave
// it away. With an ended ctx it waits for no one and is logged with the
// shouts (the Group sends its records to its members so); with another, it
// is ShoutToContext (a line's send to one member).
func (f *fakeNode) ShoutToOwned(ctx context.Context, group string, peers []uuid.UUID, content ...[]byte) error {
	if ctx.Err() == nil { // a line's send, which waits
		return f.ShoutToContext(ctx, group, peers, content...)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shouts = append(f.shouts, content)
	if f.sent = append(f.sent, "shout"); len(peers) == 0 {
		f.sent[len(f.sent)-1] = "shout to nobody"
	}
	f.owned++
	if f.refuse != nil {
		return f.refuse(append([]uuid.UUID{}, peers...))
	}
	return nil
}

func (f *fakeNode) ShoutTo(_ string, peers []uuid.UUID, content ...[]byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shoutsTo = append(f.shoutsTo, slices.Clone(peers))
	f.shoutsToContent = append(f.shoutsToContent, cloneContent(content))
	var err error
	if f.refuse != nil {
		err = f.refuse(peers)
	}
	f.shoutsToErr = append(f.shoutsToErr, err)
	return err
}

// FuzzHandle feeds hostile WHISPER and SHOUT content to a Group that holds
// the sender key of one trusted peer: Handle must not panic, and nothing
// but genuine records of that peer may reach its queue.
func FuzzHandle(f *testing.F) {
	ourSK, peerSK := secretKey(f), secretKey(f)
	us, peer := uuid.New(), uuid.New()
	s, err := privgroup.NewSender(group, peer, &peerSK, privgroup.Options{})
	if err != nil {
		f.Fatal(err)
	}
	key, _ := s.KeyFor(ourSK.Public())
	data, _ := s.Seal(nil, []byte("\x00\x00\x00\x00\x00\x00\x00\x00hello"))
	batch, _ := s.Batch(nil)
	f.Add(byte(0), key)
	f.Add(byte(1), data)
	f.Add(byte(1), batch)
	f.Add(byte(1), []byte{0x11})
	f.Add(byte(0), []byte{0x13})
	f.Add(byte(2), []byte(WhisperPrefix))
	f.Add(byte(4), []byte{2})
	f.Add(byte(4), []byte{})
	f.Add(byte(5), []byte{})
	f.Fuzz(func(t *testing.T, kind byte, b []byte) {
		node := &fakeNode{id: us}
		keys := map[uuid.UUID]curve.PublicKey{peer: peerSK.Public()}
		g, err := Attach(node, group, Options{
			Secret:  ourSK,
			Trusted: func(id uuid.UUID, k curve.PublicKey) bool { return id == peer && k.Equal(peerSK.Public()) },
			PeerKey: func(id uuid.UUID) (curve.PublicKey, bool) { k, ok := keys[id]; return k, ok },
		})
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		hdr := zre.EventHeader{Peer: peer}
		g.Handle(&zre.Whisper{EventHeader: hdr, Content: [][]byte{[]byte(WhisperPrefix), []byte(group), key}})
		var ev zre.Event
		switch kind % 6 {
		case 0:
			ev = &zre.Whisper{EventHeader: hdr, Content: [][]byte{[]byte(WhisperPrefix), []byte(group), b}}
		case 4: // the genuine key again, with hostile suites
			ev = &zre.Whisper{EventHeader: hdr, Content: [][]byte{[]byte(WhisperPrefix), []byte(group), key, b}}
		case 5: // a removed notice (b empty), or a malformed one
			ev = &zre.Whisper{EventHeader: hdr, Content: [][]byte{[]byte(WhisperPrefix), []byte(group), b, []byte(removedWord)}}
		case 1:
			ev = &zre.Shout{EventHeader: hdr, Group: group, Content: [][]byte{b}}
		case 2:
			ev = &zre.Whisper{EventHeader: hdr, Content: [][]byte{b, []byte(group), b}}
		default:
			ev = &zre.Shout{EventHeader: hdr, Group: group, Content: [][]byte{b, b}}
		}
		g.Handle(ev)
		st := g.Stats()
		if st.KeysReceived != 1 {
			t.Fatalf("keys received %d, want the genuine one only: %+v", st.KeysReceived, st)
		}
		if st.Records > 0 {
			h, err := privgroup.ParseHeader(b)
			if err != nil || h.KeyID != s.KeyID() {
				t.Fatalf("a record that is not the peer's was queued: %x", b)
			}
		}
	})
}
