package pairing

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/zyre-go/zyre/internal/beacon"
)

// LAN discovery of a short-code session (spec/pairing.md, "Discovery"):
// the displayer broadcasts an announcement on the beacon interface; the
// joiner, who knows the code, recognises it by a one-octet tag computed
// from the code and a per-session random salt. The announcement carries no
// key and no name, and its tag leaves an eavesdropper 8 bits short of
// nothing: see the spec for the threat analysis.
const (
	// DefaultDiscoveryPort is the UDP port of pairing announcements.
	DefaultDiscoveryPort = 5679
	// DefaultAnnounceInterval is the time between two announcements.
	DefaultAnnounceInterval = 250 * time.Millisecond

	annMagic     = "ZPD"
	annVersion   = 1
	annSaltSize  = 16
	annSize      = len(annMagic) + 1 + annSaltSize + 1 + 2
	annTagLabel  = "zyre-pair-discovery-v1"
	annGraceMult = 3 // a joiner listens this many intervals more for a second match
	// otherCodeMult: a joiner that hears only announcements of other
	// codes gives up after this many intervals (5 s by default) rather
	// than the step timeout: a code is typed after it is shown, so its
	// announcement is already on the air, and the other codes prove
	// that announcements from there arrive.
	otherCodeMult = 20
)

// ErrAmbiguous: more than one displayer on the network announced a session
// that matches the code's tag; the joiner connects to none (pass the
// endpoint the displayer printed).
var ErrAmbiguous = errors.New("pairing: several displayers match this code")

// announcement is the discovery datagram, in this layout (23 octets):
//
//	"ZPD" | version = 1 | salt (16) | tag (1) | code port (2, big-endian)
//
// The code port is the TCP port of the displayer's plaintext key advert
// (WHO/ME); its address is the datagram's source address.
type announcement struct {
	salt [annSaltSize]byte
	tag  byte
	port uint16
}

// errNotAnnounced: discovery heard no announcement of the code (Explain).
var errNotAnnounced = errors.New("no announcement")

// errOtherCode: discovery heard announcements, of other codes only.
var errOtherCode = errors.New("other codes announced")

func (a announcement) appendMarshal(b []byte) []byte {
	b = append(b, annMagic...)
	b = append(b, annVersion)
	b = append(b, a.salt[:]...)
	b = append(b, a.tag)
	return binary.BigEndian.AppendUint16(b, a.port)
}

var errShortAnnouncement = fmt.Errorf("pairing: announcement: wrong size, want %d octets: %w", annSize, ErrProtocol)

// parseAnnouncement reads an announcement; anything else on the port is
// an error wrapping ErrProtocol.
func parseAnnouncement(b []byte) (announcement, error) {
	var a announcement
	if len(b) != annSize {
		return a, errShortAnnouncement
	}
	if string(b[:len(annMagic)]) != annMagic {
		return a, fmt.Errorf("pairing: announcement: bad magic %q: %w", b[:len(annMagic)], ErrProtocol)
	}
	off := len(annMagic)
	if b[off] != annVersion {
		return a, fmt.Errorf("pairing: announcement: version %d, this zyre reads %d: %w", b[off], annVersion, ErrProtocol)
	}
	off++
	copy(a.salt[:], b[off:])
	off += annSaltSize
	a.tag = b[off]
	off++
	a.port = binary.BigEndian.Uint16(b[off:])
	if a.port == 0 {
		return a, fmt.Errorf("pairing: announcement: port 0: %w", ErrProtocol)
	}
	return a, nil
}

// codeTag is the first octet of SHA-256(lv_cat(label, salt, code)), with
// code the 12 ASCII digits.
func codeTag(salt []byte, code string) byte {
	h := sha256.Sum256(lvCat([]byte(annTagLabel), salt, []byte(code)))
	return h[0]
}

// newAnnouncement makes the announcement of a session with a fresh salt.
func newAnnouncement(r io.Reader, code string, port uint16) (announcement, error) {
	if r == nil {
		r = rand.Reader
	}
	var a announcement
	if _, err := io.ReadFull(r, a.salt[:]); err != nil {
		return a, fmt.Errorf("pairing: announcement salt: %w", err)
	}
	a.tag, a.port = codeTag(a.salt[:], code), port
	return a, nil
}

// beaconConfig is the UDP service for announcements, on the interface(s)
// the node would use.
func (o Options) beaconConfig() beacon.Config {
	return beacon.Config{Port: o.DiscoveryPort, Interval: o.AnnounceInterval, Interface: o.Interface, Loopback: o.onLoopback(), Logger: o.Logger}
}

