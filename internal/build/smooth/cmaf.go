package smooth

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/jitstream/jitstream/internal/media"
)

// ErrFragmentLayout is returned (wrapped) for a CMAF fragment that cannot
// be served as a Smooth Streaming fragment: not one moof with one traf
// followed by one mdat holding its samples.
var ErrFragmentLayout = errors.New("smooth streaming: unsupported fragment layout")

// maxCMAFMoof bounds the moof of a CMAF fragment.
const maxCMAFMoof = 16 << 20

// Lookahead is a fragment that follows another, for the tfrf box of a live
// fragment (MS-SSTR 2.2.4.5): its time and duration in the StreamIndex's
// TimeScale.
type Lookahead struct{ T, D uint64 }

// CMAFLayout is where the boxes of a CMAF fragment (a moof and its mdat,
// possibly after styp, sidx, prft or emsg boxes) lie.
type CMAFLayout struct {
	MoofOff, MoofSize int64
	MdatOff, MdatHdr  int64 // the mdat box and the size of its header
	Size              int64 // the fragment's size: the mdat ends it
}

// ScanCMAF finds the moof and the mdat of the CMAF fragment b: the first
// moof, and the mdat right after it, which must be the last box.
func ScanCMAF(b []byte) (CMAFLayout, error) {
	l := CMAFLayout{MoofOff: -1, Size: int64(len(b))}
	for pos := int64(0); pos < int64(len(b)); {
		if pos+8 > int64(len(b)) {
			return l, fmt.Errorf("%w: box header at %d", ErrFragmentLayout, pos)
		}
		size, hl := int64(binary.BigEndian.Uint32(b[pos:])), int64(8)
		typ := string(b[pos+4 : pos+8])
		switch size {
		case 1:
			if pos+16 > int64(len(b)) {
				return l, fmt.Errorf("%w: box header at %d", ErrFragmentLayout, pos)
			}
			size, hl = int64(binary.BigEndian.Uint64(b[pos+8:])), 16
		case 0:
			size = int64(len(b)) - pos
		}
		if size < hl || pos+size > int64(len(b)) {
			return l, fmt.Errorf("%w: %s box of %d bytes at %d in %d", ErrFragmentLayout, typ, size, pos, len(b))
		}
		switch typ {
		case "moof":
			if l.MoofOff >= 0 {
				return l, fmt.Errorf("%w: two moof boxes before an mdat", ErrFragmentLayout)
			}
			if size > maxCMAFMoof {
				return l, fmt.Errorf("%w: moof of %d bytes", ErrFragmentLayout, size)
			}
			l.MoofOff, l.MoofSize = pos, size
		case "mdat":
			if l.MoofOff < 0 {
				return l, fmt.Errorf("%w: mdat before a moof", ErrFragmentLayout)
			}
			if pos+size != int64(len(b)) {
				return l, fmt.Errorf("%w: more boxes after the first mdat (several moof/mdat pairs?)", ErrFragmentLayout)
			}
			l.MdatOff, l.MdatHdr = pos, hl
			return l, nil
		}
		pos += size
	}
	return l, fmt.Errorf("%w: no mdat", ErrFragmentLayout)
}

