//go:build !unix

package proc

import (
	"os"
	"os/exec"
)

// setProcAttr does nothing: there are neither process groups nor a
// parent-death signal here.
func setProcAttr(*exec.Cmd, os.Signal) {}

// terminateGroup kills p: there is no SIGTERM here, and processes p
// started are not reached.
func terminateGroup(p *os.Process) { _ = p.Kill() }

// killGroup kills p (if it is still there).
func killGroup(p *os.Process) { _ = p.Kill() }
