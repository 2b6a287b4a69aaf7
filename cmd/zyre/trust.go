package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/zyre-go/zyre/agent"
	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/keystore"
	"github.com/zyre-go/zyre/trust"
)

const trustUsage = `usage: zyre trust COMMAND [flags]

commands:
  list [--json]                     the peers: name, UUID, fingerprint, state, last seen
  show PEER                         everything known about one peer
  revoke PEER [--reason R] [--local] [--yes]
                                    refuse PEER's key from now on: signed with this
                                    node's identity and shared with other nodes, or
                                    (--local) here only
  unrevoke PEER [--reason R] [--local]
                                    withdraw a mistaken revocation of ours (signed,
                                    so that other nodes follow); a key revoked
                                    because it was lost must not come back: pair
                                    the device again with a new key instead
  forget PEER                       remove PEER's record (a passer-by); not for a
                                    revoked key
  accept PEER                       accept the new key an unbound peer (a C zyre
                                    node) presented (KEY CHANGED); a peer of ours
                                    with a new key is another device: pair with it
  reject PEER                       dismiss a KEY CHANGED warning: the key presented
                                    stays refused, PEER keeps its key
  log                               the signed statements: ours and others'
  policy [open|tofu|strict]         show or set the policy
         [--introductions=BOOL] [--verified-revoke=BOOL] [--vouch=BOOL]
                                    --vouch=false: pairing no longer vouches for
                                    the peer (a shared device, see README)

common flag: --home DIR (default $ZYRE_HOME, else $XDG_CONFIG_HOME/zyre, else ~/.config/zyre),
before or after the command. With an agent of that home running ("zyre
agent"), list and the changes go through it, and it signs.
PEER is a record's own name, UUID prefix or fingerprint prefix (for accept
and reject, also the fingerprint of the key presented, which the warning
prints); on a terminal, forget of a paired peer, and revoke of one named
by a prefix, ask first (--yes does not).
revoke and unrevoke sign with the identity: its passphrase comes from
--passphrase-file, else $ZYRE_PASSPHRASE_FILE, else the terminal (three
tries); without any they change nothing and fail, unless --local.`

// runTrust implements "zyre trust".
func runTrust(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(env.stderr, trustUsage)
		return withHint(fmt.Errorf("%w: missing trust command", errUsage), "")
	}
	subs := map[string]func(context.Context, *cliEnv, []string) error{
		"list":     trustList,
		"show":     trustShow,
		"revoke":   trustRevoke,
		"unrevoke": trustUnrevoke,
		"forget":   trustForget,
		"accept":   trustAccept,
		"reject":   trustReject,
		"log":      trustLog,
		"policy":   trustPolicy,
	}
	args, err := subcommandFirst("trust", args, slices.Collect(maps.Keys(subs))...)
	if err != nil {
		return err
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprintln(env.stderr, trustUsage)
		return flag.ErrHelp
	}
	fn, ok := subs[args[0]]
	if !ok {
		return withHint(fmt.Errorf("%w: unknown command \"trust %s\"", errUsage, args[0]), `run "zyre trust --help" for the trust commands`)
	}
	return fn(ctx, env, args[1:])
}

