package main

import "syscall"

// setDeathSignal has the kernel send the child SIGTERM if the bench dies
// without cleaning up (nginx's master then takes its workers along).
func setDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGTERM }
