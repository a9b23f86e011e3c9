package media

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// checkPayloads checks that every sample of tr points at the bytes that the
// synthetic writer filled it with.
func checkPayloads(t *testing.T, file []byte, tr *Track, fileTrack int) {
	t.Helper()
	s := &tr.Samples
	for i := range s.Size {
		p := file[s.Offset[i] : s.Offset[i]+int64(s.Size[i])]
		if want := bytes.Repeat([]byte{sampleByte(fileTrack, i)}, len(p)); !bytes.Equal(p, want) {
			t.Fatalf("track %d sample %d at %d+%d does not hold its payload", tr.ID, i, s.Offset[i], s.Size[i])
		}
	}
}

func parseBytes(b []byte) (*Index, error) {
	return Parse(context.Background(), []Source{bytesSource("synth.mp4", b)})
}

func TestParseSynthProgressive(t *testing.T) {
	rot90 := [9]int32{0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000}
	video := synthTrack{
		handler: "vide", timescale: 600, entries: [][]byte{avc1Entry(64, 64)},
		sizes:  []uint32{50, 10, 11, 12, 13, 51, 14, 15, 16, 17},
		durs:   []uint32{20, 20, 20, 20, 20, 20, 20, 20, 20, 20},
		cto:    []int32{40, -20, 0, 40, -20, 0, 40, -20, 0, 0},
		sync:   []uint32{1, 6},
		elst:   []int64{-1, 40},
		tref:   map[string][]uint32{"tmcd": {4}},
		matrix: rot90,
	}
	empty := synthTrack{handler: "sbtl", timescale: 1000, entries: [][]byte{plainEntry("tx3g")}}
	audio := synthTrack{
		handler: "soun", timescale: 48000, entries: [][]byte{mp4aEntry(t)},
		sizes: []uint32{30, 31, 32, 33, 34, 35, 36, 37},
		durs:  []uint32{1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024},
		elst:  []int64{1024},
	}
	tmcd := synthTrack{handler: "tmcd", timescale: 600, entries: [][]byte{plainEntry("tmcd")}, sizes: []uint32{4}, durs: []uint32{600}}
	created := uint32(3786912000) // 2024-01-01 00:00:00 UTC in MP4 time
	file := buildProgressive([]synthTrack{video, empty, audio, tmcd}, 3, created)

	ix, err := parseBytes(file)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC); !ix.Created.Equal(want) {
		t.Errorf("created %v, want %v", ix.Created, want)
	}
	if len(ix.Tracks) != 3 {
		t.Fatalf("%d tracks, want 3 (the empty one dropped)", len(ix.Tracks))
	}
	v, a, tc := ix.Tracks[0], ix.Tracks[1], ix.Tracks[2]
	checkPayloads(t, file, v, 0)
	checkPayloads(t, file, a, 2)
	checkPayloads(t, file, tc, 3)
	if v.Kind != KindVideo || a.Kind != KindAudio || tc.Kind != KindTimecode {
		t.Errorf("kinds %s %s %s", v.Kind, a.Kind, tc.Kind)
	}
	if v.Codec != "avc1.64001f" || v.Width != 64 || v.Height != 64 || v.TkhdWidth != 64<<16 || v.Matrix != rot90 {
		t.Errorf("video: codec %s %dx%d tkhd %d matrix %v", v.Codec, v.Width, v.Height, v.TkhdWidth, v.Matrix)
	}
	if a.Codec != "mp4a.40.2" || a.SampleRate != 48000 || a.Channels != 2 {
		t.Errorf("audio: %s %d Hz %d ch", a.Codec, a.SampleRate, a.Channels)
	}
	if v.MediaTime != 40 || a.MediaTime != 1024 || tc.MediaTime != 0 {
		t.Errorf("media times %d %d %d", v.MediaTime, a.MediaTime, tc.MediaTime)
	}
	if want := map[string][]uint32{"tmcd": {3}}; !reflect.DeepEqual(v.References, want) {
		t.Errorf("video references %v, want %v", v.References, want)
	}
	if !reflect.DeepEqual(v.Samples.CTO, video.cto) {
		t.Errorf("CTO %v, want %v", v.Samples.CTO, video.cto)
	}
	wantSync := []bool{true, false, false, false, false, true, false, false, false, false}
	if !reflect.DeepEqual(v.Samples.Sync, wantSync) {
		t.Errorf("sync %v", v.Samples.Sync)
	}
	if a.Samples.Sync != nil || a.Samples.CTO != nil {
		t.Errorf("audio has Sync or CTO")
	}
	// The chapter lasts 1 s (the timecode sample); every track is
	// stretched to it.
	if ix.Chapters[0].Duration != time.Second {
		t.Errorf("duration %v", ix.Chapters[0].Duration)
	}
	for _, tr := range ix.Tracks {
		if tr.Duration() != int64(tr.Timescale) {
			t.Errorf("track %d ends at %d, want %d", tr.ID, tr.Duration(), tr.Timescale)
		}
	}
	if got := v.Samples.Dur[9]; got != 600-9*20 {
		t.Errorf("last video sample lasts %d", got)
	}
	if v.Language != "und" || v.Name != "Synth" || v.Volume != 0x100 || v.AlternateGroup != 1 || v.Flags != 3 {
		t.Errorf("video header fields: %q %q %d %d %d", v.Language, v.Name, v.Volume, v.AlternateGroup, v.Flags)
	}
	roundTrip(t, ix)
}

