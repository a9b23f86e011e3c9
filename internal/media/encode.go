package media

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
)

// Binary index format (integers are unsigned LEB128 varints unless noted):
//
//	"JSIX"                 magic
//	version                1 byte (indexVersion)
//	header length, header  JSON of the Index with each track's sample
//	                       columns left out (only ChapterStart and
//	                       ChapterDesc are kept)
//	per track, in order:
//	  flags                1 byte: 1 = CTO column present, 2 = Sync column present
//	  Size                 fixed width (see appendFixed)
//	  Offset               per chapter: the first sample's offset (uvarint),
//	                       then for each further sample the zigzag varint of
//	                       offset - (previous offset + previous size): 0 for
//	                       samples stored back to back
//	  Dur                  run-length: number of runs, then (count, value) pairs
//	  CTO                  if present: zigzag-encoded, fixed width
//	  Sync                 if present: number of sync samples, then the
//	                       indexes of the sync samples as uvarint deltas
//	CRC-32C                4 bytes, little endian, of everything before
//
// Unmarshal checks every length and count against the bytes that are left
// before allocating, so a corrupt index yields an error, never a panic or a
// huge allocation.

const (
	indexMagic   = "JSIX"
	indexVersion = 1

	colCTO  = 1
	colSync = 2
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
	b := make([]byte, 0, len(indexMagic)+1+binary.MaxVarintLen64+len(hj)+total*6+64)
	b = append(b, indexMagic...)
	b = append(b, indexVersion)
	b = binary.AppendUvarint(b, uint64(len(hj)))
	b = append(b, hj...)
	for _, t := range ix.Tracks {
		b = appendColumns(b, &t.Samples)
	}
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable()))
	return b, nil
}

func crcTable() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) }

func appendColumns(b []byte, s *Samples) []byte {
	var flags byte
	if s.CTO != nil {
		flags |= colCTO
	}
	if s.Sync != nil {
		flags |= colSync
	}
	b = append(b, flags)
	b = appendFixed(b, s.Size)
	for c := 0; c+1 < len(s.ChapterStart); c++ {
		for i := s.ChapterStart[c]; i < s.ChapterStart[c+1]; i++ {
			if i == s.ChapterStart[c] {
				b = binary.AppendUvarint(b, uint64(s.Offset[i]))
			} else {
				b = binary.AppendVarint(b, s.Offset[i]-(s.Offset[i-1]+int64(s.Size[i-1])))
			}
		}
	}
	runs := 0
	for i := range s.Dur {
		if i == 0 || s.Dur[i] != s.Dur[i-1] {
			runs++
		}
	}
	b = binary.AppendUvarint(b, uint64(runs))
	for i := 0; i < len(s.Dur); {
		j := i + 1
		for j < len(s.Dur) && s.Dur[j] == s.Dur[i] {
			j++
		}
		b = binary.AppendUvarint(b, uint64(j-i))
		b = binary.AppendUvarint(b, uint64(s.Dur[i]))
		i = j
	}
	if s.CTO != nil {
		z := make([]uint32, len(s.CTO))
		for i, v := range s.CTO {
			z[i] = uint32(v<<1) ^ uint32(v>>31) // zigzag
		}
		b = appendFixed(b, z)
	}
	if s.Sync != nil {
		k := 0
		for _, v := range s.Sync {
			if v {
				k++
			}
		}
		b = binary.AppendUvarint(b, uint64(k))
		prev := 0
		for i, v := range s.Sync {
			if v {
				b = binary.AppendUvarint(b, uint64(i-prev))
				prev = i
			}
		}
	}
	return b
}

