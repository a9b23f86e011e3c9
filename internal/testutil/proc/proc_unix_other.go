//go:build unix && !linux

package proc

import (
	"os"
	"syscall"
)

// setDeathSignal does nothing: only Linux has a parent-death signal. A
// process whose starter dies without stopping it lives on.
func setDeathSignal(*syscall.SysProcAttr, os.Signal) {}
