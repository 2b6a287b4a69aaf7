package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/autoaccept"
	"github.com/zyre-go/zyre/transfer"
	"github.com/zyre-go/zyre/trust"
)

// sendAgent runs "zyre send" through the agent: the agent reads and
// hashes the files and its node sends them; this process shows progress.
func sendAgent(ctx context.Context, env *cliEnv, c *client.Client, f *transferFlags, who string, paths []string) error {
	abs := make([]string, len(paths))
	for i, p := range paths {
		a, err := filepath.Abs(p)
		if err != nil {
			return err
		}
		abs[i] = a
	}
	info, err := c.Info(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stderr, "zyre: through the agent %s %s: reading and hashing %s\n", safe(info.Name), shortText(info.UUID), strings.Join(paths, ", "))
	var bar *transferBar
	var offered int64
	defer func() {
		if bar != nil {
			bar.done()
		}
	}()
	res, err := c.Send(ctx, client.SendRequest{Peer: who, Paths: abs, Trust: f.trust, WaitMS: f.wait.Milliseconds()}, func(e client.TransferEvent) {
		switch e.Kind {
		case client.XferSkipped:
			fmt.Fprintf(env.stderr, "zyre: warning: %s is not a regular file: not sent\n", terminalText(e.Text))
		case client.XferWaiting:
			fmt.Fprintf(env.stderr, "zyre: waiting for %s %s (up to %v)\n", safe(e.Name), peerShort(e.Peer), f.wait)
		case client.XferOffering:
			fmt.Fprintf(env.stderr, "zyre: offering %d file(s), %s, to %s %s\n", e.Count, sizeText(float64(e.Total)), safe(e.Name), peerShort(e.Peer))
			bar = newTransferBar(env, "sending", e.Total, f.progress)
			offered = e.Total
		case client.XferProgress:
			if bar != nil {
				bar.set(e.Held, e.Total)
			}
		case client.XferNotice:
			notifyLine(env)(e.Text)
		}
	})
	if bar != nil {
		bar.done()
	}
	if err != nil && ctx.Err() != nil && bar != nil {
		return interruptedSend(bar.held, offered)
	}
	if agentStopped(ctx, err) && bar != nil {
		return fmt.Errorf("the agent stopped after %s of %s (%d%%) were sent: the receiver keeps what it holds; start the agent and run the same command again to resume",
			sizeText(float64(bar.held)), sizeText(float64(offered)), percentOf(bar.held, offered))
	}
	if err != nil {
		if strings.Contains(err.Error(), "is revoked, not trusted for a transfer") {
			return withHint(err, untrustedHint(trust.StateRevoked))
		}
		if strings.Contains(err.Error(), "not trusted for a transfer") {
			return withHint(err, untrustedHint(trust.StateTOFU))
		}
		if t, ok := strings.CutPrefix(err.Error(), "agent: "); ok && strings.Contains(t, refusesKey) {
			return errors.New(t) // the agent's node was refused: the sentence says it all
		}
		if err, ok := stoppedSentence(err); ok {
			return err // the receiver stopped: so does the sentence
		}
		if strings.Contains(err.Error(), "peer \"") {
			return withHint(err, peerHint(err))
		}
		return err
	}
	fmt.Fprintf(env.stderr, "zyre: sent %d file(s), %s, to %s %s in %.1fs%s; the receiver checked every file's sha256\n",
		res.Files, sizeText(float64(res.Octets)), safe(res.Name), peerShort(res.Peer), res.Elapsed().Seconds(), resumedText(res.Resumed))
	return nil
}

// agentStopped reports whether err, of a transfer through the agent that
// ctx did not end, is the agent stopping or going away mid-transfer
// (rather than "EOF" or "context canceled").
func agentStopped(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() == nil && (agentGone(err) || strings.HasPrefix(err.Error(), "agent: context canceled"))
}

