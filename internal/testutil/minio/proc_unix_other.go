//go:build unix && !linux

package minio

import "syscall"

// setDeathSignal does nothing: only Linux has a parent-death signal. A
// server whose test binary dies before stopping it lives on.
func setDeathSignal(*syscall.SysProcAttr) {}
