package pairing

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zyre-go/zyre/trust"
)

// spentCodes collects the displayer's OnCode reports.
func spentCodes(o *Options) <-chan CodeSpent {
	ch := make(chan CodeSpent, 16)
	o.OnCode = func(c CodeSpent) { ch <- c }
	return ch
}

func nextSpent(t *testing.T, ctx context.Context, ch <-chan CodeSpent, what string) CodeSpent {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-ctx.Done():
		t.Fatalf("no spent code reported: %s", what)
		return CodeSpent{}
	}
}

// wrongCode is code with its last digit changed.
func wrongCode(code string) string {
	w := []byte(strings.ReplaceAll(code, "-", ""))
	w[11] = '0' + (w[11]-'0'+1)%10
	return string(w)
}

// A stranger's wrong code (user trial 5 #2: a script on the Wi-Fi answers
// each announcement with one wrong attempt) spends that code only: the
// displayer names the device, shows a fresh code at once, and the
// family's phone pairs with the fresh code (its user picks it by id: the
// stranger tried, so the code is exposed and nothing weaker applies).
func TestWrongCodeThenFreshCodePairs(t *testing.T) {
	ctx := testCtx(t)
	room, phone, stranger := newNode(t, "room"), newNode(t, "phone1"), newNode(t, "A35B3B")
	var spent <-chan CodeSpent
	var asked []Result
	d, tok := newDisplayer(t, room, func(o *Options) {
		spent = spentCodes(o)
		o.Confirm = func(ctx context.Context, r Result) error {
			asked = append(asked, r) // one question at a time here
			if r.PeerKey != phone.key() {
				return errors.New("not the phone")
			}
			return nil
		}
	})
	if _, err := JoinCode(ctx, wrongCode(tok.code), d.CodeAddr(), stranger.opts()); !errors.Is(err, ErrWrongCode) {
		t.Fatalf("stranger: %v, want ErrWrongCode", err)
	}
	c := nextSpent(t, ctx, spent, "after the stranger's wrong code")
	if c.By.Key != stranger.key() || c.Why != "tried a wrong code" || c.Code == "" || c.Code == tok.ShortCode() ||
		c.Spent != 1 || c.Left != DefaultMaxCodes-2 || c.Endpoint != d.CodeAddr() {
		t.Fatalf("spent: %+v", c)
	}
	line := c.String()
	if !strings.Contains(line, stranger.id.UUID.String()[:8]) || !strings.Contains(line, trust.Fingerprint(stranger.key())) ||
		!strings.Contains(line, "from 127.0.0.1") || !strings.HasSuffix(line, " tried a wrong code; this code is spent") {
		t.Fatalf("the line does not name the stranger: %q", line)
	}
	mustNoRecordsAll(t, room, phone, stranger)
	// The old code is spent for everyone.
	if _, err := JoinCode(ctx, tok.ShortCode(), d.CodeAddr(), phone.opts()); !errors.Is(err, ErrWrongCode) {
		t.Fatalf("the spent code: %v, want ErrWrongCode", err)
	}
	c2 := nextSpent(t, ctx, spent, "after the spent code typed")
	if c2.By.Key != phone.key() || c2.Code == c.Code || c2.Spent != 2 {
		t.Fatalf("second spent: %+v", c2)
	}
	res, err := JoinCode(ctx, c2.Code, d.CodeAddr(), phone.opts())
	if err != nil {
		t.Fatalf("the phone with the fresh code: %v", err)
	}
	if res.PeerKey != room.key() {
		t.Fatalf("phone paired with %v", res.PeerKey)
	}
	if _, err := d.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	mustVerified(t, room, phone, "code")
	mustVerified(t, phone, room, "code")
	mustNoRecords(t, stranger)
	// Exposure still applies: the question about the phone named the
	// stranger that tried.
	if len(asked) != 1 || len(asked[0].Others) != 1 || asked[0].Others[0].Key != stranger.key() {
		t.Fatalf("questions: %+v", asked)
	}
}