// fragTraf is one track fragment of a synthetic moof.
type fragTraf struct {
	tfhdFlags                      uint32
	trackID                        uint32
	baseDataOffset                 uint64
	sdi, defDur, defSize, defFlags uint32
	tfdt                           int64 // -1: no tfdt
	truns                          []fragTrun
}

type fragTrun struct {
	version    byte
	flags      uint32
	dataOffset int32
	firstFlags uint32
	samples    []trunSample
}

func moofBox(seq uint32, trafs []fragTraf) []byte {
	parts := [][]byte{full("mfhd", 0, 0, u32(seq))}
	for _, tf := range trafs {
		p := u32(tf.trackID)
		if tf.tfhdFlags&0x1 != 0 {
			p = append(p, u64(tf.baseDataOffset)...)
		}
		if tf.tfhdFlags&0x2 != 0 {
			p = append(p, u32(tf.sdi)...)
		}
		if tf.tfhdFlags&0x8 != 0 {
			p = append(p, u32(tf.defDur)...)
		}
		if tf.tfhdFlags&0x10 != 0 {
			p = append(p, u32(tf.defSize)...)
		}
		if tf.tfhdFlags&0x20 != 0 {
			p = append(p, u32(tf.defFlags)...)
		}
		traf := [][]byte{full("tfhd", 0, tf.tfhdFlags, p)}
		if tf.tfdt >= 0 {
			traf = append(traf, full("tfdt", 1, 0, u64(uint64(tf.tfdt))))
		}
		for _, tr := range tf.truns {
			traf = append(traf, trunBox(tr.version, tr.flags, tr.dataOffset, tr.firstFlags, tr.samples))
		}
		parts = append(parts, bx("traf", traf...))
	}
	return bx("moof", parts...)
}

// payload returns the bytes of samples [from, from+n) of file track ti.
func payload(ti, from int, sizes []uint32) []byte {
	var b []byte
	for i, s := range sizes {
		b = append(b, bytes.Repeat([]byte{sampleByte(ti, from+i)}, int(s))...)
	}
	return b
}

const nonSync = 0x00010000