// trustSynopses are the first lines of the trust commands' --help.
var trustSynopses = map[string]string{
	"list": `usage: zyre trust list [flags]

List the peers of the trust store: name, short UUID, fingerprint, state
(verified, introduced, tofu, revoked), last seen.`,
	"show": `usage: zyre trust show [flags] PEER

Print everything known about one peer: its key, fingerprint, state, how it
was verified or introduced, a revocation, a key change it presented.
PEER is a name, a UUID prefix or a fingerprint prefix.`,
	"revoke": `usage: zyre trust revoke [flags] PEER

Refuse PEER's key from now on: signed with this device's identity (its
passphrase from --passphrase-file, else $ZYRE_PASSPHRASE_FILE, else the
terminal) and shared with the other nodes, or with --local here only.`,
	"unrevoke": `usage: zyre trust unrevoke [flags] PEER

Withdraw a mistaken revocation of ours, signed so that other nodes follow
(--local: here only). A key revoked because it was lost must not come
back: pair the device again with a new key instead.`,
	"forget": `usage: zyre trust forget [flags] PEER

Remove PEER's record (a passer-by); not for a revoked key, whose record
keeps it refused.`,
	"accept": `usage: zyre trust accept [flags] PEER

Accept the new key PEER presented (a KEY CHANGED warning), when you know
the device changed its key. PEER is best given as the new key's
fingerprint, which the warning prints. Only an unbound peer (a C zyre
node, whose UUID is random) can change its key: a peer of ours with
another key has another UUID, so it is another device; to trust it, pair
with it.`,
	"reject": `usage: zyre trust reject [flags] PEER

Dismiss a KEY CHANGED warning: the key presented stays refused (and is
shown again if it comes back), PEER keeps its key and state. PEER is the
record or the presented key's fingerprint, as for accept.`,
	"log": `usage: zyre trust log [flags]

Print the signed statements (revocations, introductions) in the trust
store: this node's and the other nodes'.`,
	"policy": `usage: zyre trust policy [flags] [open|tofu|strict]

Show or set the trust policy: tofu (new keys are pinned on first use; the
default), open (any key but a revoked one, nothing recorded), strict
(verified peers only, and introduced ones with --introductions);
--verified-revoke says whether verified peers' revocations count.`,
}

type trustFlags struct {
	fs   *flag.FlagSet
	home string
	env  *cliEnv
}

func newTrustFlags(env *cliEnv, name string) *trustFlags {
	f := &trustFlags{fs: flag.NewFlagSet("zyre trust "+name, flag.ContinueOnError), env: env}
	f.fs.SetOutput(env.stderr)
	f.fs.StringVar(&f.home, "home", "", homeUsage)
	return f
}

// parse parses flags placed before, between or after the positional
// arguments, and checks their number.
func (f *trustFlags) parse(args []string, minArgs, maxArgs int) ([]string, error) {
	pos, err := parseFlags(f.env, f.fs, trustSynopses[strings.TrimPrefix(f.fs.Name(), "zyre trust ")], args)
	if err != nil {
		return nil, err
	}
	switch {
	case len(pos) < minArgs:
		return nil, fmt.Errorf("%w: missing PEER argument", errUsage)
	case len(pos) > maxArgs:
		return nil, fmt.Errorf("%w: unexpected argument %q", errUsage, pos[maxArgs])
	}
	return pos, nil
}

// homeDir returns the home of --home, else the default one; one that does
// not exist is an error (a mistyped --home is neither read as an empty
// store nor created).
func (f *trustFlags) homeDir(env *cliEnv) (string, error) {
	home := f.home
	if home == "" {
		var err error
		if home, err = keystore.DefaultHome(env.getenv); err != nil {
			return "", withHint(err, "pass --home DIR")
		}
	}
	if err := missingHome(home, f.home != "", ""); err != nil {
		return "", err
	}
	return home, nil
}

func (f *trustFlags) store(env *cliEnv) (*trust.Store, error) {
	home, err := f.homeDir(env)
	if err != nil {
		return nil, err
	}
	return trust.Open(home, trust.Options{Logger: plainLog(env)})
}

// safe makes untrusted text (peer names come from the network) harmless
// on a terminal.
func safe(s string) string {
	if s == "" {
		return "-"
	}
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}

func stateLabel(r *trust.Record) string {
	switch {
	case r.State == trust.StateRevoked:
		return "REVOKED"
	case r.KeyChange != nil:
		return r.State.String() + " KEY-CHANGED!"
	}
	return r.State.String()
}

