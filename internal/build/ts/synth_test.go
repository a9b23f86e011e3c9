package ts

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/jitstream/jitstream/internal/media"
)

// Synthetic sample entries and tracks, built by hand so that the tests do
// not depend on the parser.

func box(typ string, parts ...[]byte) []byte {
	n := 8
	for _, p := range parts {
		n += len(p)
	}
	b := binary.BigEndian.AppendUint32(make([]byte, 0, n), uint32(n))
	b = append(b, typ...)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// visualFields are the VisualSampleEntry fields of a 1920x1080 entry.
func visualFields() []byte {
	f := make([]byte, 78)
	f[7] = 1 // data_reference_index
	binary.BigEndian.PutUint16(f[24:], 1920)
	binary.BigEndian.PutUint16(f[26:], 1080)
	binary.BigEndian.PutUint32(f[28:], 0x00480000)
	binary.BigEndian.PutUint32(f[32:], 0x00480000)
	binary.BigEndian.PutUint16(f[40:], 1)
	binary.BigEndian.PutUint16(f[74:], 0x18)
	binary.BigEndian.PutUint16(f[76:], 0xffff)
	return f
}

// nal makes a NAL unit of the given type with n payload bytes, none zero
// (so that no start code can appear inside), tagged with tag.
func nal(hevc bool, typ byte, n int, tag byte) []byte {
	var b []byte
	if hevc {
		b = []byte{typ << 1, 1}
	} else {
		b = []byte{0x60 | typ}
	}
	for i := range n {
		b = append(b, 0x80|tag^byte(i))
	}
	return b
}

// avcEntry is an avc1 sample entry with the given NAL length size and
// parameter sets.
func avcEntry(ls int, sps, pps []byte) []byte {
	c := []byte{1, 0x64, 0, 0x28, 0xFC | byte(ls-1), 0xE1}
	c = binary.BigEndian.AppendUint16(c, uint16(len(sps)))
	c = append(c, sps...)
	c = append(c, 1)
	c = binary.BigEndian.AppendUint16(c, uint16(len(pps)))
	c = append(c, pps...)
	return box("avc1", visualFields(), box("avcC", c), box("pasp", []byte{0, 0, 0, 1, 0, 0, 0, 1}))
}

// hevcEntry is an hvc1 sample entry with the given NAL length size and
// parameter sets (and a prefix SEI array, which is not repeated).
func hevcEntry(ls int, vps, sps, pps []byte) []byte {
	c := make([]byte, 21)
	c[0] = 1
	c = append(c, 0x0C|byte(ls-1), 4)
	for _, ps := range [][]byte{vps, sps, pps, nal(true, 39, 4, 9)} {
		c = append(c, 0x80|ps[0]>>1, 0, 1)
		c = binary.BigEndian.AppendUint16(c, uint16(len(ps)))
		c = append(c, ps...)
	}
	return box("hvc1", visualFields(), box("hvcC", c))
}

// aacEntry is an mp4a sample entry with the given AudioSpecificConfig.
func aacEntry(tb testing.TB, asc []byte) []byte {
	f := make([]byte, 28)
	f[7] = 1
	binary.BigEndian.PutUint16(f[16:], 2)
	binary.BigEndian.PutUint16(f[18:], 16)
	binary.BigEndian.PutUint32(f[24:], 48000<<16)
	var esds bytes.Buffer
	if err := mp4.CreateEsdsBox(asc).Encode(&esds); err != nil {
		tb.Fatal(err)
	}
	return box("mp4a", f, esds.Bytes())
}

// ascLC48 is the AudioSpecificConfig of AAC-LC, 48 kHz, stereo.
var ascLC48 = []byte{0x11, 0x90}

// synthTrack describes a synthetic track.
type synthTrack struct {
	kind      media.Kind
	timescale uint32
	entries   [][]byte
	chapters  []int // samples per chapter; chapter c uses entry min(c, len(entries)-1)
	dur       []uint32
	cto       []int32
	sync      []bool
	mediaTime int64
	data      [][]byte // sample bytes
}

// build makes the media.Track (ID id).
func (st synthTrack) build(id uint32) *media.Track {
	n := len(st.data)
	t := &media.Track{
		ID: id, Kind: st.kind, Format: entryFormat(st.entries[0]), Timescale: st.timescale,
		SampleEntries: st.entries, MediaTime: st.mediaTime, Language: "eng",
	}
	s := &t.Samples
	s.Offset = make([]int64, n)
	s.Size = make([]uint32, n)
	s.Dur = st.dur
	s.CTO = st.cto
	s.Sync = st.sync
	var off int64
	for i, d := range st.data {
		s.Offset[i], s.Size[i] = off, uint32(len(d))
		off += int64(len(d))
	}
	chapters := st.chapters
	if chapters == nil {
		chapters = []int{n}
	}
	start := 0
	for c, k := range chapters {
		s.ChapterStart = append(s.ChapterStart, start)
		s.ChapterDesc = append(s.ChapterDesc, uint32(min(c, len(st.entries)-1)+1))
		start += k
	}
	s.ChapterStart = append(s.ChapterStart, start)
	s.Derive()
	return t
}

// synthIndex makes an index of the tracks (which must have the same number
// of chapters) and the inputs of all their samples.
func synthIndex(tracks ...synthTrack) (*media.Index, []Input) {
	ix := &media.Index{}
	var in []Input
	for k, st := range tracks {
		t := st.build(uint32(k + 1))
		ix.Tracks = append(ix.Tracks, t)
		in = append(in, Input{Track: t, First: 0, End: t.Samples.Len(), Data: st.data})
	}
	for range ix.Tracks[0].Samples.ChapterDesc {
		ix.Chapters = append(ix.Chapters, media.Chapter{Object: "synthetic", Size: 1 << 40})
	}
	return ix, in
}

// avcc joins NAL units with ls-byte length prefixes.
func avcc(ls int, nals ...[]byte) []byte {
	var b []byte
	for _, n := range nals {
		l := binary.BigEndian.AppendUint32(nil, uint32(len(n)))
		b = append(b, l[4-ls:]...)
		b = append(b, n...)
	}
	return b
}

func repeat[T any](v T, n int) []T {
	s := make([]T, n)
	for i := range s {
		s[i] = v
	}
	return s
}

// nalTypes lists the NAL unit types of an Annex B access unit.
func nalTypes(hevc bool, au []byte) []byte {
	var types []byte
	for _, n := range annexB(au) {
		if len(n) == 0 {
			types = append(types, 0xFF)
			continue
		}
		if hevc {
			types = append(types, n[0]>>1&0x3F)
		} else {
			types = append(types, n[0]&0x1F)
		}
	}
	return types
}

// muxChecked muxes, checks the size against Plan and the structure, and
// returns the demuxed segment.
func muxChecked(t *testing.T, ix *media.Index, in []Input, opt Options) ([]byte, *demuxed, *Layout) {
	t.Helper()
	plan, err := Plan(ix, in, opt)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	b, layout, err := MuxLayout(ix, in, opt)
	if err != nil {
		t.Fatalf("Mux: %v", err)
	}
	if int64(len(b)) != plan.Size || !slices.Equal(layout.Keyframes, plan.Keyframes) {
		t.Fatalf("Mux made %d bytes, keyframes %v; Plan says %d, %v", len(b), layout.Keyframes, plan.Size, plan.Keyframes)
	}
	d, err := demux(b)
	if err != nil {
		t.Fatalf("demux: %v", err)
	}
	return b, d, plan
}

// TestAccessUnits checks the Annex B conversion: delimiters, parameter sets
// from the chapter's sample entry, samples that carry their own, and the
// filler that keeps sizes as planned.
func TestAccessUnits(t *testing.T) {
	sps1, pps1 := nal(false, 7, 12, 1), nal(false, 8, 3, 1)
	sps2, pps2 := nal(false, 7, 14, 2), nal(false, 8, 4, 2)
	vps, hsps, hpps := nal(true, 32, 20, 3), nal(true, 33, 30, 3), nal(true, 34, 5, 3)
	idr, p := nal(false, 5, 300, 4), nal(false, 1, 90, 5)
	sei := nal(false, 6, 10, 6)
	hidr, hp := nal(true, 19, 250, 7), nal(true, 1, 70, 8)
	aud := []byte{0x09, 0xF0}
	const (
		fill  = 12
		hfill = 38
	)
	cases := []struct {
		name     string
		hevc     bool
		ls       int
		entries  [][]byte
		chapters []int
		samples  [][][]byte
		sync     []bool
		want     [][][]byte // NAL units per access unit; nil entries: filler
	}{
		{
			name: "h264 two chapters", ls: 4,
			entries:  [][]byte{avcEntry(4, sps1, pps1), avcEntry(4, sps2, pps2)},
			chapters: []int{2, 2},
			samples:  [][][]byte{{sei, idr}, {p}, {idr}, {p}},
			sync:     []bool{true, false, true, false},
			want:     [][][]byte{{aud, sps1, pps1, sei, idr}, {aud, p}, {aud, sps2, pps2, idr}, {aud, p}},
		},
		{
			name: "h264 3-byte lengths", ls: 3,
			entries: [][]byte{avcEntry(3, sps1, pps1)},
			samples: [][][]byte{{idr}, {p, p}},
			sync:    []bool{true, false},
			want:    [][][]byte{{aud, sps1, pps1, idr}, {aud, p, p}},
		},
		{
			name: "h264 sample with parameter sets", ls: 4,
			entries: [][]byte{avcEntry(4, sps1, pps1)},
			samples: [][][]byte{{sps2, pps2, idr}, {p}},
			sync:    []bool{true, false},
			want:    [][][]byte{{aud, sps2, pps2, idr, nil}, {aud, p}},
		},
		{
			name: "h264 sample with SPS only", ls: 4,
			entries: [][]byte{avcEntry(4, sps1, pps1)},
			samples: [][][]byte{{sps2, idr}},
			sync:    []bool{true},
			want:    [][][]byte{{aud, sps1, pps1, sps2, idr}},
		},
		{
			name: "h264 sample with delimiter", ls: 4,
			entries: [][]byte{avcEntry(4, sps1, pps1)},
			samples: [][][]byte{{{0x09, 0x10}, idr}, {{0x09, 0x30}, p}, {}},
			sync:    []bool{true, false, true},
			want:    [][][]byte{{{0x09, 0x10}, sps1, pps1, idr, nil}, {{0x09, 0x30}, p, nil}, {aud, sps1, pps1}},
		},
		{
			name: "h265", hevc: true, ls: 4,
			entries: [][]byte{hevcEntry(4, vps, hsps, hpps)},
			samples: [][][]byte{{hidr}, {hp}, {vps, hsps, hpps, hidr}},
			sync:    []bool{true, false, true},
			want: [][][]byte{
				{{0x46, 0x01, 0x50}, vps, hsps, hpps, hidr},
				{{0x46, 0x01, 0x50}, hp},
				{{0x46, 0x01, 0x50}, vps, hsps, hpps, hidr, nil},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var data [][]byte
			for _, s := range tc.samples {
				data = append(data, avcc(tc.ls, s...))
			}
			n := len(data)
			ix, in := synthIndex(synthTrack{
				kind: media.KindVideo, timescale: 90000, entries: tc.entries, chapters: tc.chapters,
				dur: repeat(uint32(3000), n), sync: tc.sync, data: data,
			})
			_, d, plan := muxChecked(t, ix, in, Options{})
			vp := d.byPID(PIDVideo)
			if len(vp) != n {
				t.Fatalf("%d video PES, want %d", len(vp), n)
			}
			for i, p := range vp {
				got := annexB(p.payload)
				want := tc.want[i]
				ok := len(got) == len(want)
				for k := 0; ok && k < len(want); k++ {
					if want[k] == nil {
						typ := byte(fill)
						if tc.hevc {
							typ = hfill
						}
						ok = nalTypes(tc.hevc, p.payload)[k] == typ
						continue
					}
					ok = bytes.Equal(got[k], want[k])
				}
				if !ok {
					t.Errorf("access unit %d: NAL types %v, want %d units: %x", i, nalTypes(tc.hevc, p.payload), len(want), got)
				}
				if p.rai != tc.sync[i] {
					t.Errorf("access unit %d: random_access_indicator %v", i, p.rai)
				}
			}
			var keys int
			for _, s := range tc.sync {
				if s {
					keys++
				}
			}
			if len(plan.Keyframes) != keys {
				t.Errorf("%d keyframe ranges, want %d", len(plan.Keyframes), keys)
			}
			if d.streams[PIDVideo] != map[bool]byte{false: 0x1B, true: 0x24}[tc.hevc] {
				t.Errorf("stream type 0x%02x", d.streams[PIDVideo])
			}
		})
	}
}

// TestTimestamps checks PTS, DTS and PCR values and keyframe times.
func TestTimestamps(t *testing.T) {
	idr, p := avcc(4, nal(false, 5, 50, 1)), avcc(4, nal(false, 1, 20, 2))
	entry := avcEntry(4, nal(false, 7, 8, 1), nal(false, 8, 2, 1))
	cases := []struct {
		name      string
		opt       Options
		timescale uint32
		mediaTime int64
		cto       []int32
		wantPTS   []int64
		wantDTS   []int64
	}{
		{
			name: "B-frames", timescale: 15360, mediaTime: 1024,
			cto:     []int32{1024, 2560, 1024, 0, 512},
			wantPTS: []int64{900000, 912000, 906000, 903000, 909000},
			wantDTS: []int64{894000, 897000, 900000, 903000, 906000},
		},
		{
			name: "negative offsets", timescale: 15360, opt: Options{Offset: time.Second},
			cto:     []int32{0, 1024, -512, -512, 0},
			wantPTS: []int64{90000, 99000, 93000, 96000, 102000},
			wantDTS: []int64{87000, 90000, 93000, 96000, 99000},
		},
		{
			name: "no composition offsets", timescale: 90000, opt: Options{Offset: -time.Second},
			wantPTS: []int64{1<<33 - 90000, 1<<33 - 87000, 1<<33 - 84000, 1<<33 - 81000, 1<<33 - 78000},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dur := uint32(tc.timescale / 30)
			ix, in := synthIndex(synthTrack{
				kind: media.KindVideo, timescale: tc.timescale, entries: [][]byte{entry}, mediaTime: tc.mediaTime,
				dur: repeat(dur, 5), cto: tc.cto, sync: []bool{true, false, false, false, false},
				data: [][]byte{idr, p, p, p, p},
			})
			_, d, plan := muxChecked(t, ix, in, tc.opt)
			if tc.wantDTS == nil {
				tc.wantDTS = tc.wantPTS
			}
			for i, pe := range d.byPID(PIDVideo) {
				if pe.pts != tc.wantPTS[i] || pe.dts != tc.wantDTS[i] || pe.hasDTS != (pe.pts != pe.dts) {
					t.Errorf("AU %d: PTS %d DTS %d (in header: %v), want %d %d", i, pe.pts, pe.dts, pe.hasDTS, tc.wantPTS[i], tc.wantDTS[i])
				}
				if want := (tc.wantDTS[i] - 9000) & mask33; pe.pcr != want {
					t.Errorf("AU %d: PCR %d, want %d", i, pe.pcr, want)
				}
			}
			cto0 := int64(0)
			if tc.cto != nil {
				cto0 = int64(tc.cto[0])
			}
			wantTime := float64(cto0-tc.mediaTime) / float64(tc.timescale)
			if len(plan.Keyframes) != 1 || plan.Keyframes[0].Time != wantTime || plan.Keyframes[0].Offset != 0 {
				t.Errorf("keyframes %+v, want one at 0 with time %v", plan.Keyframes, wantTime)
			}
		})
	}
}

