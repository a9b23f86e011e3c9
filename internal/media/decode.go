package media

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// readFixed decodes into out the values that appendFixed wrote as src with
// width w (0-4) and base (src holds len(out)*w bytes).
//
// The loops decode a few values per iteration from whole words, with one
// bounds check each; the tail loops do the rest.
func readFixed[T uint32 | int32](src []byte, w int, out []T, base T) {
	src = src[:w*len(out)]
	i := 0
	switch w {
	case 0:
		for i := range out {
			out[i] = base
		}
	case 1:
		for i, c := range src[:len(out)] {
			out[i] = T(c) + base
		}
	case 2:
		for ; i+4 <= len(out) && len(src) >= 8; i += 4 {
			v := binary.LittleEndian.Uint64(src)
			o := out[i : i+4 : i+4]
			o[0] = T(uint32(v)&0xffff) + base
			o[1] = T(uint32(v>>16)&0xffff) + base
			o[2] = T(uint32(v>>32)&0xffff) + base
			o[3] = T(uint32(v>>48)) + base
			src = src[8:]
		}
		for ; i < len(out) && len(src) >= 2; i++ {
			out[i] = T(uint32(src[0])|uint32(src[1])<<8) + base
			src = src[2:]
		}
	case 3:
		for ; i+4 <= len(out) && len(src) >= 12; i += 4 {
			v := binary.LittleEndian.Uint64(src)
			u := binary.LittleEndian.Uint32(src[8:])
			o := out[i : i+4 : i+4]
			o[0] = T(uint32(v)&0xffffff) + base
			o[1] = T(uint32(v>>24)&0xffffff) + base
			o[2] = T(uint32(v>>48)|(u&0xff)<<16) + base
			o[3] = T(u>>8) + base
			src = src[12:]
		}
		for ; i < len(out) && len(src) >= 3; i++ {
			out[i] = T(uint32(src[0])|uint32(src[1])<<8|uint32(src[2])<<16) + base
			src = src[3:]
		}
	case 4:
		for ; i+2 <= len(out) && len(src) >= 8; i += 2 {
			v := binary.LittleEndian.Uint64(src)
			o := out[i : i+2 : i+2]
			o[0] = T(uint32(v)) + base
			o[1] = T(uint32(v>>32)) + base
			src = src[8:]
		}
		for ; i < len(out) && len(src) >= 4; i++ {
			out[i] = T(binary.LittleEndian.Uint32(src)) + base
			src = src[4:]
		}
	}
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

// invalid returns an error for a corrupt index, wrapping ErrInvalid.
func invalid(format string, args ...any) error {
	return fmt.Errorf("media: index: %s: %w", fmt.Sprintf(format, args...), ErrInvalid)
}

// Unmarshal decodes an index made by Marshal (of index format version 1 or
// 2), derives its DTS columns and validates it. Corrupt or truncated input
// yields an error wrapping ErrInvalid.
func Unmarshal(b []byte) (*Index, error) {
	return unmarshal(b, parallelMinSamples)
}

// unmarshal is Unmarshal, decoding a version 2 index in parallel when its
// tracks hold at least parallelMin samples in all.
func unmarshal(b []byte, parallelMin int) (*Index, error) {
	if len(b) < len(indexMagic)+1+4 || string(b[:len(indexMagic)]) != indexMagic {
		return nil, fmt.Errorf("media: index: not an index: %w", ErrInvalid)
	}
	version := b[len(indexMagic)]
	if version != 1 && version != indexVersion {
		return nil, fmt.Errorf("media: index: version %d, want 1 or %d: %w", version, indexVersion, ErrUnsupported)
	}
	body := b[:len(b)-4]
	// A checksum mismatch is reported in preference to any other error.
	// For version 2 the checksum is computed along with the columns, in
	// parallel, by decodeV2; the decoders do not rely on it.
	checksum := func() error {
		if crc32.Checksum(body, crcTable()) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
			return fmt.Errorf("media: index: checksum mismatch: %w", ErrInvalid)
		}
		return nil
	}
	ix, p, err := decodeHeader(body)
	if err != nil {
		return nil, cmp.Or(checksum(), err)
	}
	if version == 1 {
		if err := checksum(); err != nil {
			return nil, err
		}
		err = decodeV1(ix, body[p:])
	} else {
		err = decodeV2(ix, body[p:], checksum, parallelMin)
	}
	if err != nil {
		return nil, err
	}
	// The decoders checked every sample against its chapter; what is
	// left to check is the structure.
	if err := ix.validate(false); err != nil {
		return nil, fmt.Errorf("media: index: %w: %w", err, ErrInvalid)
	}
	return ix, nil
}

