package transcode

import "time"

// Stats are a Transcoder's counters since it was made, for metrics.
type Stats struct {
	// Runs are the ffmpeg runs started (segments, thumbnails); Prefetched
	// those of the runs that succeeded made ahead of a request.
	Runs, Prefetched int64
	// Failures are the runs that failed (an *FFmpegError); Busy the
	// requests answered ErrBusy.
	Failures, Busy int64
	// RunTime is the wall time of the runs that succeeded, in all.
	RunTime time.Duration
	// Running is the number of ffmpeg processes running now; Slots the
	// most that may (Options.Concurrency).
	Running, Slots int
	// CacheBytes and CacheObjects are what this node knows of its cache
	// in the store; CacheBudget is Options.CacheBytes.
	CacheBytes, CacheObjects, CacheBudget int64
}

// Stats returns the transcoder's counters.
func (t *Transcoder) Stats() Stats {
	s := Stats{Runs: t.runs.Load(), Prefetched: t.prefetched.Load(), Failures: t.failures.Load(), Busy: t.busy.Load(),
		RunTime: time.Duration(t.runTime.Load()), Running: len(t.slots), Slots: cap(t.slots), CacheBudget: t.o.CacheBytes}
	if t.cache != nil {
		s.CacheBytes, s.CacheObjects = t.cache.usage()
	}
	return s
}
