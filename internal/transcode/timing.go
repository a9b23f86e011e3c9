package transcode

import (
	"fmt"
	"math"
	"slices"
)

// timing is the timing of a rendition's segment, in the source track's
// timescale: the decode time of its first sample, and each sample's
// decode duration and composition time offset.
type timing struct {
	start int64
	dur   []uint32
	cto   []int32
}

// segmentTiming derives the timing of segment n of any rendition from the
// source's segment n, so that the rendition's segments have exactly the
// source segment's decode and presentation times, and segments of
// different renditions (or of the original) follow each other without gap
// or overlap.
//
// The rendition's samples keep the source's decode times (the same tfdt,
// the same sample durations: the rendition's track has the source track's
// timing, in every manifest). The transcoded segment has no B-frames, so
// its k-th sample is the source's k-th frame in presentation order: it gets
// the k-th smallest presentation time (DTS + CTO) of the source segment's
// samples, as a composition offset from its decode time. That offset is
// never negative: at least k+1 samples are presented at or before the k-th
// smallest presentation time, each decoded no later, so the k-th decode
// time is no later either. The init segment keeps the source's edit list,
// which maps these times to the same presentation times as the
// original's.
func segmentTiming(src *Source, n int) (timing, error) {
	s := &src.Track.Samples
	first, end := src.sampleSpan(n)
	if end <= first {
		return timing{}, fmt.Errorf("transcode %s: segment %d has no samples of track %d", src.Key, n, src.Track.ID)
	}
	pts := make([]int64, 0, end-first)
	for i := first; i < end; i++ {
		pts = append(pts, s.DTS[i]+int64(s.CompOffset(i)))
	}
	slices.Sort(pts)
	tm := timing{start: s.DTS[first], dur: s.Dur[first:end:end], cto: make([]int32, len(pts))}
	for k, p := range pts {
		off := p - s.DTS[first+k]
		if off < 0 || off > math.MaxInt32 || k > 0 && p == pts[k-1] {
			return timing{}, fmt.Errorf("transcode %s: segment %d: frame %d of %d presented at %d, decoded at %d "+
				"(frames presented at the same time, or before they are decoded)", src.Key, n, k, len(pts), p, s.DTS[first+k])
		}
		tm.cto[k] = int32(off)
	}
	return tm, nil
}
