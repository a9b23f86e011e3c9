//go:build unix

package cluster

import (
	"os"
	"os/exec"
	"syscall"
)

// setProcAttr puts a node in a process group of its own, so that signals
// reach it and whatever it starts, and (on Linux) has it killed when the
// test binary dies without stopping it.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setDeathSignal(cmd.SysProcAttr)
}

// terminate asks the process group of p to exit (SIGTERM).
func terminate(p *os.Process) { _ = syscall.Kill(-p.Pid, syscall.SIGTERM) }

// kill kills the process group of p (SIGKILL).
func kill(p *os.Process) { _ = syscall.Kill(-p.Pid, syscall.SIGKILL) }
