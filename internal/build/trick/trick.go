// Package trick derives trick-play (fast forward, scrubbing) tracks from
// video tracks: tracks holding only the key frames of the original, whose
// segments are built with the ordinary fragmented MP4 builders
// (internal/build/mp4) and advertised as DASH trick-mode representations.
//
// Everything here is pure: no I/O, no global state.
package trick

import (
	"math"

	"github.com/jitstream/jitstream/internal/media"
)

// Keyframes returns a derived track holding only the sync samples of t, for
// mp4build.InitSegment and mp4build.MediaSegment with the same index as t
// (the derived track refers to the same chapters and byte offsets).
//
// The derived track keeps t's ID, kind, codec, timescale, sample entries,
// edit (MediaTime) and header fields. Every key frame keeps its byte range,
// its composition offset and its sample description; its duration becomes
// the distance to the next key frame (for the last one, to the end of t),
// so the timeline stays continuous: the derived track has the same
// duration as t, and every key frame keeps its original decode and
// presentation times, as long as t starts with a sync sample (as recordings
// do; otherwise the derived timeline starts at t's first key frame and all
// its times are earlier by that key frame's decode time). Sync is nil (all
// samples are sync), DTS is derived, and the chapter table is rebuilt.
//
// Because decode times are kept, the key frames of segment n of
// ix.Segments are the derived track's samples of that segment: trick-play
// segment n is mp4build.MediaSegment(b, ix, []*media.Track{Keyframes(t)},
// segs[n], seq).
//
// The derived track shares SampleEntries and References with t; neither
// must be modified. A track without samples yields a track without samples.
func Keyframes(t *media.Track) *media.Track {
	s := &t.Samples
	n := s.Len()
	if len(s.DTS) != n+1 {
		// Decode times not derived yet: derive them on a copy.
		c := *s
		c.DTS = nil
		c.Derive()
		s = &c
	}
	k := n
	if s.Sync != nil {
		k = 0
		for _, sync := range s.Sync {
			if sync {
				k++
			}
		}
	}
	d := *t
	d.Samples = media.Samples{
		Offset:       make([]int64, 0, k),
		Size:         make([]uint32, 0, k),
		Dur:          make([]uint32, 0, k),
		ChapterStart: make([]int, len(s.ChapterStart)),
		ChapterDesc:  append([]uint32(nil), s.ChapterDesc...),
	}
	ds := &d.Samples
	if s.CTO != nil {
		ds.CTO = make([]int32, 0, k)
	}
	end := s.DTS[n]
	prev := -1 // previous key frame, its duration pending
	c := 0     // chapter of sample i
	for i := range n {
		for c+1 < len(s.ChapterStart) && i >= s.ChapterStart[c+1] {
			c++
			ds.ChapterStart[c] = len(ds.Size)
		}
		if !s.IsSync(i) {
			continue
		}
		if prev >= 0 {
			ds.Dur = append(ds.Dur, span(s.DTS[i]-s.DTS[prev]))
		}
		ds.Offset = append(ds.Offset, s.Offset[i])
		ds.Size = append(ds.Size, s.Size[i])
		if s.CTO != nil {
			ds.CTO = append(ds.CTO, s.CTO[i])
		}
		prev = i
	}
	if prev >= 0 {
		ds.Dur = append(ds.Dur, span(end-s.DTS[prev]))
	}
	// Chapters after the last sample (and the end marker).
	for c++; c < len(s.ChapterStart); c++ {
		ds.ChapterStart[c] = len(ds.Size)
	}
	ds.Derive()
	return &d
}

// span converts a duration in ticks to a sample duration, saturating (a
// single GOP longer than 2^32 ticks does not occur in practice).
func span(d int64) uint32 {
	if d > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(max(d, 0))
}
