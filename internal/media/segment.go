package media

import (
	"sort"
	"time"
)

// DefaultSegmentDuration is the default target segment duration.
const DefaultSegmentDuration = 4 * time.Second

// Segment is a span of the asset timeline, [Start, End), in the timescale of
// the index's reference track (see Index.Reference).
type Segment struct {
	Start, End int64
}

// Reference is the track that segment boundaries follow: the first video
// track, else the first audio track, else the first track.
func (ix *Index) Reference() *Track {
	if t := ix.Video(); t != nil {
		return t
	}
	if t := ix.Audio(); t != nil {
		return t
	}
	if len(ix.Tracks) > 0 {
		return ix.Tracks[0]
	}
	return nil
}

// Segments returns deterministic keyframe-aligned segment boundaries: a new
// segment starts at the first sync sample of the reference track at least
// target after the current segment's start. Every node and every output
// format compute the same boundaries for the same index and target.
func (ix *Index) Segments(target time.Duration) []Segment {
	ref := ix.Reference()
	if ref == nil || ref.Samples.Len() == 0 {
		return nil
	}
	if target <= 0 {
		target = DefaultSegmentDuration
	}
	step := int64(target) * int64(ref.Timescale) / int64(time.Second)
	if step < 1 {
		step = 1
	}
	s := &ref.Samples
	var segs []Segment
	start := s.DTS[0]
	for i := 1; i < s.Len(); i++ {
		if s.IsSync(i) && s.DTS[i]-start >= step {
			segs = append(segs, Segment{start, s.DTS[i]})
			start = s.DTS[i]
		}
	}
	return append(segs, Segment{start, ref.Duration()})
}

// Rescale converts t from one timescale to another, rounding down.
func Rescale(t int64, from, to uint32) int64 {
	if from == to {
		return t
	}
	// Split to avoid overflow on long timelines.
	q, r := t/int64(from), t%int64(from)
	return q*int64(to) + r*int64(to)/int64(from)
}

// Find returns the index of the first sample whose decode time is >= ticks
// (in the track timescale); Len() if there is none.
func (t *Track) Find(ticks int64) int {
	n := t.Samples.Len()
	return sort.Search(n, func(i int) bool { return t.Samples.DTS[i] >= ticks })
}

// SyncAtOrBefore returns the index of the last sync sample whose decode time
// is <= ticks, or 0.
func (t *Track) SyncAtOrBefore(ticks int64) int {
	s := &t.Samples
	i := sort.Search(s.Len(), func(i int) bool { return s.DTS[i] > ticks }) - 1
	for ; i > 0; i-- {
		if s.IsSync(i) {
			return i
		}
	}
	return 0
}

// SampleSpan returns the samples [first, end) of track t that fall into the
// span [start, end) given in timescale ts.
func (t *Track) SampleSpan(start, end int64, ts uint32) (first, last int) {
	return t.Find(Rescale(start, ts, t.Timescale)), t.Find(Rescale(end, ts, t.Timescale))
}
