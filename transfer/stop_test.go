package transfer

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/zre"
)

// TestReceiverStopTellsSender: a receive stopped part-way (its user's
// Ctrl-C: its context ends) tells the sender, which ends at once with a
// *StoppedError saying how far it got, not sending on to nobody for ever
// (usertry5 #1); the same files sent again to a new receive resume.
func TestReceiverStopTellsSender(t *testing.T) {
	a, b := twoNodes(t, "alice")
	data := randomData(24<<20, 7)
	file := filepath.Join(t.TempDir(), "big.bin")
	writeFile(t, file, data)
	s, err := Prepare([]string{file})
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
	defer cancel()
	sent := make(chan error, 1)
	go func() {
		// AckWait and PeerWait far beyond the test: only the word of
		// the receiver ends Send.
		_, err := Send(ctx, a, b.UUID(), s, SendOptions{PeerWait: time.Hour, AckWait: time.Hour})
		sent <- err
	}()
	rctx, rcancel := context.WithCancel(ctx)
	var quarter atomic.Bool
	_, err = Receive(rctx, b, ReceiveOptions{Dir: dst, Trusted: anyone, Accept: yes, Progress: func(held, total int64) {
		if held >= total/4 && quarter.CompareAndSwap(false, true) {
			rcancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("receive: %v", err)
	}
	var serr error
	select {
	case serr = <-sent:
	case <-ctx.Done():
		t.Fatal("the sender still sends to a receiver that stopped")
	}
	var se *StoppedError
	if !errors.As(serr, &se) || !errors.Is(serr, ErrStopped) || se.Sender || se.Silent != 0 || se.Total != int64(len(data)) {
		t.Fatalf("send: %v (%#v)", serr, se)
	}
	if !regexp.MustCompile(`^bob stopped receiving after [\d.]+ (KiB|MiB) of 24\.0 MiB \(\d+%\); it keeps what it holds: send the same files again to resume$`).MatchString(serr.Error()) {
		t.Errorf("send: %v", serr)
	}
	// Sent again: the new receive is offered the rest.
	sent2 := make(chan error, 1)
	go func() {
		_, err := Send(ctx, a, b.UUID(), s, SendOptions{})
		sent2 <- err
	}()
	var heldAtOffer int64
	r, err := Receive(ctx, b, ReceiveOptions{Dir: dst, Trusted: anyone, Accept: func(_ context.Context, _ uuid.UUID, _ string, _ *Offer, held int64) (bool, error) {
		heldAtOffer = held
		return true, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-sent2; err != nil {
		t.Fatal(err)
	}
	if heldAtOffer == 0 || r.Resumed < heldAtOffer {
		t.Errorf("held %d at the offer, resumed %d", heldAtOffer, r.Resumed)
	}
	got, err := os.ReadFile(filepath.Join(dst, "big.bin"))
	if err != nil || sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("received %d octets, %v", len(got), err)
	}
}

// TestSenderStopTellsReceiver: a send stopped part-way (Ctrl-C) tells
// the receiver, which ends at once with a *StoppedError (the sender's),
// its partial file kept for a resume; not "stopped sending (interrupted?)"
// after a while and a wait of minutes.
func TestSenderStopTellsReceiver(t *testing.T) {
	a, b := twoNodes(t, "alice")
	data := randomData(24<<20, 8)
	file := filepath.Join(t.TempDir(), "big.bin")
	writeFile(t, file, data)
	s, err := Prepare([]string{file})
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
	defer cancel()
	sctx, scancel := context.WithCancel(ctx)
	var quarter atomic.Bool
	go func() {
		Send(sctx, a, b.UUID(), s, SendOptions{Progress: func(held, total int64) {
			if held >= total/4 && quarter.CompareAndSwap(false, true) {
				scancel()
			}
		}})
	}()
	_, err = Receive(ctx, b, ReceiveOptions{Dir: dst, Trusted: anyone, Accept: yes, PeerWait: time.Hour, SilentAfter: time.Hour})
	var se *StoppedError
	if !errors.As(err, &se) || !se.Sender || se.Held == 0 || se.Total != int64(len(data)) {
		t.Fatalf("receive: %v (%#v)", err, se)
	}
	if !regexp.MustCompile(`^alice stopped sending after [\d.]+ (KiB|MiB) of 24\.0 MiB \(\d+%\); what arrived is kept`).MatchString(err.Error()) {
		t.Errorf("receive: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dst, partialDir, s.Offer.ID, "0")); err != nil || fi.Size() != se.Held {
		t.Errorf("partial file: %v (held %d)", err, se.Held)
	}
}

// TestSendGivesUpOnASilentReceiver: a receiver that accepted and then
// says nothing while it stays on the network (its receive ended without a
// word: a crash, an older version) is given up on after AckWait, with how
// far it got; not waited for for ever (usertry5 #1).
func TestSendGivesUpOnASilentReceiver(t *testing.T) {
	a, b := twoNodes(t, "alice")
	file := filepath.Join(t.TempDir(), "f.bin")
	writeFile(t, file, randomData(3*ChunkSize, 9))
	s, err := Prepare([]string{file})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	sent := make(chan error, 1)
	go func() {
		_, err := Send(ctx, a, b.UUID(), s, SendOptions{AckWait: 500 * time.Millisecond, PeerWait: time.Hour})
		sent <- err
	}()
	// b accepts with nothing held, then says nothing more.
	for accepted := false; !accepted; {
		select {
		case e := <-b.Events():
			if w, ok := e.(*zre.Whisper); ok {
				if kind, _, _, ok, _ := parse(w.Content); ok && kind == kindOffer {
					b.Whisper(a.UUID(), frames(kindAccept, &accept{ID: s.Offer.ID, Offsets: []int64{0}}, nil)...)
					accepted = true
				}
			}
		case <-ctx.Done():
			t.Fatal("no offer")
		}
	}
	select {
	case err := <-sent:
		var se *StoppedError
		if !errors.As(err, &se) || se.Silent != 500*time.Millisecond || se.Held != 0 ||
			!strings.HasPrefix(err.Error(), "bob stopped answering after 0 B of 384.0 KiB (0%): nothing from it for 500ms") {
			t.Fatalf("send: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the sender waits for ever for a silent receiver")
	}
}

// TestRepeatedOfferSaysResumingOnlyWhenResuming: an offer repeated while
// the receiver made up its mind is answered without a word (no "resuming
// at 0 of N octets", usertry5 #2); an offer of a sender that sent DATA
// since, and came back, says "resuming at N" (N > 0) once.
func TestRepeatedOfferSaysResumingOnlyWhenResuming(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	a, b := twoNodes(t, "laptop")
	notes := make(chan string, 16)
	go Receive(ctx, b, ReceiveOptions{Dir: t.TempDir(), Trusted: anyone, Accept: yes, PeerWait: time.Hour, SilentAfter: time.Hour,
		Notify: func(m string) { notes <- m }})
	o := Offer{ID: strings.Repeat("6f", 16), Files: []File{{Path: "f.bin", Size: 10, SHA256: strings.Repeat("ab", 32)}}}
	acceptOf := func() *accept {
		t.Helper()
		if err := a.Whisper(b.UUID(), frames(kindOffer, &o, nil)...); err != nil {
			t.Fatal(err)
		}
		for {
			select {
			case e := <-a.Events():
				if w, ok := e.(*zre.Whisper); ok {
					if kind, hdr, _, ok, _ := parse(w.Content); ok && kind == kindAccept {
						return hdr.(*accept)
					}
				}
			case <-ctx.Done():
				t.Fatal("no ACCEPT")
			}
		}
	}
	noNote := func(when string) {
		t.Helper()
		select { // Notify runs before the ACCEPT is sent
		case m := <-notes:
			t.Fatalf("%s: notice %q", when, m)
		default:
		}
	}
	acceptOf()
	acceptOf() // repeated before any DATA
	acceptOf()
	noNote("repeated offers")
	a.Whisper(b.UUID(), frames(kindData, &dataHdr{ID: o.ID, File: 0, Offset: 0}, []byte("0123"))...)
	// The sender restarted: its offer again, after DATA.
	if acc := acceptOf(); acc.Offsets[0] != 4 {
		t.Fatalf("accept %+v", acc)
	}
	select {
	case m := <-notes:
		if m != "resuming at 4 of 10 octets" {
			t.Fatalf("notice %q", m)
		}
	default:
		t.Fatal("no resuming notice")
	}
	acceptOf() // repeated again: no word
	noNote("a repeated offer after a resume")
}
