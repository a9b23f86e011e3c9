//go:build unix

package transcode

import (
	"syscall"
	"time"
)

// childCPU is the user and system CPU time of the process's children that
// have ended (the ffmpeg runs), 0 if unknown.
func childCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
