package pairing

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/zyre-go/zyre/trust"
)

// knownPhone is a camera that has paired with the genuine phone1, and a
// stranger whose identity is named phone1 too (user trial 4 #1).
func knownPhone(t *testing.T, ctx context.Context) (cam, phone, stranger node) {
	t.Helper()
	cam, phone, stranger = newNode(t, "room"), newNode(t, "phone1"), newNode(t, "phone1")
	pairQR(t, ctx, cam, phone)
	mustVerified(t, cam, phone, "qr")
	return cam, phone, stranger
}

// TestPairNameTakenHeadless: a device that calls itself like a verified
// device of another key is never paired without a person asked, on
// either side: the displayer (a stranger scanning the camera's code
// first) and the scanner (a stranger showing a code under the camera's
// name).
func TestPairNameTakenHeadless(t *testing.T) {
	ctx := testCtx(t)
	cam, phone, stranger := knownPhone(t, ctx)

	d, tok := newDisplayer(t, cam, nil)
	_, jerr := Join(ctx, tok.URI(), stranger.opts())
	_, derr := d.Wait(ctx)
	if !errors.Is(derr, trust.ErrNameTaken) || !errors.Is(derr, ErrRefused) {
		t.Fatalf("displayer: %v, want ErrNameTaken and ErrRefused", derr)
	}
	if !errors.Is(jerr, ErrRefused) {
		t.Fatalf("stranger's Join: %v, want ErrRefused", jerr)
	}
	if _, ok := cam.records(t)[stranger.key()]; ok {
		t.Fatal("the stranger named phone1 was recorded on the camera")
	}
	mustVerified(t, cam, phone, "qr")

	// The other way: a stranger shows a code under the camera's name.
	fakeRoom := newNode(t, "room")
	d2, tok2 := newDisplayer(t, fakeRoom, nil)
	_, jerr = Join(ctx, tok2.URI(), phone.opts())
	d2.Wait(ctx)
	if !errors.Is(jerr, trust.ErrNameTaken) || !errors.Is(jerr, ErrRefused) {
		t.Fatalf("phone scanning the fake room: %v, want ErrNameTaken and ErrRefused", jerr)
	}
	if _, ok := phone.records(t)[fakeRoom.key()]; ok {
		t.Fatal("the fake room was recorded on the phone")
	}
}

