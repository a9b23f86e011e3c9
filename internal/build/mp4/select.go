// Package mp4build compiles MP4 outputs from a media index into virtual files
// (internal/vfile): the boxes are generated in memory, the media payload is
// made of byte ranges of the stored originals, so sample bytes are never
// copied and a response can be sent with sendfile.
//
// Two outputs are built here: a progressive ("fast start") MP4 with moov
// before mdat (Progressive), and a fragmented MP4 (Fragmented) whose init
// and media segments are reusable by segmented protocols (InitSegment,
// MediaSegment). Both cover the whole asset or a clip (Selection).
//
// All functions are pure: no I/O, no global state. They assume an index that
// passed media.Index.Validate (as media.Parse and media.Unmarshal indexes
// do); structurally broken indexes are rejected with an error rather than a
// panic, but sample offsets are not re-checked against object sizes.
package mp4build

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/vfile"
)

// ErrRange is returned (wrapped) for a selection that does not lie within
// the asset: a negative time, a start at or beyond the asset's duration, or
// an end not after the start.
var ErrRange = errors.New("selection out of range")

// Selection chooses the part of an asset an output holds. The zero value
// selects the whole asset.
type Selection struct {
	// Start and End delimit a clip on the asset timeline, [Start, End).
	// End 0 means the end of the asset; an End beyond the asset's duration
	// is clamped to it. A clip's start is moved back to the beginning of
	// the video frame shown at Start (less than a frame), so that its first
	// frame is shown whole in every player.
	Start, End time.Duration
	// Identity identifies the index's content for the ETag (for example a
	// hash or revision of the stored index). When empty, it is computed from
	// the chapters' objects and sizes and a fingerprint of the tracks.
	Identity string
}

// Version is mixed into every ETag; bump it whenever the bytes produced for
// the same index and selection change.
const Version = "mp4build-1"

// movieTimescale is the timescale of mvhd, tkhd, elst and mehd.
const movieTimescale = 1000

// Sample flags (ISO/IEC 14496-12 8.8.3.1) of trun and tfhd.
const (
	flagsSync    = 0x02000000 // sample_depends_on=2 (independent)
	flagsNonSync = 0x01010000 // sample_depends_on=1, sample_is_non_sync_sample=1
)

// span is a range of sample indexes [first, end) of one track.
type span struct{ first, end int }

func (s span) len() int { return s.end - s.first }

// trackPlan is what an output holds of one track.
type trackPlan struct {
	t *media.Track
	span
	// edit is whether the track gets an edit list; mediaTime is its
	// media_time in the track timescale.
	edit      bool
	mediaTime int64
	// dur is the track's presentation duration (tkhd duration and elst
	// segment_duration) in the movie timescale.
	dur int64
	// base is the decode time, on the asset timeline, of the first selected
	// sample: output decode times are relative to it.
	base int64
}

// plan is what an output holds of an index.
type plan struct {
	ix     *media.Index
	tracks []trackPlan
	clip   bool
	// fragmented is set for fragmented outputs: the moov has no samples.
	fragmented bool
	// start and end are the normalized selection (0, 0 for the whole asset).
	start, end time.Duration
	// duration is the movie duration in the movie timescale.
	duration int64
	// identity is Selection.Identity; empty to compute it.
	identity string
}

// newPlan checks sel against ix and works out, for each of the given tracks,
// which samples the output holds and how their presentation is edited.
func newPlan(ix *media.Index, tracks []*media.Track, sel Selection) (*plan, error) {
	if err := checkIndex(ix, tracks); err != nil {
		return nil, err
	}
	d := ix.Duration()
	if sel.Start < 0 || sel.End < 0 {
		return nil, fmt.Errorf("mp4build: negative selection %v-%v: %w", sel.Start, sel.End, ErrRange)
	}
	if sel.End != 0 && sel.End <= sel.Start {
		return nil, fmt.Errorf("mp4build: selection end %v is not after start %v: %w", sel.End, sel.Start, ErrRange)
	}
	if sel.Start > 0 && sel.Start >= d {
		return nil, fmt.Errorf("mp4build: selection start %v is not before the end of the asset (%v): %w", sel.Start, d, ErrRange)
	}
	p := &plan{ix: ix, tracks: make([]trackPlan, len(tracks)), identity: sel.Identity}
	end := sel.End
	if end == 0 || end > d {
		end = d
	}
	if sel.Start == 0 && end == d {
		// The whole asset.
		for i, t := range tracks {
			tp := trackPlan{t: t, span: span{0, t.Samples.Len()}}
			td := t.Duration()
			tp.dur = media.Rescale(td, t.Timescale, movieTimescale)
			if t.MediaTime != 0 {
				// The original's edit list: presentation starts at MediaTime
				// and runs to the end of the media.
				tp.edit, tp.mediaTime = true, t.MediaTime
				pe := presentationEnd(t, t.Samples.Len())
				tp.dur = media.Rescale(max(pe-t.MediaTime, 0), t.Timescale, movieTimescale)
			}
			p.duration = max(p.duration, tp.dur)
			p.tracks[i] = tp
		}
		return p, nil
	}
	p.clip, p.start, p.end = true, sel.Start, end
	start := snapStart(ix.Reference(), sel.Start)
	p.duration = ticks(end-start, movieTimescale)
	for i, t := range tracks {
		p.tracks[i] = clipTrack(t, start, end, p.duration)
	}
	return p, nil
}

