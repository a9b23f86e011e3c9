//go:build !unix

package transcode

import "time"

// childCPU is unknown here.
func childCPU() time.Duration { return 0 }
