package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/zyre-go/zyre/agent"
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

// pairFailure words a failed pairing for the terminal in one sentence
// that says the cause once (the layers' "pairing: ... pairing: ..." and
// the other side's own wording of it are left out); the error still wraps
// the pairing sentinel (the exit status is 1). An interruption is
// context.Canceled, which the CLI says as "interrupted".
func pairFailure(err error, timeout time.Duration) error {
	if errors.Is(err, context.Canceled) {
		return context.Canceled
	}
	if errors.Is(err, context.DeadlineExceeded) {
		msg := agent.PairTimeoutText(err, timeout)
		return &sentenceError{msg, err}
	}
	msg, hint := pairingSentence(err)
	if msg == "" {
		return err
	}
	return withHint(&sentenceError{msg, err}, hint)
}

// pairingSentence is pairing.Explain with the CLI's own two causes of a
// refusal: no terminal to ask on, and a comparison not confirmed.
func pairingSentence(err error) (msg, hint string) {
	switch {
	case errors.Is(err, pairing.ErrRefused) && strings.Contains(err.Error(), errKnownNameNoTerminal.Error()):
		// The sentence naming both devices, as the warning said it.
		t := err.Error()
		i := strings.Index(t, "this device calls itself")
		if j := strings.Index(t, "the showing device calls itself"); j >= 0 && (i < 0 || j < i) {
			i = j
		}
		if j := strings.Index(t, ": "+errKnownNameNoTerminal.Error()); i >= 0 && j > i {
			return t[i:j] + ": not paired without a terminal (--yes does not cover it); nothing was recorded", "pair at a terminal, and type its id only if it is a new device of yours"
		}
		return "a device under the name of another device known here is not paired without a terminal; nothing was recorded", ""
	case errors.Is(err, pairing.ErrRefused) && strings.Contains(err.Error(), errKnownNameNotPicked.Error()):
		var remote *pairing.RemoteError
		if errors.As(err, &remote) {
			return "the other device knows another device by this device's name, and its user did not pick this one by its id; nothing was recorded", ""
		}
		return "this device calls itself like another device known here, and its id was not typed; nothing was recorded", ""
	case errors.Is(err, pairing.ErrRefused) && strings.Contains(err.Error(), errNoTerminal.Error()):
		return "nobody compared the comparison numbers (stdin is not a terminal); nothing was recorded", "run it on a terminal, or pass --yes when the numbers are compared another way"
	case errors.Is(err, pairing.ErrRefused) && strings.Contains(err.Error(), errNotConfirmed.Error()):
		// (pairing keeps the Confirm's error as text)
		return "the comparison numbers were not confirmed; nothing was recorded", ""
	case errors.Is(err, pairing.ErrRefused) && strings.Contains(err.Error(), errDeviceNotConfirmed.Error()):
		return "the device was not confirmed; nothing was recorded", ""
	case errors.Is(err, pairing.ErrRefused) && (strings.Contains(err.Error(), errExposedNoTerminal.Error()) || strings.Contains(err.Error(), errNotPicked.Error())):
		// (pairing ends an exposed pairing with ErrExposed, which
		// Explain words; this is for a refusal said otherwise)
		return pairing.Explain(pairing.ErrExposed)
	}
	return pairing.Explain(err)
}

// errNoTerminal: no terminal to ask the comparison on, and no --yes.
var errNoTerminal = errors.New("no terminal to confirm the comparison number on")

// errDeviceNotConfirmed: the user did not confirm the QR scanner.
var errDeviceNotConfirmed = errors.New("the device was not confirmed")

// errExposedNoTerminal: more than one device tried, and no terminal to
// pick one on (--yes does not pick).
var errExposedNoTerminal = errors.New("more than one device tried, and no terminal to pick one on")

// errNotPicked: more than one device tried, and the user did not pick
// this one.
var errNotPicked = errors.New("more than one device tried, and the user did not pick this one")

// errKnownNameNoTerminal: the device calls itself like another device
// known here, and no terminal to type its id on (--yes does not cover it).
var errKnownNameNoTerminal = errors.New("not paired without a terminal")

// errKnownNameNotPicked: the device calls itself like another device
// known here, and the user did not type its id.
var errKnownNameNotPicked = errors.New("the device under a known name was not picked by its id")

// errNotConfirmed: the user did not confirm the comparison number.
var errNotConfirmed = errors.New("the comparison numbers were not confirmed")

// sentenceError is err said in one sentence of its own for the terminal.
type sentenceError struct {
	msg string
	err error
}

func (e *sentenceError) Error() string { return e.msg }
func (e *sentenceError) Unwrap() error { return e.err }

// pairLog is the pairing's logger for the terminal: plain "zyre: " lines,
// not slog's; warnings about a failure that ends the pairing are left out
// (the command's error says it once).
func pairLog(env *cliEnv) *slog.Logger { return plainLog(env) }

// endsPairing reports whether a logged failure ends the pairing (with
// EndOnCodeFailure): a short code that did not match or was refused, which
// the command's error says.
func endsPairing(err error) bool {
	return errors.Is(err, pairing.ErrWrongCode) || errors.Is(err, pairing.ErrRefused) || errors.Is(err, pairing.ErrCodeUsed)
}
