package transfer_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/zyre-go/zyre/transfer"
)

// The errors of a transfer the other side stopped: Send's when the
// receiver stopped (told, or silent for SendOptions.AckWait), Receive's
// when the sender stopped. errors.Is tells them from other failures.
func ExampleStoppedError() {
	for _, err := range []error{
		&transfer.StoppedError{Name: "phone1", Held: 172 << 20, Total: 400 << 20},
		&transfer.StoppedError{Name: "phone1", Silent: time.Minute, Held: 172 << 20, Total: 400 << 20},
		&transfer.StoppedError{Name: "room", Sender: true, Held: 25 << 20, Total: 100 << 20},
	} {
		fmt.Println(errors.Is(err, transfer.ErrStopped), err)
	}
	// Output:
	// true phone1 stopped receiving after 172.0 MiB of 400.0 MiB (43%); it keeps what it holds: send the same files again to resume
	// true phone1 stopped answering after 172.0 MiB of 400.0 MiB (43%): nothing from it for 1m0s (its receive was stopped, or its agent or the link went down); it keeps what it holds: send the same files again to resume
	// true room stopped sending after 25.0 MiB of 100.0 MiB (25%); what arrived is kept: receive again while it sends the same files again to resume
}
