//go:build !unix

package cluster

import (
	"os"
	"os/exec"
)

// setProcAttr does nothing where there are no process groups.
func setProcAttr(*exec.Cmd) {}

// terminate kills p: there is no SIGTERM here.
func terminate(p *os.Process) { _ = p.Kill() }

// kill kills p; processes it started are not reached.
func kill(p *os.Process) { _ = p.Kill() }
