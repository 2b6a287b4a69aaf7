package trust

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
)

// Group is the reserved ZRE group in which nodes exchange trust messages.
const Group = "zyre-trust"

// MaxWantReply caps the statements sent in answer to one WANT.
const MaxWantReply = 64

// MsgType is the type of a trust message.
type MsgType byte

// Trust message types (spec/trust.md, "Exchange").
const (
	// MsgStatement carries one statement.
	MsgStatement MsgType = 1
	// MsgHead announces the head of a signer's log.
	MsgHead MsgType = 2
	// MsgWant asks for a signer's statements after a sequence number.
	MsgWant MsgType = 3
)

var msgMagic = [4]byte{'Z', 'T', 'M', 1}

// Message is one trust message, the single frame of a ZRE SHOUT to Group
// or of a WHISPER. Layout, integers big-endian:
//
//	magic 4 "ZTM" 0x01, type 1, then
//	MsgStatement: the statement (at most MaxStatementSize octets)
//	MsgHead:      signer 32, seq 8, hash 32
//	MsgWant:      signer 32, after 8, max 2
type Message struct {
	Type      MsgType
	Statement []byte            // MsgStatement
	Signer    ed25519.PublicKey // MsgHead, MsgWant
	Seq       uint64            // MsgHead: head; MsgWant: after
	Hash      [32]byte          // MsgHead
	Max       uint16            // MsgWant
}

// AppendMarshal appends the encoding of m to dst.
func (m *Message) AppendMarshal(dst []byte) []byte {
	dst = append(dst, msgMagic[:]...)
	dst = append(dst, byte(m.Type))
	switch m.Type {
	case MsgStatement:
		dst = append(dst, m.Statement...)
	case MsgHead:
		dst = append(dst, m.Signer...)
		dst = binary.BigEndian.AppendUint64(dst, m.Seq)
		dst = append(dst, m.Hash[:]...)
	case MsgWant:
		dst = append(dst, m.Signer...)
		dst = binary.BigEndian.AppendUint64(dst, m.Seq)
		dst = binary.BigEndian.AppendUint16(dst, m.Max)
	}
	return dst
}

// ParseMessage decodes a trust message. Errors wrap ErrMalformed or
// ErrTooLarge; it never panics. A statement inside is not checked here
// (Handle applies it).
func ParseMessage(b []byte) (Message, error) {
	if len(b) < 5 {
		return Message{}, fmt.Errorf("%w: trust message of %d octets", ErrMalformed, len(b))
	}
	if [4]byte(b[:4]) != msgMagic {
		return Message{}, fmt.Errorf("%w: not a trust message (bad magic)", ErrMalformed)
	}
	m := Message{Type: MsgType(b[4])}
	body := b[5:]
	need := map[MsgType]int{MsgHead: 32 + 8 + 32, MsgWant: 32 + 8 + 2}
	switch m.Type {
	case MsgStatement:
		if len(body) > MaxStatementSize {
			return Message{}, fmt.Errorf("%w: %d octets, at most %d", ErrTooLarge, len(body), MaxStatementSize)
		}
		m.Statement = append([]byte(nil), body...)
		return m, nil
	case MsgHead, MsgWant:
		if len(body) != need[m.Type] {
			return Message{}, fmt.Errorf("%w: trust message type %d with %d octets, want %d", ErrMalformed, m.Type, len(body), need[m.Type])
		}
		m.Signer = append(ed25519.PublicKey(nil), body[:32]...)
		m.Seq = binary.BigEndian.Uint64(body[32:40])
		if m.Type == MsgHead {
			copy(m.Hash[:], body[40:72])
		} else {
			m.Max = binary.BigEndian.Uint16(body[40:42])
		}
		return m, nil
	}
	return Message{}, fmt.Errorf("%w: unknown trust message type %d", ErrMalformed, m.Type)
}

// StatementMessage wraps a statement (Statement.Raw) for the network.
func StatementMessage(raw []byte) []byte {
	return (&Message{Type: MsgStatement, Statement: raw}).AppendMarshal(nil)
}

// HeadMessage announces the head of signer's log (the node shouts its own
// in Group when it joins and whispers it to each peer that enters).
func (s *Store) HeadMessage(signer ed25519.PublicKey) ([]byte, error) {
	seq, h, err := s.Head(signer)
	if err != nil {
		return nil, err
	}
	return (&Message{Type: MsgHead, Signer: signer, Seq: seq, Hash: h}).AppendMarshal(nil), nil
}

// Handle processes one trust message received from a peer (shouted in
// Group or whispered) and returns the messages to whisper back to that
// peer, and, for a statement applied, what it did:
//   - a statement is applied; if statements are missing, the reply is a
//     WANT for them and everything after (no error); a replay is silently
//     dropped;
//   - a HEAD ahead of our copy of a log we track gets a WANT;
//   - a WANT gets the statements asked for, at most MaxWantReply.
//
// An error says why a message was refused (log it; it does not call for
// closing the connection). A HEAD naming another hash at our own head
// seq gives ErrFork: the signer signed two histories.
func (s *Store) Handle(ctx context.Context, raw []byte) (replies [][]byte, applied *Applied, err error) {
	m, err := ParseMessage(raw)
	if err != nil {
		return nil, nil, err
	}
	switch m.Type {
	case MsgStatement:
		a, err := s.Apply(ctx, m.Statement)
		var gap *GapError
		switch {
		case errors.As(err, &gap):
			want := &Message{Type: MsgWant, Signer: gap.Signer, Seq: gap.Have, Max: MaxWantReply}
			// Not an error: the answer to the WANT brings this statement too.
			return [][]byte{want.AppendMarshal(nil)}, nil, nil
		case errors.Is(err, ErrReplay):
			return nil, nil, nil
		case err != nil:
			return nil, nil, err
		}
		return nil, &a, nil
	case MsgHead:
		k, _ := toSigKey(m.Signer)
		var tracked, full bool
		var seq uint64
		var h [32]byte
		var label string
		if err := s.view(func(st *state) {
			l := st.logOf[k]
			tracked = l != nil || st.bySigner[k] != nil
			if l != nil {
				seq, h = l.head()
				full = len(l.stmts) >= s.logCap(st, k)
			}
			label = s.signerLabel(st, k)
		}); err != nil {
			return nil, nil, err
		}
		switch {
		case !tracked:
			return nil, nil, nil // not a signer we track
		case m.Seq > seq && full:
			return nil, nil, nil // we would refuse what we asked for (a stranger's log at its cap)
		case m.Seq > seq:
			want := &Message{Type: MsgWant, Signer: m.Signer, Seq: seq, Max: MaxWantReply}
			return [][]byte{want.AppendMarshal(nil)}, nil, nil
		case m.Seq == seq && seq > 0 && m.Hash != h:
			return nil, nil, fmt.Errorf("%w: head #%d of %s", ErrFork, seq, label)
		}
		return nil, nil, nil
	case MsgWant:
		n := int(m.Max)
		if n <= 0 || n > MaxWantReply {
			n = MaxWantReply
		}
		stmts, err := s.LogSince(m.Signer, m.Seq, n)
		if err != nil {
			return nil, nil, err
		}
		for _, st := range stmts {
			replies = append(replies, StatementMessage(st))
		}
		return replies, nil, nil
	}
	return nil, nil, nil
}
