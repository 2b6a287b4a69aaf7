package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/zre"
)

// Source is a prepared offer with the local file behind each entry.
type Source struct {
	Offer Offer
	Local []string // Local[i] is the file of Offer.Files[i]
	// Skipped names what was left out (symbolic links, devices...).
	Skipped []string
	// info[i] is Local[i] as Prepare found it: Send sends only from
	// that same file (not a link put in its place since).
	info []fs.FileInfo
}

// Prepare walks paths (files, or directories kept as trees under their
// base name) and hashes every regular file. Symbolic links and other
// non-regular files are skipped and listed.
func Prepare(paths []string) (*Source, error) {
	return PrepareContext(context.Background(), paths)
}

// PrepareContext is Prepare that stops, with ctx's error, when ctx ends
// (hashing a big folder takes minutes; the agent's client may hang up).
func PrepareContext(ctx context.Context, paths []string) (*Source, error) {
	src := &Source{}
	add := func(local, rel string, fi fs.FileInfo) error {
		sum, err := hashFile(ctx, local, fi)
		if err != nil {
			return err
		}
		src.Offer.Files = append(src.Offer.Files, File{Path: rel, Size: fi.Size(), Mode: uint32(fi.Mode().Perm()), SHA256: sum})
		src.Local = append(src.Local, local)
		src.info = append(src.info, fi)
		return nil
	}
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil {
			return nil, err
		}
		base := filepath.Base(filepath.Clean(p))
		switch {
		case fi.Mode().IsRegular():
			if err := add(p, base, fi); err != nil {
				return nil, err
			}
		case fi.IsDir():
			err := filepath.WalkDir(p, func(local string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				rel, err := filepath.Rel(p, local)
				if err != nil {
					return err
				}
				rel = filepath.ToSlash(filepath.Join(base, rel))
				if d.IsDir() {
					return nil
				}
				info, err := d.Info()
				if err != nil {
					return err
				}
				if !info.Mode().IsRegular() {
					src.Skipped = append(src.Skipped, local)
					return nil
				}
				return add(local, rel, info)
			})
			if err != nil {
				return nil, err
			}
		default:
			src.Skipped = append(src.Skipped, p)
		}
	}
	if len(src.Offer.Files) == 0 {
		return nil, errors.New("transfer: no regular file to send")
	}
	// The same files give the same ID: a restarted sender resumes.
	b, _ := json.Marshal(src.Offer.Files)
	id := sha256.Sum256(b)
	src.Offer.ID = hex.EncodeToString(id[:16])
	if err := CheckOffer(&src.Offer); err != nil {
		return nil, fmt.Errorf("transfer: these names cannot be sent: %w", err)
	}
	return src, nil
}

