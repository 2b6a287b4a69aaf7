package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zyre-go/zyre/internal/beacon"
	"github.com/zyre-go/zyre/pairing"
)

// announceSearch says where a short-code joiner looks for the displayer,
// and pins the interface it chose (by address, as chooseInterface does)
// so that the search uses the same one.
func announceSearch(env *cliEnv, opts *pairing.Options) {
	if opts.Loopback {
		fmt.Fprintln(env.stderr, "zyre: looking for the showing device on lo (loopback)...")
		return
	}
	cs, err := beacon.Choose(opts.Interface)
	if err != nil {
		return // JoinCode reports it
	}
	for _, c := range cs {
		fmt.Fprintf(env.stderr, "zyre: looking for the showing device on interface %s...\n", c)
	}
	if opts.Interface != beacon.All {
		opts.Interface = cs[0].Addr.String()
	}
}

// pairFailure words a failed pairing for the terminal; the error still
// wraps the pairing sentinel (the exit status is 1).
func pairFailure(err error, timeout time.Duration) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("no device paired within %s (--timeout): %w", timeout, err)
	case errors.Is(err, pairing.ErrWrongCode):
		return fmt.Errorf("the short code did not match (mistyped, or someone in the middle); start again with a new code: %w", err)
	case errors.Is(err, pairing.ErrRefused):
		return fmt.Errorf("pairing refused: %w", err)
	case errors.Is(err, pairing.ErrAmbiguous):
		return fmt.Errorf("%w", err)
	}
	return err
}
