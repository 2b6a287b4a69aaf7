package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/mdp/qrterminal/v3"

	"github.com/zyre-go/zyre/agent"
	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/keystore"
	"github.com/zyre-go/zyre/pairing"
	"github.com/zyre-go/zyre/trust"
)

const pairUsage = `usage:
  zyre pair [flags]                  show a QR code and a short code, wait for one device
  zyre pair [flags] TOKEN            pair with the device showing TOKEN (ZYRE:...)
  zyre pair [flags] --code CODE      pair by the short code another terminal on this network shows
                                     (--peer ENDPOINT when it is not found on the network)

Both sides use the network interface a node would (--interface); with
--loopback they stay on this host. When an agent of this home runs
("zyre agent"), the pairing runs in it, with its identity and trust store
and where its node runs (--loopback, --interface, --listen may narrow it):
this terminal shows the code and asks for the comparison (--no-agent:
unlock the identity here instead). --json prints the result as JSON on
stdout (the code to show goes to stderr then).

A short code takes one try: a wrong one (a typo, or another device on
the network) spends it, and the showing side names that device and
shows a fresh code at once (6 codes at most; the QR code stays good).

flags:`

// runPair implements "zyre pair".
func runPair(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("zyre pair", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, pairUsage)
		fs.PrintDefaults()
	}
	home := fs.String("home", "", homeUsage)
	passFile := fs.String("passphrase-file", "", "read the passphrase from the first line of `FILE` (default $ZYRE_PASSPHRASE_FILE)")
	plain := fs.Bool("insecure-plaintext", false, "when the home has no identity yet, make one with UNENCRYPTED secret keys (headless devices, tests)")
	listen := fs.String("listen", pairing.DefaultListen, "TCP `ADDR` to listen on while showing a token (default: all addresses, the token names those of the beacon interface)")
	iface := fs.String("interface", "", "pair on this interface `name or address`, or * for all (default: that of the default route, else the first up broadcast interface)")
	loopback := fs.Bool("loopback", false, "stay on this host: listen on 127.0.0.1, announce and look for the short code on lo")
	code := fs.String("code", "", "join by this short `CODE`")
	peer := fs.String("peer", "", "the code `ENDPOINT` the showing side printed, when --code does not find it on the network")
	timeout := fs.Duration("timeout", pairing.DefaultTTL+30*time.Second, "give up after this long")
	yes := fs.Bool("yes", false, "without a terminal: take the short code's comparison number as compared and equal (a script that checked it another way); without it, no terminal means no pairing by short code. A code or token that two devices tried is never paired without a terminal")
	asJSON := fs.Bool("json", false, "print the result as JSON (name, uuid, key, fingerprint, method, comparison, at); the code to show goes to stderr")
	var a agentFlags
	a.register(fs)
	pos, err := parseFlags(env, fs, pairUsage, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 1:
		return fmt.Errorf("%w: more than one TOKEN", errUsage)
	case len(pos) == 1 && *code != "":
		return fmt.Errorf("%w: give a TOKEN or --code, not both", errUsage)
	case *code == "" && *peer != "":
		return fmt.Errorf("%w: --peer goes with --code", errUsage)
	case *timeout < time.Millisecond:
		return fmt.Errorf("%w: --timeout %s: want at least 1ms", errUsage, *timeout)
	}
	if *code != "" {
		if _, err := pairing.NormalizeCode(*code); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	if len(pos) == 1 {
		// A bad or expired token is a usage error, said before any
		// passphrase is asked.
		if err := checkToken(pos[0], time.Now()); err != nil {
			return err
		}
	}
	given := *home != ""
	if !given {
		h, err := keystore.DefaultHome(env.getenv)
		if err != nil {
			return withHint(err, "pass --home DIR")
		}
		*home = h
	}
	// A mistyped --home is said as such, never created; the default
	// home is made for a first identity with --insecure-plaintext.
	if given || !*plain {
		alt := ""
		if !given {
			alt = "pass --insecure-plaintext"
		}
		if err := missingHome(*home, given, alt); err != nil {
			return err
		}
	}
	out := env.stdout // what the user reads: the code to show, the comparison
	if *asJSON {
		out = env.stderr
	}
	args2 := client.PairArgs{Token: strings.Join(pos, ""), Code: *code, Endpoint: *peer, Listen: *listen,
		Interface: *iface, Loopback: *loopback,
		// The agent takes at most an hour: the token lives minutes anyway.
		TimeoutMS: min(*timeout, agent.MaxPairTimeout).Milliseconds()}
	if done, err := pairAgent(ctx, env, fs, &a, *home, args2, out, *asJSON); done {
		return err
	}
	log := pairLog(env)
	id, err := pairIdentity(ctx, env, *home, *passFile, *plain, log)
	if err != nil {
		return err
	}
	defer id.Wipe()
	ts, err := trust.Open(*home, trust.Options{Logger: log})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	opts := pairing.Options{
		Identity: id, Recorder: ts, Listen: *listen, Interface: *iface, Loopback: *loopback, Logger: log,
		Confirm: confirmNumber(env, out, *yes),
	}
	var res pairing.Result
	switch {
	case *code != "":
		sayThisDevice(env, selfPeer(id))
		if *peer == "" {
			announceSearch(env, &opts)
		}
		res, err = pairing.JoinCode(ctx, *code, *peer, opts)
	case len(pos) == 1:
		sayThisDevice(env, selfPeer(id))
		sayContacting(env, pos[0])
		res, err = pairing.Join(ctx, pos[0], opts)
	default:
		res, err = pairShow(ctx, env, out, opts, *timeout)
	}
	if err != nil {
		return pairFailure(err, *timeout)
	}
	return printPaired(env, agent.PairResultOf(res), *asJSON, ts.Path())
}