// keyChangeWarning prints the lines nobody should miss.
func keyChangeWarning(w io.Writer, r *trust.Record) {
	kc := r.KeyChange
	fmt.Fprintf(w, "WARNING: KEY CHANGED for %s (uuid %s)\n", safe(r.Name), r.ShortUUID())
	fmt.Fprintf(w, "WARNING:   pinned key:    %s (%s)\n", r.Fingerprint, r.State)
	fmt.Fprintf(w, "WARNING:   presented key: %s as %s uuid %s, %s from %s\n", kc.NewFingerprint, safe(kc.Name), kc.UUID, kc.Seen.Local().Format(time.RFC3339), safe(kc.Addr))
	fmt.Fprintln(w, "WARNING:   it is refused: someone may be impersonating this peer.")
	if r.Bound || kc.Bound {
		fmt.Fprintln(w, "WARNING:   our nodes' UUIDs derive from their keys, so this cannot be a genuine key change.")
		fmt.Fprintf(w, "WARNING:   to dismiss this warning, run: zyre trust reject %s\n", kc.NewFingerprint)
	} else {
		fmt.Fprintf(w, "WARNING:   to dismiss it: zyre trust reject %s\n", kc.NewFingerprint)
		fmt.Fprintf(w, "WARNING:   if you know the peer changed its key, run: zyre trust accept %s\n", kc.NewFingerprint)
	}
}

func trustList(ctx context.Context, env *cliEnv, args []string) error {
	f := newTrustFlags(env, "list")
	asJSON := f.fs.Bool("json", false, "print JSON")
	var a agentFlags
	a.register(f.fs)
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	if done, err := trustListAgent(ctx, env, f, &a, *asJSON); done {
		return err
	}
	st, err := f.store(env)
	if err != nil {
		return err
	}
	recs, err := st.List()
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]client.TrustRecord, 0, len(recs))
		for i := range recs {
			out = append(out, agent.TrustRecordOf(&recs[i]))
		}
		return writeJSON(env.stdout, out)
	}
	if len(recs) == 0 {
		fmt.Fprintf(env.stderr, "zyre: no peers in %s\n", st.Path())
		return nil
	}
	names := map[string]string{}
	for i := range recs {
		names[recs[i].Fingerprint] = recs[i].Name
	}
	tw := tabwriter.NewWriter(env.stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tUUID\tFINGERPRINT\tSTATE\tLAST SEEN")
	for i := range recs {
		r := &recs[i]
		state := stateLabel(r)
		if r.State == trust.StateIntroduced && !r.IntroducedBy.IsZero() {
			state += introducerLabel(names, trust.Fingerprint(r.IntroducedBy))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", safe(r.Name), r.ShortUUID(), r.Fingerprint, state, fmtTime(r.LastSeen))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for i := range recs {
		if recs[i].KeyChange != nil && recs[i].State != trust.StateRevoked {
			fmt.Fprintln(env.stdout)
			keyChangeWarning(env.stdout, &recs[i])
		}
	}
	return nil
}

// introducerLabel is " by NAME" (or " by FINGERPRINT" for an introducer
// without a name here) for the STATE column of "zyre trust list"; names
// maps fingerprints to names.
func introducerLabel(names map[string]string, fp string) string {
	if n := names[fp]; n != "" {
		return " by " + safe(n)
	}
	return " by " + fp
}

// record parses the one argument PEER (a name, UUID or fingerprint
// prefix), opens the store and finds that record with of: recordOf, or
// keyChangeOf.
func (f *trustFlags) record(env *cliEnv, args []string, of func(*cliEnv, string) (*trust.Store, trust.Record, error)) (*trust.Store, trust.Record, error) {
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return nil, trust.Record{}, err
	}
	return of(env, pos[0])
}

// recordOf opens the store and finds the record q names.
func (f *trustFlags) recordOf(env *cliEnv, q string) (*trust.Store, trust.Record, error) {
	st, err := f.store(env)
	if err != nil {
		return nil, trust.Record{}, err
	}
	r, err := find(st, q)
	return st, r, err
}