// buildFragmented writes a fragmented file that exercises the ways a
// fragment can place its data. It returns the file and the expected
// columns of the video and audio tracks.
func buildFragmented(tb testing.TB) (file []byte, vDur []uint32, vCTO []int32, vSync []bool, aDur []uint32) {
	file = buildProgressive(emptyMoovTracks(tb), 1, 0)

	// Fragment 1: default-base-is-moof, trun v1 with negative offsets,
	// first_sample_flags, trex durations (20) and flags (non-sync).
	v1 := []trunSample{{size: 40, cto: 20}, {size: 10, cto: -20}, {size: 11, cto: 0}}
	a1 := []trunSample{{size: 20}, {size: 21}}
	build1 := func(vOff, aOff int32) []byte {
		return moofBox(1, []fragTraf{
			{tfhdFlags: 0x020000, trackID: 1, tfdt: 0, truns: []fragTrun{{version: 1, flags: 0x1 | 0x4 | 0x200 | 0x800, dataOffset: vOff, firstFlags: 0, samples: v1}}},
			{tfhdFlags: 0x020000, trackID: 2, tfdt: 0, truns: []fragTrun{{flags: 0x1 | 0x200, dataOffset: aOff, samples: a1}}},
		})
	}
	m := build1(0, 0)
	m = build1(int32(len(m)+8), int32(len(m)+8+61))
	file = append(file, m...)
	file = append(file, bx("mdat", payload(0, 0, []uint32{40, 10, 11}), payload(1, 0, []uint32{20, 21}))...)
	vDur = append(vDur, 20, 20, 20)
	vCTO = append(vCTO, 20, -20, 0)
	vSync = append(vSync, true, false, false)
	aDur = append(aDur, 1024, 1024)

	// Fragment 2: mdat first, then moof with absolute base_data_offset;
	// tfhd default duration; two truns, the second continuing the first.
	mdatOff := uint64(len(file))
	file = append(file, bx("mdat", payload(0, 3, []uint32{41, 12, 13}), payload(1, 2, []uint32{22}))...)
	file = append(file, moofBox(2, []fragTraf{
		{tfhdFlags: 0x1 | 0x8, trackID: 1, baseDataOffset: mdatOff + 8, defDur: 30, tfdt: 60, truns: []fragTrun{
			{flags: 0x200 | 0x400, samples: []trunSample{{size: 41}, {size: 12, flags: nonSync}}},
			{flags: 0x200 | 0x400 | 0x100, samples: []trunSample{{size: 13, flags: nonSync, dur: 25}}},
		}},
		{tfhdFlags: 0x1 | 0x10, trackID: 2, baseDataOffset: mdatOff + 8 + 66, defSize: 22, tfdt: 2048, truns: []fragTrun{
			{flags: 0, samples: []trunSample{{}}},
		}},
	})...)
	vDur = append(vDur, 30, 30, 25)
	vCTO = append(vCTO, 0, 0, 0)
	vSync = append(vSync, true, false, false)
	aDur = append(aDur, 1024)

	// Fragment 3: neither base flag: the first traf's base is the moof,
	// the second continues after the first one's data. Video's tfdt
	// skips one frame (20 ticks): the previous sample absorbs the gap.
	build3 := func(vOff int32) []byte {
		return moofBox(3, []fragTraf{
			{tfhdFlags: 0x20, trackID: 1, defFlags: nonSync, tfdt: 60 + 85 + 20, truns: []fragTrun{
				{flags: 0x1 | 0x4 | 0x200, dataOffset: vOff, firstFlags: 0, samples: []trunSample{{size: 42}, {size: 14}}},
			}},
			{tfhdFlags: 0x0, trackID: 2, tfdt: -1, truns: []fragTrun{
				{flags: 0x200, samples: []trunSample{{size: 23}, {size: 24}}},
			}},
		})
	}
	m = build3(0)
	m = build3(int32(len(m) + 8))
	file = append(file, m...)
	file = append(file, bx("mdat", payload(0, 6, []uint32{42, 14}), payload(1, 3, []uint32{23, 24}))...)
	vDur[len(vDur)-1] += 20
	vDur = append(vDur, 20, 20)
	vCTO = append(vCTO, 0, 0)
	vSync = append(vSync, true, false)
	aDur = append(aDur, 1024, 1024)
	return file, vDur, vCTO, vSync, aDur
}

func TestParseSynthFragmented(t *testing.T) {
	file, vDur, vCTO, vSync, aDur := buildFragmented(t)
	ix, err := parseBytes(file)
	if err != nil {
		t.Fatal(err)
	}
	v, a := ix.Tracks[0], ix.Tracks[1]
	checkPayloads(t, file, v, 0)
	checkPayloads(t, file, a, 1)
	// The chapter ends with the longer track; the shorter one's last
	// sample is stretched.
	end := max(sum(vDur)*48000/600, sum(aDur))
	vDur[len(vDur)-1] += uint32(end*600/48000 - sum(vDur))
	aDur[len(aDur)-1] += uint32(end - sum(aDur))
	if !reflect.DeepEqual(v.Samples.Dur, vDur) || !reflect.DeepEqual(v.Samples.CTO, vCTO) || !reflect.DeepEqual(v.Samples.Sync, vSync) {
		t.Errorf("video:\n dur %v want %v\n cto %v want %v\n sync %v want %v", v.Samples.Dur, vDur, v.Samples.CTO, vCTO, v.Samples.Sync, vSync)
	}
	if !reflect.DeepEqual(a.Samples.Dur, aDur) || a.Samples.CTO != nil || a.Samples.Sync != nil {
		t.Errorf("audio: dur %v want %v, cto %v sync %v", a.Samples.Dur, aDur, a.Samples.CTO, a.Samples.Sync)
	}
	roundTrip(t, ix)
}

func sum(d []uint32) int64 {
	var n int64
	for _, v := range d {
		n += int64(v)
	}
	return n
}

