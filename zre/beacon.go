package zre

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
)

// ErrBadBeacon is wrapped by every error ParseBeacon returns.
var ErrBadBeacon = errors.New("zre: bad beacon")

// Beacon versions and sizes. A v1 beacon is what a plain C zyre node sends;
// a v3 beacon adds the node's CURVE public key (zyre with zyre_set_zcert).
const (
	BeaconV1     uint8 = 1
	BeaconV3     uint8 = 3
	BeaconV1Size       = 22
	BeaconV3Size       = 54
)

// Beacon is the UDP discovery payload (RFC 36; the v3 form is zyre's).
//
// Wire layout (integers big-endian):
//
//	"ZRE" | version u8 (1 or 3) | UUID 16 octets | port u16 | v3 only: CURVE public key 32 octets
//
// Port is the node's ZRE TCP port; port 0 means the node is leaving.
type Beacon struct {
	Version uint8 // BeaconV1 or BeaconV3
	UUID    uuid.UUID
	Port    uint16
	// PublicKey holds the 32 key octets of a v3 beacon exactly as received,
	// also when HasKey reports false. Zero in a v1 beacon.
	PublicKey curve.PublicKey
}

// Stopping reports whether the beacon says the node is leaving (port 0).
func (b Beacon) Stopping() bool { return b.Port == 0 }

// HasKey reports whether the beacon carries a CURVE public key. As in the C
// reference (zyre_node.c), a v3 beacon whose key starts with octet 0x00
// counts as carrying no key: ParseBeacon accepts it (so it re-marshals byte
// for byte), and a node in secure mode must drop it to avoid a downgrade.
func (b Beacon) HasKey() bool {
	return b.Version == BeaconV3 && b.PublicKey.Bytes()[0] != 0
}

// AppendMarshal appends the wire form of b to dst: the 54-octet v3 form when
// b.Version is BeaconV3, otherwise the 22-octet v1 form (version octet 1;
// so the zero Beacon marshals as v1).
func (b Beacon) AppendMarshal(dst []byte) []byte {
	v := BeaconV1
	if b.Version == BeaconV3 {
		v = BeaconV3
	}
	dst = append(dst, 'Z', 'R', 'E', v)
	dst = append(dst, b.UUID[:]...)
	dst = binary.BigEndian.AppendUint16(dst, b.Port)
	if v == BeaconV3 {
		dst = append(dst, b.PublicKey.Bytes()...)
	}
	return dst
}

// ParseBeacon parses a UDP beacon payload. It accepts exactly 22 octets of
// version 1 or 54 octets of version 3; anything else returns an error
// wrapping ErrBadBeacon that says what was wrong. See HasKey for a v3
// beacon whose key starts with 0x00.
func ParseBeacon(p []byte) (Beacon, error) {
	if len(p) < 4 {
		return Beacon{}, fmt.Errorf("%w: %d octets, too short", ErrBadBeacon, len(p))
	}
	if p[0] != 'Z' || p[1] != 'R' || p[2] != 'E' {
		return Beacon{}, fmt.Errorf("%w: prefix %q, want \"ZRE\"", ErrBadBeacon, p[:3])
	}
	var want int
	switch p[3] {
	case BeaconV1:
		want = BeaconV1Size
	case BeaconV3:
		want = BeaconV3Size
	default:
		return Beacon{}, fmt.Errorf("%w: bad version %d", ErrBadBeacon, p[3])
	}
	if len(p) != want {
		return Beacon{}, fmt.Errorf("%w: version %d beacon is %d octets, want %d", ErrBadBeacon, p[3], len(p), want)
	}
	b := Beacon{Version: p[3], Port: binary.BigEndian.Uint16(p[20:22])}
	copy(b.UUID[:], p[4:20])
	if b.Version == BeaconV3 {
		k, err := curve.NewPublicKey(p[22:54])
		if err != nil { // cannot happen: the length is checked above
			return Beacon{}, fmt.Errorf("%w: %w", ErrBadBeacon, err)
		}
		b.PublicKey = k
	}
	return b, nil
}
