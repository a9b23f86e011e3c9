package hls

import (
	"math"
	"math/bits"

	"github.com/jitstream/jitstream/internal/media"
)

// Container overhead estimates, in bytes, for bit rates of segmented
// outputs. Sample payloads are exact (from the index); the boxes or packets
// around them are estimated.
const (
	// FMP4SampleOverhead is the fMP4 overhead per sample: its trun entry
	// (up to four 32-bit fields).
	FMP4SampleOverhead = 16
	// FMP4SegmentOverhead is the fMP4 overhead per media segment: moof,
	// mfhd, traf, tfhd, tfdt and trun headers, and the mdat header.
	FMP4SegmentOverhead = 200

	// TSSampleOverhead is the MPEG-TS overhead per sample before packetization
	// (see TSScale): a PES header with PTS and DTS (19 bytes), an access unit
	// delimiter or ADTS header (6 to 7 bytes), and on average half a TS
	// packet of adaptation-field stuffing ending the PES (92 bytes).
	TSSampleOverhead = 19 + 7 + 92
	// TSSegmentOverhead is the MPEG-TS overhead per segment: a PAT and a PMT
	// packet.
	TSSegmentOverhead = 2 * 188
)

// TSScale scales a byte count or bit rate of PES data to the TS packets
// carrying it: 188-byte packets with 184-byte payloads, rounded up.
func TSScale(n int64) int64 {
	return (n*188 + 183) / 184
}

// SegmentSpan returns the samples [first, end) of track t that media
// segment seg of ix holds, following mp4build.MediaSegment: those decoded in
// [seg.Start, seg.End) (seg in the reference track's timescale, see
// media.Index.Reference), and every remaining sample when seg ends at or
// after the reference track's end.
func SegmentSpan(ix *media.Index, t *media.Track, seg media.Segment) (first, end int) {
	ref := ix.Reference()
	if ref == nil {
		return 0, 0
	}
	first, end = t.SampleSpan(seg.Start, seg.End, ref.Timescale)
	if seg.End >= ref.Duration() {
		end = t.Samples.Len()
	}
	return first, max(first, end)
}

// TrackSegments returns, for each segment of segs (in the reference
// track's timescale), the decode time span of t's samples in it, in t's
// timescale: Start is the decode time of the segment's first sample of t
// (what mp4build.MediaSegment writes in tfdt) and End that of the next
// segment's. A segment without samples of t has Start == End. The spans of
// consecutive segments are contiguous and together cover t.
func TrackSegments(ix *media.Index, t *media.Track, segs []media.Segment) []media.Segment {
	out := make([]media.Segment, len(segs))
	dts := t.Samples.DTS
	if len(dts) == 0 {
		return out
	}
	eachSpan(ix, t, segs, func(n, first, end int) {
		out[n] = media.Segment{Start: dts[first], End: dts[end]}
	})
	return out
}

// eachSpan calls fn with SegmentSpan(ix, t, segs[n]) for every segment, in
// order, searching the samples once per boundary when segments are
// contiguous.
func eachSpan(ix *media.Index, t *media.Track, segs []media.Segment, fn func(n, first, end int)) {
	ref := ix.Reference()
	if ref == nil {
		for n := range segs {
			fn(n, 0, 0)
		}
		return
	}
	refEnd := ref.Duration()
	prevEnd, prevAt := int64(-1), 0 // the previous segment's end and its sample
	for n, seg := range segs {
		first := prevAt
		if seg.Start != prevEnd {
			first = t.Find(media.Rescale(seg.Start, ref.Timescale, t.Timescale))
		}
		at := t.Find(media.Rescale(seg.End, ref.Timescale, t.Timescale))
		end := at
		if seg.End >= refEnd {
			end = t.Samples.Len()
		}
		fn(n, first, max(first, end))
		prevEnd, prevAt = seg.End, at
	}
}

// SegmentBytes returns the estimated size in bytes of each media segment of
// segs holding the given tracks: the sizes of their samples, plus
// overheadPerSample per sample and overheadPerSegment per segment.
func SegmentBytes(ix *media.Index, tracks []*media.Track, segs []media.Segment, overheadPerSample, overheadPerSegment int64) []int64 {
	out := make([]int64, len(segs))
	for n := range out {
		out[n] = overheadPerSegment
	}
	for _, t := range tracks {
		eachSpan(ix, t, segs, func(n, first, end int) {
			b := overheadPerSample * int64(end-first)
			for _, z := range t.Samples.Size[first:end] {
				b += int64(z)
			}
			out[n] += b
		})
	}
	return out
}

// PeakBitrate is the peak segment bit rate, in bits/s, of media segments
// segs holding the given tracks, with the container overhead given per
// sample and per segment (FMP4SampleOverhead and FMP4SegmentOverhead for
// fMP4; see TSScale for MPEG-TS).
//
// It follows RFC 8216's definition of the peak segment bit rate: the
// largest bit rate of any run of contiguous segments whose total duration
// is between 0.5 and 1.5 times the target duration (TargetDuration), so a
// short last segment is measured together with its neighbour rather than
// alone. Bit rates are rounded up.
func PeakBitrate(ix *media.Index, tracks []*media.Track, segs []media.Segment, overheadPerSample, overheadPerSegment int64) int64 {
	ref := ix.Reference()
	if ref == nil || len(segs) == 0 {
		return 0
	}
	return peakRate(SegmentBytes(ix, tracks, segs, overheadPerSample, overheadPerSegment), segs, ref.Timescale)
}

