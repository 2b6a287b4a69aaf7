package transfer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/zre"
)

const testTimeout = 60 * time.Second

// newNode starts a secure loopback node with secret key sec.
func newNode(t *testing.T, port int, name string, sec curve.SecretKey) *zre.Node {
	t.Helper()
	n, err := zre.New(zre.Config{Name: name, Beacon: zre.BeaconConfig{Port: port, Loopback: true, Interval: 100 * time.Millisecond},
		Secure: &zre.SecureConfig{Secret: sec}})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// twoNodes starts the sender a, named name, and the receiver "bob" on one
// loopback beacon port, and waits until a has seen b.
func twoNodes(t *testing.T, name string) (a, b *zre.Node) {
	t.Helper()
	port := 20000 + rand.IntN(40000)
	a = newNode(t, port, name, newKey(t))
	b = newNode(t, port, "bob", newKey(t))
	waitPeer(t, a, b.UUID())
	return a, b
}

func newKey(t *testing.T) curve.SecretKey {
	_, sec, err := curve.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	return sec
}

// waitPeer reads n's events until peer said HELLO.
func waitPeer(t *testing.T, n *zre.Node, peer uuid.UUID) {
	t.Helper()
	deadline := time.After(testTimeout)
	for {
		select {
		case e := <-n.Events():
			if _, ok := e.(*zre.Enter); ok && e.PeerUUID() == peer {
				return
			}
		case <-deadline:
			t.Fatalf("no ENTER of %s", peer)
		}
	}
}

func yes(context.Context, uuid.UUID, string, *Offer, int64) (bool, error) { return true, nil }
func anyone(uuid.UUID) bool                                               { return true }

func writeFile(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func randomData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// A directory tree and a file go whole, kept as trees, checked.
func TestSendReceiveTree(t *testing.T) {
	a, b := twoNodes(t, "alice")
	src := t.TempDir()
	files := map[string][]byte{
		"photos/2026/beach.jpg": randomData(3*ChunkSize+17, 1),
		"photos/2026/empty.txt": {},
		"photos/notes.txt":      []byte("hello cousin\n"),
	}
	for p, d := range files {
		writeFile(t, filepath.Join(src, filepath.FromSlash(p)), d)
	}
	single := filepath.Join(t.TempDir(), "single.bin")
	writeFile(t, single, randomData(ChunkSize, 2))
	if err := os.Symlink("/etc/passwd", filepath.Join(src, "photos", "link")); err != nil {
		t.Fatal(err)
	}
	s, err := Prepare([]string{filepath.Join(src, "photos"), single})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Offer.Files) != 4 || len(s.Skipped) != 1 {
		t.Fatalf("offer %+v, skipped %v", s.Offer.Files, s.Skipped)
	}
	dst := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	got := make(chan Received, 1)
	rerr := make(chan error, 1)
	go func() {
		r, err := Receive(ctx, b, ReceiveOptions{Dir: dst, Trusted: anyone, Accept: yes})
		got <- r
		rerr <- err
	}()
	res, err := Send(ctx, a, b.UUID(), s, SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-rerr; err != nil {
		t.Fatal(err)
	}
	r := <-got
	if res.Files != 4 || r.Files != 4 || r.Name != "alice" || r.From != a.UUID() {
		t.Errorf("send %+v, receive %+v", res, r)
	}
	files["single.bin"], _ = os.ReadFile(single)
	for p, want := range files {
		b, err := os.ReadFile(filepath.Join(dst, filepath.FromSlash(p)))
		if err != nil || !bytes.Equal(b, want) {
			t.Errorf("%s: %d octets, %v", p, len(b), err)
		}
	}
	if _, err := os.Lstat(filepath.Join(dst, "photos", "link")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a symbolic link was sent: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dst, partialDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("partial folder left: %v", err)
	}
}

// The receiver stops half-way (its node goes away, as at a restart or a
// broken connection); a new receiver with the same key resumes from its
// partial file, and the file arrives whole.
func TestResumeAfterReceiverRestart(t *testing.T) {
	port := 20000 + rand.IntN(40000)
	bobKey := newKey(t)
	a := newNode(t, port, "alice", newKey(t))
	b1 := newNode(t, port, "bob", bobKey)
	waitPeer(t, a, b1.UUID())
	data := randomData(24<<20, 3)
	file := filepath.Join(t.TempDir(), "video.bin")
	writeFile(t, file, data)
	s, err := Prepare([]string{file})
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
	defer cancel()
	sent := make(chan error, 1)
	var sendRes Result
	go func() {
		var err error
		sendRes, err = Send(ctx, a, b1.UUID(), s, SendOptions{PeerWait: testTimeout})
		sent <- err
	}()
	// Receive until half is held, then stop.
	rctx, rcancel := context.WithCancel(ctx)
	var half atomic.Bool
	// KeepSender: a restart, not a stop; the sender waits.
	_, err = Receive(rctx, b1, ReceiveOptions{Dir: dst, Trusted: anyone, Accept: yes, KeepSender: true, Progress: func(held, total int64) {
		if held >= total/2 && half.CompareAndSwap(false, true) {
			rcancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("first receive: %v", err)
	}
	b1.Close()
	// Restart: a new node with the same key, the same folder.
	b2 := newNode(t, port, "bob", bobKey)
	r, err := Receive(ctx, b2, ReceiveOptions{Dir: dst, Trusted: anyone, Accept: func(_ context.Context, _ uuid.UUID, _ string, o *Offer, held int64) (bool, error) {
		if held < o.Total()/2 {
			t.Errorf("resumed with %d of %d octets held", held, o.Total())
		}
		return true, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dst, "video.bin"))
	if err != nil || sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("received %d octets, %v", len(got), err)
	}
	if r.Resumed < int64(len(data))/2 || sendRes.Resumed == 0 && r.Resumed == 0 {
		t.Errorf("resumed %d (sender saw %d)", r.Resumed, sendRes.Resumed)
	}
}

// A hostile sender's names write nothing outside the receive folder: the
// offer is refused whole before anything is written. A symbolic link
// planted in the folder does not lead out of it either.
func TestHostileNames(t *testing.T) {
	a, b := twoNodes(t, "mallory")
	outside := t.TempDir()
	dst := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dst, "escape")); err != nil {
		t.Fatal(err)
	}
	sum := strings.Repeat("ab", 32)
	for _, p := range []string{"../evil", "/tmp/evil", "a/../../evil", "a//b", "./a", "a/./b", ".zyre-partial/0/x", "a\\..\\evil", "a\x00b", ""} {
		t.Run(p, func(t *testing.T) {
			o := Offer{ID: strings.Repeat("0f", 16), Files: []File{{Path: p, Size: 5, SHA256: sum}}}
			if err := CheckOffer(&o); err == nil {
				t.Fatalf("CheckOffer took %q", p)
			}
		})
	}
	// Through the network: a bad name is refused, and a planted link is
	// not followed out of the folder.
	for _, p := range []string{"../evil", "escape/evil"} {
		data := []byte("evil!")
		s := sha256.Sum256(data)
		o := Offer{ID: strings.Repeat("1f", 16), Files: []File{{Path: p, Size: int64(len(data)), SHA256: hexOf(s[:])}}}
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		done := make(chan error, 1)
		go func() {
			_, err := Receive(ctx, b, ReceiveOptions{Dir: dst, Trusted: anyone, Accept: yes})
			done <- err
		}()
		// The raw sender: OFFER, then DATA without waiting.
		tick := time.NewTicker(100 * time.Millisecond)
	loop:
		for {
			a.Whisper(b.UUID(), frames(kindOffer, &o, nil)...)
			a.Whisper(b.UUID(), frames(kindData, &dataHdr{ID: o.ID, File: 0, Offset: 0}, data)...)
			select {
			case err := <-done:
				if err == nil {
					t.Errorf("%q: received", p)
				}
				break loop
			case <-tick.C:
			}
		}
		tick.Stop()
		cancel()
	}
	for _, dir := range []string{outside, filepath.Dir(dst)} {
		if _, err := os.Stat(filepath.Join(dir, "evil")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s/evil written: %v", dir, err)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("outside folder holds %v", ents)
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// A DATA out of place gets an ACK with resync at the receiver's offset
// (the sender goes back there); DATA beyond the file's end ends the
// transfer with a DONE that says so.
func TestReceiverResyncAndBounds(t *testing.T) {
	data := []byte("0123456789")
	s := sha256.Sum256(data)
	o := Offer{ID: strings.Repeat("2e", 16), Files: []File{{Path: "f.txt", Size: int64(len(data)), SHA256: hexOf(s[:])}}}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	a, b, next, recvErr := rawSender(t, ctx, t.TempDir(), 0)
	offer := func() {
		if err := a.Whisper(b.UUID(), frames(kindOffer, &o, nil)...); err != nil {
			t.Fatal(err)
		}
	}
	offer()
	if acc := next(kindAccept).(*accept); len(acc.Offsets) != 1 || acc.Offsets[0] != 0 {
		t.Fatalf("ACCEPT %+v", acc)
	}
	// Offset 4 before 0..4 arrived: resync at 0.
	a.Whisper(b.UUID(), frames(kindData, &dataHdr{ID: o.ID, File: 0, Offset: 4}, data[4:])...)
	if ak := next(kindAck).(*ack); !ak.Resync || ak.Offset != 0 || ak.File != 0 {
		t.Fatalf("ACK %+v, want a resync at 0", ak)
	}
	// Four octets in place, then six more where only six fit... and one
	// more beyond the end.
	a.Whisper(b.UUID(), frames(kindData, &dataHdr{ID: o.ID, File: 0, Offset: 0}, data[:4])...)
	a.Whisper(b.UUID(), frames(kindData, &dataHdr{ID: o.ID, File: 0, Offset: 4}, append(data[4:], 'x'))...)
	if d := next(kindDone).(*done); d.OK || !strings.Contains(d.Error, "beyond the end") {
		t.Fatalf("DONE %+v", d)
	}
	if err := <-recvErr; !errors.Is(err, ErrProtocol) {
		t.Fatalf("Receive: %v", err)
	}
}

// TestCheckPathNames: names that would be written as given but mislead
// or attack whoever lists the folder later (C1 controls a terminal takes
// for escapes, bidi overrides, line separators), a component longer than
// a file system takes (refused only at the final rename, after all the
// data came), and the partial folder spelled in another case (the same
// folder on a case-insensitive file system) are refused; ordinary
// non-ASCII names are not.
func TestCheckPathNames(t *testing.T) {
	for _, c := range []struct {
		path string
		ok   bool
	}{
		{"photos/été 2026.jpg", true},
		{"日本語/ファイル.txt", true},
		{"family\u200d.png", true}, // a joiner, as in emoji sequences
		{strings.Repeat("a", 255), true},
		{"a\u0085b", false},          // NEL, a C1 control
		{"\u009b31mred", false},      // CSI, a C1 control
		{"evil\u202etxt.exe", false}, // RIGHT-TO-LEFT OVERRIDE
		{"a\u2028b", false},          // LINE SEPARATOR
		{"a\ufeffb", false},          // a zero-width no-break space
		{strings.Repeat("a", 256), false},
		{"d/" + strings.Repeat("é", 128), false}, // 256 octets
		{".ZYRE-PARTIAL/0/x", false},
		{"a/.Zyre-Partial", false},
	} {
		err := CheckPath(c.path)
		if (err == nil) != c.ok {
			t.Errorf("CheckPath(%q) = %v, want ok %v", c.path, err, c.ok)
		}
	}
}

// TestPlantedPartial: a hard link planted where a partial file goes (by
// someone who may write in the folder and knows the offer's id, which is
// the same for the same files) is not written through, whatever file it
// links; nor is a symbolic link there followed, or put in place.
func TestPlantedPartial(t *testing.T) {
	a, b := twoNodes(t, "alice")
	outside, dst := t.TempDir(), t.TempDir()
	srcDir := t.TempDir()
	data := randomData(300<<10, 7)
	writeFile(t, filepath.Join(srcDir, "a.bin"), data)
	writeFile(t, filepath.Join(srcDir, "b.bin"), data[:1000])
	src, err := Prepare([]string{filepath.Join(srcDir, "a.bin"), filepath.Join(srcDir, "b.bin")})
	if err != nil {
		t.Fatal(err)
	}
	// Plant: partial 0 a hard link to a file outside, partial 1 a
	// symbolic link to a file of the folder.
	victim := []byte("a victim outside the folder")
	writeFile(t, filepath.Join(outside, "victim"), victim)
	inside := []byte("a file of the folder")
	writeFile(t, filepath.Join(dst, "mine.txt"), inside)
	pdir := filepath.Join(dst, partialDir, src.Offer.ID)
	if err := os.MkdirAll(pdir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(outside, "victim"), filepath.Join(pdir, "0")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../mine.txt", filepath.Join(pdir, "1")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	recvDone := make(chan error, 1)
	go func() {
		_, err := Receive(ctx, b, ReceiveOptions{Dir: dst, Trusted: anyone, Accept: yes})
		recvDone <- err
	}()
	if _, err := Send(ctx, a, b.UUID(), src, SendOptions{}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if err := <-recvDone; err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(outside, "victim")); !bytes.Equal(got, victim) {
		t.Errorf("the file outside, hard-linked as a partial file, was written: %d octets", len(got))
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "mine.txt")); !bytes.Equal(got, inside) {
		t.Errorf("mine.txt, symlinked as a partial file, was written: %d octets", len(got))
	}
	for name, want := range map[string][]byte{"a.bin": data, "b.bin": data[:1000]} {
		p := filepath.Join(dst, name)
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() {
			t.Errorf("%s: %v, %v: want a regular file", name, fi, err)
			continue
		}
		if got, _ := os.ReadFile(p); !bytes.Equal(got, want) {
			t.Errorf("%s: %d octets, not what was sent", name, len(got))
		}
	}
}

// rawSender starts two nodes and a Receive on b into dir with peerWait;
// it returns the sender's node a, a function returning the next message
// of kind want that a gets, and Receive's result channel.
func rawSender(t *testing.T, ctx context.Context, dir string, peerWait time.Duration) (*zre.Node, *zre.Node, func(string) any, chan error) {
	t.Helper()
	a, b := twoNodes(t, "mallory")
	recvErr := make(chan error, 1)
	go func() {
		_, err := Receive(ctx, b, ReceiveOptions{Dir: dir, Trusted: anyone, Accept: yes, PeerWait: peerWait})
		recvErr <- err
	}()
	next := func(want string) any {
		t.Helper()
		for {
			select {
			case e := <-a.Events():
				w, ok := e.(*zre.Whisper)
				if !ok {
					continue
				}
				kind, hdr, _, ok, err := parse(w.Content)
				if !ok || err != nil {
					t.Fatalf("bad message: %v", err)
				}
				if kind == want {
					return hdr
				}
				if kind == kindReject || kind == kindDone {
					t.Fatalf("%s %+v, want %s", kind, hdr, want)
				}
			case <-ctx.Done():
				t.Fatalf("no %s", want)
			}
		}
	}
	return a, b, next, recvErr
}

// TestSenderGoesQuiet: a sender that stays on the network but sends
// nothing after the ACCEPT (or stops halfway) does not hold the receiver
// for ever: after PeerWait without DATA it gives up, partial files kept.
func TestSenderGoesQuiet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	a, b, next, recvErr := rawSender(t, ctx, t.TempDir(), time.Second)
	o := Offer{ID: strings.Repeat("3d", 16), Files: []File{{Path: "f.bin", Size: 10, SHA256: strings.Repeat("ab", 32)}}}
	if err := a.Whisper(b.UUID(), frames(kindOffer, &o, nil)...); err != nil {
		t.Fatal(err)
	}
	next(kindAccept)
	a.Whisper(b.UUID(), frames(kindData, &dataHdr{ID: o.ID, File: 0, Offset: 0}, []byte("0123"))...)
	select {
	case err := <-recvErr:
		if err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "sent nothing") {
			t.Fatalf("Receive: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Receive still waits for a sender that sends nothing")
	}
}

// TestOfferBeyondFreeSpace: an offer larger than the free space of the
// folder's file system is refused before it is accepted (a sender that
// lies about sizes with --yes cannot fill the disk and fail at the end).
func TestOfferBeyondFreeSpace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	a, b, _, recvErr := rawSender(t, ctx, t.TempDir(), time.Minute)
	o := Offer{ID: strings.Repeat("4c", 16), Files: []File{{Path: "huge.bin", Size: MaxSize, SHA256: strings.Repeat("ab", 32)}}}
	if err := a.Whisper(b.UUID(), frames(kindOffer, &o, nil)...); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case e := <-a.Events():
			w, ok := e.(*zre.Whisper)
			if !ok {
				continue
			}
			kind, hdr, _, _, _ := parse(w.Content)
			if kind == kindAccept {
				t.Fatalf("ACCEPT of %d octets", o.Total())
			}
			if rj, ok := hdr.(*reject); ok {
				if !strings.Contains(rj.Reason, "free") {
					t.Errorf("REJECT %q", rj.Reason)
				}
				if err := <-recvErr; err == nil || !strings.Contains(err.Error(), "free") {
					t.Errorf("Receive: %v", err)
				}
				return
			}
		case <-ctx.Done():
			t.Fatal("no answer to the offer")
		}
	}
}

// TestDeclinedOfferTouchesNothing: an offer that is declined (or one from
// a peer who knows another transfer's id, which is the same for the same
// files) removes no partial file of the folder.
func TestDeclinedOfferTouchesNothing(t *testing.T) {
	a, b := twoNodes(t, "mallory")
	dst := t.TempDir()
	o := Offer{ID: strings.Repeat("5b", 16), Files: []File{{Path: "f.bin", Size: 1, SHA256: strings.Repeat("ab", 32)},
		{Path: "g.bin", Size: 1, SHA256: strings.Repeat("ab", 32)}}}
	part := filepath.Join(dst, partialDir, o.ID, "0")
	writeFile(t, part, []byte("octets of another sender's transfer"))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	// A file of the folder of the offered size: a declined offer does
	// not read it either.
	writeFile(t, filepath.Join(dst, "g.bin"), []byte("x"))
	var hashed atomic.Int32
	testHookHash = func(string) { hashed.Add(1) }
	defer func() { testHookHash = nil }()
	no := func(context.Context, uuid.UUID, string, *Offer, int64) (bool, error) { return false, nil }
	recvErr := make(chan error, 1)
	go func() {
		_, err := Receive(ctx, b, ReceiveOptions{Dir: dst, Trusted: anyone, Accept: no})
		recvErr <- err
	}()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		a.Whisper(b.UUID(), frames(kindOffer, &o, nil)...)
		select {
		case err := <-recvErr:
			if !errors.Is(err, ErrRejected) {
				t.Fatalf("Receive: %v", err)
			}
			if _, err := os.Stat(part); err != nil {
				t.Fatalf("the partial file after a declined offer: %v", err)
			}
			if n := hashed.Load(); n != 0 {
				t.Fatalf("a declined offer read %d file(s) of the folder", n)
			}
			return
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("no answer")
		}
	}
}

func TestRemoteText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`transfer: "a.bin" arrived with sha256 x`, `"a.bin" arrived with sha256 x`},
		{"declined", "declined"},
		{"bad \xff utf-8", "bad \uFFFD utf-8"},
		{strings.Repeat("é", MaxRemoteText), strings.Repeat("é", MaxRemoteText/2) + "…"},
	} {
		if got := remoteText(c.in); got != c.want {
			t.Errorf("remoteText(%.40q) = %.40q…, want %.40q…", c.in, got, c.want)
		}
	}
}