// TestParseSynthMixed has samples both in the moov and in a moof.
func TestParseSynthMixed(t *testing.T) {
	video := synthTrack{
		handler: "vide", timescale: 600, entries: [][]byte{avc1Entry(64, 64)},
		sizes: []uint32{50, 10, 11}, durs: []uint32{20, 20, 20}, sync: []uint32{1},
		trex: []uint32{1, 20, 0, nonSync},
	}
	file := buildProgressive([]synthTrack{video}, 2, 0)
	build := func(off int32) []byte {
		return moofBox(1, []fragTraf{{tfhdFlags: 0x020000, trackID: 1, tfdt: 60, truns: []fragTrun{
			{flags: 0x1 | 0x4 | 0x200, dataOffset: off, samples: []trunSample{{size: 51}, {size: 12}}},
		}}})
	}
	m := build(0)
	m = build(int32(len(m) + 8))
	file = append(file, m...)
	file = append(file, bx("mdat", payload(0, 3, []uint32{51, 12}))...)
	ix, err := parseBytes(file)
	if err != nil {
		t.Fatal(err)
	}
	v := ix.Tracks[0]
	checkPayloads(t, file, v, 0)
	if want := []bool{true, false, false, true, false}; !reflect.DeepEqual(v.Samples.Sync, want) {
		t.Errorf("sync %v, want %v", v.Samples.Sync, want)
	}
	if v.Duration() != 100 {
		t.Errorf("duration %d, want 100", v.Duration())
	}
}

// findBox returns the offset of the first box of type typ in b (a naive
// byte search, good enough for synthetic and ffmpeg files).
func findBox(tb testing.TB, b []byte, typ string) int {
	tb.Helper()
	i := bytes.Index(b, []byte(typ))
	if i < 4 {
		tb.Fatalf("no %s box", typ)
	}
	return i - 4
}

func TestParseCorrupt(t *testing.T) {
	video := synthTrack{
		handler: "vide", timescale: 600, entries: [][]byte{avc1Entry(64, 64)},
		sizes: []uint32{50, 10, 11, 12}, durs: []uint32{20, 20, 20, 20}, sync: []uint32{1},
	}
	audio := synthTrack{handler: "soun", timescale: 48000, entries: [][]byte{mp4aEntry(t)}, sizes: []uint32{30, 31}, durs: []uint32{1024, 1024}}
	good := buildProgressive([]synthTrack{video, audio}, 2, 0)
	if _, err := parseBytes(good); err != nil {
		t.Fatal(err)
	}
	patch := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	put32 := func(b []byte, at int, v uint32) { copy(b[at:], u32(v)) }
	moov := findBox(t, good, "moov")

	tests := []struct {
		name string
		file []byte
		want error
		msg  string
	}{
		{"empty", nil, ErrInvalid, "empty file"},
		{"tiny", []byte("abc"), ErrInvalid, "not an MP4 file"},
		{"text", []byte("hello, this is not a video file at all"), ErrInvalid, "not an MP4 file"},
		{"moov larger than file", patch(func(b []byte) []byte { put32(b, moov, 1<<30); return b }), ErrInvalid, `"moov" box at offset`},
		{"box smaller than header", patch(func(b []byte) []byte { put32(b, moov, 4); return b }), ErrInvalid, "invalid size 4"},
		{"empty moov", append(bytes.Clone(good[:moov]), bx("moov")...), ErrInvalid, "no tracks"},
		{"zero-size moov", patch(func(b []byte) []byte { put32(b, moov, 0); return b }), nil, ""},
		{"no moov", good[:moov], ErrInvalid, "no moov box"},
		{"trak larger than moov", patch(func(b []byte) []byte {
			put32(b, findBox(t, b, "trak"), 1<<20)
			return b
		}), ErrInvalid, `"trak" box at offset`},
		{"stco past the end", patch(func(b []byte) []byte {
			put32(b, findBox(t, b, "stco")+16, uint32(len(b)-20))
			return b
		}), ErrInvalid, "outside the file"},
		{"stsz count lies", patch(func(b []byte) []byte {
			put32(b, findBox(t, b, "stsz")+16, 1<<30)
			return b
		}), ErrInvalid, "stsz"},
		{"uniform stsz too many", func() []byte {
			v := video
			v.uniform = 1000
			b := buildProgressive([]synthTrack{v, audio}, 2, 0)
			put32(b, findBox(t, b, "stsz")+16, 1<<30)
			return b
		}(), ErrInvalid, "do not fit"},
		{"stts short", patch(func(b []byte) []byte {
			put32(b, findBox(t, b, "stts")+16, 1)
			return b
		}), ErrInvalid, "stts describes"},
		{"timescale 0", patch(func(b []byte) []byte {
			put32(b, findBox(t, b, "mdhd")+20, 0)
			return b
		}), ErrInvalid, "timescale 0"},
		{"unsupported audio", patch(func(b []byte) []byte {
			at := moov + bytes.Index(b[moov:], []byte("mp4a"))
			copy(b[at:], "lpcm")
			return b
		}), ErrUnsupported, "unsupported audio codec lpcm in track 2"},
		{"encrypted video", patch(func(b []byte) []byte {
			at := moov + bytes.Index(b[moov:], []byte("avc1"))
			copy(b[at:], "encv")
			return b
		}), ErrUnsupported, "encv (encrypted)"},
		{"truncated mdat", good[:len(ftyp)+20], ErrInvalid, "truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseBytes(tt.file)
			if tt.want == nil {
				if err != nil && !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want nil or ErrInvalid", err)
				}
				return
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want %v saying %q", err, tt.want, tt.msg)
			}
			if !strings.Contains(err.Error(), "synth.mp4") {
				t.Errorf("err = %v does not name the file", err)
			}
		})
	}
}

