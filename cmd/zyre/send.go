package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/agent"
	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/transfer"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

const sendUsage = `usage: zyre send [flags] PEER FILE|DIR...

Send files and folders (kept as trees) to one trusted peer, end-to-end
encrypted (WHISPERs over the CURVE connection between the two nodes), each
file checked by its SHA-256 on arrival. The peer runs "zyre receive". A
transfer cut by a broken connection or a restart of either side resumes
when both run again: run the same command. PEER is a name, a UUID prefix or
a fingerprint from "zyre trust list"; it must be verified (paired) or
introduced, or met on first use with --trust tofu. Symbolic links are not
sent.`

const receiveUsage = `usage: zyre receive [flags]
       zyre receive auto-accept list|add PEER|remove PEER

Receive what one trusted peer sends with "zyre send" into --dir, and exit.
A --dir that does not exist is created first (mode 0700).
Nothing is written outside --dir, whatever names the sender uses; a name
already taken gets " (N)" added. Files arrive in DIR/.zyre-partial first and
are moved into place once their SHA-256 is checked; a cut transfer resumes
from there. The offer is accepted on the terminal, or with --yes (with
--from, for that peer only). Offers come from verified or introduced peers
only, unless --trust tofu: then --yes without --from accepts the first
offer of any peer on the network, and says so.

The offers of the peers in the auto-accept list are accepted without
asking (without a terminal and without --yes, only theirs): --always-from
PEER adds one, "receive auto-accept" lists, adds and removes them. The list
is HOME/auto-accept.json (the agent's home while an agent runs, else --home
or the default home); an entry holds the peer's UUID and key, so the same
UUID with another key is asked about again.

While an agent runs (zyre agent), receive goes through it: its node takes
the offer and it writes the files; the same for send, whose files the
agent reads.`

// transferFlags are the flags send and receive share beside the node's.
type transferFlags struct {
	*nodeFlags
	trust    string
	wait     time.Duration
	progress time.Duration
	agent    agentFlags
}

func newTransferFlags(env *cliEnv, cmd, synopsis string) *transferFlags {
	f := &transferFlags{nodeFlags: newNodeFlags(env, cmd)}
	f.synopsis = synopsis
	f.fs.StringVar(&f.trust, "trust", "verified", "who is trusted: verified (verified or introduced in the trust store) or tofu (first use too)")
	f.fs.DurationVar(&f.wait, "wait", 2*time.Minute, "how long the peer may be away (before it comes, or after a cut) before giving up")
	f.fs.DurationVar(&f.progress, "progress", 500*time.Millisecond, "interval of the progress bar on stderr (0: none)")
	f.agent.register(f.fs)
	return f
}

func (f *transferFlags) check() error {
	switch {
	case f.trust != "verified" && f.trust != "tofu":
		return fmt.Errorf("%w: --trust %q: want verified or tofu", errUsage, f.trust)
	case f.wait <= 0:
		return fmt.Errorf("%w: bad --wait %v", errUsage, f.wait)
	case f.ephemeral:
		return fmt.Errorf("%w: --ephemeral: a transfer needs this node's identity and trust store", errUsage)
	case len(f.groups) > 0:
		return fmt.Errorf("%w: --group: a transfer needs no group", errUsage)
	case flagSet(f.fs, "secure") && !f.secure:
		return fmt.Errorf("%w: a transfer needs secure mode", errUsage)
	}
	f.secure = true
	return nil
}

// trusted reports whether peer's key is trusted enough.
func (f *transferFlags) trusted(n *zre.Node, peer uuid.UUID) bool {
	key, ok := n.PeerKey(peer)
	if !ok || f.trustStore == nil {
		return false
	}
	rec, ok, err := f.trustStore.Lookup(key)
	if err != nil || !ok || rec.UUID != peer {
		return false
	}
	switch rec.State {
	case trust.StateVerified, trust.StateIntroduced:
		return true
	case trust.StateTOFU:
		return f.trust == "tofu"
	}
	return false
}

