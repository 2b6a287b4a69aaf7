package main

// The CLI's conventions in one place: how flags are parsed (before, between
// or after the arguments), how --help lists them, how errors and hints are
// printed (one "zyre: " prefix, each hint once), the short form of a UUID,
// and the passphrase prompt's three tries.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/keystore"
)

// flagDash finds a flag named -name in the flag package's errors.
var flagDash = regexp.MustCompile(`(: |flag )-(\w)`)

// parseFlags parses fs's flags wherever they are among args and returns the
// positional arguments in order. "--" ends the flags: everything after it
// is positional. -h and --help give flag.ErrHelp after printing synopsis and
// the flags on env.stdout (help asked for is output); any other flag error
// is a usage error.
func parseFlags(env *cliEnv, fs *flag.FlagSet, synopsis string, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			printFlagUsage(env.stdout, fs, synopsis)
			return nil, err
		}
		if err != nil {
			// The flag package names a flag -name; we write --name.
			return nil, fmt.Errorf("%w: %s", errUsage, flagDash.ReplaceAllString(err.Error(), "${1}--$2"))
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// printFlagUsage prints synopsis, then every flag of fs that is not hidden
// (hideFlags), each as --name.
func printFlagUsage(w io.Writer, fs *flag.FlagSet, synopsis string) {
	if synopsis == "" {
		synopsis = "usage: " + fs.Name() + " [flags]"
	}
	// A synopsis that ends in its own "flags:" gets no second one.
	synopsis = strings.TrimSuffix(strings.TrimRight(synopsis, "\n"), "flags:")
	fmt.Fprintln(w, strings.TrimRight(synopsis, "\n"))
	var shown []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.HasPrefix(f.Usage, hiddenMark) {
			shown = append(shown, f)
		}
	})
	if len(shown) == 0 {
		return
	}
	fmt.Fprint(w, "\nflags:\n"+flagsText(shown))
}