func TestParseTimescaleMismatch(t *testing.T) {
	mk := func(ts uint32) []byte {
		v := synthTrack{handler: "vide", timescale: ts, entries: [][]byte{avc1Entry(64, 64)}, sizes: []uint32{5, 6}, durs: []uint32{20, 20}}
		return buildProgressive([]synthTrack{v}, 2, 0)
	}
	_, err := Parse(context.Background(), []Source{bytesSource("a.mp4", mk(600)), bytesSource("b.mp4", mk(1000))})
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "chapter 2 (b.mp4)") || !strings.Contains(err.Error(), "timescale") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseCanceled(t *testing.T) {
	file, _, _, _, _ := buildFragmented(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Parse(ctx, []Source{bytesSource("synth.mp4", file)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestParseOddFourCCs checks that handler types and reference types that are
// not text survive the round trip through Marshal (JSON) unchanged.
func TestParseOddFourCCs(t *testing.T) {
	v := synthTrack{handler: "vide", timescale: 600, entries: [][]byte{avc1Entry(64, 64)}, sizes: []uint32{5, 6}, durs: []uint32{20, 20},
		tref: map[string][]uint32{"\xff\x00ab": {2}}}
	m := synthTrack{handler: "\xfe\xff\x01z", timescale: 1000, entries: [][]byte{plainEntry("\xa9\x80xy")}, sizes: []uint32{3}, durs: []uint32{1000}}
	ix, err := parseBytes(buildProgressive([]synthTrack{v, m}, 2, 0))
	if err != nil {
		t.Fatal(err)
	}
	if h, f := ix.Tracks[1].Handler, ix.Tracks[1].Format; h != "???z" || f != "??xy" {
		t.Errorf("handler %q format %q", h, f)
	}
	if want := map[string][]uint32{"??ab": {2}}; !reflect.DeepEqual(ix.Tracks[0].References, want) {
		t.Errorf("references %v", ix.Tracks[0].References)
	}
	roundTrip(t, ix)
}

// TestParseLateTrack: a track that has samples only from chapter 2 on
// cannot be placed on the timeline.
func TestParseLateTrack(t *testing.T) {
	mk := func(metaSamples int) []byte {
		v := synthTrack{handler: "vide", timescale: 600, entries: [][]byte{avc1Entry(64, 64)}, sizes: []uint32{5, 6}, durs: []uint32{300, 300}}
		m := synthTrack{handler: "meta", timescale: 1000, entries: [][]byte{plainEntry("gpmd")}}
		for range metaSamples {
			m.sizes = append(m.sizes, 4)
			m.durs = append(m.durs, 1000)
		}
		return buildProgressive([]synthTrack{v, m}, 2, 0)
	}
	// Empty in the last chapter: fine, the earlier sample is stretched.
	ix, err := Parse(context.Background(), []Source{bytesSource("a.mp4", mk(1)), bytesSource("b.mp4", mk(0))})
	if err != nil {
		t.Fatal(err)
	}
	if m := ix.Tracks[1]; m.Samples.Len() != 1 || m.Duration() != 2000 {
		t.Errorf("metadata track: %d samples lasting %d", m.Samples.Len(), m.Duration())
	}
	// Empty in every chapter: dropped.
	ix, err = Parse(context.Background(), []Source{bytesSource("a.mp4", mk(0)), bytesSource("b.mp4", mk(0))})
	if err != nil {
		t.Fatal(err)
	}
	if len(ix.Tracks) != 1 {
		t.Fatalf("%d tracks, want the empty one dropped", len(ix.Tracks))
	}
	// Empty in the first chapter only: unsupported.
	_, err = Parse(context.Background(), []Source{bytesSource("a.mp4", mk(0)), bytesSource("b.mp4", mk(1))})
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "b.mp4") {
		t.Fatalf("err = %v", err)
	}
}
