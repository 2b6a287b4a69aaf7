package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/zyre-go/zyre/agent"
	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/transfer"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

const agentUsage = `usage: zyre agent [flags]

Run this device's node in the foreground: unlock the identity once, run one
secure node (beacons, the groups of --group), own its trust store, and serve
a control socket (default $XDG_RUNTIME_DIR/zyre/agent.sock, else
$TMPDIR/zyre-UID/agent.sock; --socket or $ZYRE_AGENT_SOCKET) that members,
monitor, chat, peers, pair, trust, send, receive and stream use while it
runs (pair and trust changes sign with the identity unlocked here; a
pairing listens and announces where the node runs, --interface and
--loopback, or narrower unless --pair-any-network). Only this user may
connect (mode 0600, peer credentials). The protocol is in spec/agent.md.
With --receive-dir, it receives the files that the peers of the
auto-accept list send ("zyre receive auto-accept") into that folder, with
nobody running "zyre receive". It runs until interrupted (SIGINT or SIGTERM).`

// agentFlags are the flags of the commands that can use a running agent.
type agentFlags struct {
	socket  string
	noAgent bool
}

func (a *agentFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.socket, "socket", "", "the agent's control `socket` (default $ZYRE_AGENT_SOCKET, else $XDG_RUNTIME_DIR/zyre/agent.sock)")
	fs.BoolVar(&a.noAgent, "no-agent", false, "run a node of this command's own even when an agent runs")
}

func (a *agentFlags) path(env *cliEnv) string {
	if a.socket != "" {
		return a.socket
	}
	return client.DefaultSocket(env.getenv)
}

// nodeOnlyFlags are the node flags that are about the command's output or
// wait, not about the node: they do not stop a command from using the agent.
var nodeOnlyFlags = map[string]bool{"group": true, "json": true, "wait": true, "verbose": true, "socket": true, "no-agent": true}

// dial returns a client of the running agent, or nil when the command runs
// a node of its own: with --no-agent, when flags configure a node (--port,
// --loopback, --secure, --home ...), or when no agent answers. With
// --socket, an agent that does not answer is an error.
func (a *agentFlags) dial(ctx context.Context, env *cliEnv, fs *flag.FlagSet, alsoAllowed ...string) (*client.Client, error) {
	if a.noAgent {
		return nil, nil
	}
	own := ""
	fs.Visit(func(f *flag.Flag) {
		if !nodeOnlyFlags[f.Name] && !slices.Contains(alsoAllowed, f.Name) && own == "" {
			own = f.Name
		}
	})
	if own != "" {
		if a.socket != "" {
			return nil, fmt.Errorf("%w: --socket uses the agent's node; --%s configures a node of this command's own", errUsage, own)
		}
		return nil, nil
	}
	return a.connect(ctx, env)
}

// runAgent implements "zyre agent".
func runAgent(ctx context.Context, env *cliEnv, args []string) error {
	f := newNodeFlags(env, "agent")
	f.synopsis = agentUsage
	var a agentFlags
	a.register(f.fs)
	plain := f.fs.Bool("plain", false, "run a plain (not secure) node: no identity, no trust store")
	recvDir := f.fs.String("receive-dir", "", "receive the offers of the peers of the auto-accept list (\"zyre receive auto-accept\") into this `folder`, in the background, while no \"zyre receive\" runs")
	anyNet := f.fs.Bool("pair-any-network", false, "let a pair request listen and announce anywhere this user may (default: where the node runs, or narrower)")
	if err := f.parse(args); err != nil {
		return err
	}
	if a.noAgent {
		return fmt.Errorf("%w: --no-agent: this is the agent", errUsage)
	}
	if *plain && (f.secure || f.ephemeral || f.home != "") {
		return fmt.Errorf("%w: --plain excludes --secure, --ephemeral and --home", errUsage)
	}
	f.secure = !*plain
	f.keepIdentity = true
	defer func() {
		if f.identity != nil {
			f.identity.Wipe()
		}
	}()
	if *recvDir != "" {
		if *plain || f.ephemeral {
			return fmt.Errorf("%w: --receive-dir needs the identity and trust store of a home (not --plain or --ephemeral)", errUsage)
		}
		abs, err := filepath.Abs(*recvDir)
		if err != nil {
			return err
		}
		if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
			return fmt.Errorf("--receive-dir %s: not a folder", abs)
		}
		*recvDir = abs
	}
	sock := a.path(env)
	// Refuse early, before unlocking the identity, when one runs already.
	if c, err := client.Dial(ctx, sock); err == nil {
		c.Close()
		return withHint(fmt.Errorf("%w at %s", agent.ErrRunning, sock), "stop it first, or give another --socket")
	}
	f.agentSocket = sock
	n, err := f.startNode(ctx, env)
	if err != nil {
		return err
	}
	defer stopNode(n)
	home := ""
	if f.secure && !f.ephemeral {
		home, _ = homeDir(env, f.home)
		// Info's home is compared by commands run in other directories:
		// a relative one would name another directory there.
		if abs, err := filepath.Abs(home); err == nil {
			home = abs
		}
	}
	log := termLog(env, logOptions{verbose: f.verbose, prefix: "zyre agent", node: n, trust: f.trustStore})
	srv, err := agent.Listen(agent.Config{Node: n, Trust: f.trustStore, Identity: f.identity, Secret: f.secret, ReceiveDir: *recvDir,
		Notify: func(msg string) { fmt.Fprintln(env.stderr, "zyre: "+terminalText(msg)) }, Socket: sock, Home: home, Version: version, Logger: log,
		Network: agent.Network{Interface: f.iface, Loopback: f.loopback, Port: f.port}, PairAnyNetwork: *anyNet,
		OnEvent: func(e zre.Event) {
			if kc, ok := e.(*zre.KeyChanged); ok {
				fmt.Fprintln(env.stderr, "zyre: "+keyChangedWarning(kc))
			}
			// Another device with a paired device's name: told once (the
			// node reports a refusal once), about that device.
			var nt *trust.NameTaken
			if r, ok := e.(*zre.Refused); ok && errors.As(r.Reason, &nt) {
				fmt.Fprintln(env.stderr, "zyre: "+terminalText(nt.Error()))
			}
			// A peer that refuses this device's key: told once (the node
			// reports it once until the peer admits us).
			if d, ok := e.(*zre.Denied); ok {
				name := d.Name
				if name == "" {
					name = f.refusedName(&zre.Refused{Key: d.Key})
				}
				if name == "" {
					name = uuidText(d.Peer)
				}
				fmt.Fprintln(env.stderr, "zyre: "+terminalText((&transfer.RefusedError{Name: safe(name), Reason: zre.CleanReason(d.Reason)}).Error()))
			}
		}})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stderr, "zyre: agent %s %s at %s, control socket %s\n", n.Name(), shortID(n.UUID()), n.Endpoint(), srv.Addr())
	err = srv.Serve(ctx)
	if ctx.Err() != nil {
		fmt.Fprintln(env.stderr, "zyre: agent stopping")
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
