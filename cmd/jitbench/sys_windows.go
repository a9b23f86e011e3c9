package main

import "syscall"

// raiseFileLimit does nothing: Windows has no limit on open files to raise.
func raiseFileLimit() {}

// fileLimit reports that there is no limit on open files to check.
func fileLimit() (cur, max uint64, ok bool) { return 0, 0, false }

// lockFile does nothing: without flock two benches started at once may both
// generate the fixture (each writes a temporary file and renames it, so the
// result is whole either way).
func lockFile(string) (func(), error) { return func() {}, nil }

// setRcvbuf sets the receive buffer (SO_RCVBUF) of the socket fd.
func setRcvbuf(fd uintptr, n int) error {
	return syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
}
