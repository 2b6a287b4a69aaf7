//go:build unix

package zre

import "syscall"

// fdLimit returns the process's limit of open files (RLIMIT_NOFILE), or 0
// when unknown.
func fdLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 0
	}
	return int(rl.Cur)
}
