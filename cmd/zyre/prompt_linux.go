package main

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// echoOff turns the terminal's echo off (ReadPassword does too, but only
// once it reads: after the prompt).
func echoOff(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("%w: %v", errNoEcho, err)
	}
	t.Lflag &^= unix.ECHO
	t.Lflag |= unix.ICANON | unix.ISIG
	t.Iflag |= unix.ICRNL
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("%w: %v", errNoEcho, err)
	}
	return nil
}

// readFd reads from fd, again when interrupted.
func readFd(fd int, b []byte) (int, error) {
	for {
		n, err := unix.Read(fd, b)
		if err == unix.EINTR {
			continue
		}
		if n < 0 {
			n = 0
		}
		return n, err
	}
}