// runSend implements "zyre send".
func runSend(ctx context.Context, env *cliEnv, args []string) error {
	f := newTransferFlags(env, "send", sendUsage)
	pos, err := f.parseArgs(args)
	if err != nil {
		return err
	}
	f.progress = progressInterval(env, f.fs, f.progress)
	if err := f.check(); err != nil {
		return err
	}
	if len(pos) < 2 {
		return fmt.Errorf("%w: want PEER and at least one FILE or DIR", errUsage)
	}
	who, paths := pos[0], pos[1:]
	c, err := f.agent.dial(ctx, env, f.fs, "trust", "progress")
	if err != nil {
		return err
	}
	if c != nil {
		defer c.Close()
		return sendAgent(ctx, env, c, f, who, paths)
	}
	for _, p := range paths { // a missing file is said before a node starts
		if _, err := os.Lstat(p); err != nil {
			return err
		}
	}
	n, err := f.startNode(ctx, env)
	if err != nil {
		return err
	}
	defer stopNode(n)
	// Who first: a mistyped or ambiguous PEER is said before a big file
	// is read and hashed.
	rec, err := findPeer(ctx, n, f.trustStore, who, f.trust == "tofu", f.wait)
	if err != nil {
		return withHint(fmt.Errorf("peer %q: %w", who, err), peerHint(err))
	}
	peer := rec.UUID
	if st := rec.State; st == trust.StateRevoked || st == trust.StateTOFU && f.trust != "tofu" {
		return withHint(fmt.Errorf("%s (%s) is %s, not trusted for a transfer", safe(rec.Name), shortID(peer), st), untrustedHint(st))
	}
	fmt.Fprintf(env.stderr, "zyre: reading and hashing %s\n", strings.Join(paths, ", "))
	src, err := transfer.PrepareContext(ctx, paths)
	if err != nil {
		return err
	}
	for _, s := range src.Skipped {
		fmt.Fprintf(env.stderr, "zyre: warning: %s is not a regular file: not sent\n", s)
	}
	fmt.Fprintf(env.stderr, "zyre: waiting for %s %s (up to %v)\n", safe(rec.Name), shortID(peer), f.wait)
	if err := transfer.WaitPeer(ctx, n, peer, f.wait); err != nil {
		if errors.Is(err, transfer.ErrRefused) {
			return transfer.NameRefused(err, peer, rec.Name) // says what to do
		}
		return withHint(err, "is it running \"zyre receive\" on this network?")
	}
	if !f.trusted(n, peer) {
		return fmt.Errorf("%s %s is not trusted with the key it presents", safe(rec.Name), shortID(peer))
	}
	total := src.Offer.Total()
	fmt.Fprintf(env.stderr, "zyre: offering %d file(s), %s, to %s %s\n", len(src.Offer.Files), sizeText(float64(total)), safe(rec.Name), shortID(peer))
	bar := newTransferBar(env, "sending", total, f.progress)
	res, err := transfer.Send(ctx, n, peer, src, transfer.SendOptions{PeerWait: f.wait, Progress: bar.set, Logger: f.libLog(env, n),
		Notify: notifyLine(env)})
	bar.done()
	if err != nil && ctx.Err() != nil {
		return interruptedSend(bar.held, total)
	}
	if err != nil {
		return transfer.NameRefused(err, peer, rec.Name)
	}
	fmt.Fprintf(env.stderr, "zyre: sent %d file(s), %s, to %s %s in %.1fs%s; the receiver checked every file's sha256\n",
		res.Files, sizeText(float64(res.Octets)), safe(rec.Name), shortID(peer), res.Elapsed.Seconds(), resumedText(res.Resumed))
	return nil
}

