package pairing

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/trust"
)

// Wire messages: ZMTP multipart messages whose first frame is protoTag and
// second the command; the fields follow, one per frame (spec/pairing.md).
const (
	protoTag = "ZPAIR1"

	cmdQRProof   = "QR-PROOF"   // id, proof, binding, name
	cmdQRConfirm = "QR-CONFIRM" // proof, binding, name
	cmdCodeA     = "CODE-A"     // sid, Ya
	cmdCodeB     = "CODE-B"     // Yb, tagB, binding, name
	cmdCodeC     = "CODE-C"     // tagA, binding, name
	cmdCodeOK    = "CODE-OK"    //
	cmdCodeYes   = "CODE-YES"   // (the scanner's user confirmed the number)
	cmdBye       = "BYE"        //
	cmdErr       = "ERR"        // reason, text
	cmdWho       = "WHO"        // (plaintext advert request)
	cmdMe        = "ME"         // key, port

	maxNameLen    = 255
	maxBindingLen = 512
	maxMsgSize    = 4096
	proofSize     = sha256.Size
	proofLabel    = "zyre-pair-v1"
)

var fieldCount = map[string]int{
	cmdQRProof: 4, cmdQRConfirm: 3, cmdCodeA: 2, cmdCodeB: 4, cmdCodeC: 3,
	cmdCodeOK: 0, cmdCodeYes: 0, cmdBye: 0, cmdErr: 2, cmdWho: 0, cmdMe: 2,
}

// Reasons in ERR messages and the sentinels they map to.
var reasons = map[string]error{
	"expired":   ErrExpired,
	"used":      ErrUsed,
	"burnt":     ErrBurnt,
	"bad-proof": ErrBadProof,
	"bad-token": ErrBadToken,
	"code-used": ErrCodeUsed,
	"wrong":     ErrWrongCode,
	"protocol":  ErrProtocol,
	"refused":   ErrRefused,
	"exposed":   ErrExposed,
}

func reasonOf(err error) string {
	for r, e := range reasons {
		if errors.Is(err, e) {
			return r
		}
	}
	return "refused"
}

func newMsg(cmd string, fields ...[]byte) [][]byte {
	return append([][]byte{[]byte(protoTag), []byte(cmd)}, fields...)
}

func errMsg(err error) [][]byte {
	text := err.Error()
	if len(text) > 200 {
		text = text[:200]
	}
	return newMsg(cmdErr, []byte(reasonOf(err)), []byte(text))
}

// parseMsg checks the tag and the field count of a message.
func parseMsg(frames [][]byte) (string, [][]byte, error) {
	if len(frames) < 2 || string(frames[0]) != protoTag {
		return "", nil, fmt.Errorf("pairing: message without the %s tag: %w", protoTag, ErrProtocol)
	}
	cmd := string(frames[1])
	n, ok := fieldCount[cmd]
	if !ok {
		return "", nil, fmt.Errorf("pairing: unknown command %q: %w", truncate(cmd, 16), ErrProtocol)
	}
	if len(frames)-2 != n {
		return "", nil, fmt.Errorf("pairing: %s with %d fields, want %d: %w", cmd, len(frames)-2, n, ErrProtocol)
	}
	return cmd, frames[2:], nil
}

// RemoteError is a failure the other side reported (an ERR message): its
// reason, one of this package's sentinel errors, which it unwraps to, and
// its text, as the other side wrote it (untrusted: escape it before
// showing it).
type RemoteError struct {
	Reason error  // ErrWrongCode, ErrRefused, ...
	Text   string // valid UTF-8 when sent, cut after 200 octets
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("pairing: the other side said: %q: %v", e.Text, e.Reason)
}

func (e *RemoteError) Unwrap() error { return e.Reason }

// remoteErr turns an ERR message into an error wrapping the sentinel.
func remoteErr(fields [][]byte) error {
	e, ok := reasons[string(fields[0])]
	if !ok {
		e = ErrRefused
	}
	text := string(fields[1])
	if !utf8.ValidString(text) {
		text = "(invalid text)"
	}
	return &RemoteError{Reason: e, Text: truncate(text, 200)}
}

// qrProof is HMAC-SHA-256 under the one-time secret over the label, the
// role, both CURVE keys and the token id.
func qrProof(secret []byte, role string, displayerKey, scannerKey curve.PublicKey, id []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(lvCat([]byte(proofLabel), []byte(role), displayerKey.Bytes(), scannerKey.Bytes(), id))
	return m.Sum(nil)
}

// peerInfo is what one side tells the other about itself.
type peerInfo struct {
	signingKey ed25519.PublicKey
	name       string
}

// checkPeerInfo verifies a binding received over a channel authenticated as
// key and a name.
func checkPeerInfo(binding, name []byte, key curve.PublicKey) (peerInfo, error) {
	if len(binding) > maxBindingLen {
		return peerInfo{}, fmt.Errorf("pairing: binding of %d octets: %w", len(binding), ErrProtocol)
	}
	if len(name) > maxNameLen || !utf8.Valid(name) {
		return peerInfo{}, fmt.Errorf("pairing: name not UTF-8 or longer than %d octets: %w", maxNameLen, ErrProtocol)
	}
	sk, _, err := trust.VerifyBinding(binding, key)
	if err != nil {
		return peerInfo{}, fmt.Errorf("pairing: binding of peer %s: %v: %w", trust.Fingerprint(key), err, ErrProtocol)
	}
	return peerInfo{signingKey: sk, name: string(name)}, nil
}

