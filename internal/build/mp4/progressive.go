package mp4build

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/vfile"
)

// ContentType is the media type of the MP4 outputs.
const ContentType = "video/mp4"

// Progressive builds a progressive MP4 of the selection, with the moov box
// before the mdat box so that playback can start while it downloads.
//
// The zero Selection gives the consolidated file: every track and every
// sample of the asset, all chapters on one timeline, with the original
// sample bytes and sample entries (chapters refer to theirs through the
// sample-to-chunk table). A clip holds, in every track, the samples from
// the sync sample presented at or before Start to the last one presented
// before End, and an edit list in every track so that presentation begins
// at Start (see Selection) and ends at End; the movie duration is the
// clip's length.
//
// The mdat payload is made of the byte ranges of the originals that hold the
// selected samples, merged where they touch or overlap, in (chapter, offset)
// order: an interleaved original becomes about one piece per chapter. The
// file's Timeline places samples at their decode time, relative to the
// clip's start (one point per vfile.TimelineStep of media). The file's Name
// and ModTime are left for the caller.
func Progressive(ix *media.Index, sel Selection) (*vfile.File, error) {
	p, err := newPlan(ix, tracksOf(ix), sel)
	if err != nil {
		return nil, err
	}
	lay := p.layout()

	var ftyp writer
	writeFtyp(&ftyp, "isom", 0x200, "isom", "iso2", "avc1", "mp41")

	st := make([]tableStats, len(p.tracks))
	est := len(ftyp.b) + 8 + 128 // moov header, mvhd
	for k := range p.tracks {
		st[k] = stats(&p.tracks[k], lay.off[k])
		est += smallBoxesSize(p.tracks[k].t) + st[k].size(&p.tracks[k], false)
	}
	hdr := mdatHeaderSize(lay.size)
	// Every chunk offset is smaller than the file size: when the file (with
	// 32-bit offsets, and a moov no larger than est) stays under 4 GiB, stco
	// is enough.
	co64 := int64(est)+hdr+lay.size > math.MaxUint32
	moov, tabs := p.writeProgressiveMoov(lay, st, co64)
	if !co64 && int64(len(ftyp.b)+len(moov))+hdr+lay.size > math.MaxUint32 {
		// Only if est were not an upper bound.
		co64 = true
		moov, tabs = p.writeProgressiveMoov(lay, st, co64)
	}
	base := int64(len(ftyp.b)+len(moov)) + hdr
	for _, tab := range tabs {
		tab.rebase(moov, base)
	}

	var b vfile.Builder
	b.Add(ftyp.b)
	b.Add(moov)
	b.Add(mdatHeader(lay.size))
	for _, pc := range lay.pieces {
		b.AddStored(pc.Object, pc.Off, pc.Len)
	}
	f := b.File("", ContentType, time.Time{}, p.etag("progressive"))
	f.Timeline = p.progressiveTimeline(lay, base, f.Size)
	return f, nil
}

// progressiveTimeline is the timeline of a progressive output whose mdat
// payload (laid out as lay) starts at file offset base.
func (p *plan) progressiveTimeline(lay *layout, base, size int64) vfile.Timeline {
	r := p.newTimelineRec()
	for k := range p.tracks {
		tp := &p.tracks[k]
		for i := tp.first; i < tp.end; i++ {
			r.sample(k, i, base+lay.off[k][i-tp.first])
		}
	}
	return r.finish(size)
}

// tracksOf returns the index's tracks (nil-safe).
func tracksOf(ix *media.Index) []*media.Track {
	if ix == nil {
		return nil
	}
	return ix.Tracks
}

// writeProgressiveMoov writes the moov box with chunk offsets relative to
// the mdat payload, and returns where the offset tables are.
func (p *plan) writeProgressiveMoov(lay *layout, st []tableStats, co64 bool) ([]byte, []offsetTable) {
	size := 8 + 128
	for k := range p.tracks {
		size += smallBoxesSize(p.tracks[k].t) + st[k].size(&p.tracks[k], co64)
	}
	w := &writer{b: make([]byte, 0, size)}
	tabs := make([]offsetTable, 0, len(p.tracks))
	pos := w.box("moov")
	p.writeMvhd(w, p.duration)
	for k := range p.tracks {
		tp, s := &p.tracks[k], &st[k]
		p.writeTrak(w, tp, func(w *writer) {
			writeStts(w, tp, s.sttsRuns)
			writeCtts(w, tp, s.cttsRuns)
			writeStss(w, tp, s.syncs)
			writeStsz(w, tp, s.constSize)
			writeStsc(w, s.chunks, s.stscRuns)
			tabs = append(tabs, writeChunkOffsets(w, s.chunks, co64))
		})
	}
	w.end(pos)
	return w.b, tabs
}

