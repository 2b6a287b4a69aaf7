package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/zre"
)

// partialDir holds, inside the receive folder, the files being received:
// partialDir/ID/INDEX, moved into place once checked.
const partialDir = ".zyre-partial"

// ReceiveOptions configure Receive.
type ReceiveOptions struct {
	// Dir is the folder everything is written in (and nothing outside it).
	Dir string
	// Trusted says whether offers from a peer are considered at all
	// (others get a REJECT). Nil refuses everyone.
	Trusted func(peer uuid.UUID) bool
	// Ignore, if set, says which peers' offers Receive neither answers nor
	// considers (before Trusted): their sender goes on offering, for
	// another receiver (a background receive of the agent leaves them to
	// "zyre receive").
	Ignore func(peer uuid.UUID) bool
	// Accept is asked about an offer of a trusted peer, with the octets
	// already held from an earlier attempt. It runs on Receive's goroutine.
	Accept func(ctx context.Context, peer uuid.UUID, name string, o *Offer, held int64) (bool, error)
	// PeerWait is how long the sender may be away after an EXIT before
	// Receive gives up (its partial files stay for a later resume); 0
	// means 2 minutes.
	PeerWait time.Duration
	// Progress, if set, is called on Receive's goroutine with the octets
	// held and the total; it must not block.
	Progress func(held, total int64)
	// Notify, if set, is told on Receive's goroutine when the sender goes
	// away and when it comes back, and when a sender still present stops
	// sending (SilentAfter) and starts again; it must not block.
	Notify func(string)
	// SilentAfter is how long a sender still on the network may send
	// nothing before Notify says it stopped (an interrupted "zyre send"
	// through an agent that stays): a live sender sends something at
	// least every 3 s. 0 means 10 s.
	SilentAfter time.Duration
	// KeepSender: ctx ending leaves the sender waiting for this
	// receiver to come back (for its PeerWait), as a crash would, for a
	// receiver that restarts at once; by default the sender is told the
	// receiver stopped, and ends (its *StoppedError).
	KeepSender bool
	// Logger gets what happens; nil means slog.Default().
	Logger *slog.Logger
}

// Received sums up a transfer received.
type Received struct {
	Result
	From  uuid.UUID `json:"from"`
	Name  string    `json:"name"`
	Offer Offer     `json:"offer"`
	// Paths are where the files were put, relative to Dir (a name that
	// was taken gets " (N)" added).
	Paths []string `json:"paths"`
}