// ascBits packs AudioSpecificConfig fields (value, bit count pairs).
func ascBits(fields ...int) []byte {
	var v uint64
	n := 0
	for i := 0; i < len(fields); i += 2 {
		v = v<<fields[i+1] | uint64(fields[i])
		n += fields[i+1]
	}
	v <<= (8 - n%8) % 8
	n += (8 - n%8) % 8
	b := make([]byte, n/8)
	for i := range b {
		b[i] = byte(v >> (8 * (len(b) - 1 - i)))
	}
	return b
}

// TestAudio checks ADTS headers and the grouping of AAC frames into PES.
func TestAudio(t *testing.T) {
	frames := func(n int, size func(i int) int) [][]byte {
		var d [][]byte
		for i := range n {
			d = append(d, bytes.Repeat([]byte{byte(i + 1)}, size(i)))
		}
		return d
	}
	fixed := func(int) int { return 200 }
	cases := []struct {
		name      string
		asc       []byte
		timescale uint32
		dur       []uint32
		data      [][]byte
		adts      [3]byte // bytes 1 to 3 of the ADTS header, length bits masked
		groups    []int   // frames per PES
		pts       []int64 // PTS of each PES
	}{
		{
			name: "LC 48 kHz", asc: ascLC48, timescale: 48000,
			dur: repeat(uint32(1024), 10), data: frames(10, fixed),
			adts: [3]byte{0xF1, 0x4C, 0x80}, groups: []int{4, 4, 2},
			pts: []int64{900000, 907680, 915360},
		},
		{
			name: "LC 48 kHz with a gap", asc: ascLC48, timescale: 48000,
			dur: []uint32{1024, 2048, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024}, data: frames(10, fixed),
			adts: [3]byte{0xF1, 0x4C, 0x80}, groups: []int{2, 4, 4},
			pts: []int64{900000, 905760, 913440},
		},
		{
			name: "LC 48 kHz with an empty sample", asc: ascLC48, timescale: 48000,
			dur: repeat(uint32(1024), 6), data: frames(6, func(i int) int { return map[bool]int{true: 0, false: 100}[i == 2] }),
			adts: [3]byte{0xF1, 0x4C, 0x80}, groups: []int{2, 3},
			pts: []int64{900000, 905760},
		},
		{
			name: "LC 44.1 kHz mono", asc: ascBits(2, 5, 4, 4, 1, 4, 0, 3), timescale: 44100,
			dur: repeat(uint32(1024), 7), data: frames(7, func(i int) int { return 100 + i }),
			adts: [3]byte{0xF1, 0x50, 0x40}, groups: []int{3, 3, 1},
			pts: []int64{900000, 906269, 912538},
		},
		{
			name: "HE-AAC", asc: ascBits(5, 5, 6, 4, 2, 4, 3, 4, 2, 5, 0, 3), timescale: 48000,
			dur: repeat(uint32(2048), 5), data: frames(5, fixed),
			adts: [3]byte{0xF1, 0x58, 0x80}, groups: []int{2, 2, 1},
			pts: []int64{900000, 907680, 915360},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ix, in := synthIndex(synthTrack{
				kind: media.KindAudio, timescale: tc.timescale, entries: [][]byte{aacEntry(t, tc.asc)},
				dur: tc.dur, data: tc.data,
			})
			_, d, plan := muxChecked(t, ix, in, Options{})
			if len(plan.Keyframes) != 0 {
				t.Errorf("keyframes %v in an audio-only segment", plan.Keyframes)
			}
			if d.pcrPID != PIDAudio || d.streams[PIDAudio] != 0x0F {
				t.Errorf("PCR PID 0x%x, stream type 0x%x", d.pcrPID, d.streams[PIDAudio])
			}
			var groups []int
			var pts []int64
			k := 0
			for _, p := range d.byPID(PIDAudio) {
				if p.pcr != (p.pts-9000)&mask33 || !p.rai || p.hasDTS {
					t.Errorf("audio PES at %d: PCR %d, RAI %v, DTS %v", p.start, p.pcr, p.rai, p.hasDTS)
				}
				n := 0
				for f := p.payload; len(f) > 0; n++ {
					l := int(f[3]&3)<<11 | int(f[4])<<3 | int(f[5])>>5
					for len(tc.data[k]) == 0 {
						k++
					}
					if f[0] != 0xFF || [3]byte{f[1], f[2], f[3] & 0xFC} != tc.adts || f[5]&0x1F != 0x1F || f[6] != 0xFC ||
						!bytes.Equal(f[7:l], tc.data[k]) {
						t.Fatalf("frame %d: ADTS % x, want ff % x, payload %d bytes", k, f[:7], tc.adts, l-7)
					}
					k++
					f = f[l:]
				}
				groups = append(groups, n)
				pts = append(pts, p.pts)
			}
			if !slices.Equal(groups, tc.groups) || !slices.Equal(pts, tc.pts) {
				t.Errorf("frames per PES %v at %v, want %v at %v", groups, pts, tc.groups, tc.pts)
			}
		})
	}
}

