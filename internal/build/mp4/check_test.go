package mp4build

import (
	"bytes"
	"encoding/binary"
	"math"
	"reflect"
	"sort"
	"testing"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/vfile"
)

// These checkers decode the generated boxes of a virtual file with mp4ff
// (an independent MP4 implementation) and verify, sample by sample, that
// every sample of the selection is described with the index's size,
// timing, sync flag and sample description, and that its bytes in the
// output map to the index's byte range of the right stored object. They
// never read stored objects, so they work on synthetic indexes of any size.

// generated returns bytes [off, off+n) of f, which must all be generated.
func generated(tb testing.TB, f *vfile.File, off, n int64) []byte {
	tb.Helper()
	out := make([]byte, 0, n)
	err := f.Slice(off, n, func(p vfile.Piece) error {
		if p.IsStored() {
			tb.Fatalf("bytes %d+%d of the output are stored, want generated", off, n)
		}
		out = append(out, p.Data...)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// header reads the box header at off: type, size, header length.
func header(tb testing.TB, f *vfile.File, off int64) (string, int64, int64) {
	tb.Helper()
	h := generated(tb, f, off, 8)
	size, typ := int64(binary.BigEndian.Uint32(h)), string(h[4:8])
	if size == 1 {
		return typ, int64(binary.BigEndian.Uint64(generated(tb, f, off+8, 8))), 16
	}
	return typ, size, 8
}

// decodeBox decodes the (generated) box at off with mp4ff.
func decodeBox(tb testing.TB, f *vfile.File, off, size int64) mp4.Box {
	tb.Helper()
	b, err := mp4.DecodeBox(uint64(off), bytes.NewReader(generated(tb, f, off, size)))
	if err != nil {
		tb.Fatalf("mp4ff: decoding box at %d: %v", off, err)
	}
	return b
}

// storedAt maps n bytes of the output at off to the stored range they come
// from.
func storedAt(tb testing.TB, f *vfile.File, off, n int64) (string, int64) {
	tb.Helper()
	var obj string
	start := int64(-1)
	next := int64(-1)
	err := f.Slice(off, n, func(p vfile.Piece) error {
		if !p.IsStored() {
			tb.Fatalf("sample bytes at %d+%d are generated", off, n)
		}
		if start < 0 {
			obj, start, next = p.Object, p.Off, p.Off+p.Len
			return nil
		}
		if p.Object != obj || p.Off != next {
			tb.Fatalf("sample bytes at %d+%d span discontiguous stored ranges", off, n)
		}
		next = p.Off + p.Len
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return obj, start
}

// checkProgressive verifies a progressive output of sel of ix: ftyp, moov,
// mdat in this order, and every track's sample tables.
func checkProgressive(tb testing.TB, ix *media.Index, sel Selection, f *vfile.File) *mp4.MoovBox {
	tb.Helper()
	p, err := newPlan(ix, ix.Tracks, sel)
	if err != nil {
		tb.Fatal(err)
	}
	var types []string
	var moov *mp4.MoovBox
	var mdatSize, mdatHdr int64
	for off := int64(0); off < f.Size; {
		typ, size, hdr := header(tb, f, off)
		types = append(types, typ)
		switch typ {
		case "moov":
			moov = decodeBox(tb, f, off, size).(*mp4.MoovBox)
		case "mdat":
			mdatSize, mdatHdr = size, hdr
		}
		if size < 8 || off+size > f.Size {
			tb.Fatalf("box %s at %d has size %d beyond the file (%d)", typ, off, size, f.Size)
		}
		off += size
	}
	if len(types) != 3 || types[0] != "ftyp" || types[1] != "moov" || types[2] != "mdat" {
		tb.Fatalf("top-level boxes %v, want [ftyp moov mdat]", types)
	}
	if wantLarge := mdatSize-8 > math.MaxUint32; wantLarge != (mdatHdr == 16) {
		tb.Errorf("mdat of %d bytes has a %d-byte header", mdatSize, mdatHdr)
	}
	if got, want := moov.Mvhd.Duration, uint64(p.duration); got != want {
		tb.Errorf("mvhd duration %d, want %d", got, want)
	}
	if len(moov.Traks) != len(p.tracks) {
		tb.Fatalf("%d traks, want %d", len(moov.Traks), len(p.tracks))
	}
	wide := f.Size > math.MaxUint32
	for k, trak := range moov.Traks {
		checkTrak(tb, p, f, &p.tracks[k], trak, wide)
	}
	return moov
}

// checkTrak verifies one track of a progressive output.
func checkTrak(tb testing.TB, p *plan, f *vfile.File, tp *trackPlan, trak *mp4.TrakBox, wide bool) {
	tb.Helper()
	t, s := tp.t, &tp.t.Samples
	if trak.Tkhd.TrackID != t.ID {
		tb.Fatalf("trak has ID %d, want %d", trak.Tkhd.TrackID, t.ID)
	}
	if got := trak.Mdia.Mdhd.Timescale; got != t.Timescale {
		tb.Errorf("track %d: timescale %d, want %d", t.ID, got, t.Timescale)
	}
	checkEdit(tb, tp, trak)
	checkTrackBoxes(tb, p, tp, trak)
	stbl := trak.Mdia.Minf.Stbl
	if got := len(stbl.Stsd.Children); got != len(t.SampleEntries) {
		tb.Errorf("track %d: %d sample entries, want %d", t.ID, got, len(t.SampleEntries))
	}
	n := int(stbl.Stsz.GetNrSamples())
	if n != tp.len() {
		tb.Fatalf("track %d: %d samples, want %d", t.ID, n, tp.len())
	}
	var offsets []uint64
	switch {
	case wide && stbl.Co64 != nil && stbl.Stco == nil:
		offsets = stbl.Co64.ChunkOffset
	case !wide && stbl.Stco != nil && stbl.Co64 == nil:
		for _, o := range stbl.Stco.ChunkOffset {
			offsets = append(offsets, uint64(o))
		}
	default:
		tb.Fatalf("track %d: stco %v co64 %v for a file of %d bytes", t.ID, stbl.Stco != nil, stbl.Co64 != nil, f.Size)
	}
	if (s.CTO != nil) != (stbl.Ctts != nil) || (s.Sync != nil) != (stbl.Stss != nil) {
		tb.Errorf("track %d: ctts %v stss %v, want %v %v", t.ID, stbl.Ctts != nil, stbl.Stss != nil, s.CTO != nil, s.Sync != nil)
	}

	// Sample positions, from stsc and the chunk offsets.
	seen := 0
	c := 0
	for chunk := 1; chunk <= len(offsets); chunk++ {
		ch := stbl.Stsc.GetChunk(uint32(chunk))
		desc := stscDesc(stbl.Stsc, chunk)
		pos := int64(offsets[chunk-1])
		for j := range int(ch.NrSamples) {
			nr := int(ch.StartSampleNr) + j
			if nr != seen+1 {
				tb.Fatalf("track %d chunk %d: sample %d follows %d", t.ID, chunk, nr, seen)
			}
			seen = nr
			if nr > n {
				tb.Fatalf("track %d chunk %d: sample %d of %d", t.ID, chunk, nr, n)
			}
			i := tp.first + nr - 1
			c = chapterOf(s, i, c)
			size := stbl.Stsz.GetSampleSize(nr)
			if size != s.Size[i] {
				tb.Fatalf("track %d sample %d: size %d, want %d", t.ID, i, size, s.Size[i])
			}
			if desc != s.ChapterDesc[c] {
				tb.Fatalf("track %d sample %d: description %d, want %d", t.ID, i, desc, s.ChapterDesc[c])
			}
			if size > 0 {
				obj, off := storedAt(tb, f, pos, int64(size))
				if obj != p.ix.Chapters[c].Object || off != s.Offset[i] {
					tb.Fatalf("track %d sample %d: output bytes at %d come from %s@%d, want %s@%d",
						t.ID, i, pos, obj, off, p.ix.Chapters[c].Object, s.Offset[i])
				}
			}
			pos += int64(size)
		}
	}
	if seen != n {
		tb.Fatalf("track %d: chunks hold %d samples, want %d", t.ID, seen, n)
	}

	// Timing and sync samples.
	i := tp.first
	for e, cnt := range stbl.Stts.SampleCount {
		for range cnt {
			if d := stbl.Stts.SampleTimeDelta[e]; d != s.Dur[i] {
				tb.Fatalf("track %d sample %d: duration %d, want %d", t.ID, i, d, s.Dur[i])
			}
			i++
		}
	}
	if i != tp.end {
		tb.Fatalf("track %d: stts covers %d samples, want %d", t.ID, i-tp.first, tp.len())
	}
	if stbl.Ctts != nil {
		for nr := 1; nr <= n; nr++ {
			if got, want := stbl.Ctts.GetCompositionTimeOffset(uint32(nr)), s.CTO[tp.first+nr-1]; got != want {
				tb.Fatalf("track %d sample %d: composition offset %d, want %d", t.ID, tp.first+nr-1, got, want)
			}
		}
	}
	if stbl.Stss != nil {
		for nr := 1; nr <= n; nr++ {
			if got, want := stbl.Stss.IsSyncSample(uint32(nr)), s.Sync[tp.first+nr-1]; got != want {
				tb.Fatalf("track %d sample %d: sync %v, want %v", t.ID, tp.first+nr-1, got, want)
			}
		}
	}
}

// checkTrackBoxes verifies a track's handler, media information header and
// references (restricted to the tracks of the output).
func checkTrackBoxes(tb testing.TB, p *plan, tp *trackPlan, trak *mp4.TrakBox) {
	tb.Helper()
	t := tp.t
	if got := trak.Mdia.Hdlr.HandlerType; got != handler(t) {
		tb.Errorf("track %d: handler %q, want %q", t.ID, got, handler(t))
	}
	wantHeader := map[string]string{"vide": "vmhd", "soun": "smhd", "subt": "sthd", "tmcd": "gmhd"}[handler(t)]
	if wantHeader == "" {
		wantHeader = "nmhd"
		if t.Format == "gpmd" {
			wantHeader = "gmhd"
		}
	}
	if got := trak.Mdia.Minf.Children[0].Type(); got != wantHeader {
		tb.Errorf("track %d (%s): media header %s, want %s", t.ID, handler(t), got, wantHeader)
	}
	got := map[string][]uint32{}
	for _, c := range trak.Children {
		if tref, ok := c.(*mp4.TrefBox); ok {
			for _, r := range tref.Children {
				// mp4ff knows only some reference types: re-encode
				// and read the IDs.
				var b bytes.Buffer
				if err := r.Encode(&b); err != nil {
					tb.Fatal(err)
				}
				for k := 8; k+4 <= b.Len(); k += 4 {
					got[r.Type()] = append(got[r.Type()], binary.BigEndian.Uint32(b.Bytes()[k:]))
				}
			}
		}
	}
	want := map[string][]uint32{}
	for typ, ids := range t.References {
		for _, id := range ids {
			if p.hasTrack(id) {
				want[typ] = append(want[typ], id)
			}
		}
	}
	if !reflect.DeepEqual(got, want) {
		tb.Errorf("track %d: references %v, want %v", t.ID, got, want)
	}
}

// stscDesc is the sample description index of a chunk (mp4ff's
// GetSampleDescriptionID indexes entries, not chunks).
func stscDesc(stsc *mp4.StscBox, chunk int) uint32 {
	if stsc.SampleDescriptionID == nil {
		return stsc.GetSampleDescriptionID(1)
	}
	e := sort.Search(len(stsc.Entries), func(i int) bool { return stsc.Entries[i].FirstChunk > uint32(chunk) }) - 1
	return stsc.SampleDescriptionID[e]
}

// checkEdit verifies a track's edit list against the plan.
func checkEdit(tb testing.TB, tp *trackPlan, trak *mp4.TrakBox) {
	tb.Helper()
	id := tp.t.ID
	if !tp.edit {
		if trak.Edts != nil {
			tb.Errorf("track %d: unexpected edit list", id)
		}
		return
	}
	if trak.Edts == nil || len(trak.Edts.Elst) != 1 || len(trak.Edts.Elst[0].Entries) != 1 {
		tb.Fatalf("track %d: want an edit list of one entry", id)
	}
	e := trak.Edts.Elst[0].Entries[0]
	if e.MediaTime != tp.mediaTime || e.SegmentDuration != uint64(tp.dur) || e.MediaRateInteger != 1 {
		tb.Errorf("track %d: edit %+v, want media time %d duration %d", id, e, tp.mediaTime, tp.dur)
	}
}

// checkFragmented verifies a fragmented output of sel of ix: ftyp, moov
// with mvex, then moof+mdat pairs with sequence numbers 1..n whose trafs
// describe every selected sample exactly once, in order, with the right
// timing, flags and stored bytes.
func checkFragmented(tb testing.TB, ix *media.Index, sel Selection, f *vfile.File) (fragments int) {
	tb.Helper()
	p, err := newPlan(ix, ix.Tracks, sel)
	if err != nil {
		tb.Fatal(err)
	}
	next := make([]int, len(p.tracks)) // next expected sample per track
	for k := range p.tracks {
		next[k] = p.tracks[k].first
	}
	var types []string
	var moov *mp4.MoovBox
	var moof *mp4.MoofBox
	var moofOff int64
	for off := int64(0); off < f.Size; {
		typ, size, hdr := header(tb, f, off)
		if size < 8 || off+size > f.Size {
			tb.Fatalf("box %s at %d has size %d beyond the file (%d)", typ, off, size, f.Size)
		}
		types = append(types, typ)
		switch typ {
		case "moov":
			moov = decodeBox(tb, f, off, size).(*mp4.MoovBox)
			if moov.Mvex == nil || len(moov.Mvex.Trexs) != len(p.tracks) {
				tb.Fatal("moov without mvex/trex for every track")
			}
			for k, trak := range moov.Traks {
				checkEdit(tb, &p.tracks[k], trak)
				checkTrackBoxes(tb, p, &p.tracks[k], trak)
			}
		case "moof":
			moof, moofOff = decodeBox(tb, f, off, size).(*mp4.MoofBox), off
			fragments++
			if got := moof.Mfhd.SequenceNumber; got != uint32(fragments) {
				tb.Fatalf("moof %d has sequence number %d", fragments, got)
			}
		case "mdat":
			if moof == nil {
				tb.Fatal("mdat without moof")
			}
			checkMoof(tb, p, f, moof, moofOff, off+hdr, off+size, next)
			moof = nil
		}
		off += size
	}
	for i, typ := range types {
		want := "moof"
		switch {
		case i == 0:
			want = "ftyp"
		case i == 1:
			want = "moov"
		case i%2 == 1:
			want = "mdat"
		}
		if typ != want || len(types)%2 != 0 {
			tb.Fatalf("top-level boxes %v, want ftyp moov (moof mdat)*", types)
		}
	}
	for k, tp := range p.tracks {
		if next[k] != tp.end {
			tb.Errorf("track %d: fragments hold samples up to %d, want %d", tp.t.ID, next[k], tp.end)
		}
	}
	return fragments
}

// checkMoof verifies the samples of one fragment whose mdat payload is
// [payload, end).
func checkMoof(tb testing.TB, p *plan, f *vfile.File, moof *mp4.MoofBox, moofOff, payload, end int64, next []int) {
	tb.Helper()
	for _, traf := range moof.Trafs {
		tfhd := traf.Tfhd
		k := int(tfhd.TrackID) - 1
		if k < 0 || k >= len(p.tracks) || !tfhd.DefaultBaseIfMoof() || traf.Tfdt == nil || len(traf.Truns) != 1 {
			tb.Fatalf("traf of track %d: want default-base-is-moof, tfdt and one trun", tfhd.TrackID)
		}
		tp := &p.tracks[k]
		s := &tp.t.Samples
		i := next[k]
		if got, want := traf.Tfdt.BaseMediaDecodeTime(), uint64(s.DTS[i]-tp.base); got != want {
			tb.Fatalf("track %d sample %d: tfdt %d, want %d", tp.t.ID, i, got, want)
		}
		desc := uint32(1)
		if tfhd.HasSampleDescriptionIndex() {
			desc = tfhd.SampleDescriptionIndex
		}
		trun := traf.Trun
		first, hasFirst := trun.FirstSampleFlags()
		trun.AddSampleDefaultValues(tfhd, nil)
		pos := moofOff + int64(trun.DataOffset)
		c := 0
		for j, smp := range trun.Samples {
			if i >= tp.end {
				tb.Fatalf("track %d: fragments hold more than %d samples", tp.t.ID, tp.len())
			}
			c = chapterOf(s, i, c)
			flags := smp.Flags
			if j == 0 && hasFirst {
				flags = first
			}
			isSync := flags&0x00010000 == 0
			switch {
			case smp.Size != s.Size[i] || smp.Dur != s.Dur[i]:
				tb.Fatalf("track %d sample %d: size %d dur %d, want %d %d", tp.t.ID, i, smp.Size, smp.Dur, s.Size[i], s.Dur[i])
			case smp.CompositionTimeOffset != s.CompOffset(i):
				tb.Fatalf("track %d sample %d: composition offset %d, want %d", tp.t.ID, i, smp.CompositionTimeOffset, s.CompOffset(i))
			case isSync != s.IsSync(i):
				tb.Fatalf("track %d sample %d: sync %v, want %v", tp.t.ID, i, isSync, s.IsSync(i))
			case desc != s.ChapterDesc[c]:
				tb.Fatalf("track %d sample %d: description %d, want %d", tp.t.ID, i, desc, s.ChapterDesc[c])
			case pos < payload || pos+int64(smp.Size) > end:
				tb.Fatalf("track %d sample %d: bytes %d+%d outside mdat payload [%d, %d)", tp.t.ID, i, pos, smp.Size, payload, end)
			}
			if smp.Size > 0 {
				obj, off := storedAt(tb, f, pos, int64(smp.Size))
				if obj != p.ix.Chapters[c].Object || off != s.Offset[i] {
					tb.Fatalf("track %d sample %d: bytes come from %s@%d, want %s@%d", tp.t.ID, i, obj, off, p.ix.Chapters[c].Object, s.Offset[i])
				}
			}
			pos += int64(smp.Size)
			i++
		}
		next[k] = i
	}
}
