package zre

import (
	"testing"

	"github.com/zyre-go/zyre/curve"
)

func TestUUIDFromKey(t *testing.T) {
	a, err := curve.ParsePublicKey("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7")
	if err != nil {
		t.Fatal(err)
	}
	b, err := curve.ParsePublicKey("Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID")
	if err != nil {
		t.Fatal(err)
	}
	ua, ub := UUIDFromKey(a), UUIDFromKey(b)
	if ua == ub {
		t.Fatal("two keys gave the same UUID")
	}
	if ua.Version() != 5 || ua.Variant().String() != "RFC4122" {
		t.Errorf("UUID %s: version %d variant %s, want 5 RFC4122", ua, ua.Version(), ua.Variant())
	}
	if UUIDFromKey(a) != ua {
		t.Error("UUIDFromKey is not deterministic")
	}
	if !IsBound(ua, a) || IsBound(ua, b) {
		t.Error("IsBound wrong")
	}
	// Pinned value: changing the derivation breaks every existing identity.
	if got, want := ua.String(), "cda64c5a-c2d2-56e5-a794-fedd49d15206"; got != want {
		t.Errorf("UUID of key A = %s, want %s (spec/identity.md)", got, want)
	}
}
