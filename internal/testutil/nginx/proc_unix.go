//go:build unix

package nginx

import (
	"os"
	"os/exec"
	"syscall"
)

// setProcAttr puts nginx in a process group of its own, which its workers
// share, so that killGroup reaches them.
func setProcAttr(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

// quit asks the master p to stop gracefully (SIGQUIT): workers finish and
// exit.
func quit(p *os.Process) { _ = p.Signal(syscall.SIGQUIT) }

// killGroup kills the process group of p, workers included.
func killGroup(p *os.Process) { _ = syscall.Kill(-p.Pid, syscall.SIGKILL) }