// find finds the record q names in st, listing the candidates of an
// ambiguous q.
func find(st *trust.Store, q string) (trust.Record, error) {
	r, err := st.Find(q)
	return r, explainAmbiguous(q, err)
}

// explainAmbiguous lists the candidates of an ambiguous PEER q.
func explainAmbiguous(q string, err error) error {
	var ae *trust.AmbiguousError
	if errors.As(err, &ae) {
		var b strings.Builder
		fmt.Fprintf(&b, "%q is ambiguous; it matches:", q)
		for _, c := range ae.Candidates {
			fmt.Fprintf(&b, "\n  %s  %s  %s  %s", safe(c.Name), c.ShortUUID(), c.Fingerprint, c.State)
		}
		b.WriteString("\nuse a longer UUID or fingerprint prefix")
		return fmt.Errorf("%w: %s", trust.ErrAmbiguous, b.String())
	}
	return err
}

// byPrefix reports whether q named r by a prefix: not by its exact name,
// its whole UUID, its whole fingerprint or its key.
func byPrefix(r *trust.Record, q string) bool {
	norm := strings.ToLower(strings.ReplaceAll(q, "-", ""))
	return q != r.Name && q != r.Key.Z85() && norm != strings.ReplaceAll(r.UUID.String(), "-", "") &&
		norm != strings.ToLower(strings.ReplaceAll(r.Fingerprint, "-", ""))
}

// confirm asks question on a terminal (and passes without one, or with
// --yes): a paired device is not forgotten or revoked by a slip.
func confirm(ctx context.Context, env *cliEnv, yes bool, question, no string) error {
	if _, isTerm := terminalFd(env); !isTerm || yes {
		return nil
	}
	ok, err := askYes(ctx, env, question)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New(no)
	}
	return nil
}

// recordText names a record exactly, for a question: name, fingerprint,
// whole UUID, state.
func recordText(r *trust.Record) string {
	return fmt.Sprintf("%s (fingerprint %s, uuid %s)", safe(r.Name), r.Fingerprint, r.UUID)
}

// keyNames returns a function that names a key by its record in st, as
// "NAME (FINGERPRINT)", or by its fingerprint alone when st has none.
func keyNames(st *trust.Store) func(curve.PublicKey) string {
	recs, _ := st.List()
	return func(k curve.PublicKey) string {
		for _, r := range recs {
			if r.Key == k {
				return safe(r.Name) + " (" + r.Fingerprint + ")"
			}
		}
		return trust.Fingerprint(k)
	}
}

func trustShow(_ context.Context, env *cliEnv, args []string) error {
	f := newTrustFlags(env, "show")
	asJSON := f.fs.Bool("json", false, "print JSON")
	st, r, err := f.record(env, args, f.recordOf)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(env.stdout, agent.TrustRecordOf(&r))
	}
	nameOf := keyNames(st)
	w := env.stdout
	if r.KeyChange != nil && r.State != trust.StateRevoked {
		keyChangeWarning(w, &r)
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "name:          %s\n", safe(r.Name))
	fmt.Fprintf(w, "uuid:          %s\n", r.UUID)
	if r.Bound {
		fmt.Fprintln(w, "bound:         yes (the UUID is derived from the key)")
	} else {
		fmt.Fprintln(w, "bound:         no (the UUID is pinned to the key)")
	}
	fmt.Fprintf(w, "public key:    %s\n", r.Key.Z85())
	fmt.Fprintf(w, "fingerprint:   %s\n", r.Fingerprint)
	fmt.Fprintf(w, "state:         %s\n", stateLabel(&r))
	if r.VerifiedMethod != "" {
		fmt.Fprintf(w, "verified:      by %s, %s\n", safe(r.VerifiedMethod), fmtTime(r.VerifiedAt))
	}
	if !r.IntroducedBy.IsZero() {
		fmt.Fprintf(w, "introduced by: %s\n", nameOf(r.IntroducedBy))
	}
	if r.SigningKey != nil {
		sk, _ := curve.EncodeZ85(r.SigningKey)
		fmt.Fprintf(w, "signing key:   %s\n", sk)
	}
	fmt.Fprintf(w, "first seen:    %s\n", fmtTime(r.FirstSeen))
	fmt.Fprintf(w, "last seen:     %s", fmtTime(r.LastSeen))
	if r.LastAddr != "" {
		fmt.Fprintf(w, " from %s", safe(r.LastAddr))
	}
	fmt.Fprintln(w)
	if r.State == trust.StateRevoked {
		by := "locally"
		if !r.RevokedBy.IsZero() {
			by = "by " + nameOf(r.RevokedBy)
		}
		fmt.Fprintf(w, "revoked:       %s %s: %s\n", fmtTime(r.RevokedAt), by, safe(r.RevokeReason))
	}
	if r.Notes != "" {
		for i, line := range strings.Split(r.Notes, "\n") {
			label := "notes:        "
			if i > 0 {
				label = "              "
			}
			fmt.Fprintf(w, "%s %s\n", label, safe(line))
		}
	}
	return nil
}