// layout is the mdat payload of a progressive output.
type layout struct {
	// off[k][i] is the payload offset of sample tracks[k].first+i.
	off [][]int64
	// pieces are the merged ranges of the originals, in payload order.
	pieces []vfile.Piece
	// size is the payload size.
	size int64
}

// cursor walks the selected samples of one track within one chapter in
// increasing original offset.
type cursor struct {
	s     *media.Samples
	off   []int64 // the track's layout.off
	first int     // the track's first selected sample (index base of off)
	order []int32 // sample indexes in offset order; nil when they already are
	lo    int     // first sample of the chapter's selection
	i, hi int     // position in [lo, hi) (in order when it is set)
}

func (c *cursor) done() bool { return c.i >= c.hi }

func (c *cursor) sample() int {
	if c.order != nil {
		return int(c.order[c.i-c.lo])
	}
	return c.i
}

func (c *cursor) offset() int64 { return c.s.Offset[c.sample()] }

// layout gathers the selected samples of all tracks, chapter by chapter in
// increasing original offset (a k-way merge of the tracks, which are almost
// always in offset order already), and merges them into runs of the
// original that are contiguous or overlap. The payload is these runs end to
// end; each sample lands at its run's payload position plus its distance
// from the run's start.
func (p *plan) layout() *layout {
	total := 0
	for _, tp := range p.tracks {
		total += tp.len()
	}
	all := make([]int64, total)
	lay := &layout{off: make([][]int64, len(p.tracks))}
	for k, tp := range p.tracks {
		lay.off[k], all = all[:tp.len():tp.len()], all[tp.len():]
	}
	curs := make([]cursor, len(p.tracks))
	for c, ch := range p.ix.Chapters {
		for k := range p.tracks {
			tp := &p.tracks[k]
			s := &tp.t.Samples
			lo := max(tp.first, s.ChapterStart[c])
			hi := max(min(tp.end, s.ChapterStart[c+1]), lo)
			curs[k] = cursor{s: s, off: lay.off[k], first: tp.first, lo: lo, i: lo, hi: hi, order: offsetOrder(s, lo, hi)}
		}
		p.layoutChapter(lay, curs, ch.Object)
	}
	return lay
}

// offsetOrder returns the samples [lo, hi) sorted by offset, or nil when
// they are in offset order already.
func offsetOrder(s *media.Samples, lo, hi int) []int32 {
	sorted := true
	for i := lo + 1; i < hi; i++ {
		if s.Offset[i] < s.Offset[i-1] {
			sorted = false
			break
		}
	}
	if sorted {
		return nil
	}
	order := make([]int32, hi-lo)
	for i := range order {
		order[i] = int32(lo + i)
	}
	slices.SortStableFunc(order, func(a, b int32) int { return cmp.Compare(s.Offset[a], s.Offset[b]) })
	return order
}

// run is a range [start, end) of the original being laid out, at pos in
// the payload.
type run struct {
	start, end, pos int64
	active          bool
}

// flush appends the run, if any, to the payload.
func (r *run) flush(lay *layout, obj string) {
	if r.active && r.end > r.start {
		lay.pieces = append(lay.pieces, vfile.Stored(obj, r.start, r.end-r.start))
		lay.size += r.end - r.start
	}
	r.active = false
}

// layoutChapter merges the cursors' samples, all in object obj, into runs.
func (p *plan) layoutChapter(lay *layout, curs []cursor, obj string) {
	var r run
	for {
		// The cursor at the smallest offset, and the smallest offset of
		// the others: the chosen cursor's samples are taken in a batch up
		// to there.
		best, bound := -1, int64(math.MaxInt64)
		var bestOff int64
		for k := range curs {
			if curs[k].done() {
				continue
			}
			o := curs[k].offset()
			if best < 0 || o < bestOff {
				if best >= 0 {
					bound = min(bound, bestOff)
				}
				best, bestOff = k, o
			} else {
				bound = min(bound, o)
			}
		}
		if best < 0 {
			break
		}
		c := &curs[best]
		s, out, base := c.s, c.off, c.first
		// Hot loop: locals only.
		start, end, pos, active := r.start, r.end, r.pos, r.active
		for ; c.i < c.hi; c.i++ {
			i := c.i
			if c.order != nil {
				i = int(c.order[c.i-c.lo])
			}
			o := s.Offset[i]
			if o > bound {
				break
			}
			e := o + int64(s.Size[i])
			if !active || o > end {
				r = run{start, end, pos, active}
				r.flush(lay, obj)
				start, end, pos, active = o, e, lay.size, true
			} else if e > end {
				end = e
			}
			out[i-base] = pos + o - start
		}
		r = run{start, end, pos, active}
	}
	r.flush(lay, obj)
}
