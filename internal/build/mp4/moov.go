package mp4build

import (
	"math"
	"slices"
	"time"

	"github.com/jitstream/jitstream/internal/media"
)

// This file writes the boxes of moov shared by the progressive and the
// fragmented outputs, one function per box. Sample tables are in stbl.go.

// unityMatrix is the identity transformation of mvhd and tkhd.
func unityMatrix() [9]int32 {
	return [9]int32{0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000}
}

// mp4Epoch converts t to seconds since 1904-01-01 UTC; 0 when unknown.
func mp4Epoch(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	s := t.Unix() + 2082844800
	if s < 0 {
		return 0
	}
	return uint64(s)
}

// writeFtyp writes an ftyp box.
func writeFtyp(w *writer, major string, minor uint32, compatible ...string) {
	pos := w.box("ftyp")
	w.fourcc(major)
	w.u32(minor)
	for _, c := range compatible {
		w.fourcc(c)
	}
	w.end(pos)
}

// startHeader starts a movie or media header box (typ "mvhd" or "mdhd")
// with its times: creation and modification time (the recording time of
// the index), timescale and duration, in version 1 (64-bit fields) when a
// value needs it. It returns the box position for w.end.
func (p *plan) startHeader(w *writer, typ string, timescale uint32, duration int64) int {
	created := mp4Epoch(p.ix.Created)
	v1 := duration > math.MaxUint32 || created > math.MaxUint32
	pos := w.fullBox(typ, b2u8(v1), 0)
	if v1 {
		w.u64(created)
		w.u64(created)
		w.u32(timescale)
		w.u64(uint64(duration))
	} else {
		w.u32(uint32(created))
		w.u32(uint32(created))
		w.u32(timescale)
		w.u32(uint32(duration))
	}
	return pos
}

// writeMvhd writes the movie header.
func (p *plan) writeMvhd(w *writer, duration int64) {
	pos := p.startHeader(w, "mvhd", movieTimescale, duration)
	w.u32(0x00010000) // rate 1.0
	w.u16(0x0100)     // volume 1.0
	w.zeros(2 + 8)    // reserved
	for _, m := range unityMatrix() {
		w.i32(m)
	}
	w.zeros(6 * 4) // pre_defined
	var next uint32
	for _, tp := range p.tracks {
		next = max(next, tp.t.ID)
	}
	w.u32(next + 1)
	w.end(pos)
}

// writeTrak writes a track box; stbl writes the sample table's content.
func (p *plan) writeTrak(w *writer, tp *trackPlan, stbl func(w *writer)) {
	pos := w.box("trak")
	p.writeTkhd(w, tp)
	p.writeTref(w, tp.t)
	if tp.edit {
		writeEdts(w, tp.dur, tp.mediaTime)
	}
	p.writeMdia(w, tp, stbl)
	w.end(pos)
}

// writeTkhd writes the track header, carrying the original's flags,
// matrix, size, volume and alternate group. Zero flags and an all-zero
// matrix are taken as unknown and replaced by enabled+in-movie and unity.
func (p *plan) writeTkhd(w *writer, tp *trackPlan) {
	t := tp.t
	created := mp4Epoch(p.ix.Created)
	v1 := tp.dur > math.MaxUint32 || created > math.MaxUint32
	flags := t.Flags
	if flags == 0 {
		flags = 3 // track_enabled | track_in_movie
	}
	pos := w.fullBox("tkhd", b2u8(v1), flags)
	if v1 {
		w.u64(created)
		w.u64(created)
		w.u32(t.ID)
		w.u32(0)
		w.u64(uint64(tp.dur))
	} else {
		w.u32(uint32(created))
		w.u32(uint32(created))
		w.u32(t.ID)
		w.u32(0)
		w.u32(uint32(tp.dur))
	}
	w.zeros(8) // reserved
	w.i16(0)   // layer
	w.i16(t.AlternateGroup)
	w.i16(t.Volume)
	w.u16(0) // reserved
	m := t.Matrix
	if m == ([9]int32{}) {
		m = unityMatrix()
	}
	for _, v := range m {
		w.i32(v)
	}
	width, height := t.TkhdWidth, t.TkhdHeight
	if width == 0 && height == 0 && t.Kind == media.KindVideo {
		width, height = t.Width<<16, t.Height<<16
	}
	w.u32(width)
	w.u32(height)
	w.end(pos)
}