// snapStart moves start back to the beginning of the reference track's
// frame presented at start, so that a clip's first frame is shown whole:
// players differ on a first frame that begins before the edit (ffmpeg drops
// it, showing the next frame at time 0).
func snapStart(ref *media.Track, start time.Duration) time.Duration {
	if ref == nil || ref.Samples.Len() == 0 || ref.Kind != media.KindVideo {
		return start
	}
	s := &ref.Samples
	ct := ticks(start, ref.Timescale) + ref.MediaTime
	// The frame presented at ct has the greatest composition time <= ct;
	// reordering is shallow, so look around the sample decoded at ct.
	const window = 32
	i0 := ref.Find(ct)
	best := int64(-1)
	for i := max(i0-window, 0); i < min(i0+window, s.Len()); i++ {
		if c := s.DTS[i] + int64(s.CompOffset(i)); c <= ct && c > best {
			best = c
		}
	}
	if best < 0 || best >= ct {
		return start
	}
	t := best - ref.MediaTime
	if t <= 0 {
		return 0
	}
	// Round up, so that ticks(result, Timescale) == t.
	sec, rem := t/int64(ref.Timescale), t%int64(ref.Timescale)
	ns := (rem*int64(time.Second) + int64(ref.Timescale) - 1) / int64(ref.Timescale)
	return time.Duration(sec)*time.Second + time.Duration(ns)
}

// clipTrack selects the samples of t needed to present [start, end) of the
// asset timeline: from the last sync sample presented at or before start to
// the last sample presented (or decoded) before end, with an edit list that
// starts presentation exactly at start. clipDur is end-start in the movie
// timescale. Every track follows the same rule; for tracks without sync
// table (audio, metadata) it picks the sample decoded at or before start.
func clipTrack(t *media.Track, start, end time.Duration, clipDur int64) trackPlan {
	s := &t.Samples
	n := s.Len()
	tp := trackPlan{t: t}
	if n == 0 {
		return tp
	}
	// Composition times on the asset timeline: the original edit list maps
	// asset time 0 to composition time MediaTime.
	startCT := ticks(start, t.Timescale) + t.MediaTime
	endCT := ticks(end, t.Timescale) + t.MediaTime
	ct := func(i int) int64 { return s.DTS[i] + int64(s.CompOffset(i)) }

	// The last sync sample decoded at or before startCT; with reordering
	// (B-frames) a sync sample can be decoded before startCT but presented
	// after it, so step back to a sync sample presented at or before it.
	first := t.SyncAtOrBefore(startCT)
	for first > 0 && ct(first) > startCT {
		first--
		for first > 0 && !s.IsSync(first) {
			first--
		}
	}

	// Everything decoded before endCT, plus samples decoded later but
	// presented before endCT (negative composition offsets).
	last := t.Find(endCT)
	if s.CTO != nil {
		const maxReorder = 32
		for i := last; i < n && i < last+maxReorder; i++ {
			if ct(i) < endCT {
				last = i + 1
			}
		}
	}
	if last <= first {
		last = min(first+1, n)
	}
	// Presentable media after startCT; none when the track ends before the
	// clip starts (a slightly shorter audio track, say): keep it empty.
	avail := presentationEnd(t, last) - startCT
	if avail <= 0 {
		tp.span = span{last, last}
		return tp
	}
	tp.span = span{first, last}
	tp.base = s.DTS[first]
	tp.edit = true
	tp.mediaTime = startCT - s.DTS[first]
	tp.dur = min(clipDur, media.Rescale(avail, t.Timescale, movieTimescale))
	return tp
}

