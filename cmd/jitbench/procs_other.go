//go:build unix && !linux

package main

import "syscall"

// setDeathSignal does nothing: only Linux has a parent-death signal. A
// child of a bench that dies without cleaning up lives on.
func setDeathSignal(*syscall.SysProcAttr) {}