// AverageBitrate is the average bit rate, in bits/s, of media segments
// segs holding the given tracks (total bytes, overheads included, over the
// total duration), rounded up.
func AverageBitrate(ix *media.Index, tracks []*media.Track, segs []media.Segment, overheadPerSample, overheadPerSegment int64) int64 {
	ref := ix.Reference()
	if ref == nil || len(segs) == 0 {
		return 0
	}
	var total int64
	for _, b := range SegmentBytes(ix, tracks, segs, overheadPerSample, overheadPerSegment) {
		total += b
	}
	return rate(total, segs[len(segs)-1].End-segs[0].Start, ref.Timescale)
}

// IFrameBitrate is the peak bit rate, in bits/s, of an I-frame playlist
// with one entry per segment of segs: the segment's first sample of video
// (its key frame), plus overheadPerSegment, plus overheadPerSample for
// every video sample of the segment (an fMP4 moof describes them all),
// over the segment's duration, peaked as in PeakBitrate. For fMP4 entries
// (FMP4IFrames) use FMP4SampleOverhead and FMP4SegmentOverhead; for TS,
// 0 and TSSampleOverhead+TSSegmentOverhead, and scale with TSScale.
func IFrameBitrate(ix *media.Index, video *media.Track, segs []media.Segment, overheadPerSample, overheadPerSegment int64) int64 {
	ref := ix.Reference()
	if ref == nil || len(segs) == 0 {
		return 0
	}
	sizes := make([]int64, len(segs))
	eachSpan(ix, video, segs, func(n, first, end int) {
		sizes[n] = overheadPerSegment + overheadPerSample*int64(end-first)
		if end > first {
			sizes[n] += int64(video.Samples.Size[first])
		}
	})
	return peakRate(sizes, segs, ref.Timescale)
}

// IFramesPeakBitrate is the exact peak bit rate, in bits/s, of an I-frame
// playlist of the given entries (times in timescale ts): their byte range
// lengths over their durations, peaked as in PeakBitrate. Use it for the
// I-frame variant's BANDWIDTH when the entries are at hand
// (MasterOptions.IFrameBandwidth, TSMasterOptions.IFrameBandwidth).
func IFramesPeakBitrate(frames []IFrame, ts uint32) int64 {
	if len(frames) == 0 || ts == 0 {
		return 0
	}
	sizes := make([]int64, len(frames))
	spans := make([]media.Segment, len(frames))
	for n, f := range frames {
		sizes[n] = f.Length
		spans[n] = media.Segment{Start: f.Start, End: f.Start + f.Duration}
	}
	return peakRate(sizes, spans, ts)
}

// peakRate is the RFC 8216 peak segment bit rate of segments of the given
// sizes: the largest rate of runs of contiguous segments lasting between
// half and one and a half target durations; the average when no run does
// (an asset shorter than half the target duration).
func peakRate(sizes []int64, segs []media.Segment, ts uint32) int64 {
	target := int64(TargetDuration(segs, ts)) * int64(ts)
	lo, hi := target/2, target+target/2
	var peak int64
	found := false
	for i := range segs {
		var b, d int64
		for j := i; j < len(segs); j++ {
			b += sizes[j]
			d += segs[j].End - segs[j].Start
			if d > hi && j > i {
				break
			}
			if d >= lo {
				peak = max(peak, rate(b, d, ts))
				found = true
			}
			if d > hi {
				break
			}
		}
	}
	if !found {
		var b int64
		for _, s := range sizes {
			b += s
		}
		peak = rate(b, segs[len(segs)-1].End-segs[0].Start, ts)
	}
	return peak
}

// rate is the bit rate of n bytes over d ticks of timescale ts, rounded
// up; 0 for an empty duration.
func rate(n, d int64, ts uint32) int64 {
	if d <= 0 || n <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(n)*8, uint64(ts))
	if hi >= uint64(d) {
		return math.MaxInt64
	}
	q, r := bits.Div64(hi, lo, uint64(d))
	if r != 0 {
		q++
	}
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q)
}

// TargetDuration is the EXT-X-TARGETDURATION of a playlist of segs (in
// timescale ts): the largest segment duration as the playlist writes it
// (milliseconds, see Media), rounded up to whole seconds, at least 1. It is
// at least every EXTINF duration rounded to the nearest integer, as RFC
// 8216 requires.
func TargetDuration(segs []media.Segment, ts uint32) int {
	var longest int64
	for _, s := range segs {
		longest = max(longest, millis(s.End, ts)-millis(s.Start, ts))
	}
	return int(max((longest+999)/1000, 1))
}

// FrameRate is the frame rate of a video track as a reduced fraction
// num/den frames per second: its timescale over its most common sample
// duration (robust to an odd first or last frame). It is 0/1 for a track
// without samples.
func FrameRate(t *media.Track) (num, den int64) {
	durs := t.Samples.Dur
	if len(durs) == 0 || t.Timescale == 0 {
		return 0, 1
	}
	mode := durs[0]
	same := true
	for _, d := range durs {
		if d != mode {
			same = false
			break
		}
	}
	if !same {
		counts := make(map[uint32]int)
		best := 0
		for _, d := range durs {
			counts[d]++
			if c := counts[d]; c > best || (c == best && d < mode) {
				best, mode = c, d
			}
		}
	}
	if mode == 0 {
		return 0, 1
	}
	num, den = int64(t.Timescale), int64(mode)
	g := gcd(num, den)
	return num / g, den / g
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