// Receive waits for an offer from a trusted peer, receives it into
// opts.Dir, checks every file's SHA-256, moves each into place, and
// returns when all are. It reads n's events itself.
func Receive(ctx context.Context, n Node, opts ReceiveOptions) (Received, error) {
	if opts.PeerWait <= 0 {
		opts.PeerWait = 2 * time.Minute
	}
	if opts.SilentAfter <= 0 {
		opts.SilentAfter = 10 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	root, err := os.OpenRoot(opts.Dir)
	if err != nil {
		return Received{}, fmt.Errorf("transfer: the receive folder: %w", err)
	}
	defer root.Close()
	r := &receiver{n: n, opts: opts, log: log, root: root}
	defer r.closeFile()
	return r.run(ctx)
}

type receiver struct {
	n    Node
	opts ReceiveOptions
	log  *slog.Logger
	root *os.Root

	peer      uuid.UUID
	name      string
	offer     *Offer
	start     time.Time
	resumed   int64
	away      bool
	awaySince time.Time
	silent    bool // Notify said the sender stopped sending
	// fresh: no DATA came since the last ACCEPT: an OFFER of the same
	// files then is one repeated while we made up our mind, not a
	// sender that restarted, and is answered without a word.
	fresh bool

	held     []int64 // per file
	placed   []string
	file     int // the first file not held whole
	fh       *os.File
	fhi      int
	acked    int64     // of file, last ACK sent
	lastData time.Time // the last DATA in place, or ACCEPT, or the peer's return
	resyncAt time.Time
}

func (r *receiver) notify(msg string) {
	if r.opts.Notify != nil {
		r.opts.Notify(msg)
	}
}

func (r *receiver) closeFile() {
	if r.fh != nil {
		r.fh.Close()
		r.fh = nil
	}
}

func (r *receiver) partial(i int) string {
	return path.Join(partialDir, r.offer.ID, fmt.Sprint(i))
}

func (r *receiver) whisper(peer uuid.UUID, kind string, hdr any) {
	if err := r.n.Whisper(peer, frames(kind, hdr, nil)...); err != nil {
		r.log.Debug("transfer: not sent", "kind", kind, "err", err)
	}
}

func (r *receiver) totalHeld() int64 {
	var t int64
	for _, h := range r.held {
		t += h
	}
	return t
}

func (r *receiver) progress() {
	if r.opts.Progress != nil && r.offer != nil {
		r.opts.Progress(r.totalHeld(), r.offer.Total())
	}
}

func (r *receiver) run(ctx context.Context) (Received, error) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if r.offer != nil && !r.opts.KeepSender {
				// Stopped here (Ctrl-C, the agent's client gone, the
				// agent stopping): the sender is told, and ends, rather
				// than sending on to nobody; the partial files stay.
				r.whisper(r.peer, kindDone, &done{ID: r.offer.ID, Stopped: true, Held: r.totalHeld(),
					Error: fmt.Sprintf("the receiver stopped, holding %d of %d octets", r.totalHeld(), r.offer.Total())})
			}
			return Received{}, ctx.Err()
		case <-tick.C:
			if r.offer != nil && r.away && time.Since(r.awaySince) > r.opts.PeerWait {
				return Received{}, fmt.Errorf("transfer: %s was away for %v; run again to resume (%d of %d octets held)",
					r.name, r.opts.PeerWait, r.totalHeld(), r.offer.Total())
			}
			// Present but silent (a sender that stopped sending, or
			// never started): a live sender goes back to the last ACK
			// after 3 s without one, so it always sends something.
			if r.offer != nil && !r.away && !r.silent && time.Since(r.lastData) > r.opts.SilentAfter && r.opts.SilentAfter < r.opts.PeerWait {
				r.silent = true
				r.notify(fmt.Sprintf("%s stopped sending with %d of %d octets held (interrupted?); waiting for it to resume (up to %v)",
					r.name, r.totalHeld(), r.offer.Total(), (r.opts.PeerWait - time.Since(r.lastData)).Round(time.Second)))
			}
			if r.offer != nil && !r.away && time.Since(r.lastData) > r.opts.PeerWait {
				err := fmt.Errorf("transfer: %s sent nothing for %v; run again to resume (%d of %d octets held)",
					r.name, r.opts.PeerWait, r.totalHeld(), r.offer.Total())
				r.whisper(r.peer, kindDone, &done{ID: r.offer.ID, Error: err.Error()})
				return Received{}, err
			}
		case e, ok := <-r.n.Events():
			if !ok {
				return Received{}, errors.New("transfer: our node stopped")
			}
			res, fin, err := r.handle(ctx, e)
			if fin || err != nil {
				return res, err
			}
		}
	}
}