// TestInterleave checks a video and audio segment: PCR on video, PES
// interleaved by decode time after the first keyframe, PAT+PMT before each
// keyframe, and the keyframe ranges; and that inputs beyond the first video
// and audio are ignored.
func TestInterleave(t *testing.T) {
	for _, videoMediaTime := range []int64{3000, 0} {
		t.Run(fmt.Sprintf("video MediaTime %d", videoMediaTime), func(t *testing.T) {
			ix, in := benchIndex(t, 60, 2000, 94, 300)
			ix.Tracks[0].MediaTime = videoMediaTime
			in = append(in, in[1], Input{Track: in[0].Track, First: 0, End: 1})
			b, d, plan := muxChecked(t, ix, in, Options{})
			if d.pcrPID != PIDVideo || len(d.streams) != 2 {
				t.Errorf("PCR PID 0x%x, streams %v", d.pcrPID, d.streams)
			}
			last := map[uint16]int64{}
			for _, p := range d.pes {
				if p.dts <= last[p.pid] {
					t.Errorf("PID 0x%x: DTS %d after %d", p.pid, p.dts, last[p.pid])
				}
				last[p.pid] = p.dts
				if p.pid == PIDVideo && p.pcr != (p.dts-9000)&mask33 || p.pid == PIDAudio && p.pcr != -1 {
					t.Errorf("PES at %d: PCR %d", p.start, p.pcr)
				}
			}
			slices.SortFunc(d.pes, func(a, b pes) int { return int(a.start - b.start) })
			if p := d.pes[0]; p.pid != PIDVideo || p.start != 2*PacketSize {
				t.Errorf("first PES on PID 0x%x at %d, want the keyframe after PAT and PMT", p.pid, p.start)
			}
			var prevDTS int64
			for _, p := range d.pes[1:] {
				if p.dts < prevDTS {
					t.Errorf("PES at %d: DTS %d before %d", p.start, p.dts, prevDTS)
				}
				prevDTS = p.dts
			}
			if len(plan.Keyframes) != 2 || len(d.psiAt) != 2 {
				t.Fatalf("keyframes %v, PAT at %v", plan.Keyframes, d.psiAt)
			}
			for k, kr := range plan.Keyframes {
				wantTime := float64(int64(k)*90000+3000-videoMediaTime) / 90000 // CTO 3000
				if kr.Offset != d.psiAt[k] || kr.Time != wantTime {
					t.Errorf("keyframe %d: %+v, want time %v, PAT at %d", k, kr, wantTime, d.psiAt[k])
				}
				sub, err := demuxFrom(b[kr.Offset:kr.Offset+kr.Length], false)
				if err != nil {
					t.Fatalf("keyframe range %d: %v", k, err)
				}
				if len(sub.pes) != 1 || sub.pes[0].pid != PIDVideo || !sub.pes[0].rai {
					t.Errorf("keyframe range %d holds %d PES", k, len(sub.pes))
				}
			}
		})
	}
}

