package media

import (
	"math"

	"github.com/Eyevinn/mp4ff/mp4"
)

// parseMoof appends the samples of one movie fragment to the tracks.
//
// Data offsets follow ISO/IEC 14496-12 8.8.7: base_data_offset when given,
// else the moof start when default-base-is-moof is set or for the first
// track fragment, else the end of the previous track fragment's data. A
// trun without data_offset continues where the previous trun ended.
// Per-sample values come from the trun, else the tfhd defaults, else the
// trex defaults.
func (p *fileParser) parseMoof(moof box, tracks map[uint32]*fileTrack) error {
	kids, err := p.children(moof, 0)
	if err != nil {
		return err
	}
	prevEnd := moof.off
	firstTraf := true
	for _, traf := range kids {
		if traf.typ != "traf" {
			continue
		}
		tk, err := p.children(traf, 0)
		if err != nil {
			return err
		}
		tfhdBox, err := p.need(tk, "tfhd", traf)
		if err != nil {
			return err
		}
		tfhd, err := decodeAs[*mp4.TfhdBox](p, tfhdBox)
		if err != nil {
			return err
		}
		t := tracks[tfhd.TrackID]
		if t == nil {
			return p.invalid("fragment at offset %d refers to unknown track ID %d", moof.off, tfhd.TrackID)
		}

		var base int64
		switch {
		case tfhd.HasBaseDataOffset():
			if tfhd.BaseDataOffset > math.MaxInt64 {
				return p.invalid("track %d: base data offset %d lies outside the file", t.pos, tfhd.BaseDataOffset)
			}
			base = int64(tfhd.BaseDataOffset)
		case tfhd.DefaultBaseIfMoof() || firstTraf:
			base = moof.off
		default:
			base = prevEnd
		}
		firstTraf = false

		var sdi, defDur, defSize, defFlags uint32 = 1, 0, 0, 0
		if t.trex != nil {
			sdi = t.trex.DefaultSampleDescriptionIndex
			defDur = t.trex.DefaultSampleDuration
			defSize = t.trex.DefaultSampleSize
			defFlags = t.trex.DefaultSampleFlags
		}
		if tfhd.HasSampleDescriptionIndex() {
			sdi = tfhd.SampleDescriptionIndex
		}
		if sdi == 0 {
			sdi = 1 // some muxers leave the trex default at 0
		}
		if tfhd.HasDefaultSampleDuration() {
			defDur = tfhd.DefaultSampleDuration
		}
		if tfhd.HasDefaultSampleSize() {
			defSize = tfhd.DefaultSampleSize
		}
		if tfhd.HasDefaultSampleFlags() {
			defFlags = tfhd.DefaultSampleFlags
		}

		if b, ok := first(tk, "tfdt"); ok {
			tfdt, err := decodeAs[*mp4.TfdtBox](p, b)
			if err != nil {
				return err
			}
			if !t.hasBase {
				t.hasBase, t.base = true, tfdt.BaseMediaDecodeTime()
			}
			t.alignTo(tfdt.BaseMediaDecodeTime())
		}

		pos := base
		added := 0
		for _, rb := range tk {
			if rb.typ != "trun" {
				continue
			}
			trun, err := decodeAs[*mp4.TrunBox](p, rb)
			if err != nil {
				return err
			}
			if err := p.take(int64(len(trun.Samples))); err != nil {
				return err
			}
			if trun.HasDataOffset() {
				pos = base + int64(trun.DataOffset)
			}
			hasDur, hasSize, hasFlags := trun.HasSampleDuration(), trun.HasSampleSize(), trun.HasSampleFlags()
			hasFirst, hasCTO := trun.HasFirstSampleFlags(), trun.HasSampleCompositionTimeOffset()
			for i, s := range trun.Samples {
				dur, size, flags := defDur, defSize, defFlags
				if hasDur {
					dur = s.Dur
				}
				if hasSize {
					size = s.Size
				}
				if hasFlags || (i == 0 && hasFirst) {
					flags = s.Flags
				}
				var cto int32
				if hasCTO {
					cto = s.CompositionTimeOffset
				}
				if err := p.checkSample(t, len(t.size), pos, size); err != nil {
					return err
				}
				t.off = append(t.off, pos)
				t.size = append(t.size, size)
				t.dur = append(t.dur, dur)
				t.cto = append(t.cto, cto)
				t.sync = append(t.sync, flags&sampleFlagNonSync == 0)
				t.end += int64(dur)
				pos += int64(size)
				added++
			}
		}
		if added > 0 {
			if err := p.useDesc(t, sdi); err != nil {
				return err
			}
		}
		prevEnd = pos
	}
	return nil
}

// alignTo reconciles the track's decode time with a fragment's
// baseMediaDecodeTime. Samples are stored back to back, so a gap (a lost
// fragment) is absorbed by the duration of the previous sample when it is
// modest; a tfdt of the first samples, an overlap or an implausible jump is
// ignored and the samples continue the timeline.
func (t *fileTrack) alignTo(tfdt uint64) {
	last := len(t.dur) - 1
	if last < 0 || tfdt > math.MaxInt64 || int64(tfdt) <= t.end {
		return
	}
	gap := int64(tfdt) - t.end
	limit := max(int64(t.timescale), 10*int64(t.dur[last]))
	if gap > limit || int64(t.dur[last])+gap > math.MaxUint32 {
		return
	}
	t.dur[last] += uint32(gap)
	t.end += gap
}