func trustRevoke(ctx context.Context, env *cliEnv, args []string) error {
	f := newTrustFlags(env, "revoke")
	sf := f.signedFlags("why the key is revoked (at most 255 octets; other nodes see it)", "revoke here only, unsigned: other nodes are not told")
	yes := f.fs.Bool("yes", false, "revoke a peer named by a prefix without asking (on a terminal, zyre asks first)")
	peer, err := sf.parse(f, args)
	if err != nil {
		return err
	}
	// No device named by a prefix is revoked by a slip: on a terminal, say
	// exactly which and ask. Not only paired ones: a signed revocation is
	// honoured by every node that trusts this one, so a typo that names a
	// stranger's record here may revoke a device the others know (usertry4
	// #4). (The store is read here, also when the agent makes the change.)
	if _, r, err := f.recordOf(env, peer); err == nil && byPrefix(&r, peer) {
		where := "for every node that trusts this one"
		if *sf.local {
			where = "here"
		}
		q := fmt.Sprintf("%s is %s: revoke it %s? Its key is refused from then on.", recordText(&r), r.State, where)
		if err := confirm(ctx, env, *yes, q, "not revoked"); err != nil {
			return err
		}
	}
	if ok, err := sf.viaAgent(ctx, f, "trust.revoke", peer); ok {
		return err
	}
	st, r, err := f.recordOf(env, peer)
	if err != nil {
		return err
	}
	if *sf.local {
		if _, err := st.Revoke(ctx, r.Key, *sf.reason); err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "revoked %s (%s, uuid %s) here only; other nodes were not told\n", safe(r.Name), r.Fingerprint, r.ShortUUID())
		return nil
	}
	// All or nothing: signed (and so shared by the node) or not applied.
	s, err := sf.sign(ctx, f, st, &trust.Revoke{Key: r.Key, Reason: *sf.reason}, "not revoked", "--local revokes here only, unsigned")
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "revoked %s (%s, uuid %s): signed revocation #%d; a node running on this store shares it in the group zyre-trust\n",
		safe(r.Name), r.Fingerprint, r.ShortUUID(), s.Seq)
	return nil
}

// signedFlags are the flags of a trust change that is signed with the
// identity ("zyre trust revoke", "unrevoke"): a reason, said to the other
// nodes; the identity's passphrase; --local, for a change here only,
// unsigned; and the agent's.
type signedFlags struct {
	reason, passFile *string
	local            *bool
	a                agentFlags
}

