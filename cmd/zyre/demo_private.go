package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/privgroup/zyregroup"
	"github.com/zyre-go/zyre/zre"
)

// demoPrivateGroup is the private group of "zyre demo --private".
const demoPrivateGroup = "demo-private"

// demoPrivate is the demo's private-group step (--private, secure nodes):
// alice and bob trust each other's keys (as after pairing); carol, in the
// same ZRE group, is trusted by no one. Alice streams to the group: bob
// reads it, carol receives none of it (records go only to the members
// given the key), not even ciphertext. Everything runs
// on the demo's goroutine (the reader on its own), waiting on events with
// the demo's deadline; events the step does not use stay in pending.
func demoPrivate(ctx context.Context, out func(string, ...any), nodes []*demoNode) error {
	alice, bob, carol := nodes[0], nodes[1], nodes[2]
	for _, d := range nodes {
		if !d.n.Secure() || d.secret.IsZero() {
			return errors.New("demo: the private step needs secure nodes")
		}
	}
	out("\n%s. private group %q: %s and %s trust each other's keys, %s is in the group but trusted by no one",
		"5b", demoPrivateGroup, alice.n.Name(), bob.n.Name(), carol.n.Name())
	trusted := map[curve.PublicKey]bool{alice.n.PublicKey(): true, bob.n.PublicKey(): true}
	trust := func(_ uuid.UUID, k curve.PublicKey) bool { return trusted[k] }

	var opaque [][]byte
	groups := map[*demoNode]*zyregroup.Group{}
	defer func() {
		for _, g := range groups {
			g.Close()
		}
	}()
	// Bob and carol first, then alice once she sees them join: her Attach
	// gives her key to the trusted members present.
	for _, d := range []*demoNode{bob, carol} {
		opts := zyregroup.Options{Secret: d.secret, Trusted: trust}
		if d == carol {
			opts.OnOpaque = func(_ uuid.UUID, rec []byte) { opaque = append(opaque, bytes.Clone(rec)) }
		}
		g, err := zyregroup.Attach(d.n, demoPrivateGroup, opts)
		if err != nil {
			return err
		}
		groups[d] = g
	}
	for _, d := range []*demoNode{bob, carol} {
		if _, err := alice.await(ctx, "JOIN "+d.n.Name(), isGroupEvent[*zre.Join](d.n.UUID(), demoPrivateGroup)); err != nil {
			return err
		}
	}
	ga, err := zyregroup.Attach(alice.n, demoPrivateGroup, zyregroup.Options{Secret: alice.secret, Trusted: trust, ChunkSize: 256})
	if err != nil {
		return err
	}
	groups[alice] = ga
	gb, gc := groups[bob], groups[carol]
	st := ga.Stats()
	out("  %-6s gives her sender key to %d trusted member(s) by WHISPER over CURVE, passes over %d", alice.n.Name(), st.KeysSent, st.Passed)

	// Bob installs alice's key.
	if err := pumpUntil(ctx, bob, gb, "alice's sender key", func() bool { return hasPeer(gb.Senders(), alice.n.UUID()) }, nil); err != nil {
		return err
	}
	out("  %-6s holds %s's sender key (epoch %d)", bob.n.Name(), alice.n.Name(), ga.Epoch())

	// Alice streams; bob reads on his own goroutine while the demo feeds
	// his events to his group.
	secret := []byte("room 1207, the key is under the mat. the video starts at 21:00. ")
	secret = bytes.Repeat(secret, 8)
	rd, err := gb.NewReader(alice.n.UUID())
	if err != nil {
		return err
	}
	type result struct {
		data []byte
		err  error
	}
	got := make(chan result, 1)
	readDone := make(chan struct{})
	go func() {
		b, err := io.ReadAll(rd)
		got <- result{b, err}
		close(readDone)
	}()
	w, err := ga.NewWriter()
	if err != nil {
		return err
	}
	if _, err := w.Write(secret); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	out("\n  %-6s streams %d octets to %q (sealed chunks of 256 octets with %s, and signed batch records)", alice.n.Name(), len(secret), demoPrivateGroup, ga.Suite())
	var res result
	if err := pumpUntil(ctx, bob, gb, "the end of alice's stream", func() bool {
		select {
		case res = <-got:
			return true
		default:
			return false
		}
	}, readDone); err != nil {
		rd.Close()
		return err
	}
	if res.err != nil || !bytes.Equal(res.data, secret) {
		return fmt.Errorf("demo: bob read %d octets (%v), want %d", len(res.data), res.err, len(secret))
	}
	out("  %-6s reads %d octets, authenticated, in order: %q...", bob.n.Name(), len(res.data), res.data[:43])

	// Carol received no record: a plain marker after the stream tells when
	// she would have had them all.
	const marker = "end of the private stream"
	if err := alice.n.Shout(demoPrivateGroup, []byte(marker)); err != nil {
		return err
	}
	if err := pumpUntil(ctx, carol, gc, "alice's marker", func() bool {
		for _, e := range carol.pending {
			if s, ok := e.(*zre.Shout); ok && s.Group == demoPrivateGroup && len(s.Content) == 1 && string(s.Content[0]) == marker {
				return true
			}
		}
		return false
	}, nil); err != nil {
		return err
	}
	// Her own group is the proof: it holds no key of alice's and saw no
	// record of hers, opaque or not.
	cs := gc.Stats()
	if len(opaque) != 0 || hasPeer(gc.Senders(), alice.n.UUID()) || cs.Records != 0 || cs.Opaque != 0 {
		return fmt.Errorf("demo: carol received %d records of alice's, or holds her key (%+v)", len(opaque), cs)
	}
	out("\n  %-6s is in %q too and receives none of %s's records, only the plain marker after them:", carol.n.Name(), demoPrivateGroup, alice.n.Name())
	out("  %-6s holds no key of %s's, and her group counted %d records, %d opaque: records go only to the members given the key", carol.n.Name(), alice.n.Name(), cs.Records, cs.Opaque)
	// Carol, who trusts alice, gave alice her own key: alice refuses it.
	if err := pumpUntil(ctx, alice, ga, "carol's sender key", func() bool { return ga.Stats().KeysRefused > 0 }, nil); err != nil {
		return err
	}
	out("  %-6s refuses %s's sender key: %s is not trusted", alice.n.Name(), carol.n.Name(), carol.n.Name())
	return nil
}

// pumpUntil feeds d's events to g until done holds; events g does not
// consume go to d.pending.
func pumpUntil(ctx context.Context, d *demoNode, g *zyregroup.Group, what string, done func() bool, wake <-chan struct{}) error {
	for !done() {
		select {
		case <-wake:
			wake = nil
		case e, ok := <-d.n.Events():
			if !ok {
				return fmt.Errorf("demo: %s stopped while waiting for %s", d.n.Name(), what)
			}
			if !g.Handle(e) {
				d.pending = append(d.pending, e)
			}
		case <-ctx.Done():
			return fmt.Errorf("demo: %s: no %s: %w", d.n.Name(), what, ctx.Err())
		}
	}
	return nil
}

func hasPeer(ids []uuid.UUID, id uuid.UUID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
