package keyid

import (
	"testing"

	"github.com/zyre-go/zyre/curve"
)

// The derivations are fixed forever: a change would rename every node and
// every fingerprint people have compared. Vectors from spec/identity.md and
// spec/keystore.md.
func TestPinned(t *testing.T) {
	for _, tc := range []struct{ key, uuid, fingerprint string }{
		{"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", "cda64c5a-c2d2-56e5-a794-fedd49d15206", "KISQ-D5HH-UY7W-DXLX"},
		{"Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID", "", "5OZ2-6TOZ-TTX7-G3U7"},
		{"0rJua1Qkhq2)}4G4gS)W5Ft->6=4P585:Cl9uDpB", "", "VYQW-YLXV-ER5D-PAWB"},
	} {
		k, err := curve.ParsePublicKey(tc.key)
		if err != nil {
			t.Fatal(err)
		}
		if got := Fingerprint(k); got != tc.fingerprint {
			t.Errorf("Fingerprint(%s) = %s, want %s", tc.key, got, tc.fingerprint)
		}
		id := UUID(k)
		if tc.uuid != "" && id.String() != tc.uuid {
			t.Errorf("UUID(%s) = %s, want %s", tc.key, id, tc.uuid)
		}
		if id.Version() != 5 || !IsBound(id, k) {
			t.Errorf("UUID(%s) = %s: version %d, bound %v", tc.key, id, id.Version(), IsBound(id, k))
		}
	}
	a, _ := curve.ParsePublicKey("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7")
	b, _ := curve.ParsePublicKey("Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID")
	if IsBound(UUID(a), b) {
		t.Error("key B bound to key A's UUID")
	}
}
