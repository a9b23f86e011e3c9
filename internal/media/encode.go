package media

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"slices"
)

// Binary index format, version 2 (integers are unsigned LEB128 varints
// unless noted; "fixed width w" means w bytes per value, little endian):
//
//	"JSIX"                 magic
//	version                1 byte (indexVersion)
//	header length, header  JSON of the Index with each track's sample
//	                       columns left out (only ChapterStart and
//	                       ChapterDesc are kept)
//	per track, in order:
//	  length               number of bytes of the track's columns (flags to
//	                       Dur), so that tracks can be decoded
//	                       independently
//	  flags                1 byte: 1 = CTO column present, 2 = Sync column present
//	  Size                 base (the smallest size), width w (1 byte, 1-4),
//	                       then each size - base in fixed width w
//	  CTO                  if present: base (the smallest CTO, as a zigzag
//	                       varint), width w (1 byte, 0-4), then each
//	                       CTO - base (modulo 2^32) in fixed width w
//	  Offset length        number of bytes of the Offset column
//	  Offset               per chapter, jumps, each followed by an optional
//	                       run of samples stored back to back, that cover
//	                       exactly the chapter's samples:
//	                         jump  the 65-bit value g<<1 | r as a varint,
//	                               where g is the zigzag encoding of the
//	                               sample's offset minus the end (offset +
//	                               size) of the chapter's previous sample,
//	                               or minus 0 for its first sample, and r
//	                               is 1 if a run follows
//	                         run   the number of samples (at least 1) that
//	                               follow the jump's sample, each starting
//	                               where the previous one ends, minus 1
//	  Sync length          if Sync is present: number of bytes of Sync
//	  Sync                 if present: number of sync samples, then the
//	                       index of the first and the differences between
//	                       the following ones
//	  Dur                  the rest of the track's bytes: number of runs,
//	                       then (count, value) pairs; or, when that is
//	                       longer (varying durations), 0, then if there are
//	                       samples base (the smallest duration), width w
//	                       (1 byte, 0-4), and each duration - base in fixed
//	                       width w
//	CRC-32C                4 bytes, little endian, of everything before
//
// Version 1, which Unmarshal still reads, differs in the track columns:
// no length prefixes (of tracks, Offset and Sync); the order is flags,
// Size, Offset, Dur, CTO, Sync; Size is a width w (0-4) then each size in
// fixed width w, without base; CTO the same for the 32-bit zigzag
// encodings of the CTOs; Offset has one varint per sample: per chapter, the
// first sample's offset, then for each further sample the zigzag varint of
// offset - (previous offset + previous size); Dur is always in runs.
//
// Unmarshal checks every length and count against the bytes that are left
// before allocating, so a corrupt index yields an error, never a panic or a
// huge allocation: every sample takes at least one byte (of its Size in
// version 2, of its Offset in version 1).
const (
	indexMagic   = "JSIX"
	indexVersion = 2

	colCTO  = 1
	colSync = 2

	// parallelMinSamples is the number of samples from which Unmarshal
	// decodes a version 2 index in parallel; below it, starting
	// goroutines costs more than it saves.
	parallelMinSamples = 20000
)

// Marshal encodes an index compactly. The index must be consistent (see
// Index.Validate); DTS columns are not stored but derived again by
// Unmarshal.
func Marshal(ix *Index) ([]byte, error) {
	if ix == nil || slices.Contains(ix.Tracks, nil) {
		return nil, fmt.Errorf("media: marshal: nil index or track")
	}
	if err := ix.Validate(); err != nil {
		return nil, fmt.Errorf("media: marshal: %w", err)
	}
	return encode(ix)
}

// encode encodes an index that Marshal checked.
func encode(ix *Index) ([]byte, error) {
	hdr := *ix
	hdr.Tracks = make([]*Track, len(ix.Tracks))
	total := 0
	for i, t := range ix.Tracks {
		c := *t
		c.Samples = Samples{ChapterStart: t.Samples.ChapterStart, ChapterDesc: t.Samples.ChapterDesc}
		hdr.Tracks[i] = &c
		total += t.Samples.Len()
	}
	hj, err := json.Marshal(&hdr)
	if err != nil {
		return nil, fmt.Errorf("media: marshal header: %w", err)
	}
	b := make([]byte, 0, len(indexMagic)+1+binary.MaxVarintLen64+len(hj)+total*4+64)
	b = append(b, indexMagic...)
	b = append(b, indexVersion)
	b = binary.AppendUvarint(b, uint64(len(hj)))
	b = append(b, hj...)
	var cols []byte
	for _, t := range ix.Tracks {
		cols = appendColumns(cols[:0], &t.Samples)
		b = binary.AppendUvarint(b, uint64(len(cols)))
		b = append(b, cols...)
	}
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable()))
	return b, nil
}

func crcTable() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) }

// zigzag maps signed integers to unsigned ones, small magnitudes to small
// values: 0, -1, 1, -2, ... to 0, 1, 2, 3, ...
func zigzag(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) }