func (r *receiver) handle(ctx context.Context, e zre.Event) (Received, bool, error) {
	if r.offer != nil && e.PeerUUID() == r.peer {
		switch e.(type) {
		case *zre.Exit:
			r.away, r.awaySince = true, time.Now()
			r.notify(fmt.Sprintf("%s went away with %d of %d octets held; waiting up to %v", r.name, r.totalHeld(), r.offer.Total(), r.opts.PeerWait))
		case *zre.Enter:
			if r.away {
				r.notify(fmt.Sprintf("%s is back", r.name))
			}
			r.away, r.lastData = false, time.Now()
		}
	}
	w, ok := e.(*zre.Whisper)
	if !ok {
		return Received{}, false, nil
	}
	kind, hdr, data, ok, err := parse(w.Content)
	if !ok {
		return Received{}, false, nil
	}
	if err != nil {
		if r.offer != nil && w.Peer == r.peer {
			return Received{}, true, fmt.Errorf("from %s: %w", r.name, err)
		}
		r.log.Debug("transfer: bad message", "peer", w.Peer, "err", err)
		return Received{}, false, nil
	}
	switch h := hdr.(type) {
	case *Offer:
		if err := r.onOffer(ctx, w, h); err != nil {
			return Received{}, true, err
		}
		if r.offer != nil && r.file >= len(r.offer.Files) {
			// Everything was held already (an earlier attempt).
			return r.complete(), true, nil
		}
		return Received{}, false, nil
	case *dataHdr:
		if r.offer == nil || w.Peer != r.peer || h.ID != r.offer.ID {
			return Received{}, false, nil
		}
		return r.onData(h, data)
	case *done:
		if r.offer == nil || w.Peer != r.peer || h.ID != r.offer.ID || h.OK || !h.Stopped {
			return Received{}, false, nil
		}
		// The sender stopped part-way (its Ctrl-C): what arrived stays
		// for a resume. It waits for our word that we heard.
		r.whisper(r.peer, kindDone, &done{ID: r.offer.ID, Stopped: true, Held: r.totalHeld(), Error: "the receiver heard the sender stop"})
		return Received{}, true, &StoppedError{Name: remoteText(r.name), Sender: true, Held: r.totalHeld(), Total: r.offer.Total()}
	default:
		r.log.Debug("transfer: unexpected message", "kind", kind)
	}
	return Received{}, false, nil
}

func (r *receiver) onOffer(ctx context.Context, w *zre.Whisper, o *Offer) error {
	if r.offer != nil {
		if w.Peer == r.peer && o.ID == r.offer.ID {
			// The sender came back (or restarted): go on from here; or
			// it repeated its offer while we made up our mind (fresh),
			// which is answered the same, without a word.
			if held := r.totalHeld(); !r.fresh && held > 0 {
				r.notify(fmt.Sprintf("resuming at %d of %d octets", held, r.offer.Total()))
			}
			r.away, r.lastData, r.silent, r.fresh = false, time.Now(), false, true
			r.closeFile()
			r.whisper(r.peer, kindAccept, &accept{ID: o.ID, Offsets: r.held})
			r.acked = r.held[r.file]
			return nil
		}
		r.whisper(w.Peer, kindReject, &reject{ID: o.ID, Reason: "busy with another transfer"})
		return nil
	}
	if r.opts.Ignore != nil && r.opts.Ignore(w.Peer) {
		r.log.Debug("transfer: offer ignored", "peer", w.Peer)
		return nil
	}
	if r.opts.Trusted == nil || !r.opts.Trusted(w.Peer) {
		r.log.Debug("transfer: offer from an untrusted peer", "peer", w.Peer)
		r.whisper(w.Peer, kindReject, &reject{ID: o.ID, Reason: "not trusted"})
		return nil
	}
	if err := CheckOffer(o); err != nil {
		r.whisper(w.Peer, kindReject, &reject{ID: o.ID, Reason: err.Error()})
		return fmt.Errorf("the offer of %s: %w", w.Name, err)
	}
	r.offer, r.peer, r.name = o, w.Peer, w.Name
	held, err := r.resume()
	if err != nil {
		return err
	}
	// Room for what is missing, before anyone is asked (with --yes, a
	// sender that lies about sizes would fill the disk and fail at the
	// end).
	if need := o.Total() - held; need > 0 {
		if free, err := freeSpace(r.opts.Dir); err == nil && need > free {
			err := fmt.Errorf("transfer: the offer of %s needs %d octets more; the folder's file system has %d free", w.Name, need, free)
			r.whisper(w.Peer, kindReject, &reject{ID: o.ID, Reason: fmt.Sprintf("the receiver has %d octets free, not %d", free, need)})
			r.offer = nil
			return err
		}
	}
	ok, err := r.opts.Accept(ctx, w.Peer, w.Name, o, held)
	if err != nil || !ok {
		r.whisper(w.Peer, kindReject, &reject{ID: o.ID, Reason: "declined"})
		r.offer = nil
		if err != nil {
			return err
		}
		return ErrRejected
	}
	held += r.resumePlaced()
	r.start, r.resumed = time.Now(), held
	r.lastData = r.start
	// Files held whole are checked now; empty ones made.
	for i := range o.Files {
		if r.held[i] == o.Files[i].Size && r.placed[i] == "" {
			if err := r.finish(i); err != nil {
				r.whisper(r.peer, kindDone, &done{ID: o.ID, Error: err.Error()})
				return err
			}
		}
	}
	r.advance()
	r.whisper(r.peer, kindAccept, &accept{ID: o.ID, Offsets: r.held})
	r.fresh = true
	r.acked = r.heldOf(r.file)
	r.progress()
	return nil
}

