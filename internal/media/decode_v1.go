package media

import (
	"math"
)

// decodeV1 decodes the tracks' columns of a version 1 index, one after the
// other, from b.
func decodeV1(ix *Index, b []byte) error {
	for _, t := range ix.Tracks {
		n, err := decodeColumnsV1(b, ix.Chapters, t)
		if err != nil {
			return err
		}
		b = b[n:]
	}
	if len(b) != 0 {
		return invalid("%d trailing bytes", len(b))
	}
	return nil
}

// decodeColumnsV1 decodes the sample columns of track t in the version 1
// encoding from the start of b, sets them (DTS included), and returns the
// number of bytes read.
func decodeColumnsV1(b []byte, chapters []Chapter, t *Track) (int, error) {
	n, err := sampleCount(chapters, t)
	if err != nil {
		return 0, err
	}
	// Every sample takes at least one byte, its offset. This bounds the
	// allocations below, and n*w cannot overflow.
	if n > len(b) {
		return 0, invalid("track %d: %d samples do not fit in %d bytes", t.ID, n, len(b))
	}
	if len(b) < 2 {
		return 0, invalid("track %d: truncated", t.ID)
	}
	flags, w, p := b[0], int(b[1]), 2
	if flags&^(colCTO|colSync) != 0 {
		return 0, invalid("track %d: unknown column flags %#x", t.ID, flags)
	}
	if w > 4 || n*w > len(b)-p {
		return 0, invalid("track %d: bad size column", t.ID)
	}
	size := make([]uint32, n)
	readFixed(b[p:p+n*w], w, size, 0)
	p += n * w
	off := make([]int64, n)
	if p, err = readOffsetsV1(b, p, t.ID, chapters, t.Samples.ChapterStart, size, off); err != nil {
		return 0, err
	}
	dur := make([]uint32, n)
	dts := make([]int64, n+1)
	if p, err = readDurations(b, p, t.ID, false, dur, dts); err != nil {
		return 0, err
	}
	var cto []int32
	if flags&colCTO != 0 {
		if p >= len(b) {
			return 0, invalid("track %d: bad CTO column", t.ID)
		}
		w := int(b[p])
		p++
		if w > 4 || n*w > len(b)-p {
			return 0, invalid("track %d: bad CTO column", t.ID)
		}
		cto = make([]int32, n)
		readFixed(b[p:p+n*w], w, cto, 0)
		p += n * w
		for i, v := range cto {
			cto[i] = int32(uint32(v)>>1) ^ -(v & 1) // zigzag
		}
	}
	var sync []bool
	if flags&colSync != 0 {
		sync = make([]bool, n)
		if p, err = readSync(b, p, t.ID, sync); err != nil {
			return 0, err
		}
	}
	s := &t.Samples
	s.Offset, s.Size, s.Dur, s.CTO, s.Sync, s.DTS = off, size, dur, cto, sync, dts
	return p, nil
}

// readOffsetsV1 decodes a version 1 Offset column at b[p:] into off,
// checking that every sample lies inside its chapter, and returns the
// position after it.
func readOffsetsV1(b []byte, p int, id uint32, chapters []Chapter, cs []int, size []uint32, off []int64) (int, error) {
	for c := range chapters {
		limit := chapters[c].Size
		var next int64
		for i := cs[c]; i < cs[c+1]; i++ {
			var u uint64
			if p < len(b) && b[p] < 0x80 {
				u = uint64(b[p])
				p++
			} else if u, p = uvarint(b, p); p < 0 {
				return 0, invalid("track %d: bad offset column", id)
			}
			var o int64
			if i == cs[c] {
				if u > math.MaxInt64 {
					return 0, invalid("track %d: offset out of range", id)
				}
				o = int64(u)
			} else {
				// next <= limit, so next+delta cannot overflow unless
				// delta is huge; compare in a way that cannot.
				delta := unzigzag(u)
				if delta > limit-next || delta < -next {
					return 0, invalid("track %d sample %d: offset out of range", id, i)
				}
				o = next + delta
			}
			if o < 0 || o > limit || int64(size[i]) > limit-o {
				return 0, invalid("track %d sample %d (bytes %d+%d) lies outside chapter %d (%d bytes)", id, i, o, size[i], c+1, limit)
			}
			off[i] = o
			next = o + int64(size[i])
		}
	}
	return p, nil
}
