package mp4build

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/vfile"
)

// This file builds trick-play streams by rate (fast forward and rewind of a
// progressive download): see TrickRate.

// ErrTrickRate is returned (wrapped) for a trick-play request that cannot be
// served as asked: a rate other than ±2, ±4, ±8 or ±16, a position outside
// the recording, an index without video, or no key frame in the direction
// of play (fast forward from after the last key frame, rewind from before
// the first).
var ErrTrickRate = errors.New("invalid trick-play request")

// ErrSparseKeyframes is returned (wrapped) by TrickRate when the recording's
// key frames are too sparse for the rate: the keyframe-only stream would
// show fewer than one frame per MaxTrickFrameInterval of playback, that is
// when the average key frame interval of the video track divided by |rate|
// exceeds MaxTrickFrameInterval.
//
// The fallback contract, for the HTTP layer: instead of a trick stream it
// sends the ordinary stream (the same output as without rate, as a clip).
// For fast forward (rate > 0) that is the clip from pos, paced at rate
// times the pace of normal delivery, so that it downloads as fast as a
// player wants to consume it at that speed. For rewind (rate < 0), playing
// backward is not possible with ordinary media, so the fallback jumps back
// by the content that TrickRewindFallback of rewinding would cover: the
// clip from max(0, pos - |rate|×TrickRewindFallback), delivered at the
// normal pace (it plays forward at normal speed). Either clip's timestamps
// start at 0, like every clip's.
var ErrSparseKeyframes = errors.New("key frames too sparse for trick play at this rate")

// MaxTrickFrameInterval is the density threshold of TrickRate: the longest
// acceptable average time between frames of a trick stream at its rate
// (average key frame interval / |rate|). Beyond it the stream would look
// like a slide show, and TrickRate returns ErrSparseKeyframes. With the
// usual 1-second GOPs every rate passes; with 10-second GOPs only ±16
// does.
const MaxTrickFrameInterval = time.Second

// TrickRewindFallback is the playback time of rewinding that the fallback
// for a rewind on sparse key frames skips back by (see ErrSparseKeyframes):
// at rate -N the ordinary stream restarts N×TrickRewindFallback before pos.
const TrickRewindFallback = 10 * time.Second

// TrickFragmentDuration is the playback (output) time, at least, of each
// fragment of a trick stream but the last one.
const TrickFragmentDuration = 2 * time.Second

// ValidTrickRate reports whether rate is a trick-play rate TrickRate
// accepts: 2, 4, 8 or 16 for fast forward, their negatives for rewind.
func ValidTrickRate(rate int) bool {
	switch rate {
	case 2, 4, 8, 16, -2, -4, -8, -16:
		return true
	}
	return false
}