// checkToken checks a token given on the command line: well formed and
// not expired at now; else a usage error that says why.
func checkToken(s string, now time.Time) error {
	tok, err := pairing.ParseToken(s)
	if err == nil && !now.Before(tok.Expires) {
		err = pairing.ErrExpired
	}
	if err == nil {
		return nil
	}
	msg, hint := pairingSentence(err)
	if msg == "" {
		msg = strings.ReplaceAll(err.Error(), "pairing: ", "")
	}
	if errors.Is(err, pairing.ErrExpired) {
		msg = fmt.Sprintf("the pairing token expired at %s", tok.Expires.Local().Format(time.TimeOnly))
	}
	return withHint(fmt.Errorf("%w: %s", errUsage, msg), hint)
}

// printPaired prints a pairing's result: JSON, or text ending with where
// it was recorded.
func printPaired(env *cliEnv, r client.PairResult, asJSON bool, where string) error {
	if asJSON {
		return writeJSON(env.stdout, r)
	}
	fmt.Fprintf(env.stdout, "paired with %q\n  fingerprint %s\n  uuid        %s\n  method      %s\n", r.Name, r.Fingerprint, r.UUID, r.Method)
	if r.Comparison != "" {
		fmt.Fprintf(env.stdout, "  comparison  %s (the other screen shows the same number)\n", r.Comparison)
	}
	fmt.Fprintf(env.stdout, "recorded as verified in %s\n", where)
	return nil
}

// pairShow shows the token as a QR code and text, and the short code, and
// waits for one device.
func pairShow(ctx context.Context, env *cliEnv, w io.Writer, opts pairing.Options, timeout time.Duration) (pairing.Result, error) {
	// A failed short-code attempt spends that code only: say who spent
	// it, and show the fresh code (the QR code above stays good).
	opts.OnCode = func(c pairing.CodeSpent) { showSpent(env, w, *agent.PairCodeOf(c)) }
	d, tok, err := pairing.NewDisplayer(opts)
	if err != nil {
		return pairing.Result{}, err
	}
	defer d.Close()
	showToken(env, w, client.PairProgress{Token: tok.URI(), Code: tok.ShortCode(), CodeEndpoint: d.CodeAddr(),
		Interface: d.Interface(), Expires: tok.Expires}, giveUp(ctx), timeout)
	return d.Wait(ctx)
}

// giveUp is when ctx ends (its deadline), or the zero time.
func giveUp(ctx context.Context) time.Time {
	t, _ := ctx.Deadline()
	return t
}

// showToken shows a token to scan or type on w: a QR code, the URI and the
// short code, and until when this command waits: the token's expiry, or
// end (the command's --timeout) when that comes first.
func showToken(env *cliEnv, w io.Writer, p client.PairProgress, end time.Time, timeout time.Duration) {
	if p.Interface != "" {
		fmt.Fprintf(env.stderr, "zyre: pairing on interface %s\n", terminalText(p.Interface))
	}
	// From the agent: its text goes to the terminal as text only.
	uri, code, addr := terminalText(p.Token), terminalText(p.Code), terminalText(p.CodeEndpoint)
	fmt.Fprintln(w, "scan this code with the other device:")
	renderQR(w, uri)
	fmt.Fprintf(w, "or run there:\n  zyre pair %s\n", uri)
	fmt.Fprintf(w, "or, without a camera, on the same network:\n  zyre pair --code %s\n", code)
	fmt.Fprintf(w, "  (from elsewhere add: --peer %s)\n", addr)
	fmt.Fprintf(w, "token: %s\ncode: %s\ncode endpoint: %s\n", uri, code, addr)
	if !end.IsZero() && end.Before(p.Expires) {
		fmt.Fprintf(w, "waiting until %s (--timeout %s; the token works once)...\n", end.Local().Format(time.TimeOnly), timeout)
		return
	}
	fmt.Fprintf(w, "waiting until %s (the token works once)...\n", p.Expires.Local().Format(time.TimeOnly))
}