// decodeHeader decodes the JSON header that follows the magic and version
// in body, and returns it and the position after it.
func decodeHeader(body []byte) (*Index, int, error) {
	hl, p := uvarint(body, len(indexMagic)+1)
	if p < 0 || hl > uint64(len(body)-p) {
		return nil, 0, fmt.Errorf("media: index: bad header length: %w", ErrInvalid)
	}
	ix := new(Index)
	if err := json.Unmarshal(body[p:p+int(hl)], ix); err != nil {
		return nil, 0, fmt.Errorf("media: index: header: %v: %w", err, ErrInvalid)
	}
	for ti, t := range ix.Tracks {
		if t == nil {
			return nil, 0, fmt.Errorf("media: index: track %d missing: %w", ti+1, ErrInvalid)
		}
		// Only the column decoders set the columns.
		s := &t.Samples
		s.Offset, s.Size, s.Dur, s.CTO, s.Sync, s.DTS = nil, nil, nil, nil, nil, nil
	}
	return ix, p + int(hl), nil
}

// sampleCount checks the chapter table of t against the chapters and
// returns t's number of samples.
func sampleCount(chapters []Chapter, t *Track) (int, error) {
	s := &t.Samples
	cs := s.ChapterStart
	if len(cs) != len(chapters)+1 || len(s.ChapterDesc) != len(chapters) || cs[0] != 0 {
		return 0, invalid("track %d: bad chapter table", t.ID)
	}
	for c := 1; c < len(cs); c++ {
		if cs[c] < cs[c-1] {
			return 0, invalid("track %d: chapter table out of order", t.ID)
		}
	}
	return cs[len(cs)-1], nil
}

// A job is part of the work of decoding a version 2 index.
type job struct {
	run  func() error
	cost int // estimated, in bytes written
}

// decodeV2 decodes the tracks' columns of a version 2 index from b, and
// runs checksum, which checks the index's checksum: in parallel when the
// tracks hold at least parallelMin samples in all and GOMAXPROCS allows.
// Its error is checksum's, else the first track's in track order.
func decodeV2(ix *Index, b []byte, checksum func() error, parallelMin int) error {
	var (
		// In order of precedence of their errors. The checksum costs
		// about as much as writing a quarter of its bytes.
		jobs    = []job{{checksum, len(b) / 4}}
		samples int
		err     error // the first track's error in locating its columns
	)
	for _, t := range ix.Tracks {
		l, p := uvarint(b, 0)
		if p < 0 || l > uint64(len(b)-p) {
			err = invalid("track %d: bad column length", t.ID)
			break
		}
		var c *trackColumns
		if c, err = locateColumns(b[p:p+int(l)], ix.Chapters, t); err != nil {
			break
		}
		b = b[p+int(l):]
		samples += c.n
		// Offset and DTS take 8 bytes per sample, Size, Dur and CTO 4,
		// Sync 1.
		jobs = append(jobs, job{c.decodeOffsets, 12 * c.n}, job{c.decodeTimes, 12 * c.n})
		if c.hasCTO || c.hasSync {
			cost := 0
			if c.hasCTO {
				cost += 4 * c.n
			}
			if c.hasSync {
				cost += c.n
			}
			jobs = append(jobs, job{c.decodeFlagged, cost})
		}
	}
	if err == nil && len(b) != 0 {
		err = invalid("%d trailing bytes", len(b))
	}
	// The columns of the tracks before one that could not be located
	// are decoded still: their errors come first.
	if jerr := runJobs(jobs, samples >= parallelMin); jerr != nil {
		return jerr
	}
	return err
}