// TestErrors checks that unsupported or inconsistent inputs fail cleanly,
// from Plan already.
func TestErrors(t *testing.T) {
	sps, pps := nal(false, 7, 8, 1), nal(false, 8, 2, 1)
	idr := avcc(4, nal(false, 5, 50, 1))
	video := func(entries ...[]byte) synthTrack {
		n := len(entries)
		return synthTrack{
			kind: media.KindVideo, timescale: 90000, entries: entries, chapters: repeat(1, n),
			dur: repeat(uint32(3000), n), data: repeat(idr, n),
		}
	}
	audio := func(entry []byte, size int) synthTrack {
		return synthTrack{
			kind: media.KindAudio, timescale: 48000, entries: [][]byte{entry},
			dur: []uint32{1024}, data: [][]byte{make([]byte, size)},
		}
	}
	noConfig := box("avc1", visualFields())
	cases := []struct {
		name   string
		tracks []synthTrack
		edit   func(ix *media.Index, in []Input) []Input
		want   error
	}{
		{name: "AV1 video", tracks: []synthTrack{video(box("av01", visualFields()))}, want: media.ErrUnsupported},
		{name: "Opus audio", tracks: []synthTrack{audio(box("Opus", make([]byte, 28)), 10)}, want: media.ErrUnsupported},
		{name: "2-byte NAL lengths", tracks: []synthTrack{video(avcEntry(2, sps, pps))}, want: media.ErrUnsupported},
		{name: "H.264 then H.265", tracks: []synthTrack{video(avcEntry(4, sps, pps), hevcEntry(4, nal(true, 32, 3, 1), nal(true, 33, 3, 1), nal(true, 34, 3, 1)))}, want: media.ErrUnsupported},
		{name: "no avcC", tracks: []synthTrack{video(noConfig)}, want: media.ErrInvalid},
		{name: "truncated avcC", tracks: []synthTrack{video(box("avc1", visualFields(), box("avcC", []byte{1, 0x64, 0, 0x28, 0xFF, 0xE1, 0, 9, 0x67})))}, want: media.ErrInvalid},
		{name: "AAC channel configuration 0", tracks: []synthTrack{audio(aacEntry(t, ascBits(2, 5, 3, 4, 0, 4, 0, 3)), 10)}, want: media.ErrUnsupported},
		{name: "AAC explicit frequency", tracks: []synthTrack{audio(aacEntry(t, ascBits(2, 5, 15, 4, 44000, 24, 2, 4, 0, 3)), 10)}, want: media.ErrUnsupported},
		{name: "USAC", tracks: []synthTrack{audio(aacEntry(t, ascBits(31, 5, 10, 6, 3, 4, 2, 4)), 10)}, want: media.ErrUnsupported},
		{name: "AAC frame too large", tracks: []synthTrack{audio(aacEntry(t, ascLC48), 9000)}, want: media.ErrInvalid},
		{name: "no inputs", tracks: []synthTrack{video(avcEntry(4, sps, pps))}, edit: func(*media.Index, []Input) []Input { return nil }},
		{name: "no samples", tracks: []synthTrack{video(avcEntry(4, sps, pps))}, edit: func(_ *media.Index, in []Input) []Input {
			in[0].First = 1
			return in
		}},
		{name: "out of range", tracks: []synthTrack{video(avcEntry(4, sps, pps))}, edit: func(_ *media.Index, in []Input) []Input {
			in[0].End = 2
			return in
		}},
		{name: "track not in the index", tracks: []synthTrack{video(avcEntry(4, sps, pps))}, edit: func(ix *media.Index, in []Input) []Input {
			ix.Tracks = nil
			return in
		}},
		{name: "no track", tracks: []synthTrack{video(avcEntry(4, sps, pps))}, edit: func(ix *media.Index, in []Input) []Input {
			in[0].Track = nil
			return in
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ix, in := synthIndex(tc.tracks...)
			if tc.edit != nil {
				in = tc.edit(ix, in)
			}
			_, perr := Plan(ix, in, Options{})
			_, merr := Mux(ix, in, Options{})
			for _, err := range []error{perr, merr} {
				if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
					t.Errorf("error %v, want %v", err, tc.want)
				}
			}
			t.Log(merr)
		})
	}
	if _, err := Plan(nil, nil, Options{}); err == nil {
		t.Error("Plan with a nil index succeeded")
	}
}

