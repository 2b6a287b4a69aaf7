package trust_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

// A stranger with its own key that calls itself like a paired device is
// refused, and nothing is recorded on the paired device's record.
func ExampleNameTaken() {
	home, _ := os.MkdirTemp("", "zyre-example")
	defer os.RemoveAll(home)
	st, _ := trust.Open(home, trust.Options{})
	ctx, now := context.Background(), time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

	room, _, _ := curve.GenerateKeyPair(rand.NewChaCha8([32]byte{1}))
	st.MarkVerified(ctx, room, zre.UUIDFromKey(room), "room", "qr", nil)

	stranger, _, _ := curve.GenerateKeyPair(rand.NewChaCha8([32]byte{2}))
	v, _ := st.Admit(ctx, trust.Observation{UUID: zre.UUIDFromKey(stranger), Name: "room", Key: stranger}, now)
	fmt.Println("admitted:", v.Allow, "key change:", v.KeyChange != nil, "name taken:", errors.Is(v.NameTaken, trust.ErrNameTaken))
	r, _, _ := st.Lookup(room)
	fmt.Println("room:", r.State, "key change:", r.KeyChange != nil)
	// Output:
	// admitted: false key change: false name taken: true
	// room: verified key change: false
}
