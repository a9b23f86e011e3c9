package media

import (
	"context"
	"fmt"
	"io"
	"math"
)

// Fragment is what one media fragment of a live stream (CMAF, DASH) holds,
// read with the init segment of its representation.
type Fragment struct {
	// Tracks are the tracks the init segment describes, in its order,
	// each with the samples of this fragment only. Track i has ID i+1;
	// References keep the init segment's track IDs. Offsets are relative
	// to the start of the fragment's bytes; each track has one chapter
	// (ChapterStart {0, n}, ChapterDesc {the sample entry used}) and its
	// DTS derived from 0.
	Tracks []*Track
	// BaseTime[i] is the baseMediaDecodeTime (tfdt) of Tracks[i]'s first
	// track fragment, in its timescale, or -1 when the fragment carries
	// no tfdt for it (or none that fits an int64).
	BaseTime []int64
}

// FragmentSamples reads one media fragment: frag is a moof and its mdat
// (possibly several pairs, possibly preceded by styp, sidx, prft or emsg
// boxes), init the init segment (ftyp and moov) of its representation. It
// reads box metadata only; sample payloads are not looked at.
//
// It parses the virtual file init+frag with the parser of Parse. Errors
// wrap ErrInvalid for malformed input (including samples that would lie
// outside frag, and an init segment with samples of its own) and
// ErrUnsupported for a codec that cannot be served.
func FragmentSamples(ctx context.Context, init, frag []byte) (*Fragment, error) {
	if len(init) == 0 || len(frag) == 0 {
		return nil, fmt.Errorf("media: fragment: empty init segment or fragment: %w", ErrInvalid)
	}
	// The init segment alone: it must end on a box boundary and hold a
	// moov but no fragment.
	ip := &fileParser{ctx: ctx, name: "init segment", r: bytesAt{init}, size: int64(len(init))}
	top, err := ip.scan()
	if err != nil {
		return nil, err
	}
	if _, ok := first(top, "moov"); !ok {
		return nil, ip.invalid("no moov box")
	}
	for _, b := range top {
		if b.typ == "moof" || b.typ == "mdat" {
			return nil, ip.invalid("%s box at offset %d: an init segment holds no media", b.typ, b.off)
		}
	}
	base := int64(len(init))
	size := base + int64(len(frag))
	p := &fileParser{
		ctx:    ctx,
		name:   "fragment",
		r:      concatAt{init, frag},
		size:   size,
		budget: int64(len(frag))/bytesPerSample + sampleSlack,
	}
	fi, err := p.parse()
	if err != nil {
		return nil, err
	}
	out := &Fragment{Tracks: make([]*Track, len(fi.tracks)), BaseTime: make([]int64, len(fi.tracks))}
	for i, ft := range fi.tracks {
		tr := trackHeader(ft)
		tr.ID = uint32(i + 1)
		tr.SampleEntries = [][]byte{ft.entry()}
		n := len(ft.size)
		s := &tr.Samples
		s.Offset = make([]int64, n)
		for k, o := range ft.off {
			if o < base {
				return nil, p.invalid("track %d sample %d (bytes %d+%d) lies in the init segment", ft.pos, k+1, o, ft.size[k])
			}
			s.Offset[k] = o - base
		}
		s.Size = ft.size
		s.Dur = ft.dur
		for _, c := range ft.cto {
			if c != 0 {
				s.CTO = ft.cto
				break
			}
		}
		for _, k := range ft.sync {
			if !k {
				s.Sync = ft.sync
				break
			}
		}
		s.ChapterStart = []int{0, n}
		s.ChapterDesc = []uint32{1}
		s.Derive()
		out.Tracks[i] = tr
		out.BaseTime[i] = -1
		if ft.hasBase && ft.base <= math.MaxInt64 {
			out.BaseTime[i] = int64(ft.base)
		}
	}
	return out, nil
}

// bytesAt is an io.ReaderAt over a byte slice.
type bytesAt struct{ b []byte }

// ReadAt implements io.ReaderAt.
func (r bytesAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(r.b)) {
		return 0, io.EOF
	}
	n := copy(p, r.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// concatAt is an io.ReaderAt over the concatenation of a and b.
type concatAt struct{ a, b []byte }

// ReadAt implements io.ReaderAt.
func (r concatAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, io.EOF
	}
	n := 0
	if la := int64(len(r.a)); off < la {
		n = copy(p, r.a[off:])
		off = la
	}
	if n < len(p) {
		m, err := bytesAt{r.b}.ReadAt(p[n:], off-int64(len(r.a)))
		n += m
		if n < len(p) {
			return n, err
		}
	}
	return n, nil
}
