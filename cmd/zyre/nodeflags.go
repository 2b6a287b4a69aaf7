package main

import (
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/term"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/keystore"
	"github.com/zyre-go/zyre/transfer"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// nodeFlags are the flags shared by the commands that run a node: demo,
// monitor, chat, peers.
type nodeFlags struct {
	fs       *flag.FlagSet
	name     string
	groups   listFlag
	port     int
	iface    string
	loopback bool
	verbose  bool
	headers  listFlag
	contest  listFlag // groups whose leadership we contest

	// Gossip discovery (ZGOSSIP, as zyre_gossip_bind/connect).
	gossipBind    string
	gossipConnect listFlag
	gossipKey     string
	gossipBeacons bool

	// --secure: CURVE, v3 beacons, UUID from key (spec/secure-node.md).
	secure         bool
	home           string
	passphraseFile string
	ephemeral      bool
	env            *cliEnv
	trustStore     *trust.Store         // secure mode's, once the node is configured
	secret         curve.SecretKey      // secure mode's, once the node is configured
	onRevoked      func([]trust.Record) // passed to the trust store (trust.Options.OnRevoked)
	synopsis       string               // the first lines of --help
	keepIdentity   bool                 // keep the identity in identity (the agent's pairing and signing)
	noEphemeral    bool                 // the command refuses --ephemeral: hints do not offer it
	binaryStdout   bool                 // the command writes binary to stdout: never to a terminal
	identity       *keystore.Identity   // with keepIdentity, once the node is configured; the caller wipes it
	agentSocket    string               // the agent's control socket, said by the node lock (nodelock.go)
	locked         bool                 // the node lock is held (lockIdentity)
}

func newNodeFlags(env *cliEnv, cmd string) *nodeFlags {
	f := &nodeFlags{fs: flag.NewFlagSet("zyre "+cmd, flag.ContinueOnError), env: env}
	f.fs.SetOutput(env.stderr)
	f.fs.StringVar(&f.name, "name", "", "node `name` (default: the first 6 characters of its UUID)")
	f.fs.Var(&f.groups, "group", "join `GROUP` (repeatable)")
	f.fs.IntVar(&f.port, "port", zre.DefaultBeaconPort, "UDP beacon `port`")
	f.fs.StringVar(&f.iface, "interface", "", "beacon on this interface `name or address`, or * for all (default: that of the default route, else the first up broadcast interface)")
	f.fs.BoolVar(&f.loopback, "loopback", false, "stay on loopback: beacons on lo, inbox on 127.0.0.1")
	f.fs.BoolVar(&f.verbose, "verbose", false, "log the libraries' records (slog, from debug up) to stderr; without it, only warnings, each as one \"zyre:\" line")
	f.fs.Var(&f.headers, "header", "send header `K=V` in HELLO (repeatable)")
	f.fs.StringVar(&f.gossipBind, "gossip-bind", "", "discover by gossip: serve it on `ENDPOINT` (tcp://host:port; port * for any); beacons off")
	f.fs.Var(&f.gossipConnect, "gossip-connect", "discover by gossip: connect to the gossip server at `ENDPOINT` (repeatable); beacons off")
	f.fs.StringVar(&f.gossipKey, "gossip-key", "", "the gossip servers' CURVE public `key` (Z85) for --gossip-connect")
	f.fs.BoolVar(&f.gossipBeacons, "gossip-beacons", false, "with --gossip-bind/--gossip-connect, keep UDP beacons on too")
	f.fs.Var(&f.contest, "contest", "contest the leadership of `GROUP` (repeatable; LEADER events say who won)")
	f.fs.BoolVar(&f.secure, "secure", false, "secure mode: CURVE with this node's keys (from the keystore, else ephemeral), v3 beacons; meets only secure nodes")
	f.fs.StringVar(&f.home, "home", "", homeUsage)
	f.fs.StringVar(&f.passphraseFile, "passphrase-file", "", "read the keystore passphrase from the first line of `FILE` (default $ZYRE_PASSPHRASE_FILE)")
	f.fs.BoolVar(&f.ephemeral, "ephemeral", false, "secure mode with a new key for this run only, not the keystore's")
	f.fs.Lookup("secure").Usage = "secure mode: CURVE with this node's keys from the keystore (an error when it has none; see --ephemeral), v3 beacons; meets only secure nodes"
	f.synopsis = nodeSynopses[cmd]
	switch {
	case cmd == "agent":
		// Secure unless --plain: --secure says nothing more.
		hideFlags(f.fs, "secure")
	case cmd == "send" || cmd == "receive" || strings.HasPrefix(cmd, "stream"):
		// Always secure with this node's identity and trust store.
		hideFlags(f.fs, "secure", "ephemeral")
		f.noEphemeral = true
	}
	f.binaryStdout = cmd == "stream recv"
	return f
}

// homeUsage is the one wording of --home and its default.
const homeUsage = "keystore and trust store `directory` (default $ZYRE_HOME, else $XDG_CONFIG_HOME/zyre, else ~/.config/zyre)"

// nodeSynopses are the first lines of --help of the commands that run a
// node and set none of their own.
var nodeSynopses = map[string]string{
	"monitor": `usage: zyre monitor [flags]

Print every event of a node, one line each, until interrupted: ENTER,
EXIT, JOIN, LEAVE, SHOUT, WHISPER, LEADER, EVASIVE, SILENT, and in secure
mode REFUSED and KEY CHANGED. With an agent running ("zyre agent"), the
events of its node (also with --secure, --home or --passphrase-file when
they name the identity it runs); else of a node run by this command: a
plain one, or with --secure (or --home, --passphrase-file) this device's
identity.`,
	"chat": `usage: zyre chat [flags]

Chat in a group (--group, default "chat"): each line read from stdin is
shouted to the group, and every event is printed. In secure mode the lines
are sealed to the group's trusted members unless --public. With an agent
running ("zyre agent"), the chat goes through its node (also with
--secure, --home or --passphrase-file when they name the identity it
runs). Without --secure, --home, --passphrase-file or an agent, the chat
is plain ZRE, in clear, and says so. It ends at the end of stdin or when
interrupted.`,
	"demo": `usage: zyre demo [flags]

Run three nodes on loopback and show what they do: discovery, groups,
shouts and whispers, leaving. With --secure they run in secure mode (each
with an ephemeral key) and a forger claiming one of their UUIDs is
refused; --private adds an end-to-end encrypted group. Nothing leaves the
machine.`,
}

// parse parses args; extra positional arguments are a usage error.
func (f *nodeFlags) parse(args []string) error {
	pos, err := f.parseArgs(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, pos[0])
	}
	return nil
}