// signedFlags registers the flags of a signed change on f, with the
// usage texts of --reason and --local.
func (f *trustFlags) signedFlags(reasonUsage, localUsage string) *signedFlags {
	sf := &signedFlags{
		reason:   f.fs.String("reason", "", reasonUsage),
		passFile: f.fs.String("passphrase-file", "", "read the identity's passphrase from the first line of `FILE` (default $ZYRE_PASSPHRASE_FILE)"),
		local:    f.fs.Bool("local", false, localUsage),
	}
	sf.a.register(f.fs)
	return sf
}

// parse parses args (the flags and one PEER) and checks the reason's
// length; it returns PEER.
func (sf *signedFlags) parse(f *trustFlags, args []string) (string, error) {
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return "", err
	}
	if len(*sf.reason) > 255 {
		return "", fmt.Errorf("%w: --reason is %d octets, at most 255", errUsage, len(*sf.reason))
	}
	return pos[0], nil
}

// viaAgent makes the change op of peer through the agent that runs for
// f's home, if one does (changeViaAgent).
func (sf *signedFlags) viaAgent(ctx context.Context, f *trustFlags, op, peer string) (ok bool, err error) {
	return f.changeViaAgent(ctx, f.env, &sf.a, op, client.TrustArgs{Peer: peer, Reason: *sf.reason, Local: *sf.local})
}

// sign signs body into st's log with the identity of f's home. It fails
// all or nothing, said as "NOT: why (nothing was changed; HINT)", or
// "NOT: err" when signing fails.
func (sf *signedFlags) sign(ctx context.Context, f *trustFlags, st *trust.Store, body trust.Body, not, hint string) (*trust.Statement, error) {
	home, _ := f.homeDir(f.env)
	id, why := trustIdentity(ctx, f.env, home, *sf.passFile)
	if id == nil {
		return nil, fmt.Errorf("%s: %s (nothing was changed; %s)", not, why, hint)
	}
	defer id.Wipe()
	s, err := st.Sign(ctx, id, body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", not, err)
	}
	return s, nil
}

// trustIdentity loads the node's identity to sign with, or says why not.
func trustIdentity(ctx context.Context, env *cliEnv, home, passFile string) (*keystore.Identity, string) {
	ks, err := keystore.Open(home, keystore.Options{Logger: quietLog()})
	if err != nil {
		return nil, err.Error()
	}
	kind, err := ks.Kind()
	if err != nil {
		return nil, fmt.Sprintf("no identity to sign with (%v)", err)
	}
	var u keystore.Unlock
	switch kind {
	case keystore.KindPlaintext:
	case keystore.KindPassphrase:
		file := passFile
		if file == "" {
			file = env.getenv("ZYRE_PASSPHRASE_FILE")
		}
		if _, tty := terminalFd(env); file == "" && !tty {
			return nil, "the identity is protected by a passphrase and stdin is not a terminal: give --passphrase-file or ZYRE_PASSPHRASE_FILE"
		}
		// From the file, else asked on the terminal (three tries).
		id, err := loadWithTries(ctx, env, ks, passFile)
		if err != nil {
			return nil, fmt.Sprintf("cannot load the identity: %v", err)
		}
		return id, ""
	default:
		return nil, fmt.Sprintf("the identity is protected by %s; only passphrase or plaintext identities can sign here", kind)
	}
	id, err := ks.Load(ctx, u)
	if err != nil {
		return nil, fmt.Sprintf("cannot load the identity: %v", err)
	}
	return id, ""
}

