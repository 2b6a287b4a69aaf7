// Package transfer sends files and directory trees to one trusted peer
// over a running secure node ("zyre send" and "zyre receive"): the data
// goes in WHISPERs, so over the CURVE connection between the two nodes
// (end to end: no other node relays it); every file is checked by its
// SHA-256 before it is put in place; a transfer cut by a broken connection
// or a restart of either side resumes where the receiver's partial files
// end; and nothing is written outside the receiver's folder, whatever names
// the sender uses (os.Root, and every name checked first).
//
// The protocol (spec/agent.md, "File transfer") is a few WHISPER kinds,
// each of frames Tag, KIND, a JSON header, and for DATA the octets:
//
//	OFFER   sender -> receiver  {id, files: [{path, size, mode, sha256}]}
//	ACCEPT  receiver -> sender  {id, offsets: [octets held per file]}
//	REJECT  receiver -> sender  {id, reason}
//	DATA    sender -> receiver  {id, file, offset} + octets
//	ACK     receiver -> sender  {id, file, offset} (all before offset held)
//	DONE    receiver -> sender  {id, ok, error}
//	DONE    either way          {id, ok: false, stopped: true, error, held}
//
// The second DONE says that its side stopped part-way (its user's Ctrl-C,
// its agent stopping): the other side ends at once with a *StoppedError
// instead of waiting for more. (A receiver of an older version ignores
// it, and one of ours that is stopped without a word, or a sender's, is
// given up on after a while: SendOptions.AckWait, ReceiveOptions.PeerWait.)
//
// The sender keeps at most Window octets beyond the receiver's last ACK
// and goes back to it when the receiver says it lost its place (an ACK
// with resync) or is quiet for a while; it offers again when the receiver
// comes back after an EXIT.
package transfer

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Tag is the first frame of every message of the protocol.
const Tag = "zyre-send/1"

// Limits.
const (
	ChunkSize = 128 << 10 // octets of one DATA
	Window    = 8 << 20   // octets sent beyond the last ACK
	AckEvery  = 1 << 20   // the receiver ACKs at least this often
	MaxFiles  = 100000
	MaxPath   = 4096
	MaxName   = 255      // octets of one path component (NAME_MAX)
	MaxHeader = 16 << 20 // one JSON header (an OFFER of many files)
	MaxSize   = 1 << 50  // octets of one file
)

// Message kinds.
const (
	kindOffer  = "OFFER"
	kindAccept = "ACCEPT"
	kindReject = "REJECT"
	kindData   = "DATA"
	kindAck    = "ACK"
	kindDone   = "DONE"
)

// File is one file of an offer. Path is relative, with '/' separators.
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	Mode   uint32 `json:"mode"`
	SHA256 string `json:"sha256"`
}

// Offer is what a sender offers: an ID that stays the same for the same
// files (so a restarted sender resumes), and the files.
type Offer struct {
	ID    string `json:"id"`
	Files []File `json:"files"`
}

// Total returns the octets of all files.
func (o *Offer) Total() int64 {
	var t int64
	for _, f := range o.Files {
		t += f.Size
	}
	return t
}

type accept struct {
	ID      string  `json:"id"`
	Offsets []int64 `json:"offsets"`
}

type reject struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

type dataHdr struct {
	ID     string `json:"id"`
	File   int    `json:"file"`
	Offset int64  `json:"offset"`
}

type ack struct {
	ID     string `json:"id"`
	File   int    `json:"file"`
	Offset int64  `json:"offset"`
	Resync bool   `json:"resync,omitempty"`
}