// parseArgs parses the flags wherever they are and returns the positional
// arguments.
func (f *nodeFlags) parseArgs(args []string) ([]string, error) {
	pos, err := parseFlags(f.env, f.fs, f.synopsis, args)
	if err != nil {
		return nil, err
	}
	return pos, f.check()
}

// check checks the flags' values.
func (f *nodeFlags) check() error {
	if f.ephemeral {
		f.secure = true
	}
	if flagSet(f.fs, "passphrase-file") || flagSet(f.fs, "home") {
		// A passphrase or a home is for this device's identity: asking
		// for it says secure mode (private by default), never a plain
		// node in clear that ignores it (usertry2 #1).
		f.secure = true
	}
	if f.port <= 0 || f.port > 65535 {
		return fmt.Errorf("%w: bad --port %d", errUsage, f.port)
	}
	if f.binaryStdout {
		return binaryToTerminal(f.env)
	}
	return nil
}

// binaryToTerminal refuses, as age does, binary output to a terminal: a
// usage error when env's stdout is one, else nil.
func binaryToTerminal(env *cliEnv) error {
	f, ok := env.stdout.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return withHint(fmt.Errorf("%w: refusing to write the stream (binary) to the terminal", errUsage),
		"redirect stdout to a file or a pipe: zyre stream recv GROUP > FILE, or | a player")
}

// libLog is the logger of the libraries the command runs beside its
// node n (nil before it runs), by the CLI's rule (logs.go).
func (f *nodeFlags) libLog(env *cliEnv, n *zre.Node) *slog.Logger {
	return termLog(env, logOptions{verbose: f.verbose, node: n, trust: f.trustStore})
}

