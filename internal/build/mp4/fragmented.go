package mp4build

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"time"

	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/vfile"
)

// Fragmented builds a single-file fragmented MP4 of the selection that plays
// while it downloads: an init segment (ftyp, moov with mvex) followed by one
// moof+mdat per segment of media.DefaultSegmentDuration (the index's
// keyframe-aligned segments; a clip's first and last fragments are cut at
// its first and last samples). Fragment sequence numbers run from 1.
//
// Every traf uses default-base-is-moof and a tfdt; the mdat of a fragment
// holds, track after track, the byte ranges of the fragment's samples in the
// originals. The file's Timeline places samples at their decode time,
// relative to the clip's start (one point per vfile.TimelineStep of media).
// The file's Name and ModTime are left for the caller.
func Fragmented(ix *media.Index, sel Selection) (*vfile.File, error) {
	p, err := newPlan(ix, tracksOf(ix), sel)
	if err != nil {
		return nil, err
	}
	p.fragmented = true
	var b vfile.Builder
	b.Add(p.initSegment())
	frags := p.fragments()
	tl := p.newTimelineRec()
	for n, ranges := range frags {
		if err := p.mediaSegment(&b, ranges, uint32(n+1), tl); err != nil {
			return nil, fmt.Errorf("mp4build: fragment %d of %d: %w", n+1, len(frags), err)
		}
	}
	f := b.File("", ContentType, time.Time{}, p.etag("fragmented"))
	f.Timeline = tl.finish(f.Size)
	return f, nil
}

// InitSegment returns the init segment (ftyp and moov) of a fragmented MP4
// holding the given tracks of ix, for the whole asset: the tracks' sample
// entries, edit lists for their original presentation offsets (MediaTime),
// and mvex with the asset's duration. Track IDs are kept; track references
// to tracks not given are dropped. Its media segments come from
// MediaSegment with the same tracks.
func InitSegment(ix *media.Index, tracks []*media.Track) ([]byte, error) {
	p, err := newPlan(ix, tracks, Selection{})
	if err != nil {
		return nil, err
	}
	p.fragmented = true
	return p.initSegment(), nil
}

// MediaSegment appends to b media segment seq (a moof with sequence number
// seq and its mdat) holding the given tracks' samples of seg, a segment of
// ix.Segments in the reference track's timescale (see media.Index.Reference).
//
// A track's samples are those decoded in [seg.Start, seg.End) (times
// rescaled to its timescale); a segment that ends at or after the
// reference track's end takes every remaining sample, so the segments of
// ix.Segments together hold every sample exactly once. Decode times (tfdt)
// are on the asset timeline, matching InitSegment.
//
// When a track's sample description changes inside the segment (a chapter
// boundary between chapters with different sample entries), the moof holds
// one traf per run of samples sharing a description, each with its
// sample_description_index: valid ISO BMFF, but segmented players usually
// need a new init segment there, so segmenters for HLS/DASH should rather
// cut segments at such chapter boundaries.
func MediaSegment(b *vfile.Builder, ix *media.Index, tracks []*media.Track, seg media.Segment, seq uint32) error {
	p, err := newPlan(ix, tracks, Selection{})
	if err != nil {
		return err
	}
	ref := ix.Reference()
	if ref == nil {
		return errors.New("mp4build: index has no reference track")
	}
	if seg.Start < 0 || seg.End < seg.Start {
		return fmt.Errorf("mp4build: segment [%d, %d): %w", seg.Start, seg.End, ErrRange)
	}
	ranges := make([]span, len(p.tracks))
	for k, tp := range p.tracks {
		t := tp.t
		first := t.Find(media.Rescale(seg.Start, ref.Timescale, t.Timescale))
		end := t.Samples.Len()
		if seg.End < ref.Duration() {
			end = t.Find(media.Rescale(seg.End, ref.Timescale, t.Timescale))
		}
		ranges[k] = span{first, max(first, end)}
	}
	if err := p.mediaSegment(b, ranges, seq, nil); err != nil {
		return fmt.Errorf("mp4build: media segment %d: %w", seq, err)
	}
	return nil
}