// The genuine user's own typo is the same path: a fresh code, the same
// device, no exposure; it pairs with the fresh code (no Confirm needed).
func TestOwnTypoThenFreshCode(t *testing.T) {
	ctx := testCtx(t)
	room, phone := newNode(t, "room"), newNode(t, "phone1")
	var spent <-chan CodeSpent
	d, tok := newDisplayer(t, room, func(o *Options) { spent = spentCodes(o) })
	_, err := JoinCode(ctx, wrongCode(tok.code), d.CodeAddr(), phone.opts())
	if !errors.Is(err, ErrWrongCode) {
		t.Fatalf("typo: %v, want ErrWrongCode", err)
	}
	if msg, hint := Explain(err); strings.Contains(msg, "someone in the middle") || !strings.Contains(hint, "new code the showing device shows now") {
		t.Fatalf("the typist is told %q / %q", msg, hint)
	}
	c := nextSpent(t, ctx, spent, "after the typo")
	if c.By.Key != phone.key() {
		t.Fatalf("spent by %+v", c.By)
	}
	if _, err := JoinCode(ctx, c.Code, d.CodeAddr(), phone.opts()); err != nil {
		t.Fatalf("the fresh code: %v", err)
	}
	if _, err := d.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	mustVerified(t, room, phone, "code")
}

// The QR token outlives a wrong short-code attempt by a stranger.
func TestQRAfterWrongCode(t *testing.T) {
	ctx := testCtx(t)
	room, phone, stranger := newNode(t, "room"), newNode(t, "phone1"), newNode(t, "A35B3B")
	var spent <-chan CodeSpent
	d, tok := newDisplayer(t, room, func(o *Options) {
		spent = spentCodes(o)
		o.Confirm = func(ctx context.Context, r Result) error {
			if r.PeerKey != phone.key() || len(r.Others) != 1 || r.Others[0].Key != stranger.key() {
				return errors.New("not the phone, or the stranger not named")
			}
			return nil
		}
	})
	if _, err := JoinCode(ctx, wrongCode(tok.code), d.CodeAddr(), stranger.opts()); !errors.Is(err, ErrWrongCode) {
		t.Fatalf("stranger: %v", err)
	}
	nextSpent(t, ctx, spent, "after the stranger's wrong code")
	if _, err := Join(ctx, tok.URI(), phone.opts()); err != nil {
		t.Fatalf("QR after a wrong code: %v", err)
	}
	if _, err := d.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	mustVerified(t, room, phone, "qr")
	mustVerified(t, phone, room, "qr")
}

// At most MaxCodes codes: then the displayer takes no more short-code
// attempts (said to whoever tries: the QR code still pairs), and the QR
// token still pairs.
func TestFreshCodesBounded(t *testing.T) {
	ctx := testCtx(t)
	room, phone := newNode(t, "room"), newNode(t, "phone1")
	var spent <-chan CodeSpent
	d, tok := newDisplayer(t, room, func(o *Options) { spent = spentCodes(o); o.MaxCodes = 3 })
	code := tok.ShortCode()
	for i := 1; i <= 3; i++ {
		if _, err := JoinCode(ctx, wrongCode(code), d.CodeAddr(), phone.opts()); !errors.Is(err, ErrWrongCode) {
			t.Fatalf("wrong code %d: %v", i, err)
		}
		c := nextSpent(t, ctx, spent, "a wrong code")
		if c.Spent != i || (i < 3) != (c.Code != "") || c.Left != max(0, 3-i-1) {
			t.Fatalf("spent %d: %+v", i, c)
		}
		if c.Code != "" {
			code = c.Code // the last one stays the last shown
		}
	}
	_, err := JoinCode(ctx, tok.ShortCode(), d.CodeAddr(), phone.opts())
	if !errors.Is(err, ErrCodeUsed) {
		t.Fatalf("after the last code: %v, want ErrCodeUsed", err)
	}
	// The last code is still announced: whoever types it is told at once
	// (not after the step timeout, "nobody showed this code").
	po := phone.opts()
	po.Timeout = 15 * time.Second
	start := time.Now()
	if _, err := JoinCode(ctx, code, "", po); !errors.Is(err, ErrCodeUsed) {
		t.Fatalf("the last code by discovery: %v, want ErrCodeUsed", err)
	} else if el := time.Since(start); el >= po.Timeout {
		t.Fatalf("told after %v", el)
	}
	if msg, hint := Explain(err); !strings.Contains(msg, "every short code") || !strings.Contains(hint, "QR code") {
		t.Fatalf("told %q / %q", msg, hint)
	}
	select {
	case c := <-spent:
		t.Fatalf("a code spent after the last: %+v", c)
	default:
	}
	if _, err := Join(ctx, tok.URI(), phone.opts()); err != nil {
		t.Fatalf("QR after the codes ran out: %v", err)
	}
	if _, err := d.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	mustVerified(t, room, phone, "qr")
}