// flagsText is the help text of flags, each as --name.
func flagsText(flags []*flag.Flag) string {
	var b strings.Builder
	for _, f := range flags {
		name, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(&b, "  --%s", f.Name)
		if name != "" {
			fmt.Fprintf(&b, " %s", name)
		}
		b.WriteString("\n    \t")
		b.WriteString(strings.ReplaceAll(usage, "\n", "\n    \t"))
		if !zeroDefault(f) {
			if isStringFlag(f) {
				fmt.Fprintf(&b, " (default %q)", f.DefValue)
			} else {
				fmt.Fprintf(&b, " (default %v)", f.DefValue)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// zeroDefault reports whether f's default is its type's zero value (and so
// not worth saying).
func zeroDefault(f *flag.Flag) bool {
	switch f.DefValue {
	case "", "0", "false", "0s", "[]":
		return true
	}
	return false
}

// isStringFlag reports whether f holds a plain string (whose default is
// quoted).
func isStringFlag(f *flag.Flag) bool {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return false
	}
	_, ok = g.Get().(string)
	return ok
}

// hiddenMark starts the usage of a flag that --help does not list: a flag
// that a command accepts for compatibility but that makes no sense for it
// (--secure on a command that is always secure).
const hiddenMark = "\x00hidden "

// hideFlags leaves the flags names of fs out of its --help.
func hideFlags(fs *flag.FlagSet, names ...string) {
	for _, n := range names {
		if f := fs.Lookup(n); f != nil && !strings.HasPrefix(f.Usage, hiddenMark) {
			f.Usage = hiddenMark + f.Usage
		}
	}
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// hintError adds advice for the user to an error. The CLI prints the
// error, then each distinct hint of the chain once on its own line.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

// withHint wraps err with a hint. An empty hint says that the error needs
// none (the usage was just printed), so none is added.
func withHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &hintError{err: err, hint: hint}
}

// hints returns the distinct hints in err's chain, outermost first.
func hints(err error) []string {
	var out []string
	for err != nil {
		hint := ""
		switch e := err.(type) {
		case *hintError:
			hint = e.hint
		case *client.Error: // the agent's own hint
			hint = e.Hint
		}
		if hint != "" && !slices.Contains(out, hint) {
			out = append(out, hint)
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				out = append(out, hints(e)...)
			}
			return out
		default:
			return out
		}
	}
	return out
}

// errorText is the text of err for the "zyre: " line: a leading "usage: "
// (errUsage's own text) dropped, and a prefix said twice in a row
// ("pairing: pairing: ...", the layers each naming themselves) said once.
func errorText(err error) string {
	s := strings.TrimPrefix(err.Error(), errUsage.Error()+": ")
	if len(hints(err)) > 0 {
		// A lower layer's own advice, such as the keystore's
		// (run "zyre keys init"), gives way to the hint.
		s = runAdvice.ReplaceAllString(s, "")
	}
	return dedupPrefixes(s)
}

// runAdvice matches advice in parentheses that names a zyre command.
var runAdvice = regexp.MustCompile(` \((run|see|use) "zyre [^)]*\)`)

// dedupPrefixes collapses "a: a: rest" to "a: rest" anywhere in s, where
// a is one word of letters, digits, '-' or '_'.
func dedupPrefixes(s string) string {
	parts := strings.Split(s, ": ")
	out := parts[:0:0]
	for i, p := range parts {
		if i > 0 && p == parts[i-1] && i < len(parts)-1 && isWord(p) {
			continue
		}
		out = append(out, p)
	}
	return strings.Join(out, ": ")
}

func isWord(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// printError prints err by the CLI's rules on w: "zyre: TEXT", then
// "zyre: hint: ..." for each distinct hint.
func printError(w io.Writer, err error) {
	fmt.Fprintf(w, "zyre: %s\n", terminalText(errorText(err)))
	for _, h := range hints(err) {
		fmt.Fprintf(w, "zyre: hint: %s\n", terminalText(h))
	}
}

// terminalText escapes, Go-style, every character of s that is not
// printable: an error may carry text from a peer or the agent (a REJECT's
// reason, a DONE's error, a file name), and its escapes and bidi
// overrides must not reach the terminal as such. A line break stays, with
// the next line indented.
func terminalText(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsPrint(r) {
			b.WriteRune(r)
			continue
		}
		if r == '\n' {
			// Lines of errors.Join: indented, so that none can pass
			// for a line of ours.
			b.WriteString("\n  ")
			continue
		}
		q := strconv.QuoteRune(r) // '\x1b', '\u202e', '\n'
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}

// shortID is the one short form of a UUID everywhere in the CLI's text
// output: its first 8 hex digits, lower case (as trust.Record.ShortUUID).
// --json output and "show" commands give the full UUID.
func shortID(id uuid.UUID) string { return id.String()[:8] }

// passphraseTries is how many times a terminal prompt asks for a wrong
// passphrase, as ssh does.
const passphraseTries = 3

// loadWithTries loads the identity in st, asking for the passphrase on the
// terminal up to three times when it is wrong. A passphrase from a file is
// tried once.
func loadWithTries(ctx context.Context, env *cliEnv, st *keystore.Store, passFile string) (*keystore.Identity, error) {
	file := passFile
	if file == "" {
		file = env.getenv("ZYRE_PASSPHRASE_FILE")
	}
	_, tty := terminalFd(env)
	tries := 1
	if file == "" && tty {
		tries = passphraseTries
	}
	var err error
	for i := 0; i < tries; i++ {
		var id *keystore.Identity
		id, err = st.Load(ctx, keystore.Unlock{Passphrase: func(context.Context) (string, error) {
			return passphrase(env, passFile, true, "passphrase for this node's keys", false)
		}})
		if err == nil {
			return id, nil
		}
		if !errors.Is(err, keystore.ErrWrongPassphrase) {
			break
		}
		if i < tries-1 {
			fmt.Fprintln(env.stderr, "zyre: wrong passphrase, try again")
		}
	}
	return nil, secretFileRefused(err)
}

// writeJSON writes v as indented JSON, without HTML escapes (Z85 keys hold
// < > &).
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// subcommandFirst lets flags come before a subcommand as well as after it
// ("zyre trust --home X list" is "zyre trust list --home X"): when args
// start with a flag, the first argument that names one of subs moves to
// the front, so that the subcommand's own flag set parses every flag.
// Only flags may come before the subcommand: with none named, -h or
// --help among them asks for cmd's help (args becomes ["--help"]), and
// anything else is a usage error. Arguments after "--" are never taken.
func subcommandFirst(cmd string, args []string, subs ...string) ([]string, error) {
	if len(args) == 0 || !strings.HasPrefix(args[0], "-") || args[0] == "-" {
		return args, nil
	}
	switch args[0] {
	case "-h", "-help", "--help":
		return args, nil
	}
	help := false
	for i, a := range args {
		if a == "--" {
			break
		}
		if slices.Contains(subs, a) {
			out := make([]string, 0, len(args))
			out = append(append(append(out, a), args[:i]...), args[i+1:]...)
			return out, nil
		}
		help = help || a == "-h" || a == "-help" || a == "--help"
	}
	if help {
		return []string{"--help"}, nil
	}
	return nil, withHint(fmt.Errorf("%w: missing %s command before or after the flags %s", errUsage, cmd, strings.Join(args, " ")),
		fmt.Sprintf(`run "zyre %s --help" for the %s commands`, cmd, cmd))
}
