package cluster

import "syscall"

// setDeathSignal has the kernel kill the node when the thread that started
// it exits (the test binary died, say of a test timeout, before stopping
// it). The thread is kept alive as long as the node runs: see launchOnce.
func setDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