func (r *receiver) heldOf(i int) int64 {
	if i < len(r.held) {
		return r.held[i]
	}
	return 0
}

// resume finds the partial files an earlier attempt left. It only looks
// (Lstat), before the offer is accepted.
func (r *receiver) resume() (int64, error) {
	o := r.offer
	r.held = make([]int64, len(o.Files))
	r.placed = make([]string, len(o.Files))
	var total int64
	for i, f := range o.Files {
		if fi, err := r.root.Lstat(r.partial(i)); err == nil {
			// Only a regular file of one link, not longer than the
			// file, is ours: a hard link planted there (to a file
			// outside the folder) or a symbolic link would be written
			// through. Anything else counts as nothing held, and is
			// removed only when the first DATA comes (openPartial):
			// nothing is touched before the offer is accepted.
			if fi.Mode().IsRegular() && links(fi) == 1 && fi.Size() <= f.Size {
				r.held[i] = fi.Size()
			}
		}
		total += r.held[i]
	}
	return total, nil
}

// resumePlaced counts as held the files already in place with the right
// SHA-256 (an earlier attempt that was cut after placing them), where no
// partial file is. It reads them whole, so it runs once the offer is
// accepted: an offer declined reads nothing of the folder, and the
// ACCEPT that says what is there goes only to a peer accepted.
func (r *receiver) resumePlaced() int64 {
	var total int64
	for i, f := range r.offer.Files {
		if r.held[i] != 0 {
			continue
		}
		if _, err := r.root.Lstat(r.partial(i)); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if fi, err := r.root.Lstat(f.Path); err == nil && fi.Mode().IsRegular() && fi.Size() == f.Size {
			if sum, err := r.hash(f.Path); err == nil && sum == f.SHA256 {
				r.held[i], r.placed[i] = f.Size, f.Path
				total += f.Size
			}
		}
	}
	return total
}

// testHookHash, if set, is told every file hash reads.
var testHookHash func(name string)

func (r *receiver) hash(name string) (string, error) {
	return r.hashAlive(name, nil)
}

// aliveEvery is how often a receiver checking a big file tells its sender
// it is still there (an ACK of nothing new): SendOptions.AckWait.
const aliveEvery = 2 * time.Second