// TestGarbage checks that sample bytes that do not match the index or are
// not length-prefixed NAL units give an error, never a panic or a segment of
// the wrong size.
func TestGarbage(t *testing.T) {
	good := avcc(4, nal(false, 5, 100, 1), nal(false, 5, 50, 2))
	cases := []struct {
		name string
		data []byte
		edit func(in []Input)
	}{
		{name: "NAL length overruns", data: append([]byte{0, 0, 1, 0}, good[4:]...)},
		{name: "NAL length overruns by one", data: append([]byte{0, 0, 0, 102}, good[4:]...)},
		{name: "huge NAL length", data: append([]byte{0xFF, 0xFF, 0xFF, 0xFF}, good[4:]...)},
		{name: "empty NAL unit", data: append([]byte{0, 0, 0, 0}, good...)},
		{name: "truncated length", data: append(slices.Clone(good), 0, 0)},
		{name: "data shorter than the index", data: good, edit: func(in []Input) { in[0].Data[1] = good[:len(good)-1] }},
		{name: "data missing", data: good, edit: func(in []Input) { in[0].Data = in[0].Data[:1] }},
		{name: "no data", data: good, edit: func(in []Input) { in[0].Data = nil }},
	}
	entry := avcEntry(4, nal(false, 7, 8, 1), nal(false, 8, 2, 1))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ix, in := synthIndex(synthTrack{
				kind: media.KindVideo, timescale: 90000, entries: [][]byte{entry},
				dur: repeat(uint32(3000), 3), sync: []bool{true, false, false}, data: [][]byte{good, tc.data, good},
			})
			if _, err := Plan(ix, in, Options{}); err != nil {
				t.Fatalf("Plan: %v", err)
			}
			if tc.edit != nil {
				tc.edit(in)
			}
			_, err := Mux(ix, in, Options{})
			if !errors.Is(err, ErrData) || !errors.Is(err, media.ErrInvalid) {
				t.Errorf("Mux: %v, want ErrData", err)
			}
		})
	}

	// Random bytes as samples (a keyframe, and a frame in H.265), with sizes
	// from 0 to 300.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		buf := make([]byte, rng.IntN(300))
		for k := range buf {
			buf[k] = byte(rng.UintN(256))
			if k < 4 && rng.IntN(2) == 0 {
				buf[k] = 0 // plausible lengths now and then
			}
		}
		checkArbitrarySample(t, buf, i%2 == 0, i%4 < 2)
	}
}

