package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/zyre-go/zyre/keystore"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

// homeDir returns home, else the default home ($ZYRE_HOME, ...).
func homeDir(env *cliEnv, home string) (string, error) {
	if home != "" {
		return home, nil
	}
	h, err := keystore.DefaultHome(env.getenv)
	if err != nil {
		return "", withHint(err, "pass --home DIR, or --ephemeral for a key of this run only")
	}
	return h, nil
}

// ephemeralAlt is the hint's alternative for the commands that take
// --ephemeral.
const ephemeralAlt = "pass --ephemeral for a key of this run only"

// missingHome is the error for a keystore directory home that does not
// exist, else nil: a mistyped --home is said as such, never read as an
// empty store nor created. given says that --home named it; alt, when not
// empty, is an alternative that works for the command, added to the hint.
func missingHome(home string, given bool, alt string) error {
	if _, err := os.Stat(home); !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var hint string
	switch {
	case given && alt != "":
		hint = fmt.Sprintf("check --home, run \"zyre keys init --home %s\", or %s", home, alt)
	case given:
		hint = fmt.Sprintf("check --home, or run \"zyre keys init --home %s\"", home)
	case alt != "":
		hint = `run "zyre keys init" to make this device's identity, or ` + alt
	default:
		hint = `run "zyre keys init" to make this device's identity`
	}
	return withHint(fmt.Errorf("no keystore: %s does not exist", home), hint)
}

// loadNodeIdentity loads this node's identity from home (default: the
// default home), asking for the passphrase up to three times on a
// terminal. A missing home or identity is an error whose hint says how to
// make one (or, with ephemeralOK, to pass --ephemeral), never a silent
// fallback.
func loadNodeIdentity(ctx context.Context, env *cliEnv, home, passFile string, ephemeralOK bool) (*keystore.Identity, string, error) {
	alt := ""
	if ephemeralOK {
		alt = ephemeralAlt
	}
	given := home != ""
	home, err := homeDir(env, home)
	if err != nil {
		if !ephemeralOK {
			err = withHint(err, "pass --home DIR")
		}
		return nil, "", err
	}
	if err := missingHome(home, given, alt); err != nil {
		return nil, home, err
	}
	st, err := keystore.Open(home, keystore.Options{Logger: plainLog(env)})
	if err != nil {
		return nil, home, err
	}
	id, err := loadWithTries(ctx, env, st, passFile)
	if errors.Is(err, keystore.ErrNotFound) {
		hint := fmt.Sprintf("run \"zyre keys init --home %s\"", home)
		if alt != "" {
			hint += ", or " + alt
		}
		return nil, home, withHint(fmt.Errorf("%w in %s", err, home), hint)
	}
	var se *secretFileError
	if errors.As(err, &se) {
		return nil, home, err // it names the file and the fix
	}
	if err != nil {
		if strings.Contains(err.Error(), home) {
			// The keystore names its file: the path once.
			return nil, home, fmt.Errorf("loading this node's keys: %w", err)
		}
		return nil, home, fmt.Errorf("loading this node's keys from %s: %w", home, err)
	}
	return id, home, nil
}

// headersText is the ENTER line's headers: " K=V" each, without the long
// ones zyre sends itself (the binding and the public key, which
// "zyre members --json" and "zyre trust show" give in full).
func headersText(hs []zre.Header) string {
	var b strings.Builder
	for _, h := range hs {
		if h.Key == trust.BindingHeader || h.Key == zre.HeaderPublicKey || len(h.Value) > 64 {
			continue
		}
		b.WriteString(" " + safe(h.Key) + "=" + safe(h.Value))
	}
	return b.String()
}

// eventText is eventLine with the name of a refused peer filled in from
// the trust store when its HELLO never came (a refused beacon or
// connection), else "unknown".
func (f *nodeFlags) eventText(e zre.Event) string {
	if r, ok := e.(*zre.Refused); ok && r.Name == "" {
		if name := f.refusedName(r); name != "" {
			c := *r
			c.Name = name
			e = &c
		}
	}
	if d, ok := e.(*zre.Denied); ok && d.Name == "" {
		if name := f.refusedName(&zre.Refused{Key: d.Key}); name != "" {
			c := *d
			c.Name = name
			e = &c
		}
	}
	return eventLine(e)
}

// refusedName is the trust store's name for a peer refused before its
// HELLO, or "".
func (f *nodeFlags) refusedName(r *zre.Refused) string {
	if f.trustStore == nil {
		return ""
	}
	if rec, ok, err := f.trustStore.Lookup(r.Key); err == nil && ok {
		return rec.Name
	}
	return ""
}

// chatEventText is the line a chat prints for e, and whether it prints
// one: a refusal by refusals' rule, other events as eventText.
func (f *nodeFlags) chatEventText(e zre.Event, refusals *chatRefusals) (string, bool) {
	name := ""
	if r, ok := e.(*zre.Refused); ok && r.Name == "" {
		name = f.refusedName(r)
	}
	if r, ok := refusalOfEvent(e, name); ok {
		return refusals.line(r, f.eventText(e))
	}
	return f.eventText(e), true
}
