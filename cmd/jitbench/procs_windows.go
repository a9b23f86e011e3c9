package main

import (
	"os"
	"syscall"
)

// sysProcAttr returns nil: Windows has neither process groups to signal
// nor a parent-death signal. A child of a bench that dies without cleaning
// up lives on.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// terminateGroup kills p: Windows has no SIGTERM. Processes p started are
// not reached.
func terminateGroup(p *os.Process) { _ = p.Kill() }

// killGroup kills p (if it is still there).
func killGroup(p *os.Process) { _ = p.Kill() }
