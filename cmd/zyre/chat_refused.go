package main

import (
	"net"
	"strings"

	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

// chatRefusals says a chat's refusals (REFUSED, KEY-CHANGED) for a person
// in a conversation: each peer and key once, in one plain line ("REFUSED
// room 0966780b from 10.79.0.4: a device with another key ... calls
// itself room; ..."), whatever stage refused it (its beacon, its
// connection, its HELLO: the node reports each once) and however the
// layers below worded it. The other refusals of that peer and key are
// said only with --verbose, which prints every one in full, as "zyre
// monitor" does. One chat goroutine owns it.
type chatRefusals struct {
	verbose bool
	said    map[string]bool // peer UUID + key (Z85), "kc" + the same for a key change
}

// refusal is what a chat says of a REFUSED or KEY-CHANGED event, from the
// node (one-shot) or the agent.
type refusal struct {
	keyChange    bool
	name, peer   string // the peer's name ("" before its HELLO), its UUID
	addr, key    string // where from; the key presented (Z85)
	reason       string // REFUSED: why, as the node says it
	oldFP, newFP string // KEY-CHANGED: the known and the presented key
}

// line is the line to print for r, and whether to print one: the first
// of its peer and key, plain; the others only with --verbose (long is
// the event's full line, printed then).
func (c *chatRefusals) line(r refusal, long string) (string, bool) {
	if c.verbose {
		return long, true
	}
	if c.said == nil {
		c.said = map[string]bool{}
	}
	id := r.peer + " " + r.key
	if r.keyChange {
		// A key change is said even after a refusal of its beacon:
		// only its line tells how to accept the new key.
		if c.said["kc"+id] {
			return "", false
		}
		c.said["kc"+id], c.said[id] = true, true
	} else {
		if c.said[id] {
			return "", false
		}
		c.said[id] = true
	}
	if len(c.said) > 1024 { // bounded: a flood of new keys
		clear(c.said)
	}
	name := r.name
	if name == "" {
		name = "unknown" // refused before its HELLO
	}
	head := "REFUSED " + safe(name) + " " + peerShort(r.peer)
	if r.keyChange {
		head = "KEY-CHANGED " + safe(name) + " " + peerShort(r.peer)
	}
	if host, _, err := net.SplitHostPort(r.addr); err == nil {
		head += " from " + safe(host)
	} else if r.addr != "" {
		head += " from " + safe(r.addr)
	}
	if r.keyChange {
		what := "see zyre trust show " + peerShort(r.peer)
		if r.newFP != "" {
			what = "run: zyre trust accept " + r.newFP
		}
		change := "its key changed"
		if r.oldFP != "" && r.newFP != "" {
			change += " from " + r.oldFP + " to " + r.newFP
		}
		return head + ": " + change + "; refused: someone may be impersonating this peer. If the change is expected, " + what, true
	}
	return head + ": " + terminalText(refusalText(r.reason, r.peer)), true
}

// refusalText says why a peer was refused in plain words, from the
// node's reason (layers of "zre: ...: trust store: ..."): the trust
// store's sentence for another device with a known name, the revocation
// and its reason, else the reason without the layers' prefixes.
func refusalText(reason, peer string) string {
	if i := strings.Index(reason, "a device with another key"); i >= 0 {
		return reason[i:] // trust.NameTaken says it all
	}
	if strings.Contains(reason, zre.ErrRevoked.Error()) {
		if i := strings.Index(reason, "key revoked locally"); i >= 0 {
			return "its key was revoked on this device" + strings.TrimPrefix(reason[i:], "key revoked locally")
		}
		if i := strings.Index(reason, "key revoked by "); i >= 0 {
			return "its key was " + strings.TrimPrefix(reason[i:], "key ")
		}
		return "its key is revoked (see zyre trust show " + peerShort(peer) + ")"
	}
	for _, p := range []string{"zre: ", "trust store: "} {
		reason = strings.ReplaceAll(reason, p, "")
	}
	return reason
}

// refusalOfEvent is the refusal an event of the node is, if it is one;
// name names a refused peer whose HELLO never came (from the trust
// store), or is "".
func refusalOfEvent(e zre.Event, name string) (refusal, bool) {
	switch e := e.(type) {
	case *zre.Refused:
		r := refusal{name: e.Name, peer: e.Peer.String(), addr: e.Addr, key: e.Key.Z85()}
		if r.name == "" {
			r.name = name
		}
		if e.Reason != nil {
			r.reason = e.Reason.Error()
		}
		return r, true
	case *zre.KeyChanged:
		return refusal{keyChange: true, name: e.Name, peer: e.Peer.String(), addr: e.Addr, key: e.New.Z85(),
			oldFP: e.OldFingerprint, newFP: e.NewFingerprint}, true
	}
	return refusal{}, false
}

// refusalOfAgentEvent is refusalOfEvent for an event from the agent.
func refusalOfAgentEvent(e client.Event) (refusal, bool) {
	r := refusal{name: e.Name, peer: e.Peer, addr: e.Addr, key: e.Key, reason: e.Reason}
	switch e.Type {
	case zre.EventRefused.String():
		return r, true
	case zre.EventKeyChanged.String():
		// The agent says "key changed from OLD to NEW".
		// The command names the key to accept by the key presented.
		r.keyChange = true
		if from, _, ok := strings.Cut(strings.TrimPrefix(e.Reason, "key changed from "), " to "); ok {
			r.oldFP = safe(from)
		}
		if b, err := curve.DecodeZ85(e.Key); err == nil {
			if k, err := curve.NewPublicKey(b); err == nil {
				r.newFP = trust.Fingerprint(k)
			}
		}
		return r, true
	}
	return refusal{}, false
}

// agentChatLine is the line a chat through the agent prints for e, and
// whether it prints one: a refusal by refusals' rule, other events as
// agentEventLine.
func agentChatLine(e client.Event, refusals *chatRefusals) (string, bool) {
	if r, ok := refusalOfAgentEvent(e); ok {
		return refusals.line(r, agentEventLine(e))
	}
	return agentEventLine(e), true
}
