package pairing

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// The joiner's own context ends while both users compare the number (its
// user pressed Ctrl-C, or its deadline passed): the displayer is told at
// once, not left asking until its token expires. The last word is flushed
// with a context of its own: the cancelled one would cut it short. The
// joiner's question may come down at once or take its time (slow): either
// way the displayer is told before the joiner's Confirm returns.
func TestJoinerCancelledAtComparisonTellsDisplayer(t *testing.T) {
	for _, slow := range []bool{false, true} {
		name := "quick"
		if slow {
			name = "slow"
		}
		t.Run(name, func(t *testing.T) {
			ctx := testCtx(t)
			alice, bob := newNode(t, "alice"), newNode(t, "bob")
			asked, release := make(chan struct{}, 1), make(chan error)
			d, tok := newDisplayer(t, alice, func(o *Options) {
				o.Confirm = codeConfirm(asked, release)
				o.EndOnCodeFailure = true
				o.TTL = 10 * time.Minute // far beyond the wait below
			})
			jctx, jcancel := context.WithCancel(ctx)
			defer jcancel()
			told := make(chan struct{}) // the displayer was told
			bo := bob.opts()
			bo.Confirm = func(c context.Context, _ Result) error {
				select { // both sides ask: then our user presses Ctrl-C
				case <-asked:
				case <-c.Done():
					return c.Err()
				}
				jcancel()
				<-c.Done()
				if slow { // taking the question down takes a while
					select {
					case <-told:
					case <-ctx.Done():
					}
				}
				return c.Err()
			}
			joined := make(chan error, 1)
			go func() {
				_, err := JoinCode(jctx, tok.ShortCode(), d.CodeAddr(), bo)
				joined <- err
			}()
			tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			_, err := d.Wait(tctx)
			close(told)
			if tctx.Err() != nil {
				t.Fatal("the displayer was not told that the joiner gave up at the comparison")
			}
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "scanner") {
				t.Fatalf("displayer: %v, want the scanner's refusal", err)
			}
			if err := joinerTold(t, ctx, joined, "its context ended"); err == nil || !strings.Contains(err.Error(), context.Canceled.Error()) {
				t.Fatalf("joiner: %v, want its context's end", err)
			}
			mustNoRecords(t, alice)
			mustNoRecords(t, bob)
		})
	}
}
