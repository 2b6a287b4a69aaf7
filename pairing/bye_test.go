package pairing

import (
	"context"
	"testing"
	"time"
)

// TestPairDisplayerClosesAtOnce: the displayer's owner closes it as soon as
// Wait returns; the BYE echo was written before that, so the scanner's
// Join returns at once instead of waiting for Options.Linger (an hour
// here; the Join's ctx ends long before).
func TestPairDisplayerClosesAtOnce(t *testing.T) {
	for _, method := range []string{"qr", "code"} {
		t.Run(method, func(t *testing.T) {
			alice, bob := newNode(t, "alice"), newNode(t, "bob")
			d, tok := newDisplayer(t, alice, func(o *Options) { o.Linger = time.Hour })
			waited := make(chan error, 1)
			go func() {
				_, err := d.Wait(testCtx(t))
				d.Close()
				waited <- err
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			o := bob.opts()
			o.Linger = time.Hour
			var err error
			if method == "qr" {
				_, err = Join(ctx, tok.URI(), o)
			} else {
				_, err = JoinCode(ctx, tok.ShortCode(), d.CodeAddr(), o)
			}
			if err != nil {
				t.Fatal(err)
			}
			if ctx.Err() != nil {
				t.Fatal("Join waited for the BYE echo until its ctx ended: the echo was dropped when the displayer closed")
			}
			if err := <-waited; err != nil {
				t.Fatalf("displayer: %v", err)
			}
			mustVerified(t, alice, bob, method)
		})
	}
}