func hashFile(ctx context.Context, p string, fi fs.FileInfo) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	f, err := openSame(p, fi)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, ctxReader{ctx, f}); err != nil {
		return "", fmt.Errorf("transfer: reading %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ctxReader reads r until ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// openSame opens p for reading if it is still the file fi describes (fi
// from Lstat: a regular file); a symbolic link put in its place, to a
// file the sender never meant to send, is refused.
func openSame(p string, fi fs.FileInfo) (*os.File, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	if fi != nil {
		now, err := f.Stat()
		if err == nil && !os.SameFile(now, fi) {
			err = errors.New("not the file it was (replaced, or a link put in its place)")
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("transfer: %s: %w", p, err)
		}
	}
	return f, nil
}

// SendOptions configure Send.
type SendOptions struct {
	// PeerWait is how long the peer may be away (before it first comes, or
	// after an EXIT) before Send gives up; 0 means 2 minutes.
	PeerWait time.Duration
	// AcceptWait is how long the receiver may take to accept; 0 means 10
	// minutes.
	AcceptWait time.Duration
	// AckWait is how long a receiver that accepted, and is still on the
	// network, may say nothing before Send gives up with a
	// *StoppedError (its receive ended without a word: a crash, an older
	// version); 0 means 1 minute. A receiver stopped by its user says so,
	// and Send ends at once.
	AckWait time.Duration
	// Progress, if set, is called on Send's goroutine with the octets the
	// receiver holds and the total; it must not block.
	Progress func(held, total int64)
	// Notify, if set, is told on Send's goroutine when the peer goes away
	// and when it comes back (the transfer resumes); it must not block.
	Notify func(string)
	// Event, if set, is called with every event Send reads that is not
	// for it (Send owns the node's events while it runs).
	Event func(zre.Event)
	// Logger gets what happens; nil means slog.Default().
	Logger *slog.Logger
}

// Result sums up a transfer.
type Result struct {
	Files   int           `json:"files"`
	Octets  int64         `json:"octets"`  // of all files
	Resumed int64         `json:"resumed"` // octets the receiver held already
	Elapsed time.Duration `json:"elapsed_ns"`
}

// unansweredNotice is how long an offer goes unanswered before Send says
// so through SendOptions.Notify (once).
const unansweredNotice = 5 * time.Second

// ErrRejected: the receiver said no.
var ErrRejected = errors.New("transfer: the receiver rejected the offer")

// Send offers src to peer and sends what the receiver does not hold yet,
// until the receiver has checked every file. It reads n's events itself.
func Send(ctx context.Context, n Node, peer uuid.UUID, src *Source, opts SendOptions) (Result, error) {
	if opts.PeerWait <= 0 {
		opts.PeerWait = 2 * time.Minute
	}
	if opts.AcceptWait <= 0 {
		opts.AcceptWait = 10 * time.Minute
	}
	if opts.AckWait <= 0 {
		opts.AckWait = time.Minute
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &sender{n: n, peer: peer, src: src, opts: opts, log: log, start: time.Now()}
	defer s.closeFile()
	return s.run(ctx)
}

type sender struct {
	n     Node
	peer  uuid.UUID
	src   *Source
	opts  SendOptions
	log   *slog.Logger
	start time.Time

	name      string // the peer's, as its ENTER or the node said it
	present   bool   // the peer is here (HELLO seen, no EXIT since)
	awaySince time.Time
	accepted  bool
	offered   time.Time
	nudged    bool // the notice of an unanswered offer was given
	answered  bool // the peer sent us a transfer message, ever
	flaps     int  // EXITs of the peer while it never answered

	file    int   // the file being sent
	acked   int64 // of file: the receiver holds everything before
	next    int64 // of file: the next octet to send
	lastAck time.Time
	heard   time.Time // the receiver's last message, or its ACCEPT
	held    int64     // octets the receiver holds, all files
	resumed int64

	fh  *os.File
	fhi int
	buf []byte
}

func (s *sender) closeFile() {
	if s.fh != nil {
		s.fh.Close()
		s.fh = nil
	}
}

func (s *sender) total() int64 { return s.src.Offer.Total() }

func (s *sender) notify(msg string) {
	if s.opts.Notify != nil {
		s.opts.Notify(msg)
	}
}

func (s *sender) progress() {
	if s.opts.Progress != nil {
		s.opts.Progress(s.held, s.total())
	}
}

func (s *sender) whisper(kind string, hdr any, data []byte) error {
	return s.n.Whisper(s.peer, frames(kind, hdr, data)...)
}

func (s *sender) run(ctx context.Context) (Result, error) {
	s.name = s.n.PeerName(s.peer)
	s.present = s.name != "" || contains(s.n.Peers(), s.peer)
	s.awaySince = time.Now()
	acceptBy := time.Now().Add(s.opts.AcceptWait)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		// Send while the window allows.
		if s.accepted && s.present {
			if err := s.pump(); err != nil {
				return Result{}, err
			}
		}
		select {
		case <-ctx.Done():
			if !s.offered.IsZero() {
				// Stopped here (Ctrl-C, the agent's client gone): the
				// receiver is told, not left waiting for more.
				s.stop()
			}
			return Result{}, ctx.Err()
		case e, ok := <-s.n.Events():
			if !ok {
				return Result{}, errors.New("transfer: our node stopped")
			}
			res, fin, err := s.handle(e)
			if fin || err != nil {
				return res, err
			}
		case now := <-tick.C:
			if !s.accepted || !s.present {
				// A node that refuses our key (its Denied event went to
				// whoever read the events before Send) is not waited for.
				if d, ok := Denial(s.n, s.peer); ok {
					return Result{}, refusedError(s.n, d)
				}
			}
			if !s.present {
				if now.Sub(s.awaySince) > s.opts.PeerWait {
					if s.held > 0 {
						return Result{}, fmt.Errorf("transfer: %s was away for %v, holding %s of %s (%d%%): send the same files again to resume when it is back",
							remoteText(s.name), s.opts.PeerWait, SizeText(s.held), SizeText(s.total()), percent(s.held, s.total()))
					}
					return Result{}, fmt.Errorf("transfer: the peer was away for %v", s.opts.PeerWait)
				}
				continue
			}
			if !s.accepted {
				if now.After(acceptBy) {
					return Result{}, fmt.Errorf("transfer: no answer to the offer in %v", s.opts.AcceptWait)
				}
				if !s.nudged && now.Sub(acceptBy.Add(-s.opts.AcceptWait)) >= unansweredNotice {
					// Said once: an offer nobody answers looks like a hang.
					s.nudged = true
					s.notify(fmt.Sprintf("%s has not answered the offer yet: is anyone receiving there? (waiting up to %v)", remoteText(s.n.PeerName(s.peer)), s.opts.AcceptWait))
				}
				if now.Sub(s.offered) >= 2*time.Second {
					s.offer()
				}
				continue
			}
			// Present, accepted, and silent for long: its receive ended
			// without a word (a live receiver answers a DATA out of
			// place, and ACKs while it checks a file).
			if now.Sub(s.heard) > s.opts.AckWait {
				return Result{}, &StoppedError{Name: remoteText(s.name), Silent: s.opts.AckWait, Held: s.held, Total: s.total()}
			}
			// Quiet with data outstanding: go back to the last ACK.
			if s.next > s.acked && now.Sub(s.lastAck) > 3*time.Second {
				s.log.Debug("transfer: no ACK; going back", "file", s.file, "offset", s.acked)
				s.next = s.acked
				s.lastAck = now
			}
		}
	}
}

// stopWait bounds how long a sender stopped tells its receiver so:
// again every stopAgain until the receiver says it heard (a receiver
// busy with the DATA before may drop a message: its node drops events
// when its queue is full).
const (
	stopWait  = 3 * time.Second
	stopAgain = 300 * time.Millisecond
)

// stop tells the receiver the sender stops (DONE stopped), until it
// answers with its own, it goes away, or stopWait passed. A receiver
// that did not accept yet is told once.
func (s *sender) stop() {
	msg := &done{ID: s.src.Offer.ID, Stopped: true, Error: "the sender stopped"}
	s.whisper(kindDone, msg, nil)
	if !s.accepted || !s.present {
		return
	}
	deadline := time.NewTimer(stopWait)
	defer deadline.Stop()
	again := time.NewTicker(stopAgain)
	defer again.Stop()
	for {
		select {
		case e, ok := <-s.n.Events():
			if !ok {
				return
			}
			if e.PeerUUID() != s.peer {
				continue
			}
			switch e := e.(type) {
			case *zre.Exit:
				return
			case *zre.Whisper:
				if _, hdr, _, ok, err := parse(e.Content); ok && err == nil {
					if h, ok := hdr.(*done); ok && h.ID == s.src.Offer.ID {
						return
					}
				}
			}
		case <-again.C:
			s.whisper(kindDone, msg, nil)
		case <-deadline.C:
			s.log.Debug("transfer: the receiver did not answer the stop", "peer", s.peer)
			return
		}
	}
}

// maxSilentFlaps is how many times a peer that never answered the offer
// may go away before Send gives up: a node that refuses our key is met
// again by every beacon and dropped when the dial is denied, about every
// ten seconds, and would otherwise be waited for PeerWait.
const maxSilentFlaps = 3

func contains(ids []uuid.UUID, id uuid.UUID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// away marks the peer gone, and says so once: at its EXIT, or at a send
// that finds it unknown (the node forgets a peer before its EXIT event
// comes), whichever is first.
func (s *sender) away() {
	if s.present {
		s.notify(fmt.Sprintf("%s went away with %d of %d octets held; waiting up to %v", s.name, s.held, s.total(), s.opts.PeerWait))
	}
	s.present, s.accepted = false, false
	s.awaySince = time.Now()
}

func (s *sender) offer() {
	s.offered = time.Now()
	if err := s.whisper(kindOffer, &s.src.Offer, nil); err != nil {
		s.log.Debug("transfer: offer not sent", "err", err)
	}
}

// handle takes one event; fin when the transfer is over.
func (s *sender) handle(e zre.Event) (Result, bool, error) {
	if e.PeerUUID() != s.peer {
		if s.opts.Event != nil {
			s.opts.Event(e)
		}
		return Result{}, false, nil
	}
	if name := e.PeerName(); name != "" {
		s.name = name
	}
	switch e := e.(type) {
	case *zre.Denied:
		return Result{}, true, refusedError(s.n, *e)
	case *zre.Enter:
		if !s.present {
			s.notify(fmt.Sprintf("%s is back; offering again to resume", e.Name))
		}
		s.present, s.accepted = true, false
		s.offer()
	case *zre.Exit:
		s.away()
		if !s.answered {
			// A peer that comes and goes and never answers: its node
			// most likely denies our connection (the beacon brings
			// the peer back, the dial is given up, again), which
			// the node does not tell us otherwise.
			if s.flaps++; s.flaps >= maxSilentFlaps {
				return Result{}, true, fmt.Errorf("transfer: %s went away %d times without ever answering the offer: its node may refuse this device's key "+
					"(we are not trusted there, or are taken for a changed key), or a firewall blocks the connection; nothing was sent", s.name, s.flaps)
			}
		}
	case *zre.Whisper:
		kind, hdr, _, ok, err := parse(e.Content)
		if !ok {
			break
		}
		s.answered, s.heard = true, time.Now()
		if err != nil {
			return Result{}, true, err
		}
		switch h := hdr.(type) {
		case *accept:
			if h.ID != s.src.Offer.ID || len(h.Offsets) != len(s.src.Offer.Files) {
				return Result{}, true, fmt.Errorf("%w: ACCEPT of another offer", ErrProtocol)
			}
			if err := s.accept(h.Offsets); err != nil {
				return Result{}, true, err
			}
		case *reject:
			if h.ID == s.src.Offer.ID {
				return Result{}, true, fmt.Errorf("%w: %s", ErrRejected, remoteText(h.Reason))
			}
		case *ack:
			if h.ID != s.src.Offer.ID || !s.accepted {
				break
			}
			s.onAck(h)
		case *done:
			if h.ID != s.src.Offer.ID {
				break
			}
			if !h.OK && h.Stopped {
				// (Its word may come after its node's going away.)
				held := s.held
				if h.Held > held && h.Held <= s.total() {
					held = h.Held // since its last ACK
				}
				return Result{}, true, &StoppedError{Name: remoteText(s.name), Held: held, Total: s.total()}
			}
			if !h.OK {
				return Result{}, true, fmt.Errorf("transfer: the receiver: %s", remoteText(h.Error))
			}
			s.held = s.total()
			s.progress()
			return Result{Files: len(s.src.Offer.Files), Octets: s.total(), Resumed: s.resumed, Elapsed: time.Since(s.start)}, true, nil
		default:
			s.log.Debug("transfer: unexpected message", "kind", kind)
		}
	}
	return Result{}, false, nil
}

// accept starts (again) from the receiver's offsets: the first file it
// does not hold whole.
func (s *sender) accept(offsets []int64) error {
	if s.accepted {
		// An answer to an offer repeated while the receiver made up its
		// mind: it holds no more than the first said, and the ACKs
		// since tell more.
		return nil
	}
	var held int64
	first := len(offsets)
	for i, o := range offsets {
		size := s.src.Offer.Files[i].Size
		if o < 0 || o > size {
			return fmt.Errorf("%w: ACCEPT offset %d of a file of %d octets", ErrProtocol, o, size)
		}
		held += o
		if o < size && first == len(offsets) {
			first = i
		}
	}
	if !s.accepted && s.held == 0 {
		s.resumed = held
	} else if held > 0 {
		s.notify(fmt.Sprintf("resuming at %d of %d octets", held, s.total()))
	}
	s.accepted, s.held, s.lastAck, s.heard = true, held, time.Now(), time.Now()
	s.file = first
	if first < len(offsets) {
		s.acked, s.next = offsets[first], offsets[first]
	}
	s.progress()
	return nil
}

func (s *sender) onAck(a *ack) {
	if a.File != s.file || a.File < 0 || a.File >= len(s.src.Offer.Files) {
		return
	}
	if a.Offset < 0 || a.Offset > s.src.Offer.Files[s.file].Size {
		return
	}
	if a.Offset > s.acked {
		s.held += a.Offset - s.acked
		s.acked = a.Offset
		s.progress()
	}
	s.lastAck = time.Now()
	if a.Resync && a.Offset < s.next {
		s.next = a.Offset
	}
	// On to the next file the receiver does not hold (empty files it
	// makes itself).
	for s.acked == s.src.Offer.Files[s.file].Size && s.file < len(s.src.Offer.Files)-1 {
		s.file++
		s.acked, s.next = 0, 0
	}
}

// pump sends DATA while the window allows.
func (s *sender) pump() error {
	for s.file < len(s.src.Offer.Files) {
		f := s.src.Offer.Files[s.file]
		if s.next >= f.Size || s.next-s.acked >= Window {
			// All of the file sent, or the window full: the receiver's
			// ACK moves on. (Empty files need no DATA: the receiver
			// makes them itself.)
			return nil
		}
		if s.fh == nil || s.fhi != s.file {
			s.closeFile()
			var fi fs.FileInfo
			if s.file < len(s.src.info) {
				fi = s.src.info[s.file]
			}
			fh, err := openSame(s.src.Local[s.file], fi)
			if err != nil {
				return err
			}
			s.fh, s.fhi = fh, s.file
		}
		if s.buf == nil {
			s.buf = make([]byte, ChunkSize)
		}
		want := min(int64(ChunkSize), f.Size-s.next)
		n, err := s.fh.ReadAt(s.buf[:want], s.next)
		if int64(n) != want {
			return fmt.Errorf("transfer: reading %s at %d: %v (did it change?)", s.src.Local[s.file], s.next, err)
		}
		if err := s.whisper(kindData, &dataHdr{ID: s.src.Offer.ID, File: s.file, Offset: s.next}, s.buf[:n]); err != nil {
			if errors.Is(err, zre.ErrUnknownPeer) {
				s.away() // its EXIT event follows
				return nil
			}
			// A full queue: try again at the next turn.
			s.log.Debug("transfer: DATA not sent", "err", err)
			return nil
		}
		s.next += int64(n)
	}
	return nil
}
