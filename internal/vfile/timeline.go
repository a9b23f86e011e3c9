package vfile

import (
	"cmp"
	"math"
	"slices"
	"sort"
)

// TimePoint maps a byte offset of a file to a media time.
type TimePoint struct {
	// Off is a byte offset in the file.
	Off int64
	// Time is the media time, in seconds from the start of the file's
	// media (a clip's start is time 0), of the byte at Off.
	Time float64
}

// Timeline maps the bytes of a file to media times, so that a file can be
// sent at the pace its media plays (internal/delivery). Its points are
// sorted by offset with strictly increasing offsets and non-decreasing
// times. Between two points the time grows linearly with the offset; the
// bytes before the first point (headers) are at time 0 and the bytes from
// the last point on are at the last point's time. Builders keep it compact:
// one point per TimelineStep of media, not one per sample.
type Timeline []TimePoint

// MaxTimelinePoints bounds the points of a timeline made by
// CompactTimeline with TimelineStep (a 60-minute file gets about 2,048).
const MaxTimelinePoints = 2048

// MinTimelineStep is the finest media step between two timeline points.
const MinTimelineStep = 0.25

// TimelineStep is the media step, in seconds, between the points of the
// timeline of a file of the given media duration: MinTimelineStep, or
// coarser for files longer than about 8.5 minutes so that they get at most
// about MaxTimelinePoints points.
func TimelineStep(duration float64) float64 {
	return max(MinTimelineStep, duration/MaxTimelinePoints)
}

// Time returns the media time of the byte at off.
func (tl Timeline) Time(off int64) float64 {
	n := len(tl)
	if n == 0 || off < tl[0].Off {
		return 0
	}
	if off >= tl[n-1].Off {
		return tl[n-1].Time
	}
	// The last point at or before off; i+1 < n.
	i := sort.Search(n, func(i int) bool { return tl[i].Off > off }) - 1
	a, b := tl[i], tl[i+1]
	if b.Off <= a.Off {
		return b.Time // not a valid timeline; do not divide by zero
	}
	return a.Time + (b.Time-a.Time)*float64(off-a.Off)/float64(b.Off-a.Off)
}

// Offset returns the first byte offset whose media time is at least t, or
// math.MaxInt64 when no byte of the timeline reaches t (t after its last
// point's time). It is 0 for t <= 0.
func (tl Timeline) Offset(t float64) int64 {
	n := len(tl)
	if t <= 0 || n == 0 {
		if n == 0 && t > 0 {
			return math.MaxInt64
		}
		return 0
	}
	if t > tl[n-1].Time {
		return math.MaxInt64
	}
	// The first point at or after t.
	j := sort.Search(n, func(i int) bool { return tl[i].Time >= t })
	if j == 0 {
		return tl[0].Off
	}
	a, b := tl[j-1], tl[j]
	// a.Time < t <= b.Time.
	// Rounded up, with a little slack for the rounding of Time.
	off := a.Off + int64(math.Ceil(float64(b.Off-a.Off)*(t-a.Time)/(b.Time-a.Time)-1e-6))
	return min(off, b.Off)
}

// Duration is the media time of the last point (0 for an empty timeline).
func (tl Timeline) Duration() float64 {
	if len(tl) == 0 {
		return 0
	}
	return tl[len(tl)-1].Time
}

// Bitrate is the average bit rate of the media of a file of size bytes with
// this timeline, in bits per second: 0 when its duration is unknown.
func (tl Timeline) Bitrate(size int64) int64 {
	d := tl.Duration()
	if d <= 0 || size <= 0 {
		return 0
	}
	return int64(math.Round(float64(size) * 8 / d))
}

// Bytes is the memory the timeline holds, for cache accounting.
func (tl Timeline) Bytes() int64 { return int64(cap(tl)) * 16 }

// CompactTimeline makes a Timeline of points given in any order (for
// example the offsets and decode times of some samples of each track): it
// sorts them by offset, makes times non-decreasing (a byte's time is the
// latest time reached at or before it, so that interleaved tracks give one
// clock), keeps one point per step seconds of media plus the last point,
// and drops points at an offset already seen. It reorders pts in place and
// returns a new slice of exactly the kept points; nil for no points.
func CompactTimeline(pts []TimePoint, step float64) Timeline {
	if len(pts) == 0 {
		return nil
	}
	slices.SortStableFunc(pts, func(a, b TimePoint) int { return cmp.Compare(a.Off, b.Off) })
	// Running maximum, negative times clamped to 0; at equal offsets the
	// last (largest) time wins.
	t := 0.0
	for i := range pts {
		t = max(t, pts[i].Time)
		pts[i].Time = t
	}
	keep := 0 // pts[:keep] are the kept points, compacted in place
	for i, p := range pts {
		last := i == len(pts)-1
		if !last && pts[i+1].Off == p.Off {
			continue // a later point at the same offset has the final time
		}
		if keep > 0 && !last && p.Time-pts[keep-1].Time < step {
			continue
		}
		pts[keep] = p
		keep++
	}
	return slices.Clone(pts[:keep])
}
