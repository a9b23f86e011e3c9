package hls

import (
	"testing"

	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/testutil/cmaftest"
	"github.com/jitstream/jitstream/internal/testutil/mediatest"
)

// TestBitrateEstimates checks the fMP4 overhead estimates against the media
// segments mp4build actually builds (their exact sizes are known without
// reading media): every estimated segment is at least as large as the real
// one and not more than 3% + 1 KB larger, so BANDWIDTH is never below the
// real peak.
func TestBitrateEstimates(t *testing.T) {
	cases := []struct {
		name string
		ix   func(testing.TB) *media.Index
	}{
		{"h264 aac", fixtureIndex(fixtureCases[0].Chapters)},
		{"h265 aac", fixtureIndex(fixtureCases[1].Chapters)},
		{"two chapters", fixtureIndex(fixtureCases[2].Chapters)},
		{"synthetic 10 min", func(testing.TB) *media.Index { return mediatest.Synth(600, 30, 60, false) }},
		{"synthetic 60 fps", func(testing.TB) *media.Index { return mediatest.Synth(120, 60, 60, false) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ix := c.ix(t)
			segs := ix.Segments(0)
			// Renditions are served separately: the variant's segment n
			// costs the video segment plus the audio segment.
			actual := make([]int64, len(segs))
			for _, tr := range ix.Tracks {
				for n := range segs {
					actual[n] += cmaftest.MediaSegment(t, ix, []*media.Track{tr}, segs, n).Size
				}
			}
			est := SegmentBytes(ix, ix.Tracks, segs, FMP4SampleOverhead, FMP4SegmentOverhead)
			for n := range segs {
				if est[n] < actual[n] || est[n] > actual[n]+actual[n]*3/100+1024 {
					t.Errorf("segment %d: estimated %d bytes, built %d", n, est[n], actual[n])
				}
			}
			ts := ix.Reference().Timescale
			peak, real := PeakBitrate(ix, ix.Tracks, segs, FMP4SampleOverhead, FMP4SegmentOverhead), peakRate(actual, segs, ts)
			if peak < real || peak > real+real*3/100+1024*8 {
				t.Errorf("peak %d bit/s, built segments peak at %d bit/s", peak, real)
			}
			var total int64
			for _, n := range actual {
				total += n
			}
			avg, realAvg := AverageBitrate(ix, ix.Tracks, segs, FMP4SampleOverhead, FMP4SegmentOverhead), rate(total, segs[len(segs)-1].End-segs[0].Start, ts)
			if avg < realAvg || avg > peak {
				t.Errorf("average %d bit/s, built segments average %d bit/s, peak %d", avg, realAvg, peak)
			}
		})
	}
}

// TestPeakRate checks the RFC 8216 peak segment bit rate on hand-made
// segments (timescale 1000, so sizes of 1000 bytes per second are 8000
// bit/s).
func TestPeakRate(t *testing.T) {
	seg := func(durs ...int64) []media.Segment {
		var out []media.Segment
		var at int64
		for _, d := range durs {
			out = append(out, media.Segment{Start: at, End: at + d})
			at += d
		}
		return out
	}
	for _, c := range []struct {
		name  string
		segs  []media.Segment
		sizes []int64
		want  int64
	}{
		{"even", seg(4000, 4000, 4000), []int64{4000, 4000, 4000}, 8000},
		{"one heavy segment", seg(4000, 4000, 4000), []int64{4000, 8000, 4000}, 16000},
		// A 0.5 s last segment (less than half the 4 s target) is only
		// measured with its neighbour: (4000+2000) bytes over 4.5 s.
		{"short heavy tail", seg(4000, 4000, 500), []int64{4000, 4000, 2000}, 10667},
		// A 2.5 s tail counts alone: 3000 bytes over 2.5 s.
		{"tail above half the target", seg(4000, 2500), []int64{4000, 3000}, 9600},
		// Shorter than half the target duration altogether: the average.
		{"tiny asset", seg(300), []int64{100}, 2667},
		{"rounded up", seg(3000), []int64{1000}, 2667},
		{"empty", seg(4000), []int64{0}, 0},
	} {
		if got := peakRate(c.sizes, c.segs, 1000); got != c.want {
			t.Errorf("%s: %d bit/s, want %d", c.name, got, c.want)
		}
	}
}

// TestSegmentSpans checks that TrackSegments partitions every track's
// samples: contiguous spans from 0 to the track's end, consistent with
// SegmentSpan.
func TestSegmentSpans(t *testing.T) {
	for _, ix := range []*media.Index{mediatest.Synth(600, 30, 60, false), mediatest.Synth(61, 60, 90, false), mediatest.SynthAudioOnly(30)} {
		segs := ix.Segments(0)
		for _, tr := range ix.Tracks {
			spans := TrackSegments(ix, tr, segs)
			var at int64
			next := 0
			for n, s := range spans {
				first, end := SegmentSpan(ix, tr, segs[n])
				if first != next || s.Start != tr.Samples.DTS[first] || s.End != tr.Samples.DTS[end] || s.Start != at {
					t.Fatalf("track %d segment %d: span %v samples [%d, %d), want to start at sample %d, time %d", tr.ID, n, s, first, end, next, at)
				}
				next, at = end, s.End
			}
			if next != tr.Samples.Len() || at != tr.Duration() {
				t.Errorf("track %d: segments end at sample %d, time %d; track has %d samples, duration %d", tr.ID, next, at, tr.Samples.Len(), tr.Duration())
			}
		}
	}
}

// TestSegmentSpansArbitrary checks TrackSegments against SegmentSpan for
// segments that are not ix.Segments: gaps, overlaps, a segment past the
// end.
func TestSegmentSpansArbitrary(t *testing.T) {
	ix := mediatest.Synth(20, 30, 30, false)
	ref := ix.Reference()
	sec := int64(ref.Timescale)
	end := ref.Duration()
	segs := []media.Segment{
		{Start: 0, End: 2 * sec}, {Start: 2 * sec, End: 3 * sec}, {Start: 5 * sec, End: 7 * sec},
		{Start: 6 * sec, End: 8 * sec}, {Start: 8 * sec, End: 8 * sec}, {Start: 8 * sec, End: end},
		{Start: end, End: end + sec},
	}
	for _, tr := range ix.Tracks {
		spans := TrackSegments(ix, tr, segs)
		for n, seg := range segs {
			first, last := SegmentSpan(ix, tr, seg)
			if want := (media.Segment{Start: tr.Samples.DTS[first], End: tr.Samples.DTS[last]}); spans[n] != want {
				t.Errorf("track %d segment %v: %v, want %v", tr.ID, seg, spans[n], want)
			}
		}
	}
}