// appendFixed appends vals as fixed-width little-endian integers: one byte
// giving the width w (0-4, the fewest bytes that hold the largest value),
// then w bytes per value. Sample sizes and composition offsets vary little in
// magnitude, so this is about as small as varints and decodes much faster.
func appendFixed(b []byte, vals []uint32) []byte {
	var m uint32
	for _, v := range vals {
		m |= v
	}
	w := 0
	for ; m != 0; m >>= 8 {
		w++
	}
	b = append(b, byte(w))
	for _, v := range vals {
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

// readFixed decodes len(out) values written by appendFixed from b at p and
// returns the position after them, or -1.
func readFixed(b []byte, p int, out []uint32) int {
	if p >= len(b) {
		return -1
	}
	w := int(b[p])
	p++
	n := len(out)
	if w > 4 || n > (len(b)-p)/max(w, 1) {
		return -1
	}
	src := b[p : p+n*w]
	switch w {
	case 0:
		clear(out)
	case 1:
		for i := range out {
			out[i] = uint32(src[i])
		}
	case 2:
		for i := range out {
			out[i] = uint32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case 3:
		for i := range out {
			q := src[3*i : 3*i+3]
			out[i] = uint32(q[0]) | uint32(q[1])<<8 | uint32(q[2])<<16
		}
	case 4:
		for i := range out {
			out[i] = binary.LittleEndian.Uint32(src[4*i:])
		}
	}
	return p + n*w
}

// decoder reads varints from an index, remembering the first error.
type decoder struct {
	b   []byte
	p   int
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("media: index: %s: %w", fmt.Sprintf(format, args...), ErrInvalid)
	}
	d.p = len(d.b)
}

func (d *decoder) left() int { return len(d.b) - d.p }

func (d *decoder) byte() byte {
	if d.p >= len(d.b) {
		d.fail("truncated")
		return 0
	}
	c := d.b[d.p]
	d.p++
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.p < len(d.b) {
		if c := d.b[d.p]; c < 0x80 {
			d.p++
			return uint64(c)
		}
	}
	v, n := binary.Uvarint(d.b[d.p:])
	if n <= 0 {
		d.fail("bad varint at byte %d", d.p)
		return 0
	}
	d.p += n
	return v
}

func (d *decoder) uint32() uint32 {
	v := d.uvarint()
	if v > math.MaxUint32 {
		d.fail("value %d out of range", v)
		return 0
	}
	return uint32(v)
}

// Unmarshal decodes an index made by Marshal, derives its DTS columns and
// validates it. Corrupt or truncated input yields an error wrapping
// ErrInvalid.
func Unmarshal(b []byte) (*Index, error) {
	if len(b) < len(indexMagic)+1+4 || string(b[:len(indexMagic)]) != indexMagic {
		return nil, fmt.Errorf("media: index: not an index: %w", ErrInvalid)
	}
	if v := b[len(indexMagic)]; v != indexVersion {
		return nil, fmt.Errorf("media: index: version %d, want %d: %w", v, indexVersion, ErrUnsupported)
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, crcTable()) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return nil, fmt.Errorf("media: index: checksum mismatch: %w", ErrInvalid)
	}
	d := &decoder{b: body, p: len(indexMagic) + 1}
	hl := d.uvarint()
	if d.err != nil || hl > uint64(d.left()) {
		return nil, fmt.Errorf("media: index: bad header length: %w", ErrInvalid)
	}
	ix := new(Index)
	if err := json.Unmarshal(d.b[d.p:d.p+int(hl)], ix); err != nil {
		return nil, fmt.Errorf("media: index: header: %v: %w", err, ErrInvalid)
	}
	d.p += int(hl)
	for ti, t := range ix.Tracks {
		if t == nil {
			return nil, fmt.Errorf("media: index: track %d missing: %w", ti+1, ErrInvalid)
		}
		if err := d.columns(ix, t); err != nil {
			return nil, err
		}
	}
	if d.left() != 0 {
		return nil, fmt.Errorf("media: index: %d trailing bytes: %w", d.left(), ErrInvalid)
	}
	for _, t := range ix.Tracks {
		t.Samples.Derive()
	}
	if err := ix.Validate(); err != nil {
		return nil, fmt.Errorf("media: index: %w: %w", err, ErrInvalid)
	}
	return ix, nil
}

// uvarint decodes the varint at b[p:], returning the value and the position
// after it, or p = -1 if it is truncated or longer than 64 bits.
func uvarint(b []byte, p int) (uint64, int) {
	var v uint64
	for s := uint(0); s < 64; s += 7 {
		if p >= len(b) {
			return 0, -1
		}
		c := b[p]
		p++
		if c < 0x80 {
			if s == 63 && c > 1 {
				return 0, -1
			}
			return v | uint64(c)<<s, p
		}
		v |= uint64(c&0x7f) << s
	}
	return 0, -1
}

// columns decodes the sample columns of t.
func (d *decoder) columns(ix *Index, t *Track) error {
	s := &t.Samples
	cs := s.ChapterStart
	if len(cs) != len(ix.Chapters)+1 || len(s.ChapterDesc) != len(ix.Chapters) || cs[0] != 0 {
		return fmt.Errorf("media: index: track %d: bad chapter table: %w", t.ID, ErrInvalid)
	}
	for c := 1; c < len(cs); c++ {
		if cs[c] < cs[c-1] {
			return fmt.Errorf("media: index: track %d: chapter table out of order: %w", t.ID, ErrInvalid)
		}
	}
	n := cs[len(cs)-1]
	// Every sample takes at least one byte (its offset).
	if n > d.left() {
		return fmt.Errorf("media: index: track %d: %d samples do not fit in %d bytes: %w", t.ID, n, d.left(), ErrInvalid)
	}
	flags := d.byte()
	if flags&^(colCTO|colSync) != 0 {
		d.fail("track %d: unknown column flags %#x", t.ID, flags)
	}
	if d.err != nil {
		return d.err
	}
	b := d.b

	size := make([]uint32, n)
	if d.p = readFixed(b, d.p, size); d.p < 0 {
		d.fail("track %d: bad size column", t.ID)
		return d.err
	}

	off := make([]int64, n)
	p := d.p
	for c := 0; c+1 < len(cs); c++ {
		limit := ix.Chapters[c].Size
		var next int64
		for i := cs[c]; i < cs[c+1]; i++ {
			var u uint64
			if p < len(b) && b[p] < 0x80 {
				u = uint64(b[p])
				p++
			} else if u, p = uvarint(b, p); p < 0 {
				d.fail("track %d: bad offset column", t.ID)
				return d.err
			}
			var o int64
			if i == cs[c] {
				if u > math.MaxInt64 {
					d.fail("track %d: offset out of range", t.ID)
					return d.err
				}
				o = int64(u)
			} else {
				// next <= limit, so next+delta cannot overflow unless
				// delta is huge; compare in a way that cannot.
				delta := int64(u>>1) ^ -int64(u&1)
				if delta > limit-next || delta < -next {
					d.fail("track %d sample %d: offset out of range", t.ID, i)
					return d.err
				}
				o = next + delta
			}
			if o < 0 || o > limit || int64(size[i]) > limit-o {
				d.fail("track %d sample %d (bytes %d+%d) lies outside chapter %d (%d bytes)", t.ID, i, o, size[i], c+1, limit)
				return d.err
			}
			off[i] = o
			next = o + int64(size[i])
		}
	}
	d.p = p

	runs := d.uvarint()
	if runs > uint64(n) || runs*2 > uint64(d.left()) {
		d.fail("track %d: bad duration runs", t.ID)
	}
	dur := make([]uint32, n)
	i := 0
	for r := uint64(0); r < runs && d.err == nil; r++ {
		cnt := d.uvarint()
		v := d.uint32()
		if cnt == 0 || cnt > uint64(n-i) {
			d.fail("track %d: bad duration run", t.ID)
			break
		}
		for k := i + int(cnt); i < k; i++ {
			dur[i] = v
		}
	}
	if i != n {
		d.fail("track %d: durations cover %d of %d samples", t.ID, i, n)
	}
	if d.err != nil {
		return d.err
	}

	var cto []int32
	if flags&colCTO != 0 {
		u := make([]uint32, n)
		if d.p = readFixed(b, d.p, u); d.p < 0 {
			d.fail("track %d: bad CTO column", t.ID)
			return d.err
		}
		cto = make([]int32, n)
		for i, v := range u {
			cto[i] = int32(v>>1) ^ -int32(v&1) // zigzag
		}
	}

	var sync []bool
	if flags&colSync != 0 {
		k := d.uvarint()
		if k > uint64(n) || k > uint64(d.left()) {
			d.fail("track %d: bad sync table", t.ID)
		}
		sync = make([]bool, n)
		pos := uint64(0)
		for j := uint64(0); j < k && d.err == nil; j++ {
			delta := d.uvarint()
			if (j > 0 && delta == 0) || delta >= uint64(n)-pos {
				d.fail("track %d: bad sync table", t.ID)
				break
			}
			pos += delta
			sync[pos] = true
		}
	}
	if d.err != nil {
		return d.err
	}
	s.Offset, s.Size, s.Dur, s.CTO, s.Sync = off, size, dur, cto, sync
	return nil
}
