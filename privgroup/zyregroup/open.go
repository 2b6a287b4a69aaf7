package zyregroup

import (
	"context"
	"sync"

	"github.com/zyre-go/zyre/zre"
)

// EventNode is a Node whose events the Group may read itself (Open);
// *zre.Node implements it.
type EventNode interface {
	Node
	Events() <-chan zre.Event
}

var _ EventNode = (*zre.Node)(nil)

// Opened is a private group that reads its node's events itself: no
// hand-pumping of events into Handle. It embeds the Group (NewWriter,
// NewReader, AwaitSender, Members ...).
type Opened struct {
	*Group
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// Open attaches to group on node (Attach) and feeds every event of the
// node to the Group on a goroutine of its own; the events the Group does
// not consume go to other, called on that goroutine (nil drops them). The
// Group then owns the node's event channel: nothing else may read it.
// other must not block for long (the Group waits for it) and must not call
// Close. Reading the stream of the first trusted member is then:
//
//	g, err := zyregroup.Open(node, "hotel-room", zyregroup.Options{Secret: sk, Trust: store}, nil)
//	rd, err := g.ReadFirst(ctx) // an io.Reader of that member's stream
func Open(node EventNode, group string, opts Options, other func(zre.Event)) (*Opened, error) {
	g, err := Attach(node, group, opts)
	if err != nil {
		return nil, err
	}
	o := &Opened{Group: g, stop: make(chan struct{}), done: make(chan struct{})}
	go o.pump(node.Events(), other)
	return o, nil
}

func (o *Opened) pump(events <-chan zre.Event, other func(zre.Event)) {
	defer close(o.done)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return
			}
			if !o.Handle(ev) && other != nil {
				other(ev)
			}
		case <-o.stop:
			return
		}
	}
}

// ReadFirst waits for the sender key of a trusted member (the first whose
// key arrives) and returns a Reader of its stream.
func (o *Opened) ReadFirst(ctx context.Context) (*Reader, error) {
	sender, err := o.AwaitSender(ctx, nil)
	if err != nil {
		return nil, err
	}
	return o.NewReader(sender)
}

// Close stops reading the node's events and closes the Group (Group.Close).
// The node stays up; its events are no longer read.
func (o *Opened) Close() error {
	o.stopOnce.Do(func() { close(o.stop) })
	<-o.done
	return o.Group.Close()
}
