package zre

import (
	"github.com/google/uuid"

	"github.com/zyre-go/zyre/zmtp"
)

// EventType says what an Event is.
type EventType uint8

// Event types, named as the C reference names them.
const (
	EventEnter EventType = iota + 1
	EventExit
	EventJoin
	EventLeave
	EventWhisper
	EventShout
	EventEvasive
	EventSilent
	EventStop
	EventRefused    // secure mode: see Refused
	EventKeyChanged // secure mode with a trust store: see KeyChanged
	EventOverflow   // membership events were dropped: see Overflow
	EventLeader     // leader election: see Leader (election.go)
	EventDenied     // secure mode: a peer refused us; see Denied (denied.go)
)

var eventNames = [...]string{
	EventEnter: "ENTER", EventExit: "EXIT", EventJoin: "JOIN", EventLeave: "LEAVE",
	EventWhisper: "WHISPER", EventShout: "SHOUT", EventEvasive: "EVASIVE",
	EventSilent: "SILENT", EventStop: "STOP", EventRefused: "REFUSED",
	EventKeyChanged: "KEY-CHANGED", EventOverflow: "OVERFLOW", EventLeader: "LEADER",
	EventDenied: "DENIED",
}

// String returns the C reference's name: "ENTER", "WHISPER", ... (and
// ours for the secure mode's events: "REFUSED" (we refused a peer),
// "DENIED" (a peer refused us), "KEY-CHANGED").
func (t EventType) String() string {
	if t >= EventEnter && int(t) < len(eventNames) {
		return eventNames[t]
	}
	return "UNKNOWN"
}

// Event is one thing that happened on the network, delivered by
// Node.Events. It is one of *Enter, *Exit, *Join, *Leave, *Whisper, *Shout,
// *Evasive, *Silent, *Overflow, *Stop or *Leader (election.go), and in secure
// mode *Refused (we refused a peer), *Denied (a peer refused us) or
// *KeyChanged; switch on the concrete type or on Type.
type Event interface {
	Type() EventType
	PeerUUID() uuid.UUID // the peer concerned (our own UUID for Stop)
	PeerName() string    // its name from its HELLO
}

// EventHeader is the part every event has.
type EventHeader struct {
	Peer uuid.UUID
	Name string
}

// PeerUUID returns h.Peer.
func (h EventHeader) PeerUUID() uuid.UUID { return h.Peer }

// PeerName returns h.Name.
func (h EventHeader) PeerName() string { return h.Name }

// Enter: a peer said HELLO. Addr is the endpoint from its HELLO.
type Enter struct {
	EventHeader
	Headers []Header
	Addr    string
}

// Exit: a peer left (port-0 beacon, GOODBYE), expired, or was dropped
// after a protocol error or lost messages.
type Exit struct{ EventHeader }

// Join: a peer joined a group.
type Join struct {
	EventHeader
	Group string
}

// Leave: a peer left a group.
type Leave struct {
	EventHeader
	Group string
}

// Whisper: a peer sent a message to us. Content is the receiver's own:
// the node keeps no reference to it and shares it with no other event.
// The receiver may hand it back with Release once done with it.
type Whisper struct {
	EventHeader
	Content [][]byte

	msg zmtp.Message // the inbox message Content lies in (see Release)
}

// Release hands the storage of the content back to the node: its frames
// of 1 KiB to 4 MiB were read into buffers of the node's inbox socket,
// which then reads later messages into them instead of allocating new ones
// (zmtp.Message.Release). Release is optional: content never released is
// collected like any other memory.
//
// After Release, neither Content nor any frame of it may be used any
// more, by any goroutine: that includes a frame given to WhisperOwned,
// ShoutOwned or a transport that keeps it (release such content only once
// it was sent, or copy it). A frame copied (bytes.Clone, string(...))
// before Release stays valid. Release leaves the Content field as it is
// (the node may still read its length after handing the event over):
// set it to nil yourself if the event lives on. Release may be called
// from one goroutine at a time, once or more, also after the node
// stopped; on an event not made by a node it does nothing.
func (w *Whisper) Release() { w.msg.Release() }

// Shout: a peer sent a message to a group we are in. Content is the
// receiver's own, as for Whisper, and Release hands it back likewise.
type Shout struct {
	EventHeader
	Group   string
	Content [][]byte

	msg zmtp.Message // see Whisper.Release
}

// Release is Whisper.Release for a Shout.
func (s *Shout) Release() { s.msg.Release() }

// Evasive: we heard nothing from a peer for Config.Evasive; it was sent a
// PING. Reported once per episode.
type Evasive struct{ EventHeader }

// Silent: a peer's beacons arrive but it sent no message for
// Config.Silent. Reported once per episode.
type Silent struct{ EventHeader }

// Stop: our node stopped; it is the last event before Events is closed.
type Stop struct{ EventHeader }

// Overflow: the consumer was so far behind that membership events (Enter,
// Exit, Join, Leave) were dropped after this point (counted in
// Stats.MembershipDropped): the application re-reads what it keeps of the
// network — Peers, PeerInfos, PeersByGroup, PeerGroups — which are always
// current, and goes on with the events that follow. Its header names our
// own node. One Overflow is queued per episode: the next one comes after
// this one was received. See Node for the policy.
type Overflow struct{ EventHeader }

// Type implementations.
func (*Enter) Type() EventType    { return EventEnter }
func (*Exit) Type() EventType     { return EventExit }
func (*Join) Type() EventType     { return EventJoin }
func (*Leave) Type() EventType    { return EventLeave }
func (*Whisper) Type() EventType  { return EventWhisper }
func (*Shout) Type() EventType    { return EventShout }
func (*Evasive) Type() EventType  { return EventEvasive }
func (*Silent) Type() EventType   { return EventSilent }
func (*Stop) Type() EventType     { return EventStop }
func (*Overflow) Type() EventType { return EventOverflow }

var (
	_ Event = (*Enter)(nil)
	_ Event = (*Exit)(nil)
	_ Event = (*Join)(nil)
	_ Event = (*Leave)(nil)
	_ Event = (*Whisper)(nil)
	_ Event = (*Shout)(nil)
	_ Event = (*Evasive)(nil)
	_ Event = (*Silent)(nil)
	_ Event = (*Stop)(nil)
	_ Event = (*Overflow)(nil)
)

// eventOverhead is what the byte budget counts for an event besides its
// content and strings: the struct, the interface, the slice headers.
const eventOverhead = 128

// eventSize is what an event counts against Config.EventBytes.
func eventSize(e Event) int {
	n := eventOverhead + len(e.PeerName())
	frames := func(fs [][]byte) {
		for _, f := range fs {
			n += 24 + len(f)
		}
	}
	switch e := e.(type) {
	case *Whisper:
		frames(e.Content)
	case *Shout:
		n += len(e.Group)
		frames(e.Content)
	case *Join:
		n += len(e.Group)
	case *Leave:
		n += len(e.Group)
	case *Enter:
		n += len(e.Addr)
		for _, h := range e.Headers {
			n += 32 + len(h.Key) + len(h.Value)
		}
	case *Refused:
		n += 256 // address, reason
	case *Denied:
		n += len(e.Addr) + len(e.Reason)
	}
	return n
}

// droppable reports whether the slow-consumer policy may drop e: message
// events, presence hints and refusals either way (anyone can cause many) are; membership events (Enter, Exit, Join,
// Leave, Stop) never are.
func droppable(e Event) bool {
	switch e.(type) {
	case *Whisper, *Shout, *Evasive, *Silent, *Refused, *Denied, *KeyChanged:
		return true
	}
	return false
}
