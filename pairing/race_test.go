package pairing

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// ask is one question of the displayer's user, as the test sees it.
type ask struct {
	r      Result
	answer chan error
	ctx    context.Context
}

// askingConfirm is a displayer Confirm that hands every question to the
// test and waits for its answer or for the question to be dropped.
func askingConfirm(asks chan<- ask) func(context.Context, Result) error {
	return func(ctx context.Context, r Result) error {
		a := ask{r: r, answer: make(chan error, 1), ctx: ctx}
		select {
		case asks <- a:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case err := <-a.answer:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func nextAsk(t *testing.T, ctx context.Context, asks <-chan ask, what string) ask {
	t.Helper()
	select {
	case a := <-asks:
		return a
	case <-ctx.Done():
		t.Fatalf("the displayer's user was never asked %s", what)
		return ask{}
	}
}

func joinAsync(f func() (Result, error)) <-chan error {
	ch := make(chan error, 1)
	go func() {
		_, err := f()
		ch <- err
	}()
	return ch
}

func mustNoRecordsAll(t *testing.T, ns ...node) {
	t.Helper()
	for _, n := range ns {
		mustNoRecords(t, n)
	}
}

// The hotel room (usertry3 #2): a stranger who read the short code over a
// shoulder types it before the phone. The displayer's question names the
// stranger; the phone, which comes second, finds the session still
// announced and is told that another device took the code (not "nobody
// showed it"); the displayer's user is told at once that two devices
// tried (the first question is dropped and asked again naming both), and
// when the user picks neither nobody records anything.
func TestCodeRaceStrangerFirst(t *testing.T) {
	ctx := testCtx(t)
	room, phone, stranger := newNode(t, "room"), newNode(t, "phone1"), newNode(t, "guest")
	asks := make(chan ask)
	d, tok := newDisplayer(t, room, func(o *Options) { o.Confirm = askingConfirm(asks) })
	so := stranger.opts()
	so.Confirm = func(ctx context.Context, r Result) error {
		if r.PeerName != "room" || r.PeerAddr == "" || r.AsDisplayer {
			t.Errorf("the stranger's side was shown %q at %q (displayer %v)", r.PeerName, r.PeerAddr, r.AsDisplayer)
		}
		return nil // an attacker says yes at once
	}
	strangerDone := joinAsync(func() (Result, error) { return JoinCode(ctx, tok.ShortCode(), "", so) })
	first := nextAsk(t, ctx, asks, "about the stranger")
	if first.r.PeerName != "guest" || first.r.PeerKey != stranger.key() || !first.r.AsDisplayer || first.r.PeerAddr == "" || len(first.r.Others) != 0 {
		t.Fatalf("first question: name %q key ok %v displayer %v addr %q others %v", first.r.PeerName, first.r.PeerKey == stranger.key(), first.r.AsDisplayer, first.r.PeerAddr, first.r.Others)
	}
	if s := first.r.Peer().String(); !strings.Contains(s, `"guest"`) || !strings.Contains(s, first.r.PeerUUID.String()[:8]) || !strings.Contains(s, "from 127.0.0.1") {
		t.Fatalf("description of the stranger: %s", s)
	}
	mustNoRecordsAll(t, room, stranger, phone) // nothing before the user's yes

	// The phone types the same, right code a moment later.
	po := phone.opts()
	po.Timeout = 10 * time.Second
	start := time.Now()
	_, err := JoinCode(ctx, tok.ShortCode(), "", po)
	if !errors.Is(err, ErrCodeUsed) {
		t.Fatalf("the phone that came second: %v, want ErrCodeUsed (the code was right, but taken)", err)
	}
	if el := time.Since(start); el >= po.Timeout {
		t.Fatalf("the phone was told after %v, a step's timeout", el)
	}
	if msg, _ := Explain(err); !strings.Contains(msg, "spent by another device") {
		t.Fatalf("the phone is told %q", msg)
	}
	// The displayer's user is told at once: the first question is
	// dropped, and asked again naming both.
	again := nextAsk(t, ctx, asks, "again, naming both devices")
	if first.ctx.Err() == nil {
		t.Fatal("the first question is still up after a second device tried the code")
	}
	if again.r.PeerKey != stranger.key() || len(again.r.Others) != 1 || again.r.Others[0].Key != phone.key() || again.r.Others[0].Addr == "" {
		t.Fatalf("second question: peer ok %v, others %+v", again.r.PeerKey == stranger.key(), again.r.Others)
	}
	mustNoRecordsAll(t, room, stranger, phone)
	again.answer <- errors.New("that is not my phone")
	if _, err := d.Wait(ctx); !errors.Is(err, ErrExposed) || !strings.Contains(err.Error(), `"guest"`) {
		t.Fatalf("displayer: %v, want ErrExposed naming the devices", err)
	}
	if err := <-strangerDone; !errors.Is(err, ErrExposed) {
		t.Fatalf("stranger: %v, want ErrExposed", err)
	}
	mustNoRecordsAll(t, room, stranger, phone)
}

// The phone comes first and a stranger second: the displayer's user is
// asked again with the stranger named, picks the phone, and only the
// phone is recorded; a yes given before the stranger came is not taken.
func TestCodeRacePhoneFirstPicked(t *testing.T) {
	ctx := testCtx(t)
	room, phone, stranger := newNode(t, "room"), newNode(t, "phone1"), newNode(t, "guest")
	asks := make(chan ask)
	d, tok := newDisplayer(t, room, func(o *Options) { o.Confirm = askingConfirm(asks) })
	release := make(chan struct{})
	po := phone.opts()
	po.Confirm = func(ctx context.Context, r Result) error {
		select { // the phone's user compares slowly
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	phoneDone := joinAsync(func() (Result, error) { return JoinCode(ctx, tok.ShortCode(), d.CodeAddr(), po) })
	first := nextAsk(t, ctx, asks, "about the phone")
	if first.r.PeerKey != phone.key() {
		t.Fatalf("first question about %q", first.r.PeerName)
	}
	first.answer <- nil // the room's user says yes; the phone has not yet
	if _, err := JoinCode(ctx, tok.ShortCode(), d.CodeAddr(), stranger.opts()); !errors.Is(err, ErrCodeUsed) {
		t.Fatalf("stranger: %v, want ErrCodeUsed", err)
	}
	again := nextAsk(t, ctx, asks, "again after the stranger came")
	if again.r.PeerKey != phone.key() || len(again.r.Others) != 1 || again.r.Others[0].Key != stranger.key() || again.r.Others[0].Name != "" {
		t.Fatalf("second question: %q, others %+v", again.r.PeerName, again.r.Others)
	}
	close(release)
	mustNoRecordsAll(t, room, phone, stranger)
	again.answer <- nil
	res, err := d.Wait(ctx)
	if err != nil || res.PeerKey != phone.key() {
		t.Fatalf("displayer: %q %v, want the phone", res.PeerName, err)
	}
	if err := <-phoneDone; err != nil {
		t.Fatalf("phone: %v", err)
	}
	mustVerified(t, room, phone, "code")
	mustVerified(t, phone, room, "code")
	mustNoRecords(t, stranger)
}

// Two scanners of one QR code (a stranger photographed it): the displayer
// asks who is pairing (the QR path asks too), the second scanner makes it
// ask again naming both, latest first, and only the device picked is
// recorded; the other is told that another device was chosen.
func TestQRRaceTwoScanners(t *testing.T) {
	ctx := testCtx(t)
	room, phone, stranger := newNode(t, "room"), newNode(t, "phone1"), newNode(t, "guest")
	asks := make(chan ask)
	d, tok := newDisplayer(t, room, func(o *Options) { o.Confirm = askingConfirm(asks) })
	strangerDone := joinAsync(func() (Result, error) { return Join(ctx, tok.URI(), stranger.opts()) })
	first := nextAsk(t, ctx, asks, "about the QR scanner")
	if first.r.Method != "qr" || first.r.PeerName != "guest" || !first.r.AsDisplayer || first.r.PeerAddr == "" || len(first.r.Others) != 0 {
		t.Fatalf("first question: %+v", first.r)
	}
	mustNoRecordsAll(t, room, stranger)
	phoneDone := joinAsync(func() (Result, error) { return Join(ctx, tok.URI(), phone.opts()) })
	again := nextAsk(t, ctx, asks, "again, naming both scanners")
	if first.ctx.Err() == nil {
		t.Fatal("the first question is still up after a second scanner")
	}
	if again.r.PeerKey != phone.key() || len(again.r.Others) != 1 || again.r.Others[0].Key != stranger.key() || again.r.Others[0].Name != "guest" {
		t.Fatalf("second question: %q, others %+v", again.r.PeerName, again.r.Others)
	}
	mustNoRecordsAll(t, room, stranger, phone)
	again.answer <- nil
	if err := <-phoneDone; err != nil {
		t.Fatalf("phone: %v", err)
	}
	if err := <-strangerDone; !errors.Is(err, ErrUsed) {
		t.Fatalf("stranger: %v, want ErrUsed", err)
	}
	if res, err := d.Wait(ctx); err != nil || res.PeerKey != phone.key() {
		t.Fatalf("displayer: %q %v", res.PeerName, err)
	}
	mustVerified(t, room, phone, "qr")
	mustVerified(t, phone, room, "qr")
	mustNoRecords(t, stranger)
}

// Without Confirm nobody can pick: an exposed code pairs neither device.
func TestExposedWithoutConfirm(t *testing.T) {
	ctx := testCtx(t)
	room, phone, stranger := newNode(t, "room"), newNode(t, "phone1"), newNode(t, "guest")
	d, tok := newDisplayer(t, room, nil)
	asked := make(chan struct{})
	so := stranger.opts()
	so.Confirm = func(ctx context.Context, r Result) error {
		close(asked)
		<-ctx.Done() // waits until the displayer says
		return ctx.Err()
	}
	strangerDone := joinAsync(func() (Result, error) { return JoinCode(ctx, tok.ShortCode(), d.CodeAddr(), so) })
	select {
	case <-asked:
	case <-ctx.Done():
		t.Fatal("the stranger never got to the comparison")
	}
	if _, err := JoinCode(ctx, tok.ShortCode(), d.CodeAddr(), phone.opts()); !errors.Is(err, ErrCodeUsed) {
		t.Fatalf("phone: %v, want ErrCodeUsed", err)
	}
	if _, err := d.Wait(ctx); !errors.Is(err, ErrExposed) {
		t.Fatalf("displayer: %v, want ErrExposed", err)
	}
	if err := <-strangerDone; !errors.Is(err, ErrExposed) {
		t.Fatalf("stranger: %v, want ErrExposed", err)
	}
	mustNoRecordsAll(t, room, phone, stranger)
}

// The token expires while the displayer's user is asked about a QR
// scanner: the question is cancelled, the scanner told at once, and
// nobody records anything.
func TestQRExpiresDuringQuestion(t *testing.T) {
	ctx := testCtx(t)
	room, phone := newNode(t, "room"), newNode(t, "phone1")
	clk := &fakeClock{t: time.Now()}
	asks := make(chan ask)
	d, tok := newDisplayer(t, room, func(o *Options) {
		o.Now, o.TTL = clk.Now, time.Second // the expiry timer checks the clock every second
		o.Confirm = askingConfirm(asks)
	})
	joined := joinAsync(func() (Result, error) { return Join(ctx, tok.URI(), phone.opts()) })
	q := nextAsk(t, ctx, asks, "about the QR scanner")
	clk.Add(time.Hour)
	if _, err := d.Wait(ctx); !errors.Is(err, ErrExpired) {
		t.Fatalf("displayer: %v, want ErrExpired", err)
	}
	select {
	case err := <-joined:
		if !errors.Is(err, ErrExpired) {
			t.Fatalf("scanner: %v, want ErrExpired", err)
		}
	case <-ctx.Done():
		t.Fatal("the scanner was not told that the token expired")
	}
	select {
	case <-q.ctx.Done():
	case <-ctx.Done():
		t.Fatal("the displayer's question was not cancelled at expiry")
	}
	mustNoRecordsAll(t, room, phone)
}

// Whoever holds the token can prove it under any number of keys: the
// displayer keeps and names at most maxTried devices and refuses the
// others at once, so memory and the question stay bounded.
func TestExposedDevicesBounded(t *testing.T) {
	ctx := testCtx(t)
	room := newNode(t, "room")
	asks := make(chan ask)
	d, tok := newDisplayer(t, room, func(o *Options) { o.Confirm = askingConfirm(asks) })
	var joins []<-chan error
	for i := 0; i < maxTried+2; i++ {
		n := newNode(t, "copy")
		joined := joinAsync(func() (Result, error) { return Join(ctx, tok.URI(), n.opts()) })
		if i >= maxTried {
			if err := <-joined; !errors.Is(err, ErrExposed) {
				t.Fatalf("device %d: %v, want ErrExposed at once", i+1, err)
			}
			continue
		}
		joins = append(joins, joined)
		a := nextAsk(t, ctx, asks, "about the newest device")
		if a.r.PeerKey != n.key() || len(a.r.Others) != i {
			t.Fatalf("device %d: question about another, or %d others", i+1, len(a.r.Others))
		}
	}
	d.Close()
	for i, j := range joins {
		if err := <-j; !errors.Is(err, ErrClosed) && !errors.Is(err, ErrRefused) {
			t.Fatalf("device %d after Close: %v", i+1, err)
		}
	}
	mustNoRecords(t, room)
}

// A QR scanner that gives up while the displayer's user is asked about
// it says so: the question is dropped and nobody is recorded when the
// user answers late.
func TestQRScannerGivesUpDuringQuestion(t *testing.T) {
	ctx := testCtx(t)
	room, phone := newNode(t, "room"), newNode(t, "phone1")
	asks := make(chan ask)
	d, tok := newDisplayer(t, room, func(o *Options) { o.Confirm = askingConfirm(asks) })
	jctx, giveUp := context.WithCancel(ctx)
	joined := joinAsync(func() (Result, error) { return Join(jctx, tok.URI(), phone.opts()) })
	q := nextAsk(t, ctx, asks, "about the QR scanner")
	giveUp()
	if err := <-joined; !errors.Is(err, context.Canceled) {
		t.Fatalf("scanner: %v, want context.Canceled", err)
	}
	select {
	case <-q.ctx.Done():
	case <-ctx.Done():
		t.Fatal("the question about a scanner that went away is still up")
	}
	q.answer <- nil // too late
	// The token is still good for the next scanner.
	next := joinAsync(func() (Result, error) { return Join(ctx, tok.URI(), phone.opts()) })
	a := nextAsk(t, ctx, asks, "about the scanner that came back")
	mustNoRecordsAll(t, room, phone)
	a.answer <- nil
	if err := <-next; err != nil {
		t.Fatal(err)
	}
	if _, err := d.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	mustVerified(t, room, phone, "qr")
}

// The device that took the code and tries again is not told that
// another device took it.
func TestCodeRetriedBySameDevice(t *testing.T) {
	ctx := testCtx(t)
	room, phone := newNode(t, "room"), newNode(t, "phone1")
	d, tok := newDisplayer(t, room, func(o *Options) { o.MaxCodes = 1 }) // the same code again, not a fresh one
	wrong := []byte(tok.code)
	wrong[11] = '0' + (wrong[11]-'0'+1)%10
	if _, err := JoinCode(ctx, string(wrong), d.CodeAddr(), phone.opts()); !errors.Is(err, ErrWrongCode) {
		t.Fatalf("wrong code: %v", err)
	}
	_, err := JoinCode(ctx, tok.ShortCode(), d.CodeAddr(), phone.opts())
	if !errors.Is(err, ErrCodeUsed) {
		t.Fatalf("retry: %v, want ErrCodeUsed", err)
	}
	if msg, _ := Explain(err); strings.Contains(msg, "another device") {
		t.Fatalf("the device that took the code is told %q", msg)
	}
}