// config makes a node configuration from the flags.
func (f *nodeFlags) config(env *cliEnv) (zre.Config, error) {
	cfg := zre.Config{
		Name:   f.name,
		Beacon: zre.BeaconConfig{Port: f.port, Interface: f.iface, Loopback: f.loopback},
		Logger: nodeLog(env, f.verbose),
	}
	for _, h := range f.headers {
		k, v, ok := strings.Cut(h, "=")
		if !ok || k == "" {
			return cfg, fmt.Errorf("%w: --header %q: want K=V", errUsage, h)
		}
		cfg.Headers = append(cfg.Headers, zre.Header{Key: k, Value: v})
	}
	if f.gossipBind != "" || len(f.gossipConnect) > 0 {
		g := &zre.GossipConfig{Bind: f.gossipBind, Beacons: f.gossipBeacons}
		var key curve.PublicKey
		if f.gossipKey != "" {
			var err error
			if key, err = curve.ParsePublicKey(f.gossipKey); err != nil {
				return cfg, fmt.Errorf("%w: --gossip-key: %v", errUsage, err)
			}
		}
		for _, ep := range f.gossipConnect {
			g.Connect = append(g.Connect, zre.GossipServer{Endpoint: ep, Key: key})
		}
		cfg.Gossip = g
	} else if f.gossipKey != "" || f.gossipBeacons {
		return cfg, fmt.Errorf("%w: --gossip-key and --gossip-beacons go with --gossip-bind or --gossip-connect", errUsage)
	}
	return cfg, nil
}

// secureConfig returns the secure mode's configuration for --secure: this
// node's identity from the keystore (and its name, unless --name is given),
// or with --ephemeral a new keypair for this run, said on stderr. A missing
// home or identity is an error. A passphrase is asked only for an
// encrypted store, three times on a terminal.
func (f *nodeFlags) secureConfig(ctx context.Context, env *cliEnv) (*zre.SecureConfig, string, error) {
	if f.ephemeral {
		pub, sec, err := curve.GenerateKeyPair(nil)
		if err != nil {
			return nil, "", err
		}
		fmt.Fprintf(env.stderr, "zyre: --ephemeral: using the new key %s for this run\n", pub)
		f.secret = sec
		return &zre.SecureConfig{Public: pub, Secret: sec}, "", nil
	}
	if err := f.lockIdentity(env); err != nil {
		return nil, "", err
	}
	id, home, err := loadNodeIdentity(ctx, env, f.home, f.passphraseFile, !f.noEphemeral)
	if err != nil {
		return nil, "", err
	}
	if f.keepIdentity {
		f.identity = id
	} else {
		defer id.Wipe()
	}
	pub, sec := id.CurveKeyPair()
	// The trust store beside the identity decides on every peer key; our
	// signing key ties our statements (zyre trust revoke) to our key.
	// Another key presenting this node's name is refused (spec/trust.md,
	// Admission rule 4): the default name derives from the UUID, so only
	// a chosen name meets another.
	self := f.name
	if self == "" {
		self = id.Name
	}
	ts, err := trust.Open(home, trust.Options{Logger: plainLog(env), OnRevoked: f.onRevoked, SelfName: self, SelfKey: pub})
	if err != nil {
		return nil, "", err
	}
	f.trustStore, f.secret = ts, sec
	sign := append(ed25519.PrivateKey(nil), id.Signer()...)
	fmt.Fprintf(env.stderr, "zyre: secure mode with the identity in %s: fingerprint %s, trust store %s\n", home, trust.Fingerprint(pub), ts.Path())
	return &zre.SecureConfig{Public: pub, Secret: sec, Trust: &zre.TrustConfig{Store: ts, Signer: sign}}, id.Name, nil
}

// lockIdentity takes the node lock of the identity of the home (see
// nodelock.go), once, held until the command ends: one node per identity
// (the agent's or a command's own), a second refused before any
// passphrase is asked and before anything else is said. Nothing for a
// plain node or --ephemeral.
func (f *nodeFlags) lockIdentity(env *cliEnv) error {
	if f.locked || !f.secure || f.ephemeral {
		return nil
	}
	home, err := homeDir(env, f.home)
	if err != nil {
		return nil // loading the identity says what is wrong
	}
	unlock, err := lockNode(home, nodeHolder{Command: f.fs.Name(), Socket: f.agentSocket}, !f.noEphemeral)
	if err != nil {
		return err
	}
	if unlock != nil {
		env.hold(unlock)
	}
	f.locked = true
	return nil
}

