package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/beacon"
	"github.com/zyre-go/zyre/zmtp"
	"github.com/zyre-go/zyre/zre"
	"github.com/zyre-go/zyre/zre/zremsg"
)

// demoTimeout bounds the whole demo.
const demoTimeout = 10 * time.Second

// demoGroup is the group the demo's nodes meet in.
const demoGroup = "demo"

// runDemo implements "zyre demo": three nodes in this process, on loopback
// only (beacons on lo, inboxes on 127.0.0.1, a random beacon port unless
// --port is given), discover each other, join a group, whisper, shout,
// leave and stop, printing what happens. Every step waits on events with
// the demo's deadline; nothing leaves the machine. With --secure the nodes
// run in secure mode (each with an ephemeral keypair) and a forger whose
// beacon and connection claim bob's UUID with its own key is refused.
func runDemo(ctx context.Context, env *cliEnv, args []string) error {
	f := newNodeFlags(env, "demo")
	private := f.fs.Bool("private", false, "add a private-group step (implies --secure): two trusted nodes stream end-to-end encrypted, the third (untrusted) receives none of it")
	if err := f.parse(args); err != nil {
		return err
	}
	f.secure = f.secure || *private
	if f.iface != "" {
		return fmt.Errorf("%w: the demo runs on loopback only; --interface is not allowed", errUsage)
	}
	portSet := false
	f.fs.Visit(func(fl *flag.Flag) { portSet = portSet || fl.Name == "port" })
	if !portSet { // a random high port, so the demo meets nothing else
		f.port = 49152 + rand.IntN(16000)
	}
	ctx, cancel := context.WithTimeout(ctx, demoTimeout)
	defer cancel()
	start := time.Now()
	out := func(format string, a ...any) { fmt.Fprintf(env.stdout, format+"\n", a...) }

	names := []string{"alice", "bob", "carol"}
	if f.name != "" {
		names[0] = f.name
	}
	var nodes []*demoNode
	defer func() {
		for _, d := range nodes {
			d.n.Close()
		}
	}()
	for _, name := range names {
		cfg, err := f.config(env)
		if err != nil {
			return err
		}
		cfg.Name = name
		cfg.Beacon.Loopback = true
		cfg.Beacon.Interface = ""
		cfg.Beacon.Interval = 100 * time.Millisecond
		cfg.Bind = "127.0.0.1"
		cfg.Headers = append(cfg.Headers, zre.Header{Key: "X-DEMO", Value: name})
		var secret curve.SecretKey // for the private step
		if f.secure {
			// Three nodes in one process need three identities: the
			// keystore holds one, so the demo makes ephemeral ones.
			_, sec, err := curve.GenerateKeyPair(nil)
			if err != nil {
				return err
			}
			cfg.Secure = &zre.SecureConfig{Secret: sec}
			secret = sec
		}
		n, err := zre.New(cfg)
		if err != nil {
			return err
		}
		nodes = append(nodes, &demoNode{n: n, secret: secret})
		if err := n.Start(ctx); err != nil {
			return err
		}
	}
	if f.secure {
		out("zyre demo: %d secure nodes on loopback (CURVE, v3 beacons, UUID derived from each node's ephemeral key), beacons on UDP port %d (127.255.255.255), inboxes on 127.0.0.1", len(nodes), f.port)
	} else {
		out("zyre demo: %d nodes on loopback, beacons on UDP port %d (127.255.255.255), inboxes on 127.0.0.1", len(nodes), f.port)
	}
	for _, d := range nodes {
		if f.secure {
			out("  %-6s %s  %s  key %s", d.n.Name(), uuidText(d.n.UUID()), d.n.Endpoint(), d.n.PublicKey())
		} else {
			out("  %-6s %s  %s", d.n.Name(), uuidText(d.n.UUID()), d.n.Endpoint())
		}
	}

	// 1. Discovery by beacon: every node sees the two others enter.
	out("\n1. discovery (UDP beacons on loopback, then HELLO over ZMTP)")
	for _, d := range nodes {
		for _, o := range nodes {
			if o == d {
				continue
			}
			e, err := d.await(ctx, "ENTER "+o.n.Name(), func(e zre.Event) bool {
				_, ok := e.(*zre.Enter)
				return ok && e.PeerUUID() == o.n.UUID()
			})
			if err != nil {
				return err
			}
			out("  %-6s sees %s", d.n.Name(), eventLine(e))
		}
	}

	if f.secure {
		if err := demoForger(ctx, out, f.port, nodes); err != nil {
			return err
		}
	}

	// 2. Everyone joins the group.
	out("\n2. everyone joins %q", demoGroup)
	for _, d := range nodes {
		if err := d.n.Join(demoGroup); err != nil {
			return err
		}
	}
	for _, d := range nodes {
		for _, o := range nodes {
			if o == d {
				continue
			}
			e, err := d.await(ctx, "JOIN "+o.n.Name(), isGroupEvent[*zre.Join](o.n.UUID(), demoGroup))
			if err != nil {
				return err
			}
			out("  %-6s sees %s", d.n.Name(), eventLine(e))
		}
	}

	alice, bob, carol := nodes[0], nodes[1], nodes[2]
	// 3. A whisper: one peer only.
	out("\n3. %s whispers to %s", alice.n.Name(), bob.n.Name())
	if err := alice.n.Whisper(bob.n.UUID(), []byte("hello "+bob.n.Name()+", this is for you only")); err != nil {
		return err
	}
	e, err := bob.await(ctx, "WHISPER", func(e zre.Event) bool { _, ok := e.(*zre.Whisper); return ok })
	if err != nil {
		return err
	}
	out("  %-6s gets %s", bob.n.Name(), eventLine(e))

	// 4. A shout: every peer in the group.
	out("\n4. %s shouts to %q", carol.n.Name(), demoGroup)
	if err := carol.n.Shout(demoGroup, []byte("hello everyone")); err != nil {
		return err
	}
	for _, d := range []*demoNode{alice, bob} {
		e, err := d.await(ctx, "SHOUT", func(e zre.Event) bool { _, ok := e.(*zre.Shout); return ok })
		if err != nil {
			return err
		}
		out("  %-6s gets %s", d.n.Name(), eventLine(e))
	}

	// 5. Leave.
	out("\n5. %s leaves %q", bob.n.Name(), demoGroup)
	if err := bob.n.Leave(demoGroup); err != nil {
		return err
	}
	for _, d := range []*demoNode{alice, carol} {
		e, err := d.await(ctx, "LEAVE", isGroupEvent[*zre.Leave](bob.n.UUID(), demoGroup))
		if err != nil {
			return err
		}
		out("  %-6s sees %s", d.n.Name(), eventLine(e))
	}

	if *private {
		if err := demoPrivate(ctx, out, nodes); err != nil {
			return err
		}
	}

	// 6. Stop: a goodbye beacon (port 0) and GOODBYE; the others see it exit.
	out("\n6. %s stops", carol.n.Name())
	if err := carol.n.Stop(ctx); err != nil {
		return err
	}
	for _, d := range []*demoNode{alice, bob} {
		e, err := d.await(ctx, "EXIT", func(e zre.Event) bool {
			_, ok := e.(*zre.Exit)
			return ok && e.PeerUUID() == carol.n.UUID()
		})
		if err != nil {
			return err
		}
		out("  %-6s sees %s", d.n.Name(), eventLine(e))
	}
	for _, d := range []*demoNode{alice, bob} {
		if err := d.n.Stop(ctx); err != nil {
			return err
		}
	}
	var dropped uint64
	for _, d := range nodes {
		dropped += d.n.Stats().EventsDropped
	}
	out("\ndone in %v: every node stopped, %d events dropped", time.Since(start).Round(time.Millisecond), dropped)
	return nil
}