func trustAccept(ctx context.Context, env *cliEnv, args []string) error {
	f := newTrustFlags(env, "accept")
	var a agentFlags
	a.register(f.fs)
	st, r, err := f.record(env, args, f.keyChangeOf)
	if err != nil {
		return err
	}
	if kc := r.KeyChange; r.Bound || kc.Bound {
		return withHint(fmt.Errorf("%w: the key %s that presented itself as %s (uuid %s) is another device, not a new key of %s (%s): our nodes' UUIDs derive from their keys",
			trust.ErrAnotherDevice, kc.NewFingerprint, safe(kc.Name), kc.UUID, safe(r.Name), r.Fingerprint),
			fmt.Sprintf("to trust that device, pair with it (zyre pair); to dismiss the warning: zyre trust reject %s", kc.NewFingerprint))
	}
	// The record, by its whole UUID: the agent resolves it the same way.
	if ok, err := f.changeViaAgent(ctx, env, &a, "trust.accept", client.TrustArgs{Peer: r.UUID.String()}); ok {
		return err
	}
	nr, err := st.Accept(ctx, r.Key)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "accepted the new key of %s: %s (was %s)\n", safe(nr.Name), nr.Fingerprint, r.Fingerprint)
	fmt.Fprintf(env.stderr, "zyre: the key is now only trusted on first use; verify it by pairing\n")
	return nil
}

// keyChangeOf opens the store and finds the record whose pending key
// change q names (the presented key's fingerprint, or the record).
func (f *trustFlags) keyChangeOf(env *cliEnv, q string) (*trust.Store, trust.Record, error) {
	st, err := f.store(env)
	if err != nil {
		return nil, trust.Record{}, err
	}
	r, err := st.FindKeyChange(q)
	if err != nil {
		return nil, r, explainAmbiguous(q, err)
	}
	if r.KeyChange == nil {
		err := fmt.Errorf("%w: %s (%s) presented no other key", trust.ErrNoKeyChange, safe(r.Name), r.Fingerprint)
		if r.Bound && !r.Trusted() {
			// A stranger refused for a known name, say: its own record.
			return nil, r, withHint(err, fmt.Sprintf("%s is a device of its own; to trust it, pair with it (zyre pair)", r.Fingerprint))
		}
		return nil, r, err
	}
	return st, r, nil
}

// trustReject implements "zyre trust reject": the store is changed here
// also when an agent runs (nothing to sign; the agent reads the change).
func trustReject(ctx context.Context, env *cliEnv, args []string) error {
	f := newTrustFlags(env, "reject")
	var a agentFlags
	a.register(f.fs)
	st, r, err := f.record(env, args, f.keyChangeOf)
	if err != nil {
		return err
	}
	kc, err := st.Reject(ctx, r.Key)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "rejected the key %s presented as %s (uuid %s): it stays refused; %s keeps its key %s (%s)\n",
		kc.NewFingerprint, safe(kc.Name), kc.UUID, safe(r.Name), r.Fingerprint, r.State)
	return nil
}

func trustLog(_ context.Context, env *cliEnv, args []string) error {
	f := newTrustFlags(env, "log")
	asJSON := f.fs.Bool("json", false, "print JSON")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	st, err := f.store(env)
	if err != nil {
		return err
	}
	logs, err := st.Logs()
	if err != nil {
		return err
	}
	var self []byte
	if home, err := f.homeDir(env); err == nil {
		if ks, err := keystore.Open(home, keystore.Options{Logger: quietLog()}); err == nil {
			if p, err := ks.Public(); err == nil {
				self = p.SigningKey
			}
		}
	}
	label := keyNames(st)
	if *asJSON {
		return writeJSON(env.stdout, logsJSON(logs, self))
	}
	if len(logs) == 0 {
		fmt.Fprintf(env.stderr, "zyre: no statements in %s\n", st.Path())
		return nil
	}
	w := env.stdout
	for i, l := range logs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		sk, _ := curve.EncodeZ85(l.Signer)
		who := "unknown peer"
		switch {
		case bytes.Equal(l.Signer, self):
			who = "this node"
		case l.Owner != nil:
			who = fmt.Sprintf("%s (%s, %s)", safe(l.Owner.Name), l.Owner.Fingerprint, l.Owner.State)
		}
		plural := "s"
		if len(l.Statements) == 1 {
			plural = ""
		}
		fmt.Fprintf(w, "signer %s: %s, %d statement%s\n", sk, who, len(l.Statements), plural)
		for _, s := range l.Statements {
			fmt.Fprintf(w, "  #%-4d %s  ", s.Seq, s.Time.Local().Format("2006-01-02 15:04:05"))
			switch b := s.Body.(type) {
			case *trust.Vouch:
				fmt.Fprintf(w, "vouch   %s as %s uuid %s\n", label(b.Key), safe(b.Name), b.UUID)
			case *trust.Revoke:
				fmt.Fprintf(w, "revoke  %s: %s\n", label(b.Key), safe(b.Reason))
			case *trust.Unrevoke:
				fmt.Fprintf(w, "unrevoke %s: %s\n", label(b.Key), safe(b.Reason))
			default:
				fmt.Fprintf(w, "%s\n", s.Kind())
			}
		}
	}
	return nil
}

