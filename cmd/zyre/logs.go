package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/privgroup/zyregroup"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

// The CLI's rule for what its libraries log (slog), in one place, as
// main.go states the output rules:
//
//   - A library's records, slog's key=value text, reach the terminal only
//     with --verbose: every level from debug up (termLog, nodeLog).
//   - Without --verbose, a warning or an error is said as one line in the
//     CLI's style, "zyre: ..." ("zyre agent: ..." on the agent's
//     terminal): a record the CLI knows in a sentence of its own that names
//     the device and says what it means (tellRecord), any other as its
//     message and cause; the same line at most once a minute. Info and
//     debug are not said.
//   - The node's own records (zre) only with --verbose: what a user needs
//     from the node comes as its events (KEY CHANGED, REFUSED, ...), which
//     the commands print.
//   - No library gets a nil Logger (some read nil as slog.Default(), whose
//     records would reach the terminal in the log package's form): a store
//     opened only to read gets quietLog.

// logOptions say how termLog speaks.
type logOptions struct {
	verbose bool
	prefix  string       // the line's prefix: "zyre" (default) or "zyre agent"
	node    *zre.Node    // names the peers of records, and gives their keys
	trust   *trust.Store // says why a peer is not trusted
}

// termLog is the logger of the libraries a command runs, for its
// terminal (env's stderr), by the rule above.
func termLog(env *cliEnv, o logOptions) *slog.Logger {
	if o.verbose {
		return verboseLog(env)
	}
	if o.prefix == "" {
		o.prefix = "zyre"
	}
	return slog.New(&plainHandler{w: env.stderr, o: o, said: &saidLines{at: map[string]time.Time{}}})
}

// plainLog is termLog without --verbose, of a command with no node (keys,
// trust, pair).
func plainLog(env *cliEnv) *slog.Logger { return termLog(env, logOptions{}) }

// nodeLog is the node's (zre) logger: its records with --verbose, else
// none.
func nodeLog(env *cliEnv, verbose bool) *slog.Logger {
	if verbose {
		return verboseLog(env)
	}
	return quietLog()
}

