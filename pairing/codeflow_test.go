package pairing

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// codeConfirm returns a displayer Confirm that answers the QR path at once
// and, for the short code, signals asked and waits for release (its
// answer) or ctx.
func codeConfirm(asked chan<- struct{}, release <-chan error) func(context.Context, Result) error {
	return func(ctx context.Context, r Result) error {
		if r.Method != "code" {
			return nil
		}
		asked <- struct{}{}
		select {
		case err := <-release:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// joinCodeUntilAsked starts JoinCode with tok's short code at d's code
// address, and returns once the displayer asks for the comparison (asked,
// from codeConfirm); JoinCode's result comes on the channel it returns.
func joinCodeUntilAsked(t *testing.T, ctx context.Context, d *Displayer, tok Token, o Options, asked <-chan struct{}) <-chan error {
	t.Helper()
	joined := make(chan error, 1)
	go func() {
		_, err := JoinCode(ctx, tok.ShortCode(), d.CodeAddr(), o)
		joined <- err
	}()
	select {
	case <-asked:
	case err := <-joined:
		t.Fatalf("JoinCode ended before the comparison: %v", err)
	case <-ctx.Done():
		t.Fatal("the displayer never asked for the comparison")
	}
	return joined
}

// joinerTold is the result of the JoinCode on joined, which must come
// before ctx ends: the joiner is told what happened at once.
func joinerTold(t *testing.T, ctx context.Context, joined <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-joined:
		return err
	case <-ctx.Done():
		t.Fatalf("the joiner was not told that %s", what)
		return nil
	}
}

// The token works once: a QR scanner that succeeds while the short code's
// comparison is on screen wins, and the short-code joiner is told the token
// is used instead of being recorded as a second device.
func TestCodeComparisonAfterQRSuccess(t *testing.T) {
	ctx := testCtx(t)
	alice, bob, carol := newNode(t, "alice"), newNode(t, "bob"), newNode(t, "carol")
	asked, release := make(chan struct{}, 1), make(chan error, 1)
	d, tok := newDisplayer(t, alice, func(o *Options) { o.Confirm = codeConfirm(asked, release) })
	joined := joinCodeUntilAsked(t, ctx, d, tok, bob.opts(), asked)
	if _, err := Join(ctx, tok.URI(), carol.opts()); err != nil {
		t.Fatalf("QR scanner: %v", err)
	}
	release <- nil // alice now says yes to bob's number
	if err := <-joined; !errors.Is(err, ErrUsed) {
		t.Fatalf("short-code joiner after the token was used: %v, want ErrUsed", err)
	}
	res, err := d.Wait(ctx)
	if err != nil || res.PeerKey != carol.key() {
		t.Fatalf("displayer: %v, %v; want carol", res.PeerName, err)
	}
	mustVerified(t, alice, carol, "qr")
	mustNoRecords(t, bob)
}

// The token expires while both users compare the number: the displayer's
// question is cancelled, the joiner is told at once (not after its
// context), and nobody records anything.
func TestCodeExpiresDuringComparison(t *testing.T) {
	ctx := testCtx(t)
	alice, bob := newNode(t, "alice"), newNode(t, "bob")
	clk := &fakeClock{t: time.Now()}
	asked, release := make(chan struct{}, 1), make(chan error, 1)
	cancelled := make(chan struct{})
	confirm := codeConfirm(asked, release)
	d, tok := newDisplayer(t, alice, func(o *Options) {
		o.Now, o.TTL = clk.Now, time.Second // the expiry timer checks the clock every second
		o.Confirm = func(ctx context.Context, r Result) error {
			err := confirm(ctx, r)
			if ctx.Err() != nil {
				close(cancelled)
			}
			return err
		}
	})
	joined := joinCodeUntilAsked(t, ctx, d, tok, bob.opts(), asked) // bob says yes at once
	clk.Add(time.Hour)
	if _, err := d.Wait(ctx); !errors.Is(err, ErrExpired) {
		t.Fatalf("displayer: %v, want ErrExpired", err)
	}
	if err := joinerTold(t, ctx, joined, "the token expired"); !errors.Is(err, ErrExpired) {
		t.Fatalf("joiner: %v, want ErrExpired", err)
	}
	select {
	case <-cancelled:
	case <-ctx.Done():
		t.Fatal("the displayer's question was not cancelled at expiry")
	}
	mustNoRecords(t, alice)
	mustNoRecords(t, bob)
}

// Close returns when the displayer's goroutines have exited: the
// comparison question it started included.
func TestDisplayerCloseWaitsForConfirm(t *testing.T) {
	ctx := testCtx(t)
	alice, bob := newNode(t, "alice"), newNode(t, "bob")
	asked := make(chan struct{}, 1)
	var afterReturn atomic.Bool
	d, tok := newDisplayer(t, alice, func(o *Options) {
		o.Confirm = func(ctx context.Context, r Result) error {
			asked <- struct{}{}
			<-ctx.Done()
			time.Sleep(200 * time.Millisecond) // taking the question down: Close waits for it
			afterReturn.Store(true)
			return ctx.Err()
		}
	})
	go JoinCode(ctx, tok.ShortCode(), d.CodeAddr(), bob.opts())
	select {
	case <-asked:
	case <-ctx.Done():
		t.Fatal("the displayer never asked for the comparison")
	}
	d.Close()
	if !afterReturn.Load() {
		t.Fatal("Close returned while the displayer's Confirm was still running")
	}
}

// JoinCode returns only once the Confirm it started has returned: the
// displayer's refusal cancels it, and JoinCode waits for it.
func TestJoinCodeWaitsForConfirm(t *testing.T) {
	ctx := testCtx(t)
	alice, bob := newNode(t, "alice"), newNode(t, "bob")
	var afterReturn atomic.Bool
	d, tok := newDisplayer(t, alice, func(o *Options) {
		o.Confirm = func(context.Context, Result) error { return errors.New("numbers differ") }
	})
	bo := bob.opts()
	bo.Confirm = func(ctx context.Context, _ Result) error {
		<-ctx.Done()
		time.Sleep(200 * time.Millisecond) // taking the question down
		afterReturn.Store(true)
		return ctx.Err()
	}
	if _, err := JoinCode(ctx, tok.ShortCode(), d.CodeAddr(), bo); !errors.Is(err, ErrRefused) {
		t.Fatalf("joiner: %v, want ErrRefused", err)
	}
	if !afterReturn.Load() {
		t.Fatal("JoinCode returned while its Confirm was still running")
	}
}

// Someone who takes the code (CODE-A) and never proves it (no CODE-C)
// burns it; the displayer reports that within its step timeout instead of
// waiting silently until the token expires.
func TestCodeTakenAndAbandoned(t *testing.T) {
	ctx := testCtx(t)
	alice, mallory := newNode(t, "alice"), newNode(t, "mallory")
	d, _ := newDisplayer(t, alice, func(o *Options) { o.EndOnCodeFailure, o.Timeout = true, time.Second })
	c := attacker(t, ctx, mallory, d)
	var sid [cpaceSIDSize]byte
	p, err := newCPaceParty(nil, []byte("000000000000"), cpaceCI(d.key.Bytes(), mallory.key().Bytes()), sid[:])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exchange(ctx, c, mallory.opts().withDefaults(), newMsg(cmdCodeA, sid[:], p.share), cmdCodeB); err != nil {
		t.Fatal(err)
	}
	// ... and silence.
	if _, err := d.Wait(ctx); !errors.Is(err, ErrWrongCode) {
		t.Fatalf("displayer after an abandoned short code: %v, want ErrWrongCode", err)
	}
	mustNoRecords(t, alice)
}

// The displayer is closed (its user pressed Ctrl-C, or its command timed
// out) while both users compare the number: the joiner is told at once
// instead of waiting for its context with the question on screen.
func TestDisplayerCloseTellsJoiner(t *testing.T) {
	ctx := testCtx(t)
	alice, bob := newNode(t, "alice"), newNode(t, "bob")
	asked, release := make(chan struct{}, 1), make(chan error)
	d, tok := newDisplayer(t, alice, func(o *Options) { o.Confirm = codeConfirm(asked, release) })
	joined := joinCodeUntilAsked(t, ctx, d, tok, bob.opts(), asked) // bob says yes at once
	d.Close()
	if err := joinerTold(t, ctx, joined, "the displayer closed"); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), ErrClosed.Error()) {
		t.Fatalf("joiner: %v, want ErrRefused saying the displayer closed", err)
	}
	mustNoRecords(t, alice)
	mustNoRecords(t, bob)
}

