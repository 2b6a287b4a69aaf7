//go:build !linux

package main

import "syscall"

// echoOff is left to term.ReadPassword here.
func echoOff(int) error { return nil }

// readFd reads from fd.
func readFd(fd int, b []byte) (int, error) { return syscall.Read(fd, b) }