// TestSenderFileSwapped: a file of the offer replaced after Prepare by a
// link to another file (of the same size: one the sender never meant to
// send) is not read for the transfer.
func TestSenderFileSwapped(t *testing.T) {
	a, b := twoNodes(t, "alice")
	srcDir, dst, private := t.TempDir(), t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(srcDir, "share", "a.txt"), []byte("public text"))
	secret := []byte("SECRET-KEY!")
	writeFile(t, filepath.Join(private, "key"), secret)
	src, err := Prepare([]string{filepath.Join(srcDir, "share")})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(srcDir, "share", "a.txt")
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(private, "key"), p); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	go Receive(rctx, b, ReceiveOptions{Dir: dst, Trusted: anyone, Accept: yes})
	if _, err := Send(ctx, a, b.UUID(), src, SendOptions{}); err == nil || !strings.Contains(err.Error(), "not the file it was") {
		t.Fatalf("Send: %v", err)
	}
	rcancel()
	filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, secret) {
				t.Errorf("%s holds the secret", p)
			}
		}
		return nil
	})
}

// TestPlaceNeverReplaces: a file made at the free name after it was found
// (by the user, or another program) is not replaced: the received file
// takes the next free name.
func TestPlaceNeverReplaces(t *testing.T) {
	a, b := twoNodes(t, "alice")
	srcDir, dst := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(srcDir, "n.txt"), []byte("received"))
	src, err := Prepare([]string{filepath.Join(srcDir, "n.txt")})
	if err != nil {
		t.Fatal(err)
	}
	testHookBeforePlace = func(root *os.Root, dst string) {
		if dst == "n.txt" {
			root.WriteFile(dst, []byte("the user's own"), 0o644)
		}
	}
	defer func() { testHookBeforePlace = nil }()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	got := make(chan Received, 1)
	go func() {
		r, err := Receive(ctx, b, ReceiveOptions{Dir: dst, Trusted: anyone, Accept: yes})
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	if _, err := Send(ctx, a, b.UUID(), src, SendOptions{}); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if b, _ := os.ReadFile(filepath.Join(dst, "n.txt")); string(b) != "the user's own" {
		t.Errorf("n.txt: %q: replaced", b)
	}
	if len(r.Paths) != 1 || r.Paths[0] != "n (1).txt" {
		t.Fatalf("placed at %q", r.Paths)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "n (1).txt")); string(b) != "received" {
		t.Errorf("n (1).txt: %q", b)
	}
}

