//go:build !unix

package redis

import (
	"os"
	"os/exec"
)

// setProcAttr does nothing where there are no process groups.
func setProcAttr(*exec.Cmd) {}

// terminateGroup kills p: there is no SIGTERM here.
func terminateGroup(p *os.Process) { _ = p.Kill() }

// killGroup kills p; processes it started are not reached.
func killGroup(p *os.Process) { _ = p.Kill() }