// A CODE-A whose share is not a valid group element also uses the code
// (one attempt per code); the displayer reports it like a wrong code
// instead of waiting silently until the token expires.
func TestCodeBurntByInvalidShare(t *testing.T) {
	ctx := testCtx(t)
	alice, mallory := newNode(t, "alice"), newNode(t, "mallory")
	d, _ := newDisplayer(t, alice, func(o *Options) { o.EndOnCodeFailure = true })
	c := attacker(t, ctx, mallory, d)
	var sid [cpaceSIDSize]byte
	bad := bytes.Repeat([]byte{0xff}, cpaceElemSize) // not a canonical encoding
	if _, err := exchange(ctx, c, mallory.opts().withDefaults(), newMsg(cmdCodeA, sid[:], bad), cmdCodeB); !errors.Is(err, ErrProtocol) {
		t.Fatalf("CODE-A with an invalid share: %v, want ErrProtocol", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second) // well before the token expires
	defer cancel()
	if _, err := d.Wait(wctx); !errors.Is(err, ErrWrongCode) || !errors.Is(err, ErrProtocol) {
		t.Fatalf("displayer after a CODE-A with an invalid share: %v, want ErrWrongCode and ErrProtocol", err)
	}
	mustNoRecords(t, alice)
}

// The joiner's context ends (zyre pair's --timeout, or Ctrl-C) while both
// users compare the number: JoinCode returns the context's error, never a
// refusal, also when its cancelled Confirm returns before the wait for the
// displayer's answer does.
func TestJoinerContextEndsDuringComparison(t *testing.T) {
	ctx := testCtx(t)
	alice, bob := newNode(t, "alice"), newNode(t, "bob")
	asked, release := make(chan struct{}, 1), make(chan error)
	d, tok := newDisplayer(t, alice, func(o *Options) { o.Confirm = codeConfirm(asked, release) })
	bobAsked := make(chan struct{}, 1)
	bo := bob.opts()
	bo.Confirm = codeConfirm(bobAsked, nil) // bob's question stays up until JoinCode's context ends
	jctx, jcancel := context.WithCancel(ctx)
	defer jcancel()
	joined := joinCodeUntilAsked(t, jctx, d, tok, bo, asked)
	select {
	case <-bobAsked:
	case <-ctx.Done():
		t.Fatal("the joiner never asked for the comparison")
	}
	jcancel()
	if err := joinerTold(t, ctx, joined, "its context ended"); !errors.Is(err, context.Canceled) || errors.Is(err, ErrRefused) {
		t.Fatalf("joiner: %v, want context.Canceled and no refusal", err)
	}
	mustNoRecords(t, alice)
	mustNoRecords(t, bob)
}