// An ignored peer's offer gets no answer at all (its sender goes on
// offering, for another receiver) and is never asked about; a peer not
// ignored is served as usual.
func TestIgnoredOfferUnanswered(t *testing.T) {
	a, b := twoNodes(t, "alice")
	src := filepath.Join(t.TempDir(), "f.txt")
	writeFile(t, src, []byte("hello"))
	s, err := Prepare([]string{src})
	if err != nil {
		t.Fatal(err)
	}
	var ignore atomic.Bool
	ignore.Store(true)
	var asked atomic.Int32
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	dst := t.TempDir()
	recvErr := make(chan error, 1)
	go func() {
		_, err := Receive(ctx, b, ReceiveOptions{Dir: dst, Trusted: anyone, Ignore: func(uuid.UUID) bool { return ignore.Load() },
			Accept: func(ctx context.Context, p uuid.UUID, n string, o *Offer, h int64) (bool, error) {
				asked.Add(1)
				return true, nil
			}})
		recvErr <- err
	}()
	// The sender offers every 2 s; it says once that nobody answers (after
	// unansweredNotice), and with no answer in AcceptWait it gives up, not
	// rejected.
	var notices []string
	_, err = Send(ctx, a, b.UUID(), s, SendOptions{AcceptWait: unansweredNotice + 2*time.Second,
		Notify: func(m string) { notices = append(notices, m) }})
	if err == nil || errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "no answer to the offer") {
		t.Fatalf("Send to a receiver that ignores it: %v", err)
	}
	if len(notices) != 1 || !strings.Contains(notices[0], "bob has not answered the offer yet") {
		t.Fatalf("notices %q, want one that bob has not answered", notices)
	}
	if asked.Load() != 0 {
		t.Fatal("an ignored offer was asked about")
	}
	ignore.Store(false)
	if _, err := Send(ctx, a, b.UUID(), s, SendOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := <-recvErr; err != nil {
		t.Fatal(err)
	}
	if asked.Load() != 1 {
		t.Fatalf("asked %d times", asked.Load())
	}
}