// verboseLog is --verbose: slog's records from debug up on stderr.
func verboseLog(env *cliEnv) *slog.Logger {
	return slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// quietLog says nothing.
func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// plainHandler writes warnings and errors as one "PREFIX: ..." line each.
type plainHandler struct {
	w     io.Writer
	o     logOptions
	attrs []slog.Attr
	said  *saidLines // shared by the handlers WithAttrs makes
}

// saidLines remembers when each line was said, to say it at most once a
// minute (a peer whose key is refused gives it again at each request).
type saidLines struct {
	mu sync.Mutex
	at map[string]time.Time
}

// again reports whether line was said less than a minute ago, and notes
// it as said now otherwise.
func (s *saidLines) again(line string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.at[line]; ok && now.Sub(t) < time.Minute {
		return true
	}
	if len(s.at) >= 256 {
		clear(s.at)
	}
	s.at[line] = now
	return false
}

func (h *plainHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

// record is what plainHandler reads of a slog record.
type record struct {
	msg          string
	cause        error
	peer         uuid.UUID // a "peer" attribute that is a UUID
	group        string
	attempt, max string
	rest         strings.Builder // the other attributes, " k=v" each
}

func (h *plainHandler) Handle(_ context.Context, r slog.Record) error {
	rec := &record{msg: r.Message}
	each := func(a slog.Attr) bool {
		switch a.Key {
		case "err":
			if e, ok := a.Value.Any().(error); ok {
				rec.cause = e
				return true
			}
		case "attempt":
			rec.attempt = a.Value.String()
			return true
		case "max":
			rec.max = a.Value.String()
			return true
		case "group":
			rec.group = a.Value.String()
			return true
		case "peer":
			if id, ok := a.Value.Any().(uuid.UUID); ok {
				rec.peer = id
				return true
			}
		}
		v := a.Value.String()
		if strings.ContainsAny(v, " \t\"=") {
			v = strconv.Quote(v)
		}
		fmt.Fprintf(&rec.rest, " %s=%s", a.Key, v)
		return true
	}
	for _, a := range h.attrs {
		each(a)
	}
	r.Attrs(each)
	if rec.cause != nil && endsPairing(rec.cause) {
		return nil
	}
	line, ok := h.tellRecord(rec)
	if !ok {
		line = h.plainLine(rec)
	}
	line = terminalText(line)
	if h.said.again(line, time.Now()) {
		return nil
	}
	_, err := fmt.Fprintf(h.w, "%s: %s\n", h.o.prefix, line)
	return err
}

// plainLine is a record the CLI has no sentence for: its message, its
// cause, and its other attributes as k=v.
func (h *plainHandler) plainLine(rec *record) string {
	line := strings.TrimPrefix(rec.msg, "pairing: ")
	if rec.attempt != "" && rec.max != "" {
		line += fmt.Sprintf(" (%s of %s)", rec.attempt, rec.max)
	}
	if rec.peer != uuid.Nil {
		line += " (" + h.peerText(rec.peer) + ")"
	}
	if rec.group != "" {
		line += fmt.Sprintf(" in %q", rec.group)
	}
	if rec.cause != nil {
		why, _ := pairingSentence(rec.cause)
		if why == "" {
			why = strings.ReplaceAll(rec.cause.Error(), "pairing: ", "")
		}
		line += ": " + why
	}
	return line + rec.rest.String()
}

// tellRecord is the sentence of a record the CLI knows, one that a user
// needs: which device, and what it means.
func (h *plainHandler) tellRecord(rec *record) (string, bool) {
	if rec.peer == uuid.Nil {
		return "", false
	}
	name := h.peerName(rec.peer)
	switch rec.msg {
	case "zyregroup: sender key refused":
		why := causeText(rec.cause)
		if errors.Is(rec.cause, zyregroup.ErrUntrusted) {
			why = h.untrusted(rec.peer, name)
		}
		return fmt.Sprintf("refused %s's group key for %q: %s", name, rec.group, why), true
	case "zyregroup: cannot send sender key", "zyregroup: cannot make sender key":
		return fmt.Sprintf("could not give %s our group key for %q: %s", name, rec.group, causeText(rec.cause)), true
	case "zyregroup: sends to a member dropped":
		return fmt.Sprintf("messages for %s in %q dropped: %s", name, rec.group, causeText(rec.cause)), true
	}
	return "", false
}

// untrusted says why the peer id (named name) is not trusted here, from
// the trust store's record of its key.
func (h *plainHandler) untrusted(id uuid.UUID, name string) string {
	state := trust.State(0)
	if h.o.node != nil && h.o.trust != nil {
		if key, ok := h.o.node.PeerKey(id); ok {
			if r, ok, err := h.o.trust.Lookup(key); err == nil && ok {
				state = r.State
			}
		}
	}
	switch state {
	case trust.StateRevoked:
		return fmt.Sprintf("%s is not trusted here: its key is revoked (zyre trust list)", name)
	case trust.StateTOFU:
		return fmt.Sprintf("%s is not trusted here: only seen, not verified (pair with it: zyre pair; zyre trust list)", name)
	}
	return fmt.Sprintf("%s is not trusted here (zyre trust list)", name)
}

// peerName is the name of peer id: its HELLO's, else its short ID.
func (h *plainHandler) peerName(id uuid.UUID) string {
	if h.o.node != nil {
		if n := h.o.node.PeerName(id); n != "" {
			return safe(n)
		}
	}
	return shortID(id)
}

// peerText is "NAME ID" of peer id, or its short ID.
func (h *plainHandler) peerText(id uuid.UUID) string {
	if n := h.peerName(id); n != shortID(id) {
		return n + " " + shortID(id)
	}
	return shortID(id)
}

// causeText is a record's cause without its packages' prefixes.
func causeText(err error) string {
	if err == nil {
		return "no cause given"
	}
	s := err.Error()
	for _, p := range []string{"privgroup: ", "zyregroup: "} {
		s = strings.ReplaceAll(s, p, "")
	}
	return s
}

func (h *plainHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(slices.Clip(h.attrs), as...)
	return &c
}

func (h *plainHandler) WithGroup(string) slog.Handler { return h }
