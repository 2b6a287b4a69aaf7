package trust_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"time"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

// device is a node's keys for the example: *keystore.Identity in an app.
type device struct {
	name string
	key  curve.PublicKey
	sign ed25519.PrivateKey
}

func (d device) Signer() ed25519.PrivateKey { return d.sign }
func (d device) signPub() ed25519.PublicKey { return d.sign.Public().(ed25519.PublicKey) }

func newDevice(name string) device {
	pub, _, _ := curve.GenerateKeyPair(nil)
	_, sk, _ := ed25519.GenerateKey(nil)
	return device{name: name, key: pub, sign: sk}
}

// Pairing the room with a phone signs the room's vouch for it; a second
// phone, which verified the room, then trusts the first one as introduced.
func ExampleStore_MarkVerifiedVouch() {
	ctx := context.Background()
	room, phone1 := newDevice("room"), newDevice("phone1")
	dir, _ := os.MkdirTemp("", "zyre-example")
	defer os.RemoveAll(dir)
	roomStore, _ := trust.Open(dir+"/room", trust.Options{})
	phone2Store, _ := trust.Open(dir+"/phone2", trust.Options{})

	// The room pairs with phone1 (pairing does this), and phone2 with the room.
	_, vouch, err := roomStore.MarkVerifiedVouch(ctx, room, phone1.key, zre.UUIDFromKey(phone1.key), "phone1", "qr", phone1.signPub())
	if err != nil {
		fmt.Println(err)
		return
	}
	phone2Store.MarkVerified(ctx, room.key, zre.UUIDFromKey(room.key), "room", "qr", room.signPub())

	// The room's node shouts the vouch in zyre-trust; phone2's node applies it.
	applied, _ := phone2Store.Apply(ctx, vouch.Raw)
	fmt.Println("honoured:", applied.Honoured)
	v, _ := phone2Store.Admit(ctx, trust.Observation{UUID: zre.UUIDFromKey(phone1.key), Name: "phone1", Key: phone1.key}, time.Now())
	fmt.Println("phone1 at phone2:", v.Record.State)
	roomStore.Flush(ctx)
	phone2Store.Flush(ctx)
	// Output:
	// honoured: true
	// phone1 at phone2: introduced
}