// hashAlive is hash that calls alive, if set, every aliveEvery while it
// reads.
func (r *receiver) hashAlive(name string, alive func()) (string, error) {
	if testHookHash != nil {
		testHookHash(name)
	}
	fh, err := r.root.Open(name)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	h := sha256.New()
	var rd io.Reader = fh
	if alive != nil {
		rd = &aliveReader{r: fh, alive: alive, last: time.Now()}
	}
	if _, err := io.Copy(h, rd); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// aliveReader calls alive every aliveEvery while r is read.
type aliveReader struct {
	r     io.Reader
	alive func()
	last  time.Time
}

func (a *aliveReader) Read(p []byte) (int, error) {
	if now := time.Now(); now.Sub(a.last) >= aliveEvery {
		a.last = now
		a.alive()
	}
	return a.r.Read(p)
}

// advance moves r.file to the first file not held whole.
func (r *receiver) advance() {
	for r.file < len(r.held) && r.held[r.file] == r.offer.Files[r.file].Size {
		r.file++
	}
}

func (r *receiver) onData(h *dataHdr, data []byte) (Received, bool, error) {
	o := r.offer
	if r.file >= len(o.Files) {
		return Received{}, false, nil
	}
	if h.File != r.file || h.Offset != r.held[r.file] {
		// Out of place (a DATA lost before it, or one of before a
		// resume): tell the sender where we are, now and then.
		if h.File >= r.file && time.Since(r.resyncAt) > 200*time.Millisecond {
			r.resyncAt = time.Now()
			r.whisper(r.peer, kindAck, &ack{ID: o.ID, File: r.file, Offset: r.held[r.file], Resync: true})
		}
		return Received{}, false, nil
	}
	f := o.Files[r.file]
	if h.Offset+int64(len(data)) > f.Size {
		err := fmt.Errorf("%w: DATA beyond the end of %q", ErrProtocol, f.Path)
		r.whisper(r.peer, kindDone, &done{ID: o.ID, Error: err.Error()})
		return Received{}, true, err
	}
	if r.fh == nil || r.fhi != r.file {
		r.closeFile()
		if err := r.root.MkdirAll(path.Join(partialDir, o.ID), 0o700); err != nil {
			return Received{}, true, err
		}
		perm := fs.FileMode(0o644)
		if f.Mode&0o111 != 0 {
			perm = 0o755
		}
		fh, err := r.openPartial(r.file, r.held[r.file], perm)
		if err != nil {
			return Received{}, true, err
		}
		r.fh, r.fhi = fh, r.file
	}
	if _, err := r.fh.WriteAt(data, h.Offset); err != nil {
		return Received{}, true, fmt.Errorf("transfer: writing %q: %w", f.Path, err)
	}
	r.held[r.file] += int64(len(data))
	r.lastData, r.fresh = time.Now(), false
	if r.silent {
		r.silent = false
		r.notify(fmt.Sprintf("%s is sending again", r.name))
	}
	r.progress()
	if r.held[r.file] < f.Size {
		if r.held[r.file]-r.acked >= AckEvery {
			r.acked = r.held[r.file]
			r.whisper(r.peer, kindAck, &ack{ID: o.ID, File: r.file, Offset: r.acked})
		}
		return Received{}, false, nil
	}
	// The file is whole: check it and put it in place.
	r.closeFile()
	if err := r.finish(r.file); err != nil {
		r.whisper(r.peer, kindDone, &done{ID: o.ID, Error: err.Error()})
		return Received{}, true, err
	}
	r.whisper(r.peer, kindAck, &ack{ID: o.ID, File: r.file, Offset: f.Size})
	r.advance()
	r.acked = r.heldOf(r.file)
	if r.file < len(o.Files) {
		return Received{}, false, nil
	}
	return r.complete(), true, nil
}

// complete tells the sender all is in place and sums up.
func (r *receiver) complete() Received {
	o := r.offer
	r.whisper(r.peer, kindDone, &done{ID: o.ID, OK: true})
	r.root.Remove(path.Join(partialDir, o.ID))
	r.root.Remove(partialDir) // when empty
	return Received{From: r.peer, Name: r.name, Offer: *o, Paths: r.placed,
		Result: Result{Files: len(o.Files), Octets: o.Total(), Resumed: r.resumed, Elapsed: time.Since(r.start)}}
}

// finish checks file i (held whole) and moves it into place.
func (r *receiver) finish(i int) error {
	f := r.offer.Files[i]
	if r.placed[i] != "" {
		return nil
	}
	src := r.partial(i)
	if f.Size == 0 {
		if err := r.root.MkdirAll(path.Join(partialDir, r.offer.ID), 0o700); err != nil {
			return err
		}
		fh, err := r.openPartial(i, 0, 0o644)
		if err != nil {
			return err
		}
		fh.Close()
	}
	sum, err := r.hashAlive(src, func() {
		// Still here, checking: a sender waiting for the last ACK does
		// not take the silence for a receiver gone.
		r.whisper(r.peer, kindAck, &ack{ID: r.offer.ID, File: i, Offset: 0})
	})
	if err != nil {
		return err
	}
	if sum != f.SHA256 {
		r.root.Remove(src)
		r.held[i] = 0
		return fmt.Errorf("transfer: %q arrived with sha256 %s, the sender's is %s: discarded", f.Path, sum, f.SHA256)
	}
	if dir := path.Dir(f.Path); dir != "." {
		if err := r.root.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("transfer: folder for %q: %w", f.Path, err)
		}
	}
	dst, err := r.place(src, f.Path)
	if err != nil {
		return fmt.Errorf("transfer: putting %q in place: %w", f.Path, err)
	}
	r.placed[i] = dst
	return nil
}

