//go:build unix

package redis

import (
	"os"
	"os/exec"
	"syscall"
)

// setProcAttr puts the server in a process group of its own, so that
// signals reach it and whatever it starts.
func setProcAttr(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

// terminateGroup asks the process group of p to exit (SIGTERM).
func terminateGroup(p *os.Process) { _ = syscall.Kill(-p.Pid, syscall.SIGTERM) }

// killGroup kills the process group of p.
func killGroup(p *os.Process) { _ = syscall.Kill(-p.Pid, syscall.SIGKILL) }
