//go:build !unix

package nginx

import (
	"os"
	"os/exec"
)

// setProcAttr does nothing where there are no process groups.
func setProcAttr(*exec.Cmd) {}

// quit kills p: there is no SIGQUIT here.
func quit(p *os.Process) { _ = p.Kill() }

// killGroup kills p; processes it started are not reached.
func killGroup(p *os.Process) { _ = p.Kill() }