// percentOf is held of total in percent (100 of nothing).
func percentOf(held, total int64) int64 {
	if total <= 0 {
		return 100
	}
	return held * 100 / total
}

// refusesKey is in the sentence of a transfer refused in the handshake
// (transfer.RefusedError).
const refusesKey = " refuses this device's key ("

// peerShort is the short form of a UUID in text form.
func peerShort(s string) string {
	if id, err := uuid.Parse(s); err == nil {
		return shortID(id)
	}
	return safe(s)
}

// receiveAgent runs "zyre receive" through the agent: the agent's node
// takes the offer and the agent writes the files into dir; this process
// asks (on a terminal) and shows progress.
func receiveAgent(ctx context.Context, env *cliEnv, c *client.Client, f *transferFlags, r *receiveArgs) error {
	info, err := c.Info(ctx)
	if err != nil {
		return err
	}
	if !info.Secure {
		return errors.New("the agent's node is in plain mode: a transfer needs a secure node (run the agent without --plain, or pass --no-agent)")
	}
	if err := r.setup(ctx, env, info.Home, f); err != nil {
		return err
	}
	fmt.Fprintf(env.stderr, "zyre: receiving into %s through the agent %s %s; waiting for an offer\n", r.abs, safe(info.Name), shortText(info.UUID))
	var bar *transferBar
	declined := ""
	res, err := c.Receive(ctx, client.ReceiveRequest{Dir: r.abs, From: r.from, Trust: f.trust, WaitMS: f.wait.Milliseconds(),
		Yes: r.yes, Ask: r.ask}, func(e client.TransferEvent) bool {
		switch e.Kind {
		case client.XferOffer:
			return r.askUser(ctx, env, offerText(e), e.Files, e.Count)
		case client.XferAccepted:
			fmt.Fprintf(env.stderr, "zyre: accepted %s%s\n", offerText(e), autoText(e.Text == "auto-accept"))
			bar = newTransferBar(env, "receiving", e.Total, f.progress)
			bar.set(e.Held, e.Total)
		case client.XferDeclined:
			declined = offerText(e)
			fmt.Fprintf(env.stderr, "zyre: declined %s\n", declined)
		case client.XferProgress:
			if bar != nil {
				bar.set(e.Held, e.Total)
			}
		case client.XferNotice:
			notifyLine(env)(e.Text)
		}
		return false
	})
	if bar != nil {
		bar.done()
	}
	if err != nil && ctx.Err() != nil && bar != nil {
		return interruptedReceive(bar.held, bar.total, r.abs)
	}
	if agentStopped(ctx, err) && bar != nil {
		return fmt.Errorf("the agent stopped after %s of %s (%d%%) arrived: kept in %s; start the agent and run zyre receive --dir %s again, and the same send, to resume",
			sizeText(float64(bar.held)), sizeText(float64(bar.total)), percentOf(bar.held, bar.total), filepath.Join(r.abs, ".zyre-partial"), r.abs)
	}
	if err != nil {
		if declined != "" {
			return errors.New("the offer was declined")
		}
		err, _ = stoppedSentence(err)
		return err
	}
	from, _ := uuid.Parse(res.Peer)
	rec := transfer.Received{Result: transfer.Result{Files: res.Files, Octets: res.Octets, Resumed: res.Resumed, Elapsed: res.Elapsed()},
		From: from, Name: res.Name, Offer: transfer.Offer{ID: res.OfferID, Files: []transfer.File{}}, Paths: res.Paths}
	for _, fl := range res.Offer {
		rec.Offer.Files = append(rec.Offer.Files, transfer.File{Path: fl.Path, Size: fl.Size, Mode: fl.Mode, SHA256: fl.SHA256})
	}
	return r.summary(env, &rec)
}