// showSpent says that the short code shown was spent, naming the device
// that spent it ("a device "A35B3B" a35b3ba6 GNBS-... from 10.85.0.4
// tried a wrong code; this code is spent"), and shows the fresh code on
// w, or, when the pairing shows no more, that only the QR code pairs.
func showSpent(env *cliEnv, w io.Writer, p client.PairProgress) {
	who := "a device"
	if p.Spent != nil {
		who = describePairPeer(*p.Spent)
		if p.Spent.Name != "" {
			who = "a device " + who
		}
	}
	fmt.Fprintf(env.stderr, "zyre: %s %s; this code is spent\n", who, terminalText(p.SpentWhy))
	if p.Code == "" {
		fmt.Fprintf(env.stderr, "zyre: WARNING: %d short codes were spent: someone on this network keeps spending them, so no more codes are shown; pair by the QR code (or the token) above, which still works, or start again where no stranger shares the network\n", p.CodesSpent)
		return
	}
	code := terminalText(p.Code)
	fmt.Fprintf(w, "new code (the one above is spent), on the same network:\n  zyre pair --code %s\n  (from elsewhere add: --peer %s)\ncode: %s\n", code, terminalText(p.CodeEndpoint), code)
}

// renderQR prints text as a QR code (level M) with half blocks, as
// "zyre keys show --qr" does.
func renderQR(w io.Writer, text string) {
	qrterminal.GenerateWithConfig(text, qrterminal.Config{
		Level:      qrterminal.M,
		Writer:     w,
		HalfBlocks: true,
		QuietZone:  2,
	})
}

// selfPeer is this device for confirmAsk.
func selfPeer(id *keystore.Identity) client.PairPeer {
	p := id.Public()
	return client.PairPeer{Name: p.Name, UUID: p.UUID.String(), Fingerprint: keystore.Fingerprint(p.CurveKey)}
}

// sayThisDevice tells a short-code joiner's user how the showing device
// will name this one (its question, or its warning when another device
// tried the code too), so that they can say which id is theirs.
func sayThisDevice(env *cliEnv, self client.PairPeer) {
	fmt.Fprintf(env.stderr, "zyre: this device is %s (the showing device names it so)\n", describePairPeer(self))
}

// sayContacting tells a QR scanner's user what it waits for: the showing
// device at the token's addresses, whose user is asked who is pairing
// (that can take a while, and ends with "used" when another device came
// first).
func sayContacting(env *cliEnv, token string) {
	where := ""
	if tok, err := pairing.ParseToken(token); err == nil && len(tok.Hints) > 0 {
		var hs []string
		for _, h := range tok.Hints {
			hs = append(hs, h.String())
		}
		where = " at " + strings.Join(hs, ", ")
	}
	fmt.Fprintf(env.stderr, "zyre: looking for the showing device%s; its user is asked who is pairing...\n", terminalText(where))
}

// pairAsk is a pairing question for the terminal, from the pairing
// package (one-shot) or from the agent: who is pairing, and, when the
// code or token is exposed, the other devices that tried it.
type pairAsk struct {
	method, comparison string
	displayer          bool
	peer               client.PairPeer
	others             []client.PairPeer
	// known is the device of this node whose name peer presents with
	// another key (nil: none).
	known *client.PairKnown
}

func askOfResult(r pairing.Result) pairAsk {
	peer := func(a pairing.Attempt) client.PairPeer {
		p := client.PairPeer{Name: a.Name, UUID: a.UUID.String(), Fingerprint: keystore.Fingerprint(a.Key), Addr: a.Addr, Method: a.Method}
		if a.Name == "" && a.Known != nil {
			p.Known = pairing.KnownAs(*a.Known)
		}
		return p
	}
	q := pairAsk{method: r.Method, comparison: r.Comparison, displayer: r.AsDisplayer, peer: peer(r.Peer())}
	for _, o := range r.Others {
		q.others = append(q.others, peer(o))
	}
	q.known = agent.PairKnownOf(r.NameHolder)
	return q
}