// untrustedHint is the hint for a peer not trusted for a transfer: for a
// revoked key --trust tofu does not help, only withdrawing a mistaken
// revocation; a key met on first use may be paired.
func untrustedHint(st trust.State) string {
	if st == trust.StateRevoked {
		return `its key is revoked: nothing is sent to it (--trust tofu does not change that); if the revocation was a mistake, "zyre trust unrevoke PEER" withdraws it`
	}
	return `pair with it ("zyre pair"), or pass --trust tofu to take a key met on first use`
}

func resumedText(n int64) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (resumed: %s were there already)", sizeText(float64(n)))
}

// peerHint is the hint for a PEER that names no record, or several a
// transfer could go to (agent.FindTarget's error, which names their UUIDs;
// through the agent only its text).
func peerHint(err error) string {
	if errors.Is(err, trust.ErrAmbiguous) || strings.Contains(err.Error(), "trust: ambiguous peer") {
		return `see "zyre trust list"`
	}
	return `see "zyre trust list"; pair with a new device first ("zyre pair")`
}

// findPeer finds who among the peers a transfer may go to
// (agent.FindTarget: a revoked record or a stranger never makes a trusted
// name ambiguous). With tofu, a peer not met yet may be met now: it is
// looked for again, for up to wait, while the node meets the network (and
// records the keys it meets on first use).
func findPeer(ctx context.Context, n *zre.Node, st *trust.Store, who string, tofu bool, wait time.Duration) (trust.Record, error) {
	rec, err := agent.FindTarget(st, who, tofu)
	if err == nil || !tofu || !errors.Is(err, trust.ErrNotFound) {
		return rec, err
	}
	transfer.Poll(ctx, n, 100*time.Millisecond, wait, func() bool {
		rec, err = agent.FindTarget(st, who, tofu)
		return err == nil || !errors.Is(err, trust.ErrNotFound)
	})
	return rec, err
}