// onLoopback reports whether pairing stays on lo: Loopback, or a Listen
// address on loopback (then announcements stay there too).
func (o Options) onLoopback() bool {
	if o.Loopback {
		return true
	}
	ap, err := netip.ParseAddrPort(o.Listen)
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

// onLink reports whether an announcement's source can be a displayer on
// the network we look on: a unicast address inside the subnet of one of
// the interfaces, other than its network and broadcast addresses. Anything
// else is off-link (with All the socket is bound to 0.0.0.0 and hears
// unicast from anywhere) or a spoofed source meant to make the joiner
// connect elsewhere.
func onLink(a netip.Addr, cs []beacon.Choice) bool {
	a = a.Unmap()
	for _, c := range cs {
		if c.Prefix.Contains(a) && a != c.Broadcast && a != c.Prefix.Addr() {
			return true
		}
	}
	return false
}

// Discover listens on the beacon interface for a displayer announcing a
// short-code session that matches code, and returns its code endpoint
// (what JoinCode connects to). It waits at most Options.Timeout for the
// first match, then a few announcement intervals more: when two different
// sessions match it returns ErrAmbiguous rather than guess, since one
// wrong CPace run would burn the other's code.
func Discover(ctx context.Context, code string, opts Options) (string, error) {
	opts = opts.withDefaults()
	prs, err := NormalizeCode(code)
	if err != nil {
		return "", err
	}
	svc, err := beacon.New(opts.beaconConfig())
	if err != nil {
		return "", fmt.Errorf("pairing: discovery: %w", err)
	}
	defer svc.Close()
	if err := svc.Start(ctx); err != nil {
		return "", fmt.Errorf("pairing: discovery: %w", err)
	}
	where := fmt.Sprintf("%s %v", svc.Interface(), svc.Broadcast()) // for errors
	type session struct {
		from netip.Addr
		salt [annSaltSize]byte
	}
	found := map[session]netip.AddrPort{}
	var first netip.AddrPort
	deadline := time.NewTimer(opts.Timeout)
	defer deadline.Stop()
	var grace <-chan time.Time
	var others []netip.Addr // sources of announcements of other codes
	var otherC <-chan time.Time
	// notShown: nothing matched within waited; naming the devices that
	// showed other codes (a typo, or a code spent and replaced since).
	notShown := func(waited time.Duration) error {
		if len(others) > 0 {
			var hs []string
			for _, o := range others {
				hs = append(hs, o.String())
			}
			return fmt.Errorf("pairing: no device on %s showed this code within %s; %s showed another code: %w: %w: %w", where, waited, strings.Join(hs, ", "), errOtherCode, errNotAnnounced, ErrUnreachable)
		}
		return fmt.Errorf("pairing: no device on %s showed this code within %s: %w: %w", where, waited, errNotAnnounced, ErrUnreachable)
	}
	for {
		select {
		case p, ok := <-svc.Packets():
			if !ok {
				if ctx.Err() != nil { // the service stops with ctx, maybe before we see ctx
					return "", fmt.Errorf("pairing: looking for the displayer on %s: %w", where, ctx.Err())
				}
				return "", fmt.Errorf("pairing: discovery on %s: the UDP service stopped: %w", where, ErrUnreachable)
			}
			if !onLink(p.From.Addr(), svc.Choices()) {
				opts.Logger.Debug("pairing: discovery: ignored datagram from off the interface's subnet", "from", p.From)
				continue
			}
			a, err := parseAnnouncement(p.Payload)
			if err != nil {
				opts.Logger.Debug("pairing: discovery: ignored datagram", "from", p.From, "err", err)
				continue
			}
			if codeTag(a.salt[:], prs) != a.tag {
				// A device showing another code: said if nothing matches
				// (a typo, or a code it has replaced since).
				if len(others) < 4 && !slices.Contains(others, p.From.Addr()) {
					others = append(others, p.From.Addr())
				}
				if len(others) == 1 && otherC == nil && len(found) == 0 {
					t := time.NewTimer(otherCodeMult * opts.AnnounceInterval)
					defer t.Stop()
					otherC = t.C
				}
				continue
			}
			s := session{from: p.From.Addr(), salt: a.salt}
			ep := netip.AddrPortFrom(p.From.Addr(), a.port)
			if _, ok := found[s]; ok {
				continue
			}
			found[s] = ep
			otherC = nil
			if len(found) == 1 {
				first = ep
				t := time.NewTimer(annGraceMult * opts.AnnounceInterval)
				defer t.Stop()
				grace = t.C
				continue
			}
			var eps []string
			for _, e := range found {
				eps = append(eps, e.String())
			}
			return "", fmt.Errorf("pairing: on %s, %s: %w (pass the endpoint the displayer printed)", where, strings.Join(eps, ", "), ErrAmbiguous)
		case <-grace:
			return first.String(), nil
		case <-otherC:
			return "", notShown(otherCodeMult * opts.AnnounceInterval)
		case <-deadline.C:
			return "", notShown(opts.Timeout)
		case <-ctx.Done():
			return "", fmt.Errorf("pairing: looking for the displayer on %s: %w", where, ctx.Err())
		}
	}
}