// openPartial opens partial file i for writing at held: a new file when
// held is 0 (O_EXCL: whatever was planted there is removed first, and a
// link made there meanwhile fails the open), else the file resume found,
// checked again once open to be that same regular file of one link and
// held octets (not a link swapped in since).
func (r *receiver) openPartial(i int, held int64, perm fs.FileMode) (*os.File, error) {
	name := r.partial(i)
	if held == 0 {
		if err := r.root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("transfer: removing %s: %w", name, err)
		}
		fh, err := r.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if err != nil {
			return nil, fmt.Errorf("transfer: making %s: %w", name, err)
		}
		return fh, nil
	}
	fh, err := r.root.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("transfer: opening %s: %w", name, err)
	}
	fi, err := fh.Stat()
	if err == nil {
		var li fs.FileInfo
		li, err = r.root.Lstat(name)
		if err == nil && (!fi.Mode().IsRegular() || links(fi) != 1 || fi.Size() != held || !os.SameFile(fi, li)) {
			err = errors.New("changed since it was checked (a link put there?)")
		}
	}
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("transfer: %s: %w", name, err)
	}
	return fh, nil
}

// links returns the number of hard links of fi's file (1 where unknown).
func links(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}

// testHookBeforePlace, if set, is called between finding a free name and
// taking it (a test makes the name taken there).
var testHookBeforePlace func(root *os.Root, dst string)

// place moves src to a free name for p and returns it. A hard link makes
// the new name, and fails when the name was taken since freeName looked
// (a rename would replace that file); a file system without hard links
// gets the rename.
func (r *receiver) place(src, p string) (string, error) {
	for range 10 {
		dst, err := r.freeName(p)
		if err != nil {
			return "", err
		}
		if testHookBeforePlace != nil {
			testHookBeforePlace(r.root, dst)
		}
		err = r.root.Link(src, dst)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			if err := r.root.Rename(src, dst); err != nil {
				return "", err
			}
			return dst, nil
		}
		if err := r.root.Remove(src); err != nil {
			return "", err
		}
		return dst, nil
	}
	return "", fmt.Errorf("no free name for %q", p)
}

// freeName returns p, or p with " (N)" before its extension when p is
// taken.
func (r *receiver) freeName(p string) (string, error) {
	ext := path.Ext(p)
	stem := strings.TrimSuffix(p, ext)
	for n := 0; n < 1000; n++ {
		c := p
		if n > 0 {
			c = fmt.Sprintf("%s (%d)%s", stem, n, ext)
		}
		if _, err := r.root.Lstat(c); errors.Is(err, fs.ErrNotExist) {
			return c, nil
		} else if err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("transfer: no free name for %q", p)
}
