package zyregroup

import (
	"context"

	"github.com/zyre-go/zyre/zre"
)

// EventNode is a Node whose events the Group may read itself (Open);
// *zre.Node implements it.
type EventNode interface {
	Node
	Events() <-chan zre.Event
}

var _ EventNode = (*zre.Node)(nil)

// Open is Attach, then the Group reads the node's events itself, on a
// goroutine of its own, until Close: the Group owns the node's event
// channel. The events it does not consume go to other (nil drops them),
// called on that goroutine: other must not block for long and must not
// call Close. Reading the stream of the first trusted member is then:
//
//	g, err := zyregroup.Open(node, "hotel-room", zyregroup.Options{Secret: sk, Trust: store}, nil)
//	rd, err := g.ReadFirst(ctx) // an io.Reader of that member's stream
func Open(node EventNode, group string, opts Options, other func(zre.Event)) (*Group, error) {
	g, err := Attach(node, group, opts)
	if err != nil {
		return nil, err
	}
	g.stopPump, g.pumped = make(chan struct{}), make(chan struct{})
	go func(events <-chan zre.Event) {
		defer close(g.pumped)
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					return
				} else if !g.Handle(ev) && other != nil {
					other(ev)
				}
			case <-g.stopPump:
				return
			}
		}
	}(node.Events())
	return g, nil
}

// ReadFirst waits for the sender key of a trusted member (the first whose
// key arrives) and returns a Reader of its stream.
func (g *Group) ReadFirst(ctx context.Context) (*Reader, error) {
	sender, err := g.AwaitSender(ctx, nil)
	if err != nil {
		return nil, err
	}
	return g.NewReader(sender)
}
