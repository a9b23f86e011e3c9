package media

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/Eyevinn/mp4ff/mp4"
)

// A tiny MP4 writer for synthetic test inputs, independent of the parser.

func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

func u32(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// bx makes a box of type typ whose payload is the concatenation of parts.
func bx(typ string, parts ...[]byte) []byte {
	n := 8
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 0, n)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	b = append(b, typ...)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// full makes a full box (version and flags first).
func full(typ string, version byte, flags uint32, parts ...[]byte) []byte {
	return bx(typ, append([][]byte{u32(uint32(version)<<24 | flags)}, parts...)...)
}

// avc1Entry is a visual sample entry with a (fake) avcC of High profile
// level 3.1.
func avc1Entry(w, h uint16) []byte {
	f := make([]byte, 78)
	f[7] = 1 // data_reference_index
	binary.BigEndian.PutUint16(f[24:], w)
	binary.BigEndian.PutUint16(f[26:], h)
	binary.BigEndian.PutUint32(f[28:], 0x00480000)
	binary.BigEndian.PutUint32(f[32:], 0x00480000)
	binary.BigEndian.PutUint16(f[40:], 1)
	binary.BigEndian.PutUint16(f[74:], 0x18)
	binary.BigEndian.PutUint16(f[76:], 0xffff)
	avcC := bx("avcC", []byte{1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1f, 1, 0, 2, 0x68, 0xee})
	return bx("avc1", f, avcC)
}

// visualEntry is a visual sample entry of the given format without a
// codec configuration.
func visualEntry(format string) []byte {
	e := avc1Entry(64, 64)
	return bx(format, e[8:8+78])
}

// mp4aEntry is an AAC-LC 48 kHz stereo audio sample entry.
func mp4aEntry(tb testing.TB) []byte {
	f := make([]byte, 28)
	f[7] = 1
	binary.BigEndian.PutUint16(f[16:], 2)
	binary.BigEndian.PutUint16(f[18:], 16)
	binary.BigEndian.PutUint32(f[24:], 48000<<16)
	var esds bytes.Buffer
	if err := mp4.CreateEsdsBox([]byte{0x11, 0x90}).Encode(&esds); err != nil {
		tb.Fatal(err)
	}
	return bx("mp4a", f, esds.Bytes())
}

// plainEntry is a SampleEntry without format-specific fields (gpmd, tmcd...).
func plainEntry(format string) []byte { return bx(format, []byte{0, 0, 0, 0, 0, 0, 0, 1}) }

type synthTrack struct {
	handler   string
	timescale uint32
	entries   [][]byte // stsd entries; the samples use entry 1
	sizes     []uint32
	durs      []uint32
	cto       []int32             // nil: no ctts
	sync      []uint32            // 1-based; nil: no stss
	elst      []int64             // edit media times; nil: no edts
	tref      map[string][]uint32 // track references
	matrix    [9]int32
	trex      []uint32 // mvex/trex defaults: sdi, duration, size, flags; nil: none
	uniform   uint32   // if not 0, stsz has this uniform size instead of a table
}

func tkhd(id uint32, m [9]int32, w, h uint32) []byte {
	var p []byte
	p = append(p, u32(0, 0, id, 0, 0)...) // creation, modification, id, reserved, duration
	p = append(p, make([]byte, 8)...)
	p = append(p, u16(0)...)     // layer
	p = append(p, u16(1)...)     // alternate group
	p = append(p, u16(0x100)...) // volume
	p = append(p, u16(0)...)
	for _, v := range m {
		p = append(p, u32(uint32(v))...)
	}
	p = append(p, u32(w<<16, h<<16)...)
	return full("tkhd", 0, 3, p)
}

func mvhd(created uint32) []byte {
	p := u32(created, created, 1000, 0, 0x10000)
	p = append(p, u16(0x100)...)
	p = append(p, make([]byte, 10+36+24)...)
	p = append(p, u32(100)...)
	return full("mvhd", 0, 0, p)
}

// trak builds a trak box with the sample tables of t, whose samples are in
// chunks at the given offsets with the given number of samples each.
func (t synthTrack) trak(id uint32, chunkOffsets []uint64, chunkSamples []int) []byte {
	var stsd []byte
	stsd = append(stsd, u32(uint32(len(t.entries)))...)
	for _, e := range t.entries {
		stsd = append(stsd, e...)
	}
	var stts []byte
	var runs [][2]uint32
	for _, d := range t.durs {
		if len(runs) > 0 && runs[len(runs)-1][1] == d {
			runs[len(runs)-1][0]++
		} else {
			runs = append(runs, [2]uint32{1, d})
		}
	}
	stts = append(stts, u32(uint32(len(runs)))...)
	for _, r := range runs {
		stts = append(stts, u32(r[0], r[1])...)
	}
	var stsc []byte
	var stscN uint32
	for i, n := range chunkSamples {
		if i == 0 || n != chunkSamples[i-1] {
			stsc = append(stsc, u32(uint32(i+1), uint32(n), 1)...)
			stscN++
		}
	}
	stsc = append(u32(stscN), stsc...)
	stsz := u32(t.uniform, uint32(len(t.sizes)))
	if t.uniform == 0 {
		for _, s := range t.sizes {
			stsz = append(stsz, u32(s)...)
		}
	}
	var co []byte
	large := false
	for _, o := range chunkOffsets {
		if o > 0xffffffff {
			large = true
		}
	}
	if large {
		co = u32(uint32(len(chunkOffsets)))
		for _, o := range chunkOffsets {
			co = append(co, u64(o)...)
		}
		co = full("co64", 0, 0, co)
	} else {
		co = u32(uint32(len(chunkOffsets)))
		for _, o := range chunkOffsets {
			co = append(co, u32(uint32(o))...)
		}
		co = full("stco", 0, 0, co)
	}
	stblParts := [][]byte{
		full("stsd", 0, 0, stsd),
		full("stts", 0, 0, stts),
	}
	if t.cto != nil {
		c := u32(uint32(len(t.cto)))
		for _, v := range t.cto {
			c = append(c, u32(1, uint32(v))...)
		}
		stblParts = append(stblParts, full("ctts", 1, 0, c))
	}
	stblParts = append(stblParts, full("stsc", 0, 0, stsc), full("stsz", 0, 0, stsz), co)
	if t.sync != nil {
		s := u32(uint32(len(t.sync)))
		for _, v := range t.sync {
			s = append(s, u32(v)...)
		}
		stblParts = append(stblParts, full("stss", 0, 0, s))
	}
	mdhd := full("mdhd", 0, 0, u32(0, 0, t.timescale, 0), u16(0x55c4), u16(0)) // "und"
	hdlr := full("hdlr", 0, 0, u32(0), []byte(t.handler), make([]byte, 12), []byte("Synth\x00"))
	minf := bx("minf", bx("stbl", stblParts...))
	var w, h uint32
	if t.handler == "vide" {
		w, h = 64, 64
	}
	parts := [][]byte{tkhd(id, t.matrix, w, h)}
	if t.tref != nil {
		var refs []byte
		for typ, ids := range t.tref {
			refs = append(refs, bx(typ, u32(ids...))...)
		}
		parts = append(parts, bx("tref", refs))
	}
	if t.elst != nil {
		e := u32(uint32(len(t.elst)))
		for _, mt := range t.elst {
			e = append(e, u32(1000, uint32(int32(mt)), 0x10000)...)
		}
		parts = append(parts, bx("edts", full("elst", 0, 0, e)))
	}
	parts = append(parts, bx("mdia", mdhd, hdlr, minf))
	return bx("trak", parts...)
}

var ftyp = bx("ftyp", []byte("isom"), u32(0x200), []byte("isomiso2avc1mp41"))

// sampleByte is the byte that fills sample i of track t, so that tests can
// check that offsets point at the right bytes.
func sampleByte(t, i int) byte { return byte(t*64 + i%64) }

// buildProgressive writes ftyp, mdat (chunks of perChunk samples of each
// track in turn) and moov at the end.
func buildProgressive(tracks []synthTrack, perChunk int, created uint32) []byte {
	var mdat []byte
	base := uint64(len(ftyp) + 8)
	offs := make([][]uint64, len(tracks))
	counts := make([][]int, len(tracks))
	next := make([]int, len(tracks))
	for more := true; more; {
		more = false
		for ti, t := range tracks {
			if next[ti] >= len(t.sizes) {
				continue
			}
			more = true
			offs[ti] = append(offs[ti], base+uint64(len(mdat)))
			n := 0
			for ; n < perChunk && next[ti] < len(t.sizes); n++ {
				i := next[ti]
				mdat = append(mdat, bytes.Repeat([]byte{sampleByte(ti, i)}, int(t.sizes[i]))...)
				next[ti]++
			}
			counts[ti] = append(counts[ti], n)
		}
	}
	moovParts := [][]byte{mvhd(created)}
	var trex [][]byte
	for ti, t := range tracks {
		moovParts = append(moovParts, t.trak(uint32(ti+1), offs[ti], counts[ti]))
		if t.trex != nil {
			trex = append(trex, full("trex", 0, 0, u32(uint32(ti+1)), u32(t.trex...)))
		}
	}
	if trex != nil {
		moovParts = append(moovParts, bx("mvex", trex...))
	}
	var out []byte
	out = append(out, ftyp...)
	out = append(out, bx("mdat", mdat)...)
	out = append(out, bx("moov", moovParts...)...)
	return out
}

// trunSample is one sample of a synthetic trun.
type trunSample struct {
	dur, size, flags uint32
	cto              int32
}

// trunBox writes a trun with the given flags; fields not selected by the
// flags are left out.
func trunBox(version byte, flags uint32, dataOffset int32, firstFlags uint32, ss []trunSample) []byte {
	p := u32(uint32(len(ss)))
	if flags&0x1 != 0 {
		p = append(p, u32(uint32(dataOffset))...)
	}
	if flags&0x4 != 0 {
		p = append(p, u32(firstFlags)...)
	}
	for _, s := range ss {
		if flags&0x100 != 0 {
			p = append(p, u32(s.dur)...)
		}
		if flags&0x200 != 0 {
			p = append(p, u32(s.size)...)
		}
		if flags&0x400 != 0 {
			p = append(p, u32(s.flags)...)
		}
		if flags&0x800 != 0 {
			p = append(p, u32(uint32(s.cto))...)
		}
	}
	return full("trun", version, flags, p)
}

// emptyMoovTracks returns synthetic video (timescale 600) and audio
// (48000) tracks without samples, for fragmented files.
func emptyMoovTracks(tb testing.TB) []synthTrack {
	return []synthTrack{
		{handler: "vide", timescale: 600, entries: [][]byte{avc1Entry(64, 64)}, trex: []uint32{1, 20, 0, 0x00010000}},
		{handler: "soun", timescale: 48000, entries: [][]byte{mp4aEntry(tb)}, trex: []uint32{1, 1024, 0, 0}},
	}
}