type done struct {
	ID    string `json:"id"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Stopped: the side that sends it stopped part-way (its user's
	// Ctrl-C, its agent stopping); the receiver keeps what it holds.
	Stopped bool `json:"stopped,omitempty"`
	// Held: with Stopped, from the receiver, the octets it holds.
	Held int64 `json:"held,omitempty"`
}

// ErrProtocol marks a malformed or out-of-place message.
var ErrProtocol = errors.New("transfer: protocol error")

// frames encodes one message.
func frames(kind string, hdr any, data []byte) [][]byte {
	b, err := json.Marshal(hdr)
	if err != nil {
		panic(err) // our own types always encode
	}
	f := [][]byte{[]byte(Tag), []byte(kind), b}
	if data != nil {
		f = append(f, data)
	}
	return f
}

// parse reads one message: its kind, header (into a new value of the
// kind's type) and data. ok is false for a WHISPER of another protocol.
func parse(content [][]byte) (kind string, hdr any, data []byte, ok bool, err error) {
	if len(content) < 3 || string(content[0]) != Tag {
		return "", nil, nil, false, nil
	}
	kind = string(content[1])
	if len(content[2]) > MaxHeader {
		return kind, nil, nil, true, fmt.Errorf("%w: %s header of %d octets", ErrProtocol, kind, len(content[2]))
	}
	switch kind {
	case kindOffer:
		hdr = &Offer{}
	case kindAccept:
		hdr = &accept{}
	case kindReject:
		hdr = &reject{}
	case kindData:
		hdr = &dataHdr{}
	case kindAck:
		hdr = &ack{}
	case kindDone:
		hdr = &done{}
	default:
		return kind, nil, nil, true, fmt.Errorf("%w: unknown kind %q", ErrProtocol, kind)
	}
	want := 3
	if kind == kindData {
		want = 4
	}
	if len(content) != want {
		return kind, nil, nil, true, fmt.Errorf("%w: %s of %d frames", ErrProtocol, kind, len(content))
	}
	if err := json.Unmarshal(content[2], hdr); err != nil {
		return kind, nil, nil, true, fmt.Errorf("%w: %s: %v", ErrProtocol, kind, err)
	}
	if kind == kindData {
		data = content[3]
		if len(data) == 0 || len(data) > ChunkSize {
			return kind, nil, nil, true, fmt.Errorf("%w: DATA of %d octets", ErrProtocol, len(data))
		}
	}
	return kind, hdr, data, true, nil
}

// MaxRemoteText bounds the text of a peer's REJECT or DONE kept in an
// error.
const MaxRemoteText = 500

// remoteText makes a peer's REJECT reason or DONE error fit for an error
// of ours: without the "transfer: " its own error began with (ours says
// it already), at most MaxRemoteText octets, valid UTF-8. Callers print
// it escaped (it is the peer's text).
func remoteText(s string) string {
	s = strings.TrimPrefix(strings.ToValidUTF8(s, "\uFFFD"), "transfer: ")
	if len(s) > MaxRemoteText {
		cut := MaxRemoteText
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// CheckPath reports whether p is a safe relative path for a received file:
// '/'-separated, clean, not absolute, no "..", ".", empty or hidden-partial
// component (in any case), no backslash, only graphic characters and
// spaces, valid UTF-8, at most MaxPath octets and MaxName per component.
func CheckPath(p string) error {
	bad := func(why string) error { return fmt.Errorf("%w: path %q: %s", ErrProtocol, p, why) }
	switch {
	case p == "":
		return bad("empty")
	case len(p) > MaxPath:
		return bad("too long")
	case !utf8.ValidString(p):
		return bad("not UTF-8")
	case strings.HasPrefix(p, "/"):
		return bad("absolute")
	case strings.ContainsRune(p, '\\'):
		return bad("backslash")
	case path.Clean(p) != p:
		return bad("not clean")
	}
	for _, r := range p {
		// Graphic characters and spaces only: no C0 or C1 control (a
		// terminal listing the folder later takes them for escapes), no
		// bidi override, line separator or other invisible format
		// character; the joiners of emoji and scripts stay.
		if !unicode.IsGraphic(r) && r != '\u200c' && r != '\u200d' {
			return bad(fmt.Sprintf("character %U", r))
		}
	}
	for _, c := range strings.Split(p, "/") {
		switch {
		case c == "" || c == "." || c == "..":
			return bad("component " + fmt.Sprintf("%q", c))
		case len(c) > MaxName:
			return bad(fmt.Sprintf("a name of %d octets", len(c)))
		case strings.EqualFold(c, partialDir):
			// In any case: the same folder on a case-insensitive file
			// system.
			return bad("reserved name")
		}
	}
	return nil
}

// CheckOffer checks an offer from the network: its ID, the number of
// files, every path (and no two the same, nor one inside another as a
// directory), sizes and hashes.
func CheckOffer(o *Offer) error {
	if len(o.ID) != 32 || strings.Trim(o.ID, "0123456789abcdef") != "" {
		return fmt.Errorf("%w: offer id %q", ErrProtocol, o.ID)
	}
	if len(o.Files) == 0 || len(o.Files) > MaxFiles {
		return fmt.Errorf("%w: offer of %d files", ErrProtocol, len(o.Files))
	}
	seen := make(map[string]bool, len(o.Files))
	for _, f := range o.Files {
		if err := CheckPath(f.Path); err != nil {
			return err
		}
		if seen[f.Path] {
			return fmt.Errorf("%w: path %q twice", ErrProtocol, f.Path)
		}
		seen[f.Path] = true
		if f.Size < 0 || f.Size > MaxSize {
			return fmt.Errorf("%w: %q of %d octets", ErrProtocol, f.Path, f.Size)
		}
		if len(f.SHA256) != 64 || strings.Trim(f.SHA256, "0123456789abcdef") != "" {
			return fmt.Errorf("%w: %q: sha256 %q", ErrProtocol, f.Path, f.SHA256)
		}
	}
	// A file may not also be a directory of another.
	for _, f := range o.Files {
		for d := path.Dir(f.Path); d != "."; d = path.Dir(d) {
			if seen[d] {
				return fmt.Errorf("%w: %q is a file and a directory", ErrProtocol, d)
			}
		}
	}
	return nil
}