// Result is a successful pairing as one side sees it.
type Result struct {
	// Method is "qr" or "code".
	Method string
	// PeerKey is the other side's long-term CURVE key, authenticated by
	// CURVE and bound to the pairing secret or code.
	PeerKey curve.PublicKey
	// PeerUUID is zre.UUIDFromKey(PeerKey).
	PeerUUID uuid.UUID
	// PeerName is the name the peer gave (untrusted text, for display).
	PeerName string
	// PeerSigningKey is the peer's Ed25519 key for trust statements,
	// proven by a binding statement it signed.
	PeerSigningKey ed25519.PublicKey
	// Comparison is the 6-digit number both sides show after a short-code
	// pairing; empty for "qr".
	Comparison string
	// PeerAddr is where the peer is: the address its connection came
	// from (displayer) or the endpoint connected to (scanner); "" when
	// unknown. For display: a LAN attacker can choose it.
	PeerAddr string
	// AsDisplayer is true on the displayer's side (Confirm tells the
	// displayer's question from the scanner's by it).
	AsDisplayer bool
	// Others are the other devices that tried the same token or short
	// code during this pairing window, first comer first (displayer
	// only). When it is not empty the code or token is exposed: someone
	// else may have seen the screen, and Confirm must make its user pick
	// the device they expect (spec/pairing.md, "Exposure").
	Others []Attempt
	// NameHolder, when not nil, is the record of ANOTHER key that holds
	// PeerName in the Recorder (verified, introduced or revoked; the
	// record trust.Store.Admit refuses a stranger by, spec/trust.md rule
	// 4 "Another peer's name"): the peer calls itself like a device this
	// node knows, and is not that device. Confirm must then tell its user
	// plainly and make them pick it by its id, never on a plain yes, and
	// without Confirm the pairing is refused (an error that is
	// errors.Is trust.ErrNameTaken and ErrRefused).
	NameHolder *trust.Record
	// At is when the pairing completed (Options.Now).
	At time.Time
	// Record is the trust record written, when Options.Recorder is set.
	Record trust.Record
	// Vouch is the vouch for the peer signed with our identity, when the
	// Recorder is a Voucher and signed one (nil: vouching is off, or we
	// vouched for this key before).
	Vouch *trust.Statement
}

// Attempt is a device that tried a token or short code, as the displayer
// saw it.
type Attempt struct {
	// Method is "qr" (it proved the token's secret) or "code" (it asked
	// for a short-code exchange: that proves nothing yet).
	Method string
	Key    curve.PublicKey
	UUID   uuid.UUID
	// Name is the name it gave (untrusted text); "" when it gave none (a
	// short-code device that did not get that far).
	Name string
	// Addr is the address its connection came from; "" when unknown.
	Addr string
	// Known is this node's record of Key, when the Recorder holds one
	// with a name (displayer only): a device that gave no name yet (a
	// short-code device that came late) is then still recognised, by
	// its key, e.g. as the verified phone1 (user trial 4 #6).
	Known *trust.Record
}

// String describes the device for a person: its name (quoted, escaped),
// UUID prefix, fingerprint and address, e.g.
// "phone1" 9ec346dd MHYV-LSOS-4H4W-FUNT from 10.79.0.3.
// A device that gave no name but is known here by its key is named by
// its record: your verified "phone1" (by its key; it gave no name yet)
// 8b0744b8 FAWY-FLPA-OCBC-GSIW from 10.84.0.2.
func (a Attempt) String() string {
	s := describePeer(a.Name, a.UUID, a.Key, a.Addr)
	if a.Name == "" && a.Known != nil {
		s = KnownAs(*a.Known) + " (by its key; it gave no name yet)" + strings.TrimPrefix(s, "a device that gave no name,")
	}
	return s
}

// KnownAs names a device by this node's record of its key, for people:
// `your verified "phone1"` (the name quoted and escaped).
func KnownAs(r trust.Record) string {
	return fmt.Sprintf("your %s %q", r.State, r.Name)
}

// Peer is the other side of r as an Attempt.
func (r Result) Peer() Attempt {
	return Attempt{Method: r.Method, Key: r.PeerKey, UUID: r.PeerUUID, Name: r.PeerName, Addr: r.PeerAddr}
}

// describePeer is Attempt.String.
func describePeer(name string, id uuid.UUID, key curve.PublicKey, addr string) string {
	var b strings.Builder
	if name == "" {
		b.WriteString("a device that gave no name,")
	} else {
		fmt.Fprintf(&b, "%q", name)
	}
	fmt.Fprintf(&b, " %s %s", id.String()[:8], trust.Fingerprint(key))
	if addr != "" {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			addr = host
		}
		fmt.Fprintf(&b, " from %s", addr)
	}
	return b.String()
}

// describeAll joins descriptions: "A and B", "A, B and C".
func describeAll(as []Attempt) string {
	var ds []string
	for _, a := range as {
		ds = append(ds, a.String())
	}
	if len(ds) <= 1 {
		return strings.Join(ds, "")
	}
	return strings.Join(ds[:len(ds)-1], ", ") + " and " + ds[len(ds)-1]
}