// startNode makes, starts and joins the flags' groups.
func (f *nodeFlags) startNode(ctx context.Context, env *cliEnv) (*zre.Node, error) {
	if err := f.lockIdentity(env); err != nil {
		return nil, err
	}
	cfg, err := f.config(env)
	if err != nil {
		return nil, err
	}
	if !f.loopback {
		cfg.Beacon.Interface = chooseInterface(env, f.iface)
	}
	if f.secure {
		sc, name, err := f.secureConfig(ctx, env)
		if err != nil {
			return nil, err
		}
		cfg.Secure = sc
		if cfg.Name == "" {
			cfg.Name = name
		}
	}
	n, err := zre.New(cfg)
	if err != nil {
		return nil, err
	}
	for _, g := range f.contest {
		if err := n.SetContest(g); err != nil {
			n.Close()
			return nil, fmt.Errorf("%w: --contest: %v", errUsage, err)
		}
	}
	for _, g := range f.groups {
		if err := n.Join(g); err != nil {
			n.Close()
			return nil, err
		}
	}
	if err := n.Start(ctx); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// stopNode says goodbye (bounded in time even when ctx is cancelled) and
// closes the node.
func stopNode(n *zre.Node) {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	n.Stop(ctx)
	n.Close()
}

// uuidText is zyre's short text form of a UUID (shortID).
func uuidText(id uuid.UUID) string { return shortID(id) }

// contentText renders message frames for a terminal: printable UTF-8 as
// is, anything else quoted; frames separated by spaces.
func contentText(frames [][]byte) string {
	parts := make([]string, len(frames))
	for i, f := range frames {
		if printable(f) {
			parts[i] = string(f)
		} else {
			parts[i] = strconv.Quote(string(f))
		}
	}
	return strings.Join(parts, " ")
}

func printable(b []byte) bool {
	if len(b) == 0 || !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// keyChangedWarning is the unmissable line for a key change.
// The peer chose its name: it is shown escaped, and the command to run
// names the new key by its fingerprint, never by that name (which could
// be "x; rm -rf ~", pasted into a shell).
func keyChangedWarning(e *zre.KeyChanged) string {
	name := safe(e.Name)
	if e.Name == "" {
		name = uuidText(e.Peer)
	}
	return fmt.Sprintf("WARNING: KEY CHANGED for %s: known key %s, presented key %s from %s; REFUSED. "+
		"Someone may be impersonating this peer. If the change is expected, run: zyre trust accept %s",
		name, e.OldFingerprint, e.NewFingerprint, e.Addr, e.NewFingerprint)
}

// eventLine is the one-line form of an event that monitor and chat print:
// the type in capitals, the peer's name and UUID, the group where there is
// one, then the content or other details.
func eventLine(e zre.Event) string {
	name := e.PeerName()
	switch e.(type) {
	case *zre.Refused, *zre.Denied:
		if name == "" {
			name = "unknown" // before its HELLO
		}
	}
	head := fmt.Sprintf("%s %s %s", e.Type(), name, uuidText(e.PeerUUID()))
	switch e := e.(type) {
	case *zre.Enter:
		return head + " " + e.Addr + headersText(e.Headers)
	case *zre.Join:
		return head + " " + e.Group
	case *zre.Leave:
		return head + " " + e.Group
	case *zre.Leader:
		return head + " " + e.Group
	case *zre.Whisper:
		return head + " " + contentText(e.Content)
	case *zre.Shout:
		return head + " " + e.Group + " " + contentText(e.Content)
	case *zre.Refused:
		return fmt.Sprintf("%s %s key=%s from=%s: %v", head, e.Stage, e.Key, e.Addr, e.Reason)
	case *zre.KeyChanged:
		return head + " " + keyChangedWarning(e)
	case *zre.Denied:
		// The peer's name and reason, escaped (safe, deniedText).
		return fmt.Sprintf("%s %s %s %s", e.Type(), safe(name), uuidText(e.PeerUUID()), deniedText(e.Addr, name, e.Peer, e.Reason))
	}
	return head
}

// deniedSentence is the line for a peer whose node refuses our key,
// naming it as n knows it (escaped).
func deniedSentence(n *zre.Node, d *zre.Denied) string {
	name := d.Name
	if name == "" {
		name = n.PeerName(d.Peer)
	}
	if name == "" {
		name = uuidText(d.Peer)
	}
	return terminalText((&transfer.RefusedError{Name: safe(name), Reason: zre.CleanReason(d.Reason)}).Error())
}

// deniedText is the end of a DENIED line: where we dialled, and the
// sentence that says the peer refuses our key, why, and what to do
// (transfer.RefusedError's, as zyre send says it). name and reason are
// the peer's: escaped here.
func deniedText(addr, name string, peer uuid.UUID, reason string) string {
	if name == "" || name == "unknown" {
		name = uuidText(peer)
	}
	return safe(addr) + ": " + terminalText((&transfer.RefusedError{Name: safe(name), Reason: zre.CleanReason(reason)}).Error())
}