// initSegment writes ftyp and moov for a fragmented output.
func (p *plan) initSegment() []byte {
	size := 256
	for _, tp := range p.tracks {
		size += smallBoxesSize(tp.t) + 128
	}
	w := &writer{b: make([]byte, 0, size)}
	brands := []string{"iso6", "iso5", "isom", "dash", "mp41"}
	if len(p.tracks) == 1 {
		brands = append(brands, "cmfc")
	}
	writeFtyp(w, "iso6", 0, brands...)
	pos := w.box("moov")
	p.writeMvhd(w, p.duration)
	for k := range p.tracks {
		p.writeTrak(w, &p.tracks[k], writeEmptySampleTables)
	}
	p.writeMvex(w)
	w.end(pos)
	return w.b
}

// writeEmptySampleTables writes the mandatory sample tables of a track
// whose samples are all in fragments.
func writeEmptySampleTables(w *writer) {
	for _, typ := range []string{"stts", "stsc", "stsz", "stco"} {
		pos := w.fullBox(typ, 0, 0)
		if typ == "stsz" {
			w.u32(0) // sample_size
		}
		w.u32(0) // entry_count, sample_count
		w.end(pos)
	}
}

// writeMvex writes the movie extends box: the fragmented duration and a
// trex with neutral defaults per track (every traf sets its own).
func (p *plan) writeMvex(w *writer) {
	pos := w.box("mvex")
	v1 := p.duration > math.MaxUint32
	hpos := w.fullBox("mehd", b2u8(v1), 0)
	if v1 {
		w.u64(uint64(p.duration))
	} else {
		w.u32(uint32(p.duration))
	}
	w.end(hpos)
	for _, tp := range p.tracks {
		tpos := w.fullBox("trex", 0, 0)
		w.u32(tp.t.ID)
		w.u32(1) // default_sample_description_index
		w.u32(0) // default_sample_duration
		w.u32(0) // default_sample_size
		w.u32(0) // default_sample_flags
		w.end(tpos)
	}
	w.end(pos)
}

// fragments splits the plan's samples into fragments at the index's segment
// boundaries: result[n][k] is track k's samples in fragment n. Every
// selected sample is in exactly one fragment.
func (p *plan) fragments() [][]span {
	ref := p.ix.Reference()
	var refPlan *trackPlan
	for k := range p.tracks {
		if p.tracks[k].t == ref {
			refPlan = &p.tracks[k]
		}
	}
	// Boundaries inside the selection, in the reference timescale.
	var bounds []int64
	if refPlan != nil && refPlan.len() > 0 {
		lo, hi := ref.Samples.DTS[refPlan.first], ref.Samples.DTS[refPlan.end]
		for _, seg := range p.ix.Segments(media.DefaultSegmentDuration) {
			if seg.Start > lo && seg.Start < hi {
				bounds = append(bounds, seg.Start)
			}
		}
	}
	frags := make([][]span, len(bounds)+1)
	all := make([]span, len(frags)*len(p.tracks))
	for n := range frags {
		frags[n], all = all[:len(p.tracks):len(p.tracks)], all[len(p.tracks):]
	}
	for k, tp := range p.tracks {
		at := tp.first
		for n := range frags {
			end := tp.end
			if n < len(bounds) {
				b := media.Rescale(bounds[n], ref.Timescale, tp.t.Timescale)
				end = min(max(tp.t.Find(b), at), tp.end)
			}
			frags[n][k] = span{at, end}
			at = end
		}
	}
	return frags
}

// traf is one track fragment: samples of one track sharing a sample
// description.
type traf struct {
	tp   *trackPlan
	span span
	desc uint32

	bytes     int64
	constDur  bool
	constSize bool
	syncs     int
	cto       bool // any non-zero composition offset
	negCTO    bool
}

// trafsOf splits a track's samples in a fragment into runs sharing a sample
// description (one run unless a chapter boundary changes it).
func trafsOf(tp *trackPlan, r span, out []traf) []traf {
	s := &tp.t.Samples
	c := chapterOf(s, r.first, 0)
	for i := r.first; i < r.end; {
		c = chapterOf(s, i, c)
		desc := s.ChapterDesc[c]
		j := min(s.ChapterStart[c+1], r.end)
		for j < r.end {
			c2 := chapterOf(s, j, c)
			if s.ChapterDesc[c2] != desc {
				break
			}
			c = c2
			j = min(s.ChapterStart[c+1], r.end)
		}
		out = append(out, analyze(tp, span{i, j}, desc))
		i = j
	}
	return out
}

