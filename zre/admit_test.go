package zre

import (
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
)

// TestAdmitterBeaconForm: a plain node takes version 1 beacons only, a
// secure one only beacons with a key (a v1 beacon, or a v3 one whose key
// starts with 0x00, would be a downgrade).
func TestAdmitterBeaconForm(t *testing.T) {
	pub, _ := genKeys(t)
	var zeroLed [32]byte
	zeroLed[1] = 1
	noKey, err := curve.NewPublicKey(zeroLed[:])
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	v1 := Beacon{Version: BeaconV1, UUID: id, Port: 1}
	v3 := Beacon{Version: BeaconV3, UUID: id, Port: 1, PublicKey: pub}
	v3NoKey := Beacon{Version: BeaconV3, UUID: id, Port: 1, PublicKey: noKey}
	plain := plainAdmitter{}
	secure := secureAdmitter{}
	for _, c := range []struct {
		name string
		a    admitter
		b    Beacon
		ok   bool
	}{
		{"plain v1", plain, v1, true},
		{"plain v3", plain, v3, false},
		{"secure v1", secure, v1, false},
		{"secure v3", secure, v3, true},
		{"secure v3 key 0x00...", secure, v3NoKey, false},
	} {
		err := c.a.beaconForm(c.b)
		if (err == nil) != c.ok {
			t.Errorf("%s: beaconForm = %v, want ok %v", c.name, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrBadBeacon) {
			t.Errorf("%s: %v does not wrap ErrBadBeacon", c.name, err)
		}
	}
}

// TestAdmitterHelloHeaders: a plain node's HELLO carries the headers it
// is given; a secure one's ends with X-PUBLICKEY, our key.
func TestAdmitterHelloHeaders(t *testing.T) {
	in := []Header{{Key: "X-A", Value: "1"}}
	if got := (plainAdmitter{}).helloHeaders(in); len(got) != 1 || got[0] != in[0] {
		t.Errorf("plain: %v, want %v", got, in)
	}
	sc, err := newSecure(&SecureConfig{Secret: mustSecret(t)})
	if err != nil {
		t.Fatal(err)
	}
	got := (secureAdmitter{sc: sc}).helloHeaders(in)
	if len(got) != 2 || got[0] != in[0] || got[1] != (Header{Key: HeaderPublicKey, Value: sc.pub.Z85()}) {
		t.Errorf("secure: %v, want %v then X-PUBLICKEY %s", got, in, sc.pub.Z85())
	}
}