func trustPolicy(ctx context.Context, env *cliEnv, args []string) error {
	f := newTrustFlags(env, "policy")
	asJSON := f.fs.Bool("json", false, "print JSON")
	intro := f.fs.Bool("introductions", true, "let vouches by verified peers introduce keys")
	vrev := f.fs.Bool("verified-revoke", true, "honour revocations signed by verified peers")
	vouch := f.fs.Bool("vouch", true, "vouch for the peers this node pairs with: the nodes that verified it then trust them as introduced")
	var a agentFlags
	a.register(f.fs)
	pos, err := f.parse(args, 0, 1)
	if err != nil {
		return err
	}
	if len(pos) == 1 || flagSet(f.fs, "introductions") || flagSet(f.fs, "verified-revoke") || flagSet(f.fs, "vouch") {
		// A change: through the agent when one runs with this home.
		args := client.TrustArgs{}
		if len(pos) == 1 {
			if _, err := trust.ParseMode(pos[0]); err != nil {
				return fmt.Errorf("%w: %v", errUsage, err)
			}
			args.Mode = pos[0]
		}
		if flagSet(f.fs, "introductions") {
			args.Introductions = intro
		}
		if flagSet(f.fs, "verified-revoke") {
			args.VerifiedRevoke = vrev
		}
		if flagSet(f.fs, "vouch") {
			args.Vouch = vouch
		}
		if c, err := f.agent(ctx, env, &a); err != nil || c != nil {
			if err != nil {
				return err
			}
			defer c.Close()
			ch, err := c.TrustChange(ctx, "trust.policy", args)
			if err != nil {
				return err
			}
			if ch.Policy == nil {
				return errors.New("agent: trust.policy: no policy in the answer")
			}
			return printPolicy(env, *ch.Policy, *asJSON)
		}
	}
	st, err := f.store(env)
	if err != nil {
		return err
	}
	p, err := st.Policy()
	if err != nil {
		return err
	}
	changed := false
	f.fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "introductions":
			p.Introductions, changed = *intro, true
		case "verified-revoke":
			p.VerifiedRevoke, changed = *vrev, true
		case "vouch":
			p.Vouch, changed = *vouch, true
		}
	})
	if len(pos) == 1 {
		m, err := trust.ParseMode(pos[0])
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		p.Mode, changed = m, true
	}
	if changed {
		if err := st.SetPolicy(ctx, p); err != nil {
			return err
		}
	}
	return printPolicy(env, client.TrustPolicy{Mode: p.Mode.String(), Introductions: p.Introductions, VerifiedRevoke: p.VerifiedRevoke, Vouch: p.Vouch}, *asJSON)
}

func printPolicy(env *cliEnv, p client.TrustPolicy, asJSON bool) error {
	if asJSON {
		return writeJSON(env.stdout, p)
	}
	fmt.Fprintf(env.stdout, "mode:            %s\n", p.Mode)
	fmt.Fprintf(env.stdout, "introductions:   %v\n", p.Introductions)
	fmt.Fprintf(env.stdout, "verified-revoke: %v\n", p.VerifiedRevoke)
	fmt.Fprintf(env.stdout, "vouch:           %v\n", p.Vouch)
	return nil
}