func askOfProgress(p client.PairProgress) pairAsk {
	q := pairAsk{method: p.Method, comparison: p.Comparison, displayer: p.AsDisplayer, others: p.Others, known: p.NameHolder}
	if p.Peer != nil {
		q.peer = *p.Peer
	}
	return q
}

// describePairPeer names a device for the terminal: "name" (escaped),
// UUID prefix, fingerprint, and the host it comes from.
func describePairPeer(p client.PairPeer) string {
	var b strings.Builder
	switch {
	case p.Name == "" && p.Known != "":
		// Recognised by its key (a late short-code device gives no name).
		fmt.Fprintf(&b, "%s (by its key; it gave no name yet)", p.Known)
	case p.Name == "":
		b.WriteString("a device that gave no name,")
	default:
		fmt.Fprintf(&b, "%q", p.Name)
	}
	if p.UUID != "" {
		fmt.Fprintf(&b, " %s", p.UUID[:min(8, len(p.UUID))])
	}
	if p.Fingerprint != "" {
		fmt.Fprintf(&b, " %s", p.Fingerprint)
	}
	if p.Addr != "" {
		host := p.Addr
		if h, _, err := net.SplitHostPort(p.Addr); err == nil {
			host = h
		}
		fmt.Fprintf(&b, " from %s", host)
	}
	return terminalText(b.String())
}

// confirmNumber asks the user who is pairing (spec/pairing.md): the
// other device's name, UUID, fingerprint and address, and for a short
// code the comparison number, on a terminal. The QR path asks too, on
// the showing side (the scanner scanned the screen it pairs with).
// Without a terminal nobody can: the pairing is refused unless yes
// (--yes) says that it was checked another way.
//
// When another device tried the same code or token (exposed), the user
// is told at once who tried, and must pick the device they expect by
// typing its id (a "y" typed for a dropped question must not count);
// without a terminal an exposed pairing is refused even with --yes.
//
// Both sides call it at the same moment. When the other side refuses
// first, or another device comes, ctx is cancelled and the question ends
// at once; the next question reads from the same line reader, so that a
// line is never lost to an abandoned read.
func confirmNumber(env *cliEnv, out io.Writer, yes bool) func(context.Context, pairing.Result) error {
	ask := confirmAsk(env, out, yes)
	return func(ctx context.Context, r pairing.Result) error { return ask(ctx, askOfResult(r)) }
}

func confirmAsk(env *cliEnv, out io.Writer, yes bool) func(context.Context, pairAsk) error {
	lines := &lineReader{r: env.stdin}
	asked := false
	var one sync.Mutex // a dropped question ends (its line closed) before the next is asked
	return func(ctx context.Context, q pairAsk) error {
		if q.comparison == "" && !q.displayer && q.known == nil {
			return nil // a QR scanner: it scanned the screen it pairs with
		}
		one.Lock()
		defer one.Unlock()
		who := describePairPeer(q.peer)
		if q.known != nil {
			// Another device under the name of one known here: said
			// plainly, and paired only on its id typed at a terminal
			// (never --yes).
			fmt.Fprintf(env.stderr, "zyre: WARNING: %s\n", nameTakenSentence(q))
		}
		what := "code"
		if q.method == "qr" {
			what = "QR code"
		}
		if len(q.others) > 0 {
			all := []string{who}
			for _, o := range q.others {
				all = append(all, describePairPeer(o))
				if o.Method != "" && o.Method != q.method {
					// A device that spent a short code, beside a QR
					// scanner (or the other way round): both tried this
					// pairing, not the same secret.
					what = "pairing (its QR code or its short codes)"
				}
			}
			fmt.Fprintf(env.stderr, "zyre: WARNING: %d devices tried this %s: %s; someone else may have seen it\n", len(all), what, strings.Join(all[:len(all)-1], ", ")+" and "+all[len(all)-1])
		}
		if _, ok := terminalFd(env); !ok {
			fmt.Fprintf(out, "pairing with %s\n", who)
			if q.comparison != "" {
				fmt.Fprintf(out, "comparison number: %s\n", terminalText(q.comparison))
			}
			switch {
			case q.known != nil:
				return fmt.Errorf("%s: %w", nameTakenSentence(q), errKnownNameNoTerminal)
			case len(q.others) > 0:
				return errExposedNoTerminal
			case q.comparison == "":
				// A QR scanner proved the token's secret, and only one
				// device tried: nobody is here to ask, as with a
				// script's --yes (spec/pairing.md, "Who is pairing").
				return nil
			case !yes:
				return errNoTerminal
			}
			return nil
		}
		if asked {
			lines.drain() // typed for a question dropped: not an answer to this one
		}
		asked = true
		if len(q.others) > 0 || q.known != nil {
			id := q.peer.UUID[:min(8, len(q.peer.UUID))]
			prompt := fmt.Sprintf("pair with %s anyway? only if it is the device you expect", who)
			if q.known != nil {
				prompt = fmt.Sprintf("pair with %s anyway? only if it is a new device of yours that you expect", who)
			}
			if q.comparison != "" {
				prompt += fmt.Sprintf(" and its screen shows %s", terminalText(q.comparison))
			}
			fmt.Fprintf(env.stderr, "%s: type its id %s to pair with it, or press Enter to refuse (then start again with a new code): ", prompt, id)
			line, err := lines.next(ctx)
			if err != nil {
				fmt.Fprintln(env.stderr)
				return err
			}
			if strings.TrimSpace(line) != id {
				if q.known != nil && len(q.others) == 0 {
					return errKnownNameNotPicked
				}
				return errNotPicked
			}
			return nil
		}
		question := fmt.Sprintf("pair with %s?", who)
		if q.comparison != "" {
			question += fmt.Sprintf(" does the other screen show %s?", terminalText(q.comparison))
		}
		fmt.Fprintf(env.stderr, "%s [y/N] ", question)
		line, err := lines.next(ctx)
		if err != nil {
			fmt.Fprintln(env.stderr)
			return err
		}
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			if q.comparison == "" {
				return errDeviceNotConfirmed
			}
			return errNotConfirmed
		}
		return nil
	}
}

