package zmtp

import (
	"bytes"
	"fmt"
)

// GreetingSize is the size of a ZMTP 3.x greeting.
const GreetingSize = 64

// Greeting is the 64-octet ZMTP 3 greeting:
//
//	0      0xFF
//	1..7   padding (zero)
//	8      padding: libzmq writes identity-length+1 here (ZMTP/1.0 compatibility)
//	9      0x7F
//	10,11  version major, minor (3, 1)
//	12..31 mechanism name, zero-padded
//	32     as-server
//	33..63 filler (zero)
type Greeting struct {
	Major, Minor byte
	Mechanism    string
	AsServer     bool
	// IdentityLen is this side's identity length; octet 8 is IdentityLen+1,
	// as libzmq writes it. Parsing ignores octet 8.
	IdentityLen int
}

// AppendGreeting appends the 64-octet encoding of g to dst.
func AppendGreeting(dst []byte, g Greeting) []byte {
	var b [GreetingSize]byte
	b[0] = 0xFF
	b[8] = byte(g.IdentityLen + 1)
	b[9] = 0x7F
	b[10], b[11] = g.Major, g.Minor
	copy(b[12:32], g.Mechanism)
	if g.AsServer {
		b[32] = 1
	}
	return append(dst, b[:]...)
}

// ParseGreeting parses a 64-octet greeting. It accepts ZMTP 3.0 and later
// and refuses older peers.
func ParseGreeting(b []byte) (Greeting, error) {
	if len(b) < GreetingSize {
		return Greeting{}, fmt.Errorf("zmtp: greeting of %d octets, want %d: %w", len(b), GreetingSize, ErrProtocol)
	}
	if b[0] != 0xFF || b[9]&1 != 1 {
		return Greeting{}, fmt.Errorf("zmtp: bad greeting signature % x (ZMTP 1.0 peer or not ZMTP): %w", b[:10], ErrProtocol)
	}
	g := Greeting{Major: b[10], Minor: b[11], IdentityLen: int(b[8]) - 1}
	if g.Major < 3 {
		return g, fmt.Errorf("zmtp: peer speaks ZMTP %d.%d, need 3.0 or later: %w", g.Major, g.Minor, ErrProtocol)
	}
	mech := b[12:32]
	if i := bytes.IndexByte(mech, 0); i >= 0 {
		for _, c := range mech[i:] {
			if c != 0 {
				return g, fmt.Errorf("zmtp: greeting: malformed mechanism name % x: %w", mech, ErrProtocol)
			}
		}
		mech = mech[:i]
	}
	for _, c := range mech {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '+') {
			return g, fmt.Errorf("zmtp: greeting: bad character %#x in mechanism name: %w", c, ErrProtocol)
		}
	}
	g.Mechanism = string(mech)
	switch b[32] {
	case 0:
	case 1:
		g.AsServer = true
	default:
		return g, fmt.Errorf("zmtp: greeting: as-server octet %#x: %w", b[32], ErrProtocol)
	}
	return g, nil
}
