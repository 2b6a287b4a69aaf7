package zre_test

import (
	"fmt"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/zre"
)

func ExampleParseBeacon() {
	b := zre.Beacon{
		Version: zre.BeaconV1,
		UUID:    uuid.MustParse("7d1c5a0e-9b4f-4e2a-8c3d-6b5a4f3e2d1c"),
		Port:    49152,
	}
	p := b.AppendMarshal(nil)
	fmt.Printf("%d octets: %x\n", len(p), p)

	got, err := zre.ParseBeacon(p)
	fmt.Println(got.UUID, got.Port, got.Stopping(), got.HasKey(), err)

	_, err = zre.ParseBeacon(p[:21])
	fmt.Println(err)
	// Output:
	// 22 octets: 5a5245017d1c5a0e9b4f4e2a8c3d6b5a4f3e2d1cc000
	// 7d1c5a0e-9b4f-4e2a-8c3d-6b5a4f3e2d1c 49152 false false <nil>
	// zre: bad beacon: version 1 beacon is 21 octets, want 22
}
