package zre_test

import (
	"fmt"

	"github.com/zyre-go/zyre/zre"
)

// A peer's reason for refusing us is its own text: CleanReason keeps it
// printable and short before it is shown.
func ExampleCleanReason() {
	fmt.Println(zre.CleanReason("key not authorized\x1b[2J\r\nzyre: all is fine"))
	// Output: key not authorized [2J zyre: all is fine
}

// An application tells the two directions of refusal apart: Refused is
// a peer we refused, Denied a peer that refuses us (its node does not
// admit our key: pair with it).
func ExampleDenied() {
	report := func(ev zre.Event) string {
		switch e := ev.(type) {
		case *zre.Refused:
			return fmt.Sprintf("we refused %s at its %s: %v", e.Key, e.Stage, e.Reason)
		case *zre.Denied:
			return fmt.Sprintf("%s (%s) refuses our key: %s", e.Name, e.Addr, e.Reason)
		}
		return ""
	}
	fmt.Println(report(&zre.Denied{EventHeader: zre.EventHeader{Name: "phone1"}, Addr: "tcp://10.0.0.2:5670", Reason: "key not authorized"}))
	// Output: phone1 (tcp://10.0.0.2:5670) refuses our key: key not authorized
}
