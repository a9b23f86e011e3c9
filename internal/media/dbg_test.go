package media

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestDbgTiming(t *testing.T) {
	ix := synthLongIndex(60)
	data, _ := Marshal(ix)
	for round := 0; round < 3; round++ {
		c0, w0 := cpuNow(), time.Now()
		const N = 50
		for i := 0; i < N; i++ {
			if _, err := Unmarshal(data); err != nil {
				t.Fatal(err)
			}
		}
		fmt.Printf("unmarshal: cpu %v/op wall %v/op, %d bytes\n", (cpuNow()-c0)/N, time.Since(w0)/N, len(data))
	}
}