// demoForger starts a forger that claims bob's UUID with its own key: v3
// beacons on the demo's loopback port and a CURVE connection to alice's
// inbox whose HELLO says it is bob. It waits until every node refused the
// beacon (bob: a beacon claiming its own UUID) and alice the connection,
// and until alice still has the real bob; then it stops the forger.
func demoForger(ctx context.Context, out func(string, ...any), port int, nodes []*demoNode) error {
	alice, bob := nodes[0], nodes[1]
	pub, sec, err := curve.GenerateKeyPair(nil)
	if err != nil {
		return err
	}
	out("\n1b. a forger claims %s's UUID %s with its own key %s (beacon, then a connection to %s)", bob.n.Name(), uuidText(bob.n.UUID()), pub, alice.n.Name())
	r, err := zmtp.ListenRouter("tcp", "127.0.0.1:0", zmtp.Options{Mechanism: zmtp.CurveServer(zmtp.CurveServerConfig{Secret: sec})})
	if err != nil {
		return err
	}
	defer r.Close()
	rport := r.Addr().(*net.TCPAddr).Port
	b, err := beacon.New(beacon.Config{Port: port, Loopback: true, Interval: 100 * time.Millisecond})
	if err != nil {
		return err
	}
	if err := b.Start(ctx); err != nil {
		return err
	}
	defer b.Close()
	b.Publish(zre.Beacon{Version: zre.BeaconV3, UUID: bob.n.UUID(), Port: uint16(rport), PublicKey: pub}.AppendMarshal(nil))
	d, err := zmtp.DialDealer("tcp", strings.TrimPrefix(alice.n.Endpoint(), "tcp://"), zmtp.Options{
		Identity:  zre.Identity(bob.n.UUID()),
		Mechanism: zmtp.CurveClient(zmtp.CurveClientConfig{Secret: sec, ServerKey: alice.n.PublicKey()}),
	})
	if err != nil {
		return err
	}
	defer d.Close()
	hello := &zremsg.Msg{ID: zremsg.MsgHello, Sequence: 1, Endpoint: fmt.Sprintf("tcp://127.0.0.1:%d", rport), Name: bob.n.Name(),
		Headers: []zre.Header{{Key: zre.HeaderPublicKey, Value: pub.Z85()}}}
	frames, err := hello.Frames()
	if err != nil {
		return err
	}
	if err := d.Send(frames...); err != nil {
		return err
	}
	refused := func(stage zre.Stage) func(zre.Event) bool {
		return func(e zre.Event) bool {
			r, ok := e.(*zre.Refused)
			return ok && r.Peer == bob.n.UUID() && r.Key == pub && r.Stage == stage
		}
	}
	for _, dn := range nodes {
		e, err := dn.await(ctx, "REFUSED forged beacon", refused(zre.StageBeacon))
		if err != nil {
			return err
		}
		out("  %-6s %s", dn.n.Name(), eventLine(e))
	}
	e, err := alice.await(ctx, "REFUSED forged connection", refused(zre.StageConnection))
	if err != nil {
		return err
	}
	out("  %-6s %s", alice.n.Name(), eventLine(e))
	for _, p := range alice.n.PeerInfos() {
		if p.UUID == bob.n.UUID() {
			if p.Key != bob.n.PublicKey() || p.Endpoint != bob.n.Endpoint() {
				return fmt.Errorf("demo: alice has bob with key %s at %s", p.Key, p.Endpoint)
			}
			out("  %-6s still has the real %s at %s with key %s; the forger got no connection", alice.n.Name(), bob.n.Name(), p.Endpoint, p.Key)
		}
	}
	if len(r.Peers()) != 0 {
		return errors.New("demo: a node connected to the forger")
	}
	return nil
}