// TestPairNameTakenAsks: with a person to ask, the question names the
// record that holds the name (Result.NameHolder), for the QR scanner
// too (which is otherwise not asked), and by short code on both sides;
// a no records nothing.
func TestPairNameTakenAsks(t *testing.T) {
	ctx := testCtx(t)
	cam, phone, stranger := knownPhone(t, ctx)
	asked := make(chan Result, 4)
	no := func(_ context.Context, r Result) error {
		asked <- r
		return errors.New("not the phone1 I know")
	}
	d, tok := newDisplayer(t, cam, func(o *Options) { o.Confirm = no })
	so := stranger.opts()
	so.Confirm = func(context.Context, Result) error { return nil }
	_, jerr := Join(ctx, tok.URI(), so)
	if _, err := d.Wait(ctx); !errors.Is(err, ErrRefused) || !errors.Is(jerr, ErrRefused) {
		t.Fatalf("displayer %v, joiner %v: want both ErrRefused", err, jerr)
	}
	r := <-asked
	if r.NameHolder == nil || r.NameHolder.Key != phone.key() || r.NameHolder.State != trust.StateVerified || r.PeerKey != stranger.key() {
		t.Fatalf("question %+v: want the stranger, naming the verified phone1", r)
	}
	if want := "your verified phone1 is " + trust.Fingerprint(phone.key()) + " (" + phone.id.UUID.String()[:8] + ")"; DescribeNameHolder(*r.NameHolder) != want {
		t.Fatalf("DescribeNameHolder = %q, want %q", DescribeNameHolder(*r.NameHolder), want)
	}
	if _, ok := cam.records(t)[stranger.key()]; ok {
		t.Fatal("refused, yet recorded")
	}

	// The genuine phone1 pairing again is no stranger: nothing to flag.
	d, tok = newDisplayer(t, cam, func(o *Options) {
		o.Confirm = func(_ context.Context, r Result) error {
			if r.NameHolder != nil {
				return errors.New("flagged the genuine phone1")
			}
			return nil
		}
	})
	if _, err := Join(ctx, tok.URI(), phone.opts()); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Wait(ctx); err != nil {
		t.Fatal(err)
	}

	// A QR scanner is asked when the showing device takes a known name.
	fakeRoom := newNode(t, "room")
	d, tok = newDisplayer(t, fakeRoom, nil)
	po := phone.opts()
	po.Confirm = no
	if _, err := Join(ctx, tok.URI(), po); !errors.Is(err, ErrRefused) {
		t.Fatalf("phone scanning the fake room: %v, want ErrRefused", err)
	}
	d.Wait(ctx)
	if r := <-asked; r.NameHolder == nil || r.NameHolder.Key != cam.key() || r.PeerKey != fakeRoom.key() {
		t.Fatalf("scanner's question %+v: want the fake room, naming the verified room", r)
	}

	// Short code: the displayer is asked with the holder too.
	d, tok = newDisplayer(t, cam, func(o *Options) { o.Confirm = no })
	_, jerr = JoinCode(ctx, tok.ShortCode(), d.CodeAddr(), so)
	if _, err := d.Wait(ctx); !errors.Is(err, ErrRefused) || !errors.Is(jerr, ErrRefused) {
		t.Fatalf("code: displayer %v, joiner %v: want both ErrRefused", err, jerr)
	}
	if r := <-asked; r.NameHolder == nil || r.NameHolder.Key != phone.key() || r.Method != "code" {
		t.Fatalf("code question %+v: want the holder named", r)
	}
	if _, ok := cam.records(t)[stranger.key()]; ok {
		t.Fatal("refused by code, yet recorded")
	}
}

// User trial 4 #1 and #6 by short code: the camera knows phone1; a
// stranger named phone1 takes the code first, the genuine phone1 types
// it second and gives no name (it only asked for an exchange). The
// camera's question about the stranger names the verified phone1 it is
// not (NameHolder), and the genuine phone is recognised by its key
// among the others (Attempt.Known), not "a device that gave no name".
func TestCodeRaceKnownNameStrangerFirst(t *testing.T) {
	ctx := testCtx(t)
	cam, phone, stranger := knownPhone(t, ctx)
	asks := make(chan ask)
	d, tok := newDisplayer(t, cam, func(o *Options) { o.Confirm = askingConfirm(asks) })
	so := stranger.opts()
	so.Confirm = func(context.Context, Result) error { return nil }
	strangerDone := joinAsync(func() (Result, error) { return JoinCode(ctx, tok.ShortCode(), d.CodeAddr(), so) })
	first := nextAsk(t, ctx, asks, "about the stranger")
	if first.r.PeerKey != stranger.key() || first.r.NameHolder == nil || first.r.NameHolder.Key != phone.key() {
		t.Fatalf("first question: peer ok %v, name holder %+v", first.r.PeerKey == stranger.key(), first.r.NameHolder)
	}
	po := phone.opts()
	if _, err := JoinCode(ctx, tok.ShortCode(), d.CodeAddr(), po); !errors.Is(err, ErrCodeUsed) {
		t.Fatalf("the genuine phone: %v, want ErrCodeUsed", err)
	}
	again := nextAsk(t, ctx, asks, "again, naming both devices")
	if again.r.NameHolder == nil || len(again.r.Others) != 1 {
		t.Fatalf("second question: name holder %+v, others %+v", again.r.NameHolder, again.r.Others)
	}
	o := again.r.Others[0]
	if o.Key != phone.key() || o.Name != "" || o.Known == nil || o.Known.Key != phone.key() || o.Known.State != trust.StateVerified {
		t.Fatalf("the genuine phone among the others: %+v", o)
	}
	if s, want := o.String(), `your verified "phone1" (by its key; it gave no name yet) `+phone.id.UUID.String()[:8]+" "+trust.Fingerprint(phone.key()); !strings.HasPrefix(s, want) {
		t.Fatalf("the genuine phone is described %q, want it to start %q", s, want)
	}
	again.answer <- errors.New("not that one")
	if _, err := d.Wait(ctx); !errors.Is(err, ErrExposed) {
		t.Fatalf("displayer: %v, want ErrExposed", err)
	}
	if err := <-strangerDone; !errors.Is(err, ErrExposed) {
		t.Fatalf("stranger: %v, want ErrExposed", err)
	}
	if _, ok := cam.records(t)[stranger.key()]; ok {
		t.Fatal("the stranger was recorded")
	}
}