// checkArbitrarySample muxes a sample of arbitrary bytes: Mux must fail with
// ErrData or make a segment of the planned size.
func checkArbitrarySample(t *testing.T, sample []byte, key, hevc bool) {
	t.Helper()
	entry := avcEntry(4, nal(false, 7, 8, 1), nal(false, 8, 2, 1))
	good := avcc(4, nal(false, 5, 20, 1))
	if hevc {
		entry = hevcEntry(4, nal(true, 32, 3, 1), nal(true, 33, 3, 1), nal(true, 34, 3, 1))
		good = avcc(4, nal(true, 19, 20, 1))
	}
	ix, in := synthIndex(synthTrack{
		kind: media.KindVideo, timescale: 90000, entries: [][]byte{entry},
		dur: repeat(uint32(3000), 2), sync: []bool{true, key}, data: [][]byte{good, sample},
	})
	plan, err := Plan(ix, in, Options{})
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	b, err := Mux(ix, in, Options{})
	if err != nil {
		if !errors.Is(err, ErrData) {
			t.Fatalf("sample % x: %v, want ErrData", sample, err)
		}
		return
	}
	if int64(len(b)) != plan.Size {
		t.Fatalf("sample % x: %d bytes, planned %d", sample, len(b), plan.Size)
	}
	if _, err := demux(b); err != nil {
		t.Fatalf("sample % x: %v", sample, err)
	}
}