// offerText describes an offer event.
func offerText(e client.TransferEvent) string {
	n := e.Count
	what := fmt.Sprintf("%s, from %s %s", sizeText(float64(e.Total)), safe(e.Name), peerShort(e.Peer))
	if n > 0 {
		what = fmt.Sprintf("%d file(s), %s", n, what)
	}
	if e.Held > 0 {
		what += fmt.Sprintf(" (%s held from an earlier attempt)", sizeText(float64(e.Held)))
	}
	return what
}

func autoText(auto bool) string {
	if auto {
		return " (auto-accept)"
	}
	return ""
}

// receiveArgs are receive's own flags, and what they come to.
type receiveArgs struct {
	dir, from, always string
	yes, json         bool
	abs               string
	ask               bool
	list              *autoaccept.List
	entries           int
}

// setup resolves the folder and --always-from (recorded in home's list),
// and checks that someone can accept an offer: --yes, a terminal, or an
// auto-accept list that is not empty.
func (r *receiveArgs) setup(ctx context.Context, env *cliEnv, home string, f *transferFlags) error {
	abs, err := filepath.Abs(r.dir)
	if err != nil {
		return err
	}
	r.abs = abs
	if home != "" {
		r.list = autoaccept.Open(home)
	}
	if r.always != "" {
		if r.list == nil {
			return fmt.Errorf("%w: --always-from: no home to keep the auto-accept list in", errUsage)
		}
		e, err := addAutoAccept(ctx, env, home, r.list, r.always)
		if err != nil {
			return err
		}
		if r.from == "" {
			r.from = e.UUID.String()
		}
	}
	_, tty := terminalFd(env)
	r.ask = !r.yes && tty
	if !r.yes && !tty {
		if r.list != nil {
			es, err := r.list.Entries()
			if err != nil {
				return err
			}
			r.entries = len(es)
		}
		if r.entries == 0 {
			return withHint(fmt.Errorf("%w: stdin is not a terminal: nobody can accept an offer", errUsage),
				`pass --yes (with --from PEER to accept that peer's offers only), or --always-from PEER to accept that peer's offers from now on`)
		}
		fmt.Fprintf(env.stderr, "zyre: no terminal: only the %d peer(s) of the auto-accept list are accepted\n", r.entries)
	}
	if r.yes && r.from == "" && f.trust == "tofu" {
		fmt.Fprintln(env.stderr, "zyre: warning: --yes --trust tofu without --from: the first offer of any peer on the network is accepted")
	}
	return receiveDir(env, r.abs)
}

// auto reports whether peer, presenting key, is in the auto-accept list.
func (r *receiveArgs) auto(env *cliEnv, peer uuid.UUID, key curve.PublicKey, ok bool) bool {
	if r.list == nil || !ok {
		return false
	}
	yes, err := r.list.Allows(peer, key)
	if err != nil {
		fmt.Fprintf(env.stderr, "zyre: warning: %v\n", err)
	}
	return yes
}

// askUser asks on the terminal whether to accept an offer; ctx ending
// (Ctrl-C) ends the question with a no, and the command with ctx.
func (r *receiveArgs) askUser(ctx context.Context, env *cliEnv, what string, files []client.OfferFile, count int) bool {
	for i, fl := range files {
		if i == client.EventFiles {
			break
		}
		fmt.Fprintf(env.stderr, "  %s  %s\n", safe(fl.Path), sizeText(float64(fl.Size)))
	}
	if count > client.EventFiles {
		fmt.Fprintf(env.stderr, "  ... and %d more\n", count-client.EventFiles)
	}
	yes, err := askYes(ctx, env, fmt.Sprintf("accept %s into %s?", what, r.abs))
	return yes && err == nil
}

// summary prints what was received.
func (r *receiveArgs) summary(env *cliEnv, res *transfer.Received) error {
	if r.json {
		if err := writeJSON(env.stdout, res); err != nil {
			return err
		}
	} else {
		for _, p := range res.Paths {
			fmt.Fprintln(env.stdout, filepath.Join(r.abs, filepath.FromSlash(p)))
		}
	}
	fmt.Fprintf(env.stderr, "zyre: received %d file(s), %s, from %s %s in %.1fs%s; every file's sha256 checked\n",
		res.Files, sizeText(float64(res.Octets)), safe(res.Name), shortID(res.From), res.Elapsed.Seconds(), resumedText(res.Resumed))
	return nil
}