// TrickRate builds the trick-play stream of ix at rate (±2, ±4, ±8, ±16)
// for a viewer switching to it at pos on the asset timeline: a fragmented
// MP4 (an init segment, then moof+mdat fragments of TrickFragmentDuration
// of playback or more) holding only the key frames of the video track (the
// first one; other tracks are dropped).
//
// Fast forward (rate > 0) holds the key frames presented at or after pos,
// in order, to the end of the recording; rewind (rate < 0) those presented
// at or before pos, in reverse order, to the start. Each frame is shown for
// the content time between its key frame and the next one of the stream
// divided by |rate|, so that playback covers the content |rate| times
// faster; the last frame stands for the content up to the end of the
// recording (fast forward) or, rewinding, for its own GOP (up to the key
// frame after it). Output times are cumulative (content distance from the
// first frame / |rate|, rounded down), so they do not drift.
//
// Decode and presentation times start at pos (in the video timescale, via
// tfdt) and increase continuously, also when rewinding: a player that was
// at pos goes on from there with one continuous timeline. Composition
// offsets are zero (each key frame decodes on its own; dropping the
// original's B-frame offsets needs no edit list), so presentation order is
// decode order. The movie duration covers the timeline from 0 to the end
// of the last frame.
//
// Sample bytes are the stored ranges of the key frames (zero copy); a
// fragment ends where the sample description changes (at chapters with
// different sample entries), so that every traf has a single one.
//
// H.264 key frames are IDR pictures and decode in any order. HEVC key
// frames may be CRA pictures (open GOPs, x265's default), whose picture
// order counts continue across GOPs: fast forward plays right, but when
// rewinding the counts decrease and decoders output the frames reordered
// by them (ffmpeg does). Fixing that means rewriting the pictures' NAL unit
// types (CRA to BLA), which a zero-copy builder that never reads samples
// cannot do (an end-of-sequence NAL unit after each frame does not help: a
// CRA after it discards the pictures not yet output). HEVC recordings with
// closed GOPs (IDR key frames) rewind right.
//
// The file's Timeline (for pacing, see vfile.Timeline) maps each frame's
// bytes to its playback time from the start of the stream (pos is time
// 0): paced by it, the stream is delivered as fast as it plays, which is
// TrickRateBitrate on average and can exceed the asset's bit rate; a pacer
// holding trick play to the ordinary stream's budget caps it at
// ix.Bitrate().
//
// Errors wrap ErrTrickRate for requests that cannot be served (see there)
// and ErrSparseKeyframes when the key frames are too sparse for the rate
// (checked after the request itself). The file's Name and ModTime are left
// for the caller; its ContentType is ContentType.
func TrickRate(ix *media.Index, rate int, pos time.Duration) (*vfile.File, error) {
	tp, err := planTrickRate(ix, rate, pos)
	if err != nil {
		return nil, err
	}
	var b vfile.Builder
	b.Add(tp.initSegment())
	frags := tp.fragments()
	// One timeline point per frame, compacted at the end.
	pts := make([]vfile.TimePoint, 0, len(tp.frames)+1)
	for n, fr := range frags {
		if err := tp.fragment(&b, fr, uint32(n+1), &pts); err != nil {
			return nil, fmt.Errorf("mp4build: trick rate %d: fragment %d of %d: %w", rate, n+1, len(frags), err)
		}
	}
	etag := vfile.ETag(Version, "trickrate", identity(ix), strconv.Itoa(rate), strconv.FormatInt(int64(pos), 10))
	f := b.File("", ContentType, time.Time{}, etag)
	d := tp.playback(len(tp.frames))
	pts = append(pts, vfile.TimePoint{Off: f.Size, Time: d})
	f.Timeline = vfile.CompactTimeline(pts, vfile.TimelineStep(d))
	return f, nil
}

// TrickRateBitrate is the average bit rate, in bits per second of
// playback, of the trick stream of ix at rate: the key frames' bytes over
// the recording's duration divided by |rate| (boxes not counted). It is the
// rate a trick stream must be delivered at to play in real time; compare
// it with ix.Bitrate(), the ordinary stream's, to pace a trick stream
// within the same budget. Errors are those of TrickRate's request checks
// (ErrTrickRate); density is not checked.
func TrickRateBitrate(ix *media.Index, rate int) (int64, error) {
	v, err := trickVideo(ix, rate)
	if err != nil {
		return 0, err
	}
	s := &v.Samples
	var bytes int64
	for i := range s.Len() {
		if s.IsSync(i) {
			bytes += int64(s.Size[i])
		}
	}
	d := v.Duration()
	if d <= 0 {
		return 0, nil
	}
	n := int64(abs(rate))
	// bytes*8*n*Timescale/d without overflowing for long recordings.
	return int64(float64(bytes) * 8 * float64(n) * float64(v.Timescale) / float64(d)), nil
}

// trickPlan is what a trick stream holds.
type trickPlan struct {
	ix *media.Index
	t  *media.Track
	// frames are the sample indexes of t's key frames, in output order.
	frames []int
	// out[k] is the output decode (and presentation) time of frame k, in
	// t's timescale; out[len(frames)] is the end of the last frame.
	out []int64
}

// trickVideo checks the rate and returns the video track of ix.
func trickVideo(ix *media.Index, rate int) (*media.Track, error) {
	if ix == nil {
		return nil, errors.New("mp4build: nil index")
	}
	if !ValidTrickRate(rate) {
		return nil, fmt.Errorf("mp4build: trick rate %d is not one of ±2, ±4, ±8, ±16: %w", rate, ErrTrickRate)
	}
	v := ix.Video()
	if v == nil {
		return nil, fmt.Errorf("mp4build: trick play needs a video track, the asset has none: %w", ErrTrickRate)
	}
	if err := checkIndex(ix, []*media.Track{v}); err != nil {
		return nil, err
	}
	return v, nil
}