// FuzzSample muxes arbitrary sample bytes (see checkArbitrarySample).
func FuzzSample(f *testing.F) {
	f.Add(avcc(4, nal(false, 5, 20, 1)), true, false)
	f.Add(avcc(4, nal(false, 9, 1, 1), nal(false, 7, 3, 1), nal(false, 8, 1, 1), nal(false, 5, 20, 1)), true, false)
	f.Add(avcc(4, nal(true, 35, 1, 1), nal(true, 1, 20, 1)), false, true)
	f.Add([]byte{0, 0, 0, 9, 1, 2}, true, false)
	f.Add([]byte{}, true, true)
	f.Fuzz(func(t *testing.T, sample []byte, key, hevc bool) {
		checkArbitrarySample(t, sample, key, hevc)
	})
}

// FuzzSampleEntry plans a segment with an arbitrary video or audio sample
// entry: errors are fine, panics are not.
func FuzzSampleEntry(f *testing.F) {
	f.Add(avcEntry(4, nal(false, 7, 8, 1), nal(false, 8, 2, 1)))
	f.Add(hevcEntry(4, nal(true, 32, 3, 1), nal(true, 33, 3, 1), nal(true, 34, 3, 1)))
	f.Add(aacEntry(f, ascLC48))
	f.Add(aacEntry(f, ascBits(5, 5, 6, 4, 2, 4, 3, 4, 2, 5, 0, 3)))
	f.Fuzz(func(t *testing.T, entry []byte) {
		for _, kind := range []media.Kind{media.KindVideo, media.KindAudio} {
			ix, in := synthIndex(synthTrack{
				kind: kind, timescale: 90000, entries: [][]byte{entry},
				dur: []uint32{3000}, sync: []bool{true}, data: [][]byte{avcc(4, nal(false, 5, 20, 1))},
			})
			_, perr := Plan(ix, in, Options{})
			b, merr := Mux(ix, in, Options{})
			if (perr == nil) != (merr == nil) && !errors.Is(merr, ErrData) {
				t.Fatalf("Plan: %v, Mux: %v", perr, merr)
			}
			if merr == nil {
				if _, err := demux(b); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

// benchIndex makes a segment like a 1080p30 recording: video samples of
// about videoSize bytes (a keyframe every 30, three times as large), and
// AAC frames of audioSize bytes at 48 kHz.
func benchIndex(tb testing.TB, videoN, videoSize, audioN, audioSize int) (*media.Index, []Input) {
	var vdata [][]byte
	var sync []bool
	var cto []int32
	for i := range videoN {
		key := i%30 == 0
		size := videoSize
		typ := byte(1)
		if key {
			size, typ = 3*videoSize, 5
		}
		sei := nal(false, 6, 20, byte(i))
		// Slices of about 1/4 of the frame, like multi-slice encoders.
		var nals [][]byte
		nals = append(nals, sei)
		for range 4 {
			nals = append(nals, nal(false, typ, size/4-5, byte(i)))
		}
		vdata = append(vdata, avcc(4, nals...))
		sync = append(sync, key)
		cto = append(cto, int32(3000*(1+i%3)))
	}
	var adata [][]byte
	for i := range audioN {
		adata = append(adata, bytes.Repeat([]byte{byte(i)}, audioSize))
	}
	return synthIndex(
		synthTrack{
			kind: media.KindVideo, timescale: 90000, mediaTime: 3000,
			entries: [][]byte{avcEntry(4, nal(false, 7, 20, 1), nal(false, 8, 4, 1))},
			dur:     repeat(uint32(3000), videoN), cto: cto, sync: sync, data: vdata,
		},
		synthTrack{
			kind: media.KindAudio, timescale: 48000, mediaTime: 1024, entries: [][]byte{aacEntry(tb, ascLC48)},
			dur: repeat(uint32(1024), audioN), data: adata,
		},
	)
}

// BenchmarkMux4s muxes a 4-second segment of a 1080p-like track: 120
// video samples of 40 KB (keyframes 120 KB) and 188 AAC frames.
func BenchmarkMux4s(b *testing.B) {
	ix, in := benchIndex(b, 120, 40000, 188, 384)
	plan, err := Plan(ix, in, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(plan.Size)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Mux(ix, in, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPlan4s plans the same segment.
func BenchmarkPlan4s(b *testing.B) {
	ix, in := benchIndex(b, 120, 40000, 188, 384)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Plan(ix, in, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