// analyze works out how a traf's samples are best described.
func analyze(tp *trackPlan, r span, desc uint32) traf {
	s := &tp.t.Samples
	f := traf{tp: tp, span: r, desc: desc, constDur: true, constSize: true}
	d0, z0 := s.Dur[r.first], s.Size[r.first]
	for i := r.first; i < r.end; i++ {
		f.bytes += int64(s.Size[i])
		f.constDur = f.constDur && s.Dur[i] == d0
		f.constSize = f.constSize && s.Size[i] == z0
		if s.IsSync(i) {
			f.syncs++
		}
		if c := s.CompOffset(i); c != 0 {
			f.cto = true
			f.negCTO = f.negCTO || c < 0
		}
	}
	return f
}

// tfhd and trun flags (ISO/IEC 14496-12 8.8.7, 8.8.8).
const (
	tfhdDescIndex      = 0x000002
	tfhdDefaultDur     = 0x000008
	tfhdDefaultSize    = 0x000010
	tfhdDefaultFlags   = 0x000020
	tfhdDefaultBaseIsM = 0x020000

	trunDataOffset = 0x000001
	trunFirstFlags = 0x000004
	trunDur        = 0x000100
	trunSize       = 0x000200
	trunFlags      = 0x000400
	trunCTO        = 0x000800
)

// mediaSegment appends a moof (sequence number seq) and its mdat holding
// ranges[k] of each plan track, recording the samples' offsets in tl unless
// it is nil.
func (p *plan) mediaSegment(b *vfile.Builder, ranges []span, seq uint32, tl *timelineRec) error {
	var trafs []traf
	for k := range p.tracks {
		if ranges[k].len() > 0 {
			trafs = trafsOf(&p.tracks[k], ranges[k], trafs)
		}
	}
	size := 8 + 16 // moof, mfhd
	var payload int64
	for j := range trafs {
		size += trafs[j].size()
		payload += trafs[j].bytes
	}
	hdr := mdatHeaderSize(payload)

	w := &writer{b: make([]byte, 0, size)}
	pos := w.box("moof")
	mpos := w.fullBox("mfhd", 0, 0)
	w.u32(seq)
	w.end(mpos)
	dataOffsets := make([]int, len(trafs))
	for j := range trafs {
		dataOffsets[j] = writeTraf(w, &trafs[j])
	}
	w.end(pos)
	if len(w.b) != size {
		return fmt.Errorf("internal error: moof of %d bytes, computed %d", len(w.b), size)
	}

	// data_offset is relative to the moof (default-base-is-moof).
	at := int64(len(w.b)) + hdr
	if at+payload > math.MaxInt32 {
		return fmt.Errorf("fragment of %d bytes exceeds trun data offsets", at+payload)
	}
	for j, f := range trafs {
		binary.BigEndian.PutUint32(w.b[dataOffsets[j]:], uint32(int32(at)))
		at += f.bytes
	}
	b.Add(w.b)
	b.Add(mdatHeader(payload))
	for _, f := range trafs {
		if tl != nil {
			tl.span(p.trackIndex(f.tp), f.span, b.Size())
		}
		p.addSamples(b, f.tp, f.span)
	}
	return nil
}

// addSamples appends the stored bytes of samples r of a track, chapter by
// chapter, one range per run of contiguous samples.
func (p *plan) addSamples(b *vfile.Builder, tp *trackPlan, r span) {
	s := &tp.t.Samples
	c := 0
	for i := r.first; i < r.end; {
		c = chapterOf(s, i, c)
		obj := p.ix.Chapters[c].Object
		j := min(s.ChapterStart[c+1], r.end)
		for i < j {
			start := s.Offset[i]
			end := start + int64(s.Size[i])
			for i++; i < j && s.Offset[i] == end; i++ {
				end += int64(s.Size[i])
			}
			b.AddStored(obj, start, end-start)
		}
	}
}