// writeTref writes the track references to tracks present in the output,
// reference types in sorted order; nothing when there are none.
func (p *plan) writeTref(w *writer, t *media.Track) {
	if len(t.References) == 0 {
		return
	}
	types := make([]string, 0, len(t.References))
	for typ := range t.References {
		types = append(types, typ)
	}
	slices.Sort(types)
	pos := -1
	for _, typ := range types {
		var ids []uint32
		for _, id := range t.References[typ] {
			if p.hasTrack(id) {
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			continue
		}
		if pos < 0 {
			pos = w.box("tref")
		}
		tpos := w.box(typ)
		for _, id := range ids {
			w.u32(id)
		}
		w.end(tpos)
	}
	if pos >= 0 {
		w.end(pos)
	}
}

func (p *plan) hasTrack(id uint32) bool {
	for _, tp := range p.tracks {
		if tp.t.ID == id {
			return true
		}
	}
	return false
}

// writeEdts writes an edit list of one edit: dur (movie timescale) of the
// media from mediaTime (track timescale) on, at normal rate.
func writeEdts(w *writer, dur, mediaTime int64) {
	pos := w.box("edts")
	v1 := dur > math.MaxUint32 || mediaTime > math.MaxInt32
	epos := w.fullBox("elst", b2u8(v1), 0)
	w.u32(1)
	if v1 {
		w.u64(uint64(dur))
		w.u64(uint64(mediaTime))
	} else {
		w.u32(uint32(dur))
		w.u32(uint32(mediaTime))
	}
	w.u32(0x00010000) // media_rate 1.0
	w.end(epos)
	w.end(pos)
}

// writeMdia writes the media box.
func (p *plan) writeMdia(w *writer, tp *trackPlan, stbl func(w *writer)) {
	pos := w.box("mdia")
	p.writeMdhd(w, tp)
	writeHdlr(w, handler(tp.t), tp.t.Name)
	mpos := w.box("minf")
	writeMediaHeader(w, tp.t)
	writeDinf(w)
	spos := w.box("stbl")
	writeStsd(w, tp.t)
	stbl(w)
	w.end(spos)
	w.end(mpos)
	w.end(pos)
}

// writeMdhd writes the media header: the media duration of the selected
// samples in the track timescale (0 in fragmented files, whose samples are
// in the fragments), and the language.
func (p *plan) writeMdhd(w *writer, tp *trackPlan) {
	t := tp.t
	var dur int64
	if tp.len() > 0 && !p.fragmented {
		dur = t.Samples.DTS[tp.end] - t.Samples.DTS[tp.first]
	}
	pos := p.startHeader(w, "mdhd", t.Timescale, dur)
	w.u16(packLanguage(t.Language))
	w.u16(0) // pre_defined
	w.end(pos)
}

// packLanguage packs an ISO 639-2/T code as three 5-bit letters; anything
// else becomes "und".
func packLanguage(lang string) uint16 {
	if len(lang) != 3 {
		lang = "und"
	}
	var v uint16
	for i := range 3 {
		c := lang[i]
		if c < 'a' || c > 'z' {
			return packLanguage("und")
		}
		v = v<<5 | uint16(c-0x60)
	}
	return v
}

// handler is the track's hdlr handler type, derived from its kind when the
// index does not have it.
func handler(t *media.Track) string {
	if t.Handler != "" {
		return t.Handler
	}
	switch t.Kind {
	case media.KindVideo:
		return "vide"
	case media.KindAudio:
		return "soun"
	case media.KindSubtitle:
		return "sbtl"
	case media.KindTimecode:
		return "tmcd"
	case media.KindMetadata:
		return "meta"
	}
	return "data"
}

// writeHdlr writes a handler reference box with a null-terminated name.
func writeHdlr(w *writer, typ, name string) {
	pos := w.fullBox("hdlr", 0, 0)
	w.u32(0) // pre_defined
	w.fourcc(typ)
	w.zeros(12) // reserved
	w.b = append(w.b, name...)
	w.u8(0)
	w.end(pos)
}

// writeMediaHeader writes the media information header that fits the
// track's handler: vmhd (video), smhd (audio), sthd (subt), gmhd with a
// tmcd/tcmi box (QuickTime timecode), gmhd (GoPro gpmd metadata, as in
// GoPro's files), else nmhd.
func writeMediaHeader(w *writer, t *media.Track) {
	switch h := handler(t); {
	case h == "vide":
		pos := w.fullBox("vmhd", 0, 1)
		w.zeros(8) // graphicsmode, opcolor
		w.end(pos)
	case h == "soun":
		pos := w.fullBox("smhd", 0, 0)
		w.zeros(4) // balance, reserved
		w.end(pos)
	case h == "subt":
		w.end(w.fullBox("sthd", 0, 0))
	case h == "tmcd" || t.Format == "gpmd":
		pos := w.box("gmhd")
		gpos := w.fullBox("gmin", 0, 0)
		w.u16(0x40) // graphics mode: dither copy
		w.u16(0x8000)
		w.u16(0x8000)
		w.u16(0x8000) // opcolor
		w.zeros(4)    // balance, reserved
		w.end(gpos)
		if h == "tmcd" {
			writeTmcdInfo(w)
		}
		w.end(pos)
	default:
		w.end(w.fullBox("nmhd", 0, 0))
	}
}

// writeTmcdInfo writes the QuickTime timecode media information (tmcd with
// tcmi: how to display the timecode), with the values ffmpeg writes.
func writeTmcdInfo(w *writer) {
	const font = "Lucida Grande"
	pos := w.box("tmcd")
	ipos := w.fullBox("tcmi", 0, 0)
	w.u16(0)  // text font
	w.u16(0)  // text face
	w.u16(12) // text size
	w.u16(0)  // reserved
	w.zeros(6)
	w.u16(0xffff)
	w.u16(0xffff)
	w.u16(0xffff) // background color
	w.u8(uint8(len(font)))
	w.b = append(w.b, font...)
	w.end(ipos)
	w.end(pos)
}

// writeDinf writes a data reference to "this file".
func writeDinf(w *writer) {
	pos := w.box("dinf")
	dpos := w.fullBox("dref", 0, 0)
	w.u32(1)
	w.end(w.fullBox("url ", 0, 1)) // self-contained
	w.end(dpos)
	w.end(pos)
}

// writeStsd writes all of the track's sample entries, verbatim.
func writeStsd(w *writer, t *media.Track) {
	pos := w.fullBox("stsd", 0, 0)
	w.u32(uint32(len(t.SampleEntries)))
	for _, e := range t.SampleEntries {
		w.bytes(e)
	}
	w.end(pos)
}

// smallBoxesSize bounds the size of a trak without its sample tables
// (stts...co64) and mvex entry: used to size buffers and to decide on co64
// before writing.
func smallBoxesSize(t *media.Track) int {
	n := 1024 + len(t.Name)
	for _, e := range t.SampleEntries {
		n += len(e)
	}
	for typ, ids := range t.References {
		n += 8 + len(typ) + 4*len(ids)
	}
	return n
}

func b2u8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}