// RewriteCMAF returns the moof of a Smooth Streaming fragment made from the
// moof of a CMAF fragment (moof: its bytes; l: the fragment's layout), for
// a fragment whose mdat follows it unchanged (the fragment's bytes from
// l.MdatOff on): tfdt set to t; a tfxd box with t and d; with lookahead
// not nil (a live fragment), a tfrf box listing it (possibly empty); the
// sample composition offsets less presOffset (see PresentationOffset;
// signed, version 1 trun, when needed); trun data offsets moved to the new
// moof. Any tfxd or tfrf box the fragment had is dropped.
func RewriteCMAF(moof []byte, l CMAFLayout, t, d uint64, presOffset int64, lookahead []Lookahead) ([]byte, error) {
	box, err := mp4.DecodeBox(uint64(l.MoofOff), bytes.NewReader(moof))
	if err != nil {
		return nil, fmt.Errorf("%w: decode the moof: %w", ErrFragmentLayout, err)
	}
	mf, ok := box.(*mp4.MoofBox)
	if !ok || len(mf.Trafs) != 1 || mf.Traf.Tfhd == nil || len(mf.Traf.Truns) == 0 {
		return nil, fmt.Errorf("%w: want a moof with one traf", ErrFragmentLayout)
	}
	traf := mf.Traf
	// The absolute start of each run's data in the fragment.
	base := l.MoofOff
	if traf.Tfhd.HasBaseDataOffset() {
		base = int64(traf.Tfhd.BaseDataOffset)
	}
	starts := make([]int64, len(traf.Truns))
	for k, tr := range traf.Truns {
		if !tr.HasDataOffset() {
			return nil, fmt.Errorf("%w: trun without data offset", ErrFragmentLayout)
		}
		starts[k] = base + int64(tr.DataOffset)
		if starts[k] < l.MdatOff+l.MdatHdr || starts[k] > l.Size {
			return nil, fmt.Errorf("%w: trun data at %d, outside the mdat at %d", ErrFragmentLayout, starts[k], l.MdatOff)
		}
		if presOffset != 0 {
			if err := shiftComposition(tr, presOffset); err != nil {
				return nil, err
			}
		}
	}
	traf.Tfhd.Flags = traf.Tfhd.Flags&^0x000001 | tfhdDefaultBaseIsMoof // no base_data_offset
	if traf.Tfdt == nil {
		if err := traf.AddChild(mp4.CreateTfdt(0)); err != nil {
			return nil, fmt.Errorf("add a tfdt: %w", err)
		}
	}
	traf.Tfdt.SetBaseMediaDecodeTime(t)
	traf.Children = slices.DeleteFunc(traf.Children, func(c mp4.Box) bool {
		u, ok := c.(*mp4.UUIDBox)
		return ok && (u.SubType() == "tfxd" || u.SubType() == "tfrf")
	})
	tfxd := mp4.NewTfxdBox(t, d)
	tfxd.Tfxd.Version = 1
	add := []mp4.Box{tfxd}
	if lookahead != nil {
		times, durs := make([]uint64, len(lookahead)), make([]uint64, len(lookahead))
		for k, n := range lookahead {
			times[k], durs[k] = n.T, n.D
		}
		tfrf := mp4.NewTfrfBox(byte(len(lookahead)), times, durs)
		tfrf.Tfrf.Version = 1
		add = append(add, tfrf)
	}
	for _, bx := range add {
		if err := traf.AddChild(bx); err != nil {
			return nil, fmt.Errorf("add %s: %w", bx.Type(), err)
		}
	}
	size := int64(mf.Size())
	for k, tr := range traf.Truns {
		off := size + starts[k] - l.MdatOff
		if off > 1<<31-1 {
			return nil, fmt.Errorf("%w: data offset %d", ErrFragmentLayout, off)
		}
		tr.DataOffset = int32(off)
	}
	var out bytes.Buffer
	out.Grow(int(size))
	if err := mf.Encode(&out); err != nil {
		return nil, fmt.Errorf("encode the moof: %w", err)
	}
	if int64(out.Len()) != size {
		return nil, fmt.Errorf("internal error: moof of %d bytes, computed %d", out.Len(), size)
	}
	return out.Bytes(), nil
}

// shiftComposition subtracts off from the composition offsets of the
// samples of tr (written per sample, signed: version 1).
func shiftComposition(tr *mp4.TrunBox, off int64) error {
	tr.Flags |= trunCTO // offsets of zero when the trun had none
	for i := range tr.Samples {
		c := int64(tr.Samples[i].CompositionTimeOffset) - off
		if c < -1<<31 || c > 1<<31-1 {
			return fmt.Errorf("%w: composition offset %d", ErrFragmentLayout, c)
		}
		tr.Samples[i].CompositionTimeOffset = int32(c)
	}
	tr.Version = 1
	return nil
}

// PresentationOffset is the offset that Fragment subtracts from track t's
// composition offsets (see the package documentation): what a fragment
// made for t elsewhere (RewriteCMAF) must subtract too.
func PresentationOffset(t *media.Track) int64 { return presentationOffset(t) }
