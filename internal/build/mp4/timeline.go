package mp4build

import (
	"github.com/jitstream/jitstream/internal/vfile"
)

// timelineRec collects the timeline of an output (see vfile.Timeline) while
// it is laid out: the output offset and media time of some samples of each
// track, at most about two per step of media per track, compacted at the
// end by vfile.CompactTimeline.
type timelineRec struct {
	p    *plan
	step float64
	// last[k] is the media time of the last point recorded for track k;
	// seen[k] whether there is one.
	last []float64
	seen []bool
	pts  []vfile.TimePoint
}

func (p *plan) newTimelineRec() *timelineRec {
	d := p.seconds()
	step := vfile.TimelineStep(d)
	n := len(p.tracks)
	// About two candidate points per step per track, plus ends.
	est := int(d/step)*2*n + 2*n + 1
	return &timelineRec{p: p, step: step, last: make([]float64, n), seen: make([]bool, n),
		pts: make([]vfile.TimePoint, 0, min(est, 4*vfile.MaxTimelinePoints*max(n, 1)))}
}

// seconds is the output's media duration in seconds.
func (p *plan) seconds() float64 { return float64(p.duration) / movieTimescale }

// mediaTime is the media time, in seconds from the start of the output's
// presentation, of sample i of track k: its decode time less the track's
// edit (a clip's start), clamped to 0.
func (p *plan) mediaTime(k, i int) float64 {
	tp := &p.tracks[k]
	t := tp.t.Samples.DTS[i] - tp.base - tp.mediaTime
	if t <= 0 {
		return 0
	}
	return float64(t) / float64(tp.t.Timescale)
}

// sample records that sample i of track k starts at output offset off.
func (r *timelineRec) sample(k, i int, off int64) {
	t := r.p.mediaTime(k, i)
	if r.seen[k] && t-r.last[k] < r.step/2 {
		return
	}
	r.seen[k], r.last[k] = true, t
	r.pts = append(r.pts, vfile.TimePoint{Off: off, Time: t})
}

// span records the samples s of track k, laid out back to back from output
// offset off.
func (r *timelineRec) span(k int, s span, off int64) {
	sizes := r.p.tracks[k].t.Samples.Size
	for i := s.first; i < s.end; i++ {
		r.sample(k, i, off)
		off += int64(sizes[i])
	}
}

// finish returns the timeline of an output of size bytes: the points
// recorded and its end, at the output's duration.
func (r *timelineRec) finish(size int64) vfile.Timeline {
	r.pts = append(r.pts, vfile.TimePoint{Off: size, Time: r.p.seconds()})
	return vfile.CompactTimeline(r.pts, r.step)
}

// trackIndex is the index in p.tracks of tp, a pointer into it.
func (p *plan) trackIndex(tp *trackPlan) int {
	for k := range p.tracks {
		if &p.tracks[k] == tp {
			return k
		}
	}
	return -1
}