func TestDescribeNameHolder(t *testing.T) {
	id := newNode(t, "x").id
	fp := trust.Fingerprint(id.CurveKey)
	for _, c := range []struct {
		r    trust.Record
		want string
	}{
		{trust.Record{Name: "phone1", UUID: id.UUID, Fingerprint: fp, State: trust.StateVerified}, "your verified phone1 is " + fp + " (" + id.UUID.String()[:8] + ")"},
		{trust.Record{Name: "phone1", UUID: id.UUID, Fingerprint: fp, State: trust.StateIntroduced}, "your introduced phone1 is " + fp + " (" + id.UUID.String()[:8] + ")"},
		{trust.Record{Name: "phone2", UUID: id.UUID, Fingerprint: fp, State: trust.StateRevoked, RevokeReason: "lost"}, "the phone2 you knew (" + fp + ", " + id.UUID.String()[:8] + ") was revoked: lost"},
		{trust.Record{Name: "ph\x1bone", UUID: id.UUID, Fingerprint: fp, State: trust.StateRevoked}, `the "ph\x1bone" you knew (` + fp + ", " + id.UUID.String()[:8] + ") was revoked"},
	} {
		if got := DescribeNameHolder(c.r); got != c.want {
			t.Errorf("DescribeNameHolder(%s %q) = %q, want %q", c.r.State, c.r.Name, got, c.want)
		}
	}
}

// TestPairAgainNotFlaggedByRevokedNamesake: a device verified here under
// a name pairs again with no flag, though an older, revoked record holds
// the same name (user trial 5 #9: the reset phone2, re-paired once with
// its id typed, was flagged as ANOTHER device at every later pairing).
func TestPairAgainNotFlaggedByRevokedNamesake(t *testing.T) {
	ctx := testCtx(t)
	cam, phone, _ := knownPhone(t, ctx)
	if _, err := cam.trust.Revoke(ctx, phone.key(), "lost"); err != nil {
		t.Fatal(err)
	}
	reset := newNode(t, "phone1")
	flagged := make(chan *trust.Record, 2)
	confirm := func(_ context.Context, r Result) error { flagged <- r.NameHolder; return nil } // the id typed
	for i, want := range []bool{true, false} {
		d, tok := newDisplayer(t, cam, func(o *Options) { o.Confirm = confirm })
		if _, err := Join(ctx, tok.URI(), reset.opts()); err != nil {
			t.Fatalf("pairing %d: %v", i+1, err)
		}
		if _, err := d.Wait(ctx); err != nil {
			t.Fatalf("pairing %d: %v", i+1, err)
		}
		if h := <-flagged; (h != nil) != want || want && (h.Key != phone.key() || h.State != trust.StateRevoked) {
			t.Fatalf("pairing %d: name holder %+v, want flagged %v (the revoked phone1)", i+1, h, want)
		}
		if r, ok := cam.records(t)[reset.key()]; !ok || r.State != trust.StateVerified {
			t.Fatalf("pairing %d: the reset phone1 on the camera: %+v, want verified", i+1, r)
		}
	}
}