// planTrickRate checks a trick-play request and selects its frames.
func planTrickRate(ix *media.Index, rate int, pos time.Duration) (*trickPlan, error) {
	v, err := trickVideo(ix, rate)
	if err != nil {
		return nil, err
	}
	if d := ix.Duration(); pos < 0 || pos >= d {
		return nil, fmt.Errorf("mp4build: trick-play position %v is outside the recording [0, %v): %w", pos, d, ErrTrickRate)
	}
	s := &v.Samples
	n := s.Len()
	// Presentation time of sample i on the asset timeline (t's timescale).
	pt := func(i int) int64 { return s.DTS[i] + int64(s.CompOffset(i)) - v.MediaTime }

	var keys []int
	for i := range n {
		if s.IsSync(i) {
			keys = append(keys, i)
		}
	}
	// Key frames are presented in decode order; sort anyway, cheaply, so
	// that odd composition offsets cannot make content times go back.
	slices.SortStableFunc(keys, func(a, b int) int { return cmp.Compare(pt(a), pt(b)) })

	// Density, over the whole track.
	if len(keys) == 0 || sparse(v.Duration(), v.Timescale, len(keys), rate) {
		avg := "no key frames"
		if len(keys) > 0 {
			avg = fmt.Sprintf("a key frame every %.3g s on average", v.Seconds(v.Duration())/float64(len(keys)))
		}
		return nil, fmt.Errorf("mp4build: trick rate %d: %s, fewer than one frame per %v of playback: %w",
			rate, avg, MaxTrickFrameInterval, ErrSparseKeyframes)
	}

	at := ticks(pos, v.Timescale)
	// end is the end of the presentation of the video track.
	end := max(presentationEnd(v, n)-v.MediaTime, pt(keys[len(keys)-1])+1)
	var frames []int
	var last int64 // content time after the last frame
	if rate > 0 {
		first := sort.Search(len(keys), func(j int) bool { return pt(keys[j]) >= at })
		if first == len(keys) {
			return nil, fmt.Errorf("mp4build: fast forward from %v: no key frame at or after it (the last is at %.3f s): %w",
				pos, v.Seconds(pt(keys[len(keys)-1])), ErrTrickRate)
		}
		frames = keys[first:]
		last = end
	} else {
		// keys[:k] are presented at or before at.
		k := sort.Search(len(keys), func(j int) bool { return pt(keys[j]) > at })
		if k == 0 {
			return nil, fmt.Errorf("mp4build: rewind from %v: no key frame at or before it (the first is at %.3f s): %w",
				pos, v.Seconds(pt(keys[0])), ErrTrickRate)
		}
		frames = slices.Clone(keys[:k])
		slices.Reverse(frames)
		// The earliest key frame, shown last, stands for its own GOP.
		gop := end - pt(keys[0])
		if len(keys) > 1 {
			gop = pt(keys[1]) - pt(keys[0])
		}
		last = pt(keys[0]) - gop
	}

	// Output times: content distance from the first frame over |rate|.
	nr := int64(abs(rate))
	c0 := pt(frames[0])
	dist := func(c int64) int64 { return max(c-c0, c0-c) }
	out := make([]int64, len(frames)+1)
	for k := range frames {
		out[k] = at + dist(pt(frames[k]))/nr
		if k > 0 && out[k] <= out[k-1] {
			out[k] = out[k-1] + 1
		}
	}
	out[len(frames)] = max(at+dist(last)/nr, out[len(frames)-1]+1)
	return &trickPlan{ix: ix, t: v, frames: frames, out: out}, nil
}

// sparse reports whether key frames every dur/keys ticks (timescale ts),
// shown at rate, are fewer than one per MaxTrickFrameInterval.
func sparse(dur int64, ts uint32, keys, rate int) bool {
	avg := float64(dur) / float64(ts) / float64(keys) // seconds
	return avg/float64(abs(rate)) > MaxTrickFrameInterval.Seconds()
}

// desc is the sample description index of sample i of the plan's track.
func (tp *trickPlan) desc(i int) uint32 {
	s := &tp.t.Samples
	return s.ChapterDesc[s.Chapter(i)]
}