// A taker who never sends CODE-C holds the code ProveTimeout only, then
// a fresh code is shown.
func TestAbandonedCodeFresh(t *testing.T) {
	ctx := testCtx(t)
	room, mallory := newNode(t, "room"), newNode(t, "mallory")
	var spent <-chan CodeSpent
	d, _ := newDisplayer(t, room, func(o *Options) { spent = spentCodes(o); o.ProveTimeout = 200 * time.Millisecond })
	c := attacker(t, ctx, mallory, d)
	var sid [cpaceSIDSize]byte
	p, err := newCPaceParty(nil, []byte("000000000000"), cpaceCI(d.key.Bytes(), mallory.key().Bytes()), sid[:])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exchange(ctx, c, mallory.opts().withDefaults(), newMsg(cmdCodeA, sid[:], p.share), cmdCodeB); err != nil {
		t.Fatal(err)
	}
	s := nextSpent(t, ctx, spent, "after an abandoned code")
	if s.By.Key != mallory.key() || !strings.Contains(s.Why, "did not prove it within 200ms") || s.Code == "" {
		t.Fatalf("spent: %+v", s)
	}
}

// The default step for a taker is short (an honest scanner sends CODE-C
// at once), never longer than Timeout.
func TestProveTimeoutDefault(t *testing.T) {
	if o := (Options{}).withDefaults(); o.ProveTimeout != DefaultProveTimeout {
		t.Fatalf("ProveTimeout %s", o.ProveTimeout)
	}
	if o := (Options{Timeout: time.Second}).withDefaults(); o.ProveTimeout != time.Second {
		t.Fatalf("ProveTimeout %s with Timeout 1s", o.ProveTimeout)
	}
}

// A joiner that types a code the displayer has replaced (spent) finds
// its announcement gone; it is told that the device there shows another
// code (a typo, or a code spent since), not only "a typo finds nobody".
func TestSpentCodeNotAnnounced(t *testing.T) {
	ctx := testCtx(t)
	room, phone := newNode(t, "room"), newNode(t, "phone1")
	var spent <-chan CodeSpent
	d, tok := newDisplayer(t, room, func(o *Options) { spent = spentCodes(o) })
	if _, err := JoinCode(ctx, wrongCode(tok.code), d.CodeAddr(), phone.opts()); !errors.Is(err, ErrWrongCode) {
		t.Fatalf("wrong code: %v", err)
	}
	nextSpent(t, ctx, spent, "after the wrong code")
	po := phone.opts()
	po.Timeout = 30 * time.Second
	start := time.Now()
	_, err := JoinCode(ctx, tok.ShortCode(), "", po)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("the spent code by discovery: %v, want ErrUnreachable", err)
	}
	// It heard the device show another code: it says so after 20
	// announcement intervals (5s), not after its 30s step.
	if el := time.Since(start); el >= po.Timeout {
		t.Fatalf("told after %v", el)
	}
	msg, hint := Explain(err)
	if !strings.Contains(msg, "within 5s; 127.0.0.1 showed another code") || !strings.Contains(hint, "type the one the showing device shows now") {
		t.Fatalf("told %q / %q", msg, hint)
	}
}