// runReceive implements "zyre receive".
func runReceive(ctx context.Context, env *cliEnv, args []string) error {
	f := newTransferFlags(env, "receive", receiveUsage)
	r := &receiveArgs{}
	f.fs.StringVar(&r.dir, "dir", ".", "the `folder` to receive into")
	f.fs.StringVar(&r.from, "from", "", "take offers from this `PEER` only (name, UUID prefix or fingerprint)")
	f.fs.BoolVar(&r.yes, "yes", false, "accept without asking (with --from: that peer's offers only)")
	f.fs.StringVar(&r.always, "always-from", "", "accept the offers of this `PEER` without asking, from now on (kept in the auto-accept list; see \"zyre receive auto-accept\"), and take its offer now")
	f.fs.BoolVar(&r.json, "json", false, "print what was received as JSON")
	pos, err := f.parseArgs(args)
	if err != nil {
		return err
	}
	f.progress = progressInterval(env, f.fs, f.progress)
	if len(pos) > 0 && pos[0] == "auto-accept" {
		home := f.home
		if home == "" && !f.agent.noAgent {
			// The agent's list while one runs.
			if c, err := f.agent.dial(ctx, env, f.fs, "json"); err != nil {
				return err
			} else if c != nil {
				info, err := c.Info(ctx)
				c.Close()
				if err != nil {
					return err
				}
				home = info.Home
			}
		}
		if home, err = homeDir(env, home); err != nil {
			return err
		}
		return runAutoAccept(ctx, env, f, home, r.json, pos[1:])
	}
	if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected argument %q (the folder is --dir)", errUsage, pos[0])
	}
	if err := f.check(); err != nil {
		return err
	}
	c, err := f.agent.dial(ctx, env, f.fs, "dir", "from", "yes", "always-from", "trust", "progress")
	if err != nil {
		return err
	}
	if c != nil {
		defer c.Close()
		return receiveAgent(ctx, env, c, f, r)
	}
	home, err := homeDir(env, f.home)
	if err != nil {
		return err
	}
	if err := r.setup(ctx, env, home, f); err != nil {
		return err
	}
	n, err := f.startNode(ctx, env)
	if err != nil {
		return err
	}
	defer stopNode(n)
	var only uuid.UUID
	if r.from != "" {
		rec, err := agent.FindTarget(f.trustStore, r.from, f.trust == "tofu")
		if err != nil {
			return withHint(fmt.Errorf("--from %q: %w", r.from, err), `see "zyre trust list"`)
		}
		only = rec.UUID
	}
	auto := func(p uuid.UUID) bool {
		key, ok := n.PeerKey(p)
		return r.auto(env, p, key, ok)
	}
	// Without --yes nor a terminal, only the auto-accept list's peers.
	autoOnly := !r.yes && !r.ask
	fmt.Fprintf(env.stderr, "zyre: receiving into %s as %s %s; waiting for an offer\n", r.abs, n.Name(), shortID(n.UUID()))
	var bar *transferBar
	res, err := transfer.Receive(ctx, n, transfer.ReceiveOptions{
		Dir:      r.abs,
		PeerWait: f.wait,
		Trusted: func(p uuid.UUID) bool {
			return (only == uuid.Nil || p == only) && f.trusted(n, p) && (!autoOnly || auto(p))
		},
		Accept: func(ctx context.Context, p uuid.UUID, name string, o *transfer.Offer, held int64) (bool, error) {
			e := client.TransferEvent{Peer: p.String(), Name: name, Count: len(o.Files), Files: offerFiles(o), Total: o.Total(), Held: held}
			what := offerText(e)
			isAuto := auto(p)
			ok := r.yes || isAuto
			if !ok && r.ask {
				ok = r.askUser(ctx, env, what, e.Files, e.Count)
			}
			if err := ctx.Err(); err != nil {
				return false, err // Ctrl-C at the question
			}
			if !ok {
				fmt.Fprintf(env.stderr, "zyre: declined %s\n", what)
				return false, nil
			}
			fmt.Fprintf(env.stderr, "zyre: accepted %s%s\n", what, autoText(isAuto))
			bar = newTransferBar(env, "receiving", o.Total(), f.progress)
			bar.set(held, o.Total())
			return true, nil
		},
		Progress: func(held, total int64) {
			if bar != nil {
				bar.set(held, total)
			}
		},
		Notify: notifyLine(env),
		Logger: f.libLog(env, n),
	})
	if bar != nil {
		bar.done()
	}
	if err != nil && ctx.Err() != nil && bar != nil {
		return interruptedReceive(bar.held, bar.total, r.abs)
	}
	if errors.Is(err, transfer.ErrRejected) {
		return errors.New("the offer was declined")
	}
	if err != nil {
		return err
	}
	return r.summary(env, &res)
}

// receiveDir makes sure dir is a folder before anything starts (the
// node, or the agent's receive): a missing one is created, as mkdir -p
// with mode 0700, and the user told; a file in its place is an error.
func receiveDir(env *cliEnv, dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case err == nil && fi.IsDir():
		return nil
	case err == nil:
		return fmt.Errorf("%w: --dir %s: not a folder", errUsage, dir)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("--dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("--dir: creating the folder: %w", err)
	}
	fmt.Fprintf(env.stderr, "zyre: created the folder %s\n", dir)
	return nil
}

// offerFiles is the client form of an offer's files.
func offerFiles(o *transfer.Offer) []client.OfferFile {
	fs := make([]client.OfferFile, len(o.Files))
	for i, f := range o.Files {
		fs[i] = client.OfferFile{Path: f.Path, Size: f.Size, Mode: f.Mode, SHA256: f.SHA256}
	}
	return fs
}

// notifyLine prints a transfer's news on a line of its own, escaped: it
// names the peer by the name the peer chose. On a terminal it first ends
// the progress bar's line; elsewhere there is no bar (progress.go).
func notifyLine(env *cliEnv) func(string) {
	nl := barBreak(env)
	return func(msg string) { fmt.Fprintf(env.stderr, "%szyre: %s\n", nl, terminalText(msg)) }
}