// TestReceiverSaysSenderStopped: a sender that stays on the network but
// stops sending (an interrupted "zyre send" through an agent) is said at
// once SilentAfter has passed, with how long the receiver waits, and its
// return is said too; not a frozen bar (usertry3 #11).
func TestReceiverSaysSenderStopped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	a, b := twoNodes(t, "laptop")
	notes := make(chan string, 16)
	recvErr := make(chan error, 1)
	go func() {
		_, err := Receive(ctx, b, ReceiveOptions{Dir: t.TempDir(), Trusted: anyone, Accept: yes, PeerWait: 30 * time.Second,
			SilentAfter: 300 * time.Millisecond, Notify: func(m string) { notes <- m }})
		recvErr <- err
	}()
	o := Offer{ID: strings.Repeat("5e", 16), Files: []File{{Path: "f.bin", Size: 10, SHA256: strings.Repeat("ab", 32)}}}
	if err := a.Whisper(b.UUID(), frames(kindOffer, &o, nil)...); err != nil {
		t.Fatal(err)
	}
	for accepted := false; !accepted; {
		select {
		case e := <-a.Events():
			if w, ok := e.(*zre.Whisper); ok {
				kind, _, _, ok, _ := parse(w.Content)
				accepted = ok && kind == kindAccept
			}
		case <-ctx.Done():
			t.Fatal("no ACCEPT")
		}
	}
	a.Whisper(b.UUID(), frames(kindData, &dataHdr{ID: o.ID, File: 0, Offset: 0}, []byte("0123"))...)
	want := func(re string) {
		t.Helper()
		select {
		case m := <-notes:
			if !regexp.MustCompile(re).MatchString(m) {
				t.Fatalf("notice %q, want %s", m, re)
			}
		case err := <-recvErr:
			t.Fatalf("Receive ended: %v", err)
		case <-ctx.Done():
			t.Fatalf("no notice %s", re)
		}
	}
	want(`^laptop stopped sending with 4 of 10 octets held \(interrupted\?\); waiting for it to resume \(up to (29|30)s\)$`)
	a.Whisper(b.UUID(), frames(kindData, &dataHdr{ID: o.ID, File: 0, Offset: 4}, []byte("45"))...)
	want(`^laptop is sending again$`)
}