// demoNode is a node and the events it received but nobody asked for yet.
type demoNode struct {
	n       *zre.Node
	secret  curve.SecretKey // secure mode: the node's key, for the private step
	pending []zre.Event
}

// await returns the first event (already received or new) that match
// accepts, or an error when ctx ends first.
func (d *demoNode) await(ctx context.Context, what string, match func(zre.Event) bool) (zre.Event, error) {
	for i, e := range d.pending {
		if match(e) {
			d.pending = append(d.pending[:i], d.pending[i+1:]...)
			return e, nil
		}
	}
	for {
		select {
		case e, ok := <-d.n.Events():
			if !ok {
				return nil, fmt.Errorf("demo: %s stopped while waiting for %s", d.n.Name(), what)
			}
			if match(e) {
				return e, nil
			}
			d.pending = append(d.pending, e)
		case <-ctx.Done():
			err := ctx.Err()
			if errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("no %s within %v (is UDP broadcast on lo blocked?)", what, demoTimeout)
			}
			return nil, fmt.Errorf("demo: %s: %w", d.n.Name(), err)
		}
	}
}

// isGroupEvent matches a Join or Leave (T) from peer in group.
func isGroupEvent[T interface {
	*zre.Join | *zre.Leave
	zre.Event
}](peer uuid.UUID, group string) func(zre.Event) bool {
	return func(e zre.Event) bool {
		t, ok := e.(T)
		if !ok || e.PeerUUID() != peer {
			return false
		}
		switch v := any(t).(type) {
		case *zre.Join:
			return v.Group == group
		case *zre.Leave:
			return v.Group == group
		}
		return false
	}
}
