package proc

import (
	"os"
	"syscall"
)

// setDeathSignal has the kernel send sig (nil: nothing) to the process
// when the thread that started it exits: see Start, which keeps that
// thread as long as the process runs.
func setDeathSignal(a *syscall.SysProcAttr, sig os.Signal) {
	if s, ok := sig.(syscall.Signal); ok {
		a.Pdeathsig = s
	}
}
