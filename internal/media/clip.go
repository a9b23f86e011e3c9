package media

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// Clip returns the index of the part of ix presented in [start, end) (end 0
// means to the end), for outputs that are built segment by segment (HLS,
// DASH, Smooth). Every track starts at the sample at or before start (the
// reference track at the keyframe at or before start), its decode times
// start again at 0, and its MediaTime is set so that presentation begins
// exactly at start for players that honour edit lists. Chapters are kept,
// so the samples still point at the same stored bytes.
func Clip(ix *Index, start, end time.Duration) (*Index, error) {
	if start < 0 || (end != 0 && end <= start) {
		return nil, fmt.Errorf("media: clip %v..%v: %w", start, end, ErrRange)
	}
	if end == 0 || end > ix.Duration() {
		end = ix.Duration()
	}
	if start >= end {
		return nil, fmt.Errorf("media: clip starts at %v, after the recording's end (%v): %w", start, ix.Duration(), ErrRange)
	}
	ref := ix.Reference()
	out := &Index{Chapters: ix.Chapters}
	if !ix.Created.IsZero() {
		out.Created = ix.Created.Add(start)
	}
	// The reference track's keyframe at or before start fixes the cut.
	rs := durationToTicks(start, ref.Timescale)
	k := ref.SyncAtOrBefore(rs + ref.MediaTime)
	for k > 0 && ref.Samples.DTS[k]+int64(ref.Samples.CompOffset(k))-ref.MediaTime > rs {
		k = ref.SyncAtOrBefore(ref.Samples.DTS[k] - 1)
	}
	for _, t := range ix.Tracks {
		s := durationToTicks(start, t.Timescale) + t.MediaTime
		e := durationToTicks(end, t.Timescale) + t.MediaTime
		first := k
		if t != ref {
			// The last sample decoded at or before start.
			first = max(sort.Search(t.Samples.Len(), func(i int) bool { return t.Samples.DTS[i] > s })-1, 0)
		}
		last := t.Find(e)
		if t == ref {
			last = endBeforeKeyframe(t, first, last, durationToTicks(end, t.Timescale))
		}
		if last <= first {
			last = min(first+1, t.Samples.Len())
		}
		c := t.slice(first, last)
		c.MediaTime = max(0, s-t.Samples.DTS[first])
		out.Tracks = append(out.Tracks, c)
	}
	return out, nil
}

// endBeforeKeyframe returns where a clip of t (the reference track) ending
// at end (presentation time, ticks) stops, given last, the first sample
// decoded at or after end: before a keyframe presented at or after end,
// with what is decoded after it (a cut at a segment boundary does not carry
// the boundary's keyframe nor the frames decoded between the two), looking
// back a few samples (those decoded before end but presented after).
func endBeforeKeyframe(t *Track, first, last int, end int64) int {
	s := &t.Samples
	for i := last - 1; i > first && i >= last-maxReorder; i-- {
		if s.IsSync(i) && s.DTS[i]+int64(s.CompOffset(i))-t.MediaTime >= end {
			last = i
		}
	}
	return last
}

// maxReorder bounds how many samples before the end of a clip, in decode
// order, may be presented after it (B-frame reordering depth, generously).
const maxReorder = 64

// ErrRange is returned (wrapped) for a time range outside an asset.
var ErrRange = errors.New("time range outside the recording")

// slice returns a copy of t holding samples [first, last), with decode
// times starting at 0.
func (t *Track) slice(first, last int) *Track {
	c := *t
	s := &t.Samples
	cs := Samples{
		Offset:      s.Offset[first:last:last],
		Size:        s.Size[first:last:last],
		Dur:         s.Dur[first:last:last],
		ChapterDesc: s.ChapterDesc,
	}
	if s.CTO != nil {
		cs.CTO = s.CTO[first:last:last]
	}
	if s.Sync != nil {
		cs.Sync = s.Sync[first:last:last]
	}
	cs.ChapterStart = make([]int, len(s.ChapterStart))
	for i, b := range s.ChapterStart {
		cs.ChapterStart[i] = min(max(b-first, 0), last-first)
	}
	cs.Derive()
	c.Samples = cs
	return &c
}