// addAutoAccept records who (found in home's trust store) in list.
func addAutoAccept(ctx context.Context, env *cliEnv, home string, list *autoaccept.List, who string) (autoaccept.Entry, error) {
	st, err := trust.Open(home, trust.Options{Logger: quietLog()})
	if err != nil {
		return autoaccept.Entry{}, err
	}
	rec, err := find(st, who)
	if err != nil {
		return autoaccept.Entry{}, withHint(fmt.Errorf("auto-accept %q: %w", who, err), `see "zyre trust list"`)
	}
	switch rec.State {
	case trust.StateRevoked:
		return autoaccept.Entry{}, fmt.Errorf("auto-accept: %s (%s) is revoked", safe(rec.Name), shortID(rec.UUID))
	case trust.StateTOFU:
		fmt.Fprintf(env.stderr, "zyre: warning: %s %s is only met on first use: its offers are taken only with --trust tofu (pair with it: \"zyre pair\")\n", safe(rec.Name), shortID(rec.UUID))
	}
	e := autoaccept.Entry{UUID: rec.UUID, Name: rec.Name, Key: rec.Key.Z85(), Fingerprint: rec.Fingerprint}
	replaced, err := list.Add(ctx, e)
	if err != nil {
		return e, err
	}
	verb := "added to"
	if replaced {
		verb = "updated in"
	}
	fmt.Fprintf(env.stderr, "zyre: %s %s (%s) %s the auto-accept list: its offers are accepted without asking\n", safe(rec.Name), shortID(rec.UUID), rec.Fingerprint, verb)
	return e, nil
}

// runAutoAccept implements "zyre receive auto-accept".
func runAutoAccept(ctx context.Context, env *cliEnv, f *transferFlags, home string, asJSON bool, args []string) error {
	if len(args) == 0 {
		return withHint(fmt.Errorf("%w: auto-accept: want list, add PEER or remove PEER", errUsage), `see "zyre receive --help"`)
	}
	switch args[0] {
	case "list", "add", "remove":
	default:
		return withHint(fmt.Errorf("%w: unknown command \"receive auto-accept %s\"", errUsage, args[0]), `the commands are list, add PEER and remove PEER (see "zyre receive --help")`)
	}
	list := autoaccept.Open(home)
	want := 0
	if args[0] == "add" || args[0] == "remove" {
		want = 1
	}
	if len(args)-1 != want {
		return fmt.Errorf("%w: auto-accept %s: want %d argument(s)", errUsage, args[0], want)
	}
	switch args[0] {
	case "list":
		es, err := list.Entries()
		if err != nil {
			return err
		}
		if asJSON {
			if es == nil {
				es = []autoaccept.Entry{}
			}
			return writeJSON(env.stdout, es)
		}
		if len(es) == 0 {
			fmt.Fprintf(env.stderr, "zyre: no peer is auto-accepted (%s)\n", list.Path())
			return nil
		}
		tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tID\tFINGERPRINT\tADDED")
		for _, e := range es {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", safe(e.Name), shortID(e.UUID), safe(e.Fingerprint), e.Added.Format("2006-01-02"))
		}
		return tw.Flush()
	case "add":
		_, err := addAutoAccept(ctx, env, home, list, args[1])
		return err
	case "remove":
		e, err := list.Remove(ctx, args[1])
		if err != nil {
			return withHint(err, `see "zyre receive auto-accept list"`)
		}
		fmt.Fprintf(env.stderr, "zyre: %s %s removed from the auto-accept list: its offers are asked about again\n", safe(e.Name), shortID(e.UUID))
		return nil
	}
	return nil
}