// initSegment writes ftyp and moov: the video track without edit list,
// whose presentation starts at time 0 (the first fragment's tfdt is pos),
// for the duration up to the end of the last frame.
func (tp *trickPlan) initSegment() []byte {
	t := *tp.t
	t.MediaTime = 0
	dur := media.Rescale(tp.out[len(tp.out)-1], t.Timescale, movieTimescale)
	p := &plan{ix: tp.ix, fragmented: true, duration: dur,
		tracks: []trackPlan{{t: &t, dur: dur}}}
	return p.initSegment()
}

// fragments splits the frames into fragments: [first, end) ranges of
// tp.frames, each spanning TrickFragmentDuration of output or more (but
// the last), cut early where the sample description changes.
func (tp *trickPlan) fragments() []span {
	target := ticks(TrickFragmentDuration, tp.t.Timescale)
	var frags []span
	first := 0
	for k := 1; k < len(tp.frames); k++ {
		if tp.out[k]-tp.out[first] >= target || tp.desc(tp.frames[k]) != tp.desc(tp.frames[first]) {
			frags = append(frags, span{first, k})
			first = k
		}
	}
	return append(frags, span{first, len(tp.frames)})
}

// playback is the playback time, in seconds from the stream's start (pos),
// at which frame k is shown (k = len(tp.frames): the end of the stream).
func (tp *trickPlan) playback(k int) float64 {
	return float64(tp.out[k]-tp.out[0]) / float64(tp.t.Timescale)
}

// fragment appends fragment seq (moof and mdat) holding frames fr, and
// to pts the offset and playback time of each frame.
func (tp *trickPlan) fragment(b *vfile.Builder, fr span, seq uint32, pts *[]vfile.TimePoint) error {
	s := &tp.t.Samples
	desc := tp.desc(tp.frames[fr.first])
	tfhdFlags := uint32(tfhdDefaultBaseIsM | tfhdDefaultFlags)
	if desc != 1 {
		tfhdFlags |= tfhdDescIndex
	}
	var payload int64
	for _, i := range tp.frames[fr.first:fr.end] {
		payload += int64(s.Size[i])
	}
	w := &writer{b: make([]byte, 0, 128+8*fr.len())}
	pos := w.box("moof")
	mpos := w.fullBox("mfhd", 0, 0)
	w.u32(seq)
	w.end(mpos)
	tpos := w.box("traf")
	hpos := w.fullBox("tfhd", 0, tfhdFlags)
	w.u32(tp.t.ID)
	if tfhdFlags&tfhdDescIndex != 0 {
		w.u32(desc)
	}
	w.u32(flagsSync) // default_sample_flags: every sample is a key frame
	w.end(hpos)
	dpos := w.fullBox("tfdt", 1, 0)
	w.u64(uint64(tp.out[fr.first]))
	w.end(dpos)
	rpos := w.fullBox("trun", 0, trunDataOffset|trunDur|trunSize)
	w.u32(uint32(fr.len()))
	dataOffset := len(w.b)
	w.u32(0) // patched below
	for k := fr.first; k < fr.end; k++ {
		d := tp.out[k+1] - tp.out[k]
		if d > math.MaxUint32 {
			return fmt.Errorf("frame of %d ticks exceeds a sample duration", d)
		}
		w.u32(uint32(d))
		w.u32(s.Size[tp.frames[k]])
	}
	w.end(rpos)
	w.end(tpos)
	w.end(pos)

	at := int64(len(w.b)) + mdatHeaderSize(payload)
	if at+payload > math.MaxInt32 {
		return fmt.Errorf("fragment of %d bytes exceeds trun data offsets", at+payload)
	}
	binary.BigEndian.PutUint32(w.b[dataOffset:], uint32(at))
	b.Add(w.b)
	b.Add(mdatHeader(payload))
	for k := fr.first; k < fr.end; k++ {
		i := tp.frames[k]
		*pts = append(*pts, vfile.TimePoint{Off: b.Size(), Time: tp.playback(k)})
		b.AddStored(tp.ix.Chapters[s.Chapter(i)].Object, s.Offset[i], int64(s.Size[i]))
	}
	return nil
}

// abs is |n|.
func abs(n int) int { return max(n, -n) }
