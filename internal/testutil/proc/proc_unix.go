//go:build unix

package proc

import (
	"os"
	"os/exec"
	"syscall"
)

// setProcAttr puts cmd's process in a process group of its own and gives
// it the parent-death signal sig where the system has one.
func setProcAttr(cmd *exec.Cmd, sig os.Signal) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	setDeathSignal(cmd.SysProcAttr, sig)
}

// terminateGroup sends SIGTERM to the process group of p (whose id is
// p's: see setProcAttr).
func terminateGroup(p *os.Process) { _ = syscall.Kill(-p.Pid, syscall.SIGTERM) }

// killGroup sends SIGKILL to the process group of p.
func killGroup(p *os.Process) { _ = syscall.Kill(-p.Pid, syscall.SIGKILL) }
