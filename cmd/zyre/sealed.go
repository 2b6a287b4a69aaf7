package main

import (
	"fmt"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/agent/client"

	"github.com/zyre-go/zyre/privgroup"
	"github.com/zyre-go/zyre/privgroup/zyregroup"
	"github.com/zyre-go/zyre/zre"
)

// sealedLine is the line monitor prints for a record of a private group
// (spec/private-groups.md): a SHOUT of one frame that parses as a sealed
// data message or batch record, or a WHISPER carrying a sender key, shown
// as "SEALED <sender> <group> <n> octets", never the escaped binary.
// Records go only to the members a sender gave its key, so a stranger in
// the group sees none; a node of ours shows one that reaches it without the
// key's WHISPER (a key lost, an older sender that shouted to the whole
// group). ok is false for every other event.
func sealedLine(e zre.Event) (string, bool) {
	switch e := e.(type) {
	case *zre.Shout:
		if len(e.Content) != 1 {
			return "", false
		}
		if _, err := privgroup.ParseHeader(e.Content[0]); err != nil {
			return "", false
		}
		return fmt.Sprintf("SEALED %s %s %s %d octets", safe(e.Name), uuidText(e.Peer), safe(e.Group), len(e.Content[0])), true
	case *zre.Whisper:
		if len(e.Content) < 2 || string(e.Content[0]) != zyregroup.WhisperPrefix {
			return "", false
		}
		n := 0
		for _, f := range e.Content[2:] {
			n += len(f)
		}
		return fmt.Sprintf("SEALED %s %s %s %d octets (sender key)", safe(e.Name), uuidText(e.Peer), safe(string(e.Content[1])), n), true
	}
	return "", false
}

// sealedAgentLine is sealedLine for an event from the agent.
func sealedAgentLine(e client.Event) (string, bool) {
	id, err := uuid.Parse(e.Peer)
	if err != nil {
		return "", false
	}
	h := zre.EventHeader{Peer: id, Name: e.Name}
	switch e.Type {
	case zre.EventShout.String():
		return sealedLine(&zre.Shout{EventHeader: h, Group: e.Group, Content: e.Content})
	case zre.EventWhisper.String():
		return sealedLine(&zre.Whisper{EventHeader: h, Content: e.Content})
	}
	return "", false
}