// runJobs runs the jobs, in parallel if asked to, and returns the error of
// the first job (in order) that failed.
func runJobs(jobs []job, parallel bool) error {
	workers := min(runtime.GOMAXPROCS(0), len(jobs))
	if !parallel || workers < 2 {
		for _, j := range jobs {
			if err := j.run(); err != nil {
				return err
			}
		}
		return nil
	}
	// The most costly first, so that the workers finish at about the
	// same time.
	order := make([]int, len(jobs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int { return cmp.Compare(jobs[j].cost, jobs[i].cost) })
	errs := make([]error, len(jobs))
	var next atomic.Int64
	work := func() {
		for {
			k := int(next.Add(1) - 1)
			if k >= len(order) {
				return
			}
			errs[order[k]] = jobs[order[k]].run()
		}
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// trackColumns are the sample columns of a track in a version 2 index,
// located but not yet decoded. Its decode methods each decode and set
// some of the track's columns, and can run in parallel.
type trackColumns struct {
	t        *Track
	chapters []Chapter
	n        int // number of samples

	size           fixedColumn
	cto            fixedColumn // if hasCTO
	hasCTO         bool
	hasSync        bool
	off, sync, dur []byte // the Offset, Sync (if hasSync) and Dur columns
}

// fixedColumn is a column in fixed width (see appendFixed).
type fixedColumn struct {
	vals []byte // n*w bytes
	w    int
	base uint32
}

// locateColumns checks the chapter table of t and finds its sample columns
// in b, the bytes of its columns in a version 2 index.
func locateColumns(b []byte, chapters []Chapter, t *Track) (*trackColumns, error) {
	n, err := sampleCount(chapters, t)
	if err != nil {
		return nil, err
	}
	c := &trackColumns{t: t, chapters: chapters, n: n}
	if len(b) < 1 {
		return nil, invalid("track %d: truncated", t.ID)
	}
	flags, p := b[0], 1
	if flags&^(colCTO|colSync) != 0 {
		return nil, invalid("track %d: unknown column flags %#x", t.ID, flags)
	}
	c.hasCTO, c.hasSync = flags&colCTO != 0, flags&colSync != 0
	// The Size column's width is at least 1, so this checks n against
	// the bytes there are before anything is allocated for n samples.
	if c.size, p, err = locateFixed(b, p, n, 1, false); err != nil {
		return nil, fmt.Errorf("media: index: track %d: size column: %w", t.ID, err)
	}
	if c.hasCTO {
		if c.cto, p, err = locateFixed(b, p, n, 0, true); err != nil {
			return nil, fmt.Errorf("media: index: track %d: CTO column: %w", t.ID, err)
		}
	}
	if c.off, p, err = locatePrefixed(b, p); err != nil {
		return nil, fmt.Errorf("media: index: track %d: offset column: %w", t.ID, err)
	}
	if c.hasSync {
		if c.sync, p, err = locatePrefixed(b, p); err != nil {
			return nil, fmt.Errorf("media: index: track %d: sync column: %w", t.ID, err)
		}
	}
	c.dur = b[p:]
	return c, nil
}

// locateFixed finds the fixed-width column of n values at b[p:], with a
// base (zigzag-encoded if signed, then in the int32 range) and a width
// of at least minWidth, and returns it and the position after it.
func locateFixed(b []byte, p, n, minWidth int, signed bool) (fixedColumn, int, error) {
	var c fixedColumn
	u, p := uvarint(b, p)
	if p < 0 || p >= len(b) {
		return c, 0, ErrInvalid
	}
	if signed {
		v := unzigzag(u)
		if v < math.MinInt32 || v > math.MaxInt32 {
			return c, 0, ErrInvalid
		}
		c.base = uint32(v)
	} else {
		if u > math.MaxUint32 {
			return c, 0, ErrInvalid
		}
		c.base = uint32(u)
	}
	c.w = int(b[p])
	p++
	// n*w > len(b)-p, without overflow.
	if c.w < minWidth || c.w > 4 || c.w > 0 && n > (len(b)-p)/c.w {
		return c, 0, ErrInvalid
	}
	c.vals = b[p : p+n*c.w]
	return c, p + n*c.w, nil
}

// locatePrefixed finds the column at b[p:] that starts with its length
// and returns it and the position after it.
func locatePrefixed(b []byte, p int) ([]byte, int, error) {
	l, p := uvarint(b, p)
	if p < 0 || l > uint64(len(b)-p) {
		return nil, 0, ErrInvalid
	}
	return b[p : p+int(l)], p + int(l), nil
}

// decodeOffsets decodes and sets the Size and Offset columns.
func (c *trackColumns) decodeOffsets() error {
	size := make([]uint32, c.n)
	readFixed(c.size.vals, c.size.w, size, c.size.base)
	off := make([]int64, c.n)
	p, err := readOffsets(c.off, 0, c.t.ID, c.chapters, c.t.Samples.ChapterStart, size, off)
	if err != nil {
		return err
	}
	if p != len(c.off) {
		return invalid("track %d: %d trailing bytes in the offset column", c.t.ID, len(c.off)-p)
	}
	c.t.Samples.Size, c.t.Samples.Offset = size, off
	return nil
}

// decodeTimes decodes and sets the Dur column and derives DTS.
func (c *trackColumns) decodeTimes() error {
	dur := make([]uint32, c.n)
	dts := make([]int64, c.n+1)
	p, err := readDurations(c.dur, 0, c.t.ID, true, dur, dts)
	if err != nil {
		return err
	}
	if p != len(c.dur) {
		return invalid("track %d: %d trailing bytes", c.t.ID, len(c.dur)-p)
	}
	c.t.Samples.Dur, c.t.Samples.DTS = dur, dts
	return nil
}

// decodeFlagged decodes and sets the CTO and Sync columns, those present.
func (c *trackColumns) decodeFlagged() error {
	if c.hasCTO {
		cto := make([]int32, c.n)
		readFixed(c.cto.vals, c.cto.w, cto, int32(c.cto.base))
		c.t.Samples.CTO = cto
	}
	if c.hasSync {
		sync := make([]bool, c.n)
		p, err := readSync(c.sync, 0, c.t.ID, sync)
		if err != nil {
			return err
		}
		if p != len(c.sync) {
			return invalid("track %d: %d trailing bytes in the sync column", c.t.ID, len(c.sync)-p)
		}
		c.t.Samples.Sync = sync
	}
	return nil
}

// readOffsets decodes a version 2 Offset column at b[p:] into off, checking
// that every sample lies inside its chapter, and returns the position after
// it.
func readOffsets(b []byte, p int, id uint32, chapters []Chapter, cs []int, size []uint32, off []int64) (int, error) {
	for c := range chapters {
		limit := chapters[c].Size
		var next int64 // end of the previous sample, in [0, limit]
		for i, end := cs[c], cs[c+1]; i < end; {
			if p >= len(b) {
				return 0, invalid("track %d: bad offset column", id)
			}
			tok := b[p]
			p++
			g := uint64(tok>>1) & 0x3f
			if tok >= 0x80 {
				var hi uint64
				if hi, p = uvarint(b, p); p < 0 || hi > math.MaxUint64>>6 {
					return 0, invalid("track %d: bad offset column", id)
				}
				g |= hi << 6
			}
			// next is in [0, limit], so these cannot overflow.
			gap := unzigzag(g)
			if gap > limit-next || gap < -next {
				return 0, invalid("track %d sample %d: offset out of range", id, i)
			}
			o := next + gap
			if int64(size[i]) > limit-o {
				return 0, invalid("track %d sample %d (bytes %d+%d) lies outside chapter %d (%d bytes)", id, i, o, size[i], c+1, limit)
			}
			off[i] = o
			next = o + int64(size[i])
			i++
			if tok&1 == 0 {
				continue
			}
			var k uint64
			if p < len(b) && b[p] < 0x80 {
				k = uint64(b[p])
				p++
			} else if k, p = uvarint(b, p); p < 0 {
				return 0, invalid("track %d: bad offset column", id)
			}
			if k >= uint64(end-i) {
				return 0, invalid("track %d: offset run past the end of chapter %d", id, c+1)
			}
			// Samples back to back: offsets are a running sum of the
			// sizes.
			run := off[i : i+int(k)+1]
			u, j := fillOffsets(run, size[i:], uint64(next), uint64(limit))
			if j >= 0 {
				return 0, invalid("track %d sample %d (bytes %d+%d) lies outside chapter %d (%d bytes)", id, i+j, run[j], size[i+j], c+1, limit)
			}
			next = int64(u)
			i += len(run)
		}
	}
	return p, nil
}

// fillOffsets sets off to the offsets of samples stored back to back from
// offset u, with the sizes (at least as many) of size. It returns the end
// of the last sample, and -1 or the index of the first sample that ends
// after limit (<= MaxInt64).
//
// It checks the end of every fourth sample only: ends grow, so if that one
// is in bounds, so are the three before it. u is at most limit before each
// group, so in uint64 u plus four sizes cannot overflow. Like
// fillDurations, it is kept out of line so that the compiler keeps its loop
// in registers.
//
//go:noinline
func fillOffsets(off []int64, size []uint32, u, limit uint64) (uint64, int) {
	size = size[:len(off)]
	j := 0
	for ; j+4 <= len(off); j += 4 {
		o, s := off[j:j+4:j+4], size[j:j+4:j+4]
		a := u + uint64(s[0])
		b := a + uint64(s[1])
		c := b + uint64(s[2])
		o[0], o[1], o[2], o[3] = int64(u), int64(a), int64(b), int64(c)
		if c+uint64(s[3]) > limit {
			break
		}
		u = c + uint64(s[3])
	}
	for ; j < len(off); j++ {
		off[j] = int64(u)
		u += uint64(size[j])
		if u > limit {
			return u, j
		}
	}
	return u, -1
}

// readDurations decodes the Dur column at b[p:] into dur, fills dts (one
// longer than dur) with their running sum as Samples.Derive does, and
// returns the position after the column. Unless fixedOK (version 1), the
// column must be in runs.
func readDurations(b []byte, p int, id uint32, fixedOK bool, dur []uint32, dts []int64) (int, error) {
	n := len(dur)
	runs, p := uvarint(b, p)
	if p < 0 || runs > uint64(n) || runs*2 > uint64(len(b)-p) {
		return 0, invalid("track %d: bad duration runs", id)
	}
	dts = dts[:n+1]
	if runs == 0 && n > 0 && fixedOK {
		c, p, err := locateFixed(b, p, n, 0, false)
		if err != nil {
			return 0, invalid("track %d: bad duration column", id)
		}
		if c.w == 0 {
			// All the same: what runs would hold in one.
			dts[n] = fillDurations(dur, dts, c.base, 0)
			return p, nil
		}
		readFixed(c.vals, c.w, dur, c.base)
		dts[n] = sumDurations(dur, dts)
		return p, nil
	}
	i := 0
	var t int64
	for range runs {
		var cnt, v uint64
		if p < len(b) && b[p] < 0x80 {
			cnt = uint64(b[p])
			p++
		} else if cnt, p = uvarint(b, p); p < 0 {
			return 0, invalid("track %d: bad duration run", id)
		}
		if p < len(b) && b[p] < 0x80 {
			v = uint64(b[p])
			p++
		} else if v, p = uvarint(b, p); p < 0 {
			return 0, invalid("track %d: bad duration run", id)
		}
		if cnt == 0 || cnt > uint64(n-i) || v > math.MaxUint32 {
			return 0, invalid("track %d: bad duration run", id)
		}
		t = fillDurations(dur[i:i+int(cnt)], dts[i:], uint32(v), t)
		i += int(cnt)
	}
	if i != n {
		return 0, invalid("track %d: durations cover %d of %d samples", id, i, n)
	}
	dts[n] = t
	return p, nil
}

// fillDurations sets the durations dur to v and the decode times dts (at
// least as long) to a running sum from t, and returns the time after them.
// It is a function of its own so that the compiler keeps its loop in
// registers, and computes four times at once to keep the additions out of
// each other's way.
//
//go:noinline
func fillDurations(dur []uint32, dts []int64, v uint32, t int64) int64 {
	dts = dts[:len(dur)]
	d := int64(v)
	j := 0
	for ; j+4 <= len(dur); j += 4 {
		o, u := dts[j:j+4:j+4], dur[j:j+4:j+4]
		o[0], o[1], o[2], o[3] = t, t+d, t+2*d, t+3*d
		u[0], u[1], u[2], u[3] = v, v, v, v
		t += 4 * d
	}
	for ; j < len(dur); j++ {
		dur[j] = v
		dts[j] = t
		t += d
	}
	return t
}

// sumDurations sets the decode times dts (at least as long as dur) to the
// running sum of the durations dur, and returns the time after them.
//
//go:noinline
func sumDurations(dur []uint32, dts []int64) int64 {
	dts = dts[:len(dur)]
	var t int64
	for j, d := range dur {
		dts[j] = t
		t += int64(d)
	}
	return t
}

// readSync decodes the Sync column at b[p:] into sync (all false) and
// returns the position after it.
func readSync(b []byte, p int, id uint32, sync []bool) (int, error) {
	n := uint64(len(sync))
	k, p := uvarint(b, p)
	if p < 0 || k > n || k > uint64(len(b)-p) {
		return 0, invalid("track %d: bad sync table", id)
	}
	pos := uint64(0)
	for j := range k {
		var delta uint64
		if p < len(b) && b[p] < 0x80 {
			delta = uint64(b[p])
			p++
		} else if delta, p = uvarint(b, p); p < 0 {
			return 0, invalid("track %d: bad sync table", id)
		}
		if (j > 0 && delta == 0) || delta >= n-pos {
			return 0, invalid("track %d: bad sync table", id)
		}
		pos += delta
		sync[pos] = true
	}
	return p, nil
}