// presentationEnd is the end of the presentation of t's samples before
// end: the latest composition end time among the last samples (reordering
// is shallow), and at least their decode end.
func presentationEnd(t *media.Track, end int) int64 {
	s := &t.Samples
	e := s.DTS[end]
	if s.CTO == nil {
		return e
	}
	for i := max(end-32, 0); i < end; i++ {
		e = max(e, s.DTS[i]+int64(s.CTO[i])+int64(s.Dur[i]))
	}
	return e
}

// ticks converts d to the timescale ts, rounding down, without overflowing
// for any realistic duration.
func ticks(d time.Duration, ts uint32) int64 {
	sec, ns := int64(d/time.Second), int64(d%time.Second)
	return sec*int64(ts) + ns*int64(ts)/int64(time.Second)
}

// checkIndex checks what the builders rely on to not panic: columns and
// chapter tables of consistent lengths and sample entries for every chapter.
func checkIndex(ix *media.Index, tracks []*media.Track) error {
	if ix == nil {
		return errors.New("mp4build: nil index")
	}
	if len(ix.Chapters) == 0 {
		return errors.New("mp4build: index has no chapters")
	}
	if len(tracks) == 0 {
		return errors.New("mp4build: no tracks")
	}
	for _, t := range tracks {
		if t == nil {
			return errors.New("mp4build: nil track")
		}
		s := &t.Samples
		n := s.Len()
		switch {
		case t.Timescale == 0:
			return fmt.Errorf("mp4build: track %d: zero timescale", t.ID)
		case len(s.Offset) != n || len(s.Dur) != n || len(s.DTS) != n+1 ||
			(s.CTO != nil && len(s.CTO) != n) || (s.Sync != nil && len(s.Sync) != n):
			return fmt.Errorf("mp4build: track %d: sample columns differ in length (DTS derived?)", t.ID)
		case len(s.ChapterStart) != len(ix.Chapters)+1 || len(s.ChapterDesc) != len(ix.Chapters):
			return fmt.Errorf("mp4build: track %d: chapter table does not match %d chapters", t.ID, len(ix.Chapters))
		case s.ChapterStart[0] != 0 || s.ChapterStart[len(ix.Chapters)] != n:
			return fmt.Errorf("mp4build: track %d: chapter table does not cover the samples", t.ID)
		case len(t.SampleEntries) == 0:
			return fmt.Errorf("mp4build: track %d: no sample entries", t.ID)
		}
		for c := range ix.Chapters {
			if s.ChapterStart[c] > s.ChapterStart[c+1] {
				return fmt.Errorf("mp4build: track %d: chapter table out of order", t.ID)
			}
			if d := s.ChapterDesc[c]; d == 0 || int(d) > len(t.SampleEntries) {
				return fmt.Errorf("mp4build: track %d: chapter %d uses sample entry %d of %d", t.ID, c, d, len(t.SampleEntries))
			}
		}
	}
	return nil
}

// identity fingerprints an index cheaply (no per-sample work): its stored
// objects and the shape of its tracks.
func identity(ix *media.Index) string {
	var b strings.Builder
	for _, c := range ix.Chapters {
		b.WriteString(c.Object)
		b.WriteByte(':')
		b.WriteString(strconv.FormatInt(c.Size, 10))
		b.WriteByte(';')
	}
	for _, t := range ix.Tracks {
		fmt.Fprintf(&b, "%d/%s/%s/%d/%d/%d/%d/%d;", t.ID, t.Handler, t.Format, t.Timescale,
			t.Samples.Len(), t.Duration(), t.MediaTime, len(t.SampleEntries))
	}
	return b.String()
}

// etag is the ETag of an output of kind for the plan.
func (p *plan) etag(kind string) string {
	id := p.identity
	if id == "" {
		id = identity(p.ix)
	}
	return vfile.ETag(Version, kind, id, strconv.FormatInt(int64(p.start), 10), strconv.FormatInt(int64(p.end), 10))
}

// chapterOf returns the chapter of sample i of s, starting the search at c
// (samples are visited in increasing order, so the search is amortized O(1)).
func chapterOf(s *media.Samples, i, c int) int {
	for c+1 < len(s.ChapterStart)-1 && i >= s.ChapterStart[c+1] {
		c++
	}
	return c
}
