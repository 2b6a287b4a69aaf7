//go:build !unix

package zmtp_test

// contextSwitches is not measured here.
func contextSwitches() (voluntary, involuntary int64) { return 0, 0 }
