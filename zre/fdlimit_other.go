//go:build !unix

package zre

// fdLimit returns 0: unknown.
func fdLimit() int { return 0 }