// unzigzag undoes zigzag.
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// appendColumns appends the sample columns of s in the version 2 encoding.
func appendColumns(b []byte, s *Samples) []byte {
	var flags byte
	if s.CTO != nil {
		flags |= colCTO
	}
	if s.Sync != nil {
		flags |= colSync
	}
	b = append(b, flags)
	var base uint32
	if len(s.Size) > 0 {
		base = slices.Min(s.Size)
	}
	b = binary.AppendUvarint(b, uint64(base))
	b = appendFixed(b, s.Size, base, 1)
	if s.CTO != nil {
		var base int32
		if len(s.CTO) > 0 {
			base = slices.Min(s.CTO)
		}
		u := make([]uint32, len(s.CTO))
		for i, v := range s.CTO {
			u[i] = uint32(v)
		}
		b = binary.AppendVarint(b, int64(base))
		b = appendFixed(b, u, uint32(base), 0)
	}
	b = appendWithLength(b, appendOffsets(nil, s))
	if s.Sync != nil {
		b = appendWithLength(b, appendSync(nil, s.Sync))
	}
	return appendDurations(b, s.Dur)
}

// appendWithLength appends the length of col, then col.
func appendWithLength(b, col []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(col)))
	return append(b, col...)
}

// appendOffsets appends the Offset column of s in the version 2 encoding:
// per chapter, jumps, each followed by an optional run of samples stored
// back to back.
func appendOffsets(b []byte, s *Samples) []byte {
	cs := s.ChapterStart
	for c := 0; c+1 < len(cs); c++ {
		var end int64 // end of the previous sample of the chapter
		for i := cs[c]; i < cs[c+1]; {
			g := zigzag(s.Offset[i] - end)
			end = s.Offset[i] + int64(s.Size[i])
			j := i + 1
			for j < cs[c+1] && s.Offset[j] == end {
				end += int64(s.Size[j])
				j++
			}
			// The jump is the 65-bit value g<<1 | r as a varint: its
			// first byte holds r and the low 6 bits of g, the rest is
			// the uvarint of g>>6.
			tok := byte(g&0x3f) << 1
			if j > i+1 {
				tok |= 1
			}
			if g>>6 == 0 {
				b = append(b, tok)
			} else {
				b = append(b, tok|0x80)
				b = binary.AppendUvarint(b, g>>6)
			}
			if j > i+1 {
				b = binary.AppendUvarint(b, uint64(j-i-2))
			}
			i = j
		}
	}
	return b
}

// appendSync appends the Sync column sync: the number of sync samples, then
// their indexes as deltas.
func appendSync(b []byte, sync []bool) []byte {
	k := 0
	for _, v := range sync {
		if v {
			k++
		}
	}
	b = binary.AppendUvarint(b, uint64(k))
	prev := 0
	for i, v := range sync {
		if v {
			b = binary.AppendUvarint(b, uint64(i-prev))
			prev = i
		}
	}
	return b
}

// appendRuns appends the durations dur as runs: the number of runs, then
// (count, value) pairs.
func appendRuns(b []byte, dur []uint32) []byte {
	runs := 0
	for i := range dur {
		if i == 0 || dur[i] != dur[i-1] {
			runs++
		}
	}
	b = binary.AppendUvarint(b, uint64(runs))
	for i := 0; i < len(dur); {
		j := i + 1
		for j < len(dur) && dur[j] == dur[i] {
			j++
		}
		b = binary.AppendUvarint(b, uint64(j-i))
		b = binary.AppendUvarint(b, uint64(dur[i]))
		i = j
	}
	return b
}

// appendDurations appends the Dur column in the version 2 encoding: as runs
// (constant frame rates), or in fixed width when that is shorter (variable
// frame rates).
func appendDurations(b []byte, dur []uint32) []byte {
	n := len(b)
	b = appendRuns(b, dur)
	if len(dur) == 0 {
		return b
	}
	base := slices.Min(dur)
	fixed := binary.AppendUvarint([]byte{0}, uint64(base))
	fixed = appendFixed(fixed, dur, base, 0)
	if len(fixed) < len(b)-n {
		b = append(b[:n], fixed...)
	}
	return b
}

// appendFixed appends vals as fixed-width little-endian integers, less
// base (which is at most the smallest value): one byte giving the width w
// (minWidth-4: the fewest bytes that hold the largest v - base, but at
// least minWidth), then w bytes per value. Sample sizes and composition
// offsets vary little, so this is about as small as varints and decodes
// much faster.
func appendFixed(b []byte, vals []uint32, base uint32, minWidth int) []byte {
	var m uint32
	for _, v := range vals {
		m |= v - base
	}
	w := 0
	for ; m != 0; m >>= 8 {
		w++
	}
	w = max(w, minWidth)
	b = append(b, byte(w))
	for _, v := range vals {
		v -= base
		switch w {
		case 1:
			b = append(b, byte(v))
		case 2:
			b = append(b, byte(v), byte(v>>8))
		case 3:
			b = append(b, byte(v), byte(v>>8), byte(v>>16))
		case 4:
			b = binary.LittleEndian.AppendUint32(b, v)
		}
	}
	return b
}