// nameTakenSentence says that q's peer calls itself by the name of
// another device known here: "this device calls itself phone1, but your
// verified phone1 is FAWY-FLPA-OCBC-GSIW (8b0744b8); this is ANOTHER
// device" ("the showing device" on the scanner's side).
func nameTakenSentence(q pairAsk) string {
	who := "this device"
	if !q.displayer {
		who = "the showing device"
	}
	return terminalText(fmt.Sprintf("%s calls itself %s, but %s; this is ANOTHER device", who, q.peer.Name, q.known.Text))
}

// lineReader reads a terminal's lines for a run of questions: one reader
// goroutine, started at the first question, so that a question dropped
// halfway (its ctx ended) leaves no read behind that would swallow the
// answer to the next one.
type lineReader struct {
	r     io.Reader
	once  sync.Once
	lines chan string
}

func (l *lineReader) start() {
	l.once.Do(func() {
		l.lines = make(chan string, 4)
		go func() {
			br := bufio.NewReader(l.r)
			for {
				line, err := br.ReadString('\n')
				if line != "" || err == nil {
					select {
					case l.lines <- line:
					default: // nobody asks: dropped
					}
				}
				if err != nil {
					close(l.lines)
					return
				}
			}
		}()
	})
}

// next is the next line, or ctx's error.
func (l *lineReader) next(ctx context.Context) (string, error) {
	l.start()
	select {
	case line, ok := <-l.lines:
		if !ok {
			return "", io.EOF
		}
		return line, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// drain drops the lines typed so far.
func (l *lineReader) drain() {
	l.start()
	for {
		select {
		case _, ok := <-l.lines:
			if !ok {
				return
			}
		default:
			return
		}
	}
}

// pairIdentity loads the identity in home, or with --insecure-plaintext
// makes one when there is none.
func pairIdentity(ctx context.Context, env *cliEnv, home, passFile string, plain bool, log *slog.Logger) (*keystore.Identity, error) {
	st, err := keystore.Open(home, keystore.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	id, err := loadWithTries(ctx, env, st, passFile)
	if errors.Is(err, keystore.ErrNotFound) && plain {
		fmt.Fprintln(env.stderr, "zyre: warning: no identity yet: making one with UNENCRYPTED secret keys (--insecure-plaintext)")
		return st.Init(ctx, keystore.InitOptions{Protection: keystore.Protection{Plaintext: true}})
	}
	if errors.Is(err, keystore.ErrNotFound) {
		return nil, withHint(fmt.Errorf("%w in %s", err, home), fmt.Sprintf("run \"zyre keys init --home %s\", or pass --insecure-plaintext", home))
	}
	return id, err
}
