//go:build unix

package main

import (
	"os"
	"syscall"
)

// sysProcAttr puts a child in a process group of its own (so that it does
// not see the terminal's ctrl-C, and so that signals reach whatever it
// starts, like nginx's workers) and, where the system can, has it told to
// go when the bench dies (see setDeathSignal).
func sysProcAttr() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true}
	setDeathSignal(a)
	return a
}

// terminateGroup sends SIGTERM to the process group of p, a child started
// with sysProcAttr (the group id is its pid).
func terminateGroup(p *os.Process) { _ = syscall.Kill(-p.Pid, syscall.SIGTERM) }

// killGroup sends SIGKILL to the process group of p, a child started with
// sysProcAttr.
func killGroup(p *os.Process) { _ = syscall.Kill(-p.Pid, syscall.SIGKILL) }