// boxFlags decides how a traf describes its samples: the tfhd and trun
// flags, the default sample flags and the first sample's flags. Constant
// durations and sizes go to tfhd; sync samples are signalled by default
// flags when all or none are sync, or when only the first is (with
// first-sample flags), else per sample.
func (f *traf) boxFlags() (tfhd, trun, defFlags, firstFlags uint32) {
	s := &f.tp.t.Samples
	tfhd, trun = tfhdDefaultBaseIsM, trunDataOffset
	if f.desc != 1 {
		tfhd |= tfhdDescIndex
	}
	if f.constDur {
		tfhd |= tfhdDefaultDur
	} else {
		trun |= trunDur
	}
	if f.constSize {
		tfhd |= tfhdDefaultSize
	} else {
		trun |= trunSize
	}
	switch n := f.span.len(); {
	case f.syncs == n:
		tfhd, defFlags = tfhd|tfhdDefaultFlags, flagsSync
	case f.syncs == 0:
		tfhd, defFlags = tfhd|tfhdDefaultFlags, flagsNonSync
	case f.syncs == 1 && s.IsSync(f.span.first):
		tfhd, defFlags = tfhd|tfhdDefaultFlags, flagsNonSync
		trun, firstFlags = trun|trunFirstFlags, flagsSync
	default:
		trun |= trunFlags
	}
	if f.cto {
		trun |= trunCTO
	}
	return tfhd, trun, defFlags, firstFlags
}

// size is the size of the traf box.
func (f *traf) size() int {
	tfhd, trun, _, _ := f.boxFlags()
	n := 8                                                                                             // traf
	n += 16 + 4*bits.OnesCount32(tfhd&(tfhdDescIndex|tfhdDefaultDur|tfhdDefaultSize|tfhdDefaultFlags)) // tfhd
	n += 20                                                                                            // tfdt v1
	n += 20 + 4*bits.OnesCount32(trun&trunFirstFlags)                                                  // trun header
	n += f.span.len() * 4 * bits.OnesCount32(trun&(trunDur|trunSize|trunFlags|trunCTO))
	return n
}

// writeTraf writes a track fragment and returns the position of its trun's
// data_offset, to be patched once the moof's size is known.
func writeTraf(w *writer, f *traf) int {
	tp, s := f.tp, &f.tp.t.Samples
	first := f.span.first
	tflags, rflags, defFlags, firstFlags := f.boxFlags()

	pos := w.box("traf")
	hpos := w.fullBox("tfhd", 0, tflags)
	w.u32(tp.t.ID)
	if tflags&tfhdDescIndex != 0 {
		w.u32(f.desc)
	}
	if tflags&tfhdDefaultDur != 0 {
		w.u32(s.Dur[first])
	}
	if tflags&tfhdDefaultSize != 0 {
		w.u32(s.Size[first])
	}
	if tflags&tfhdDefaultFlags != 0 {
		w.u32(defFlags)
	}
	w.end(hpos)

	dpos := w.fullBox("tfdt", 1, 0)
	w.u64(uint64(s.DTS[first] - tp.base))
	w.end(dpos)

	rpos := w.fullBox("trun", b2u8(f.negCTO), rflags)
	w.u32(uint32(f.span.len()))
	dataOffset := len(w.b)
	w.u32(0)
	if rflags&trunFirstFlags != 0 {
		w.u32(firstFlags)
	}
	b := w.b // see writeStts
	for i := first; i < f.span.end; i++ {
		if rflags&trunDur != 0 {
			b = binary.BigEndian.AppendUint32(b, s.Dur[i])
		}
		if rflags&trunSize != 0 {
			b = binary.BigEndian.AppendUint32(b, s.Size[i])
		}
		if rflags&trunFlags != 0 {
			if s.IsSync(i) {
				b = binary.BigEndian.AppendUint32(b, flagsSync)
			} else {
				b = binary.BigEndian.AppendUint32(b, flagsNonSync)
			}
		}
		if rflags&trunCTO != 0 {
			b = binary.BigEndian.AppendUint32(b, uint32(s.CTO[i]))
		}
	}
	w.b = b
	w.end(rpos)
	w.end(pos)
	return dataOffset
}
