package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime/debug"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/testutil/fixtures"
)

// roundTrip checks that ix survives Marshal and Unmarshal unchanged.
func roundTrip(tb testing.TB, ix *Index) []byte {
	tb.Helper()
	b, err := Marshal(ix)
	if err != nil {
		tb.Fatalf("marshal: %v", err)
	}
	got, err := Unmarshal(b)
	if err != nil {
		tb.Fatalf("unmarshal: %v", err)
	}
	if !reflect.DeepEqual(got, ix) {
		tb.Fatalf("round trip changed the index")
	}
	return b
}

func TestMarshalRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name  string
		paths func(testing.TB) []string
	}{
		{"H264AAC", func(tb testing.TB) []string { return []string{fixtures.H264AAC(tb)} }},
		{"H265AAC", func(tb testing.TB) []string { return []string{fixtures.H265AAC(tb)} }},
		{"Fragmented", func(tb testing.TB) []string { return []string{fixtures.Fragmented(tb)} }},
		{"WithMetadataTrack", func(tb testing.TB) []string { return []string{fixtures.WithMetadataTrack(tb)} }},
		{"TwoChapters", fixtures.TwoChapters},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ix, err := parsePaths(t, tt.paths(t)...)
			if err != nil {
				t.Fatal(err)
			}
			b := roundTrip(t, ix)
			t.Logf("%d samples, %d bytes", ix.Tracks[0].Samples.Len()+ix.Tracks[1].Samples.Len(), len(b))
		})
	}
	t.Run("synthetic", func(t *testing.T) {
		ix := synthLongIndex(2)
		ix.Created = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
		ix.Tracks[0].References = map[string][]uint32{"tmcd": {2}}
		roundTrip(t, ix)
	})
}

// fixCRC recomputes the checksum of an index after a test changed it.
func fixCRC(b []byte) []byte {
	n := len(b) - 4
	binary.LittleEndian.PutUint32(b[n:], crc32.Checksum(b[:n], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

func TestUnmarshalCorrupt(t *testing.T) {
	ix := synthLongIndex(1)
	good, err := Marshal(ix)
	if err != nil {
		t.Fatal(err)
	}
	hl, n := binary.Uvarint(good[5:])
	hdrEnd := 5 + n + int(hl)
	_, n = binary.Uvarint(good[hdrEnd:])
	flagsAt := hdrEnd + n // the first track's flags, after its length
	cases := map[string][]byte{
		"empty":        nil,
		"magic":        append([]byte("XXXX"), good[4:]...),
		"truncated":    good[:len(good)/2],
		"flipped bit":  func() []byte { b := bytes.Clone(good); b[len(b)/2] ^= 1; return b }(),
		"trailing":     fixCRC(append(bytes.Clone(good[:len(good)-4]), 0, 0, 0, 0, 0)),
		"short column": fixCRC(append(bytes.Clone(good[:len(good)-100]), 0, 0, 0, 0)),
		"bad json":     fixCRC(func() []byte { b := bytes.Clone(good); b[hdrEnd-1] = ']'; return b }()),
		"bad flags":    fixCRC(func() []byte { b := bytes.Clone(good); b[flagsAt] = 0xff; return b }()),
	}
	for name, b := range cases {
		if _, err := Unmarshal(b); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	// Every truncation and every single-byte change with a valid
	// checksum fails cleanly or gives a valid index, in both versions.
	small := smallIndex(t)
	for _, marshal := range []func(*Index) ([]byte, error){Marshal, marshalV1} {
		sb, err := marshal(small)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(sb); i++ {
			if _, err := Unmarshal(sb[:i]); err == nil {
				t.Fatalf("version %d: prefix of %d bytes accepted", sb[4], i)
			}
			for _, v := range []byte{0, 1, 0x7f, 0x80, 0xff} {
				b := bytes.Clone(sb)
				b[i] = v
				if ix, err := Unmarshal(fixCRC(b)); err == nil {
					if err := ix.Validate(); err != nil {
						t.Fatalf("version %d: byte %d = %#x: accepted an invalid index: %v", sb[4], i, v, err)
					}
				}
			}
		}
	}
}

// smallIndex is the index of a small synthetic file.
func smallIndex(tb testing.TB) *Index {
	file, _, _, _, _ := buildFragmented(tb)
	ix, err := parseBytes(file)
	if err != nil {
		tb.Fatal(err)
	}
	return ix
}

// synthLongIndex is the index of a made-up recording of the given length:
// 60 fps video (GOP 60, B-frames) and 48 kHz AAC, interleaved every half
// second, as a camera writes it.
func synthLongIndex(minutes int) *Index {
	rng := rand.New(rand.NewPCG(1, 2))
	nv := minutes * 60 * 60
	na := minutes * 60 * 48000 / 1024
	v := &Track{ID: 1, Kind: KindVideo, Handler: "vide", Format: "avc1", Codec: "avc1.640033", Timescale: 60000,
		Language: "und", Width: 1920, Height: 1080, SampleEntries: [][]byte{avc1Entry(1920, 1080)}}
	a := &Track{ID: 2, Kind: KindAudio, Handler: "soun", Format: "mp4a", Codec: "mp4a.40.2", Timescale: 48000,
		Language: "und", SampleRate: 48000, Channels: 2, SampleEntries: [][]byte{bx("mp4a", make([]byte, 28))}}
	vs, as := &v.Samples, &a.Samples
	ctoPattern := []int32{2000, 5000, 1000, 3000, 4000, 2000}
	for i := range nv {
		size := uint32(15000 + rng.IntN(20000))
		if i%60 == 0 {
			size = uint32(150000 + rng.IntN(50000))
		}
		vs.Size = append(vs.Size, size)
		vs.Dur = append(vs.Dur, 1000)
		vs.CTO = append(vs.CTO, ctoPattern[i%len(ctoPattern)])
		vs.Sync = append(vs.Sync, i%60 == 0)
	}
	for range na {
		as.Size = append(as.Size, uint32(300+rng.IntN(150)))
		as.Dur = append(as.Dur, 1024)
	}
	// Interleave: 30 video samples, then the audio of the same half
	// second.
	var off int64 = 48
	vi, ai := 0, 0
	for vi < nv || ai < na {
		for k := 0; k < 30 && vi < nv; k++ {
			vs.Offset = append(vs.Offset, off)
			off += int64(vs.Size[vi])
			vi++
		}
		for ai < na && (vi >= nv || int64(ai)*1024*60000 < int64(vi)*1000*48000) {
			as.Offset = append(as.Offset, off)
			off += int64(as.Size[ai])
			ai++
		}
	}
	d := time.Duration(minutes) * time.Minute
	ix := &Index{
		Chapters: []Chapter{{Object: "assets/long/GX010001.MP4", Name: "GX010001.MP4", Size: off + 100000, Duration: d}},
		Tracks:   []*Track{v, a},
	}
	for _, t := range ix.Tracks {
		t.Samples.ChapterStart = []int{0, t.Samples.Len()}
		t.Samples.ChapterDesc = []uint32{1}
		t.Samples.Derive()
	}
	return ix
}

func BenchmarkUnmarshal(b *testing.B) {
	ix := synthLongIndex(60)
	data, err := Marshal(ix)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Unmarshal(data); err != nil {
			b.Fatal(err)
		}
	}
	// Reported after the loop: b.Loop resets the timer and the metrics.
	b.ReportMetric(float64(len(data)), "index-bytes")
	b.ReportMetric(float64(ix.Tracks[0].Samples.Len()+ix.Tracks[1].Samples.Len()), "samples")
}

func BenchmarkMarshal(b *testing.B) {
	ix := synthLongIndex(60)
	for b.Loop() {
		if _, err := Marshal(ix); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	for _, bb := range []struct {
		name string
		path func(testing.TB) string
	}{
		{"H264AAC", fixtures.H264AAC},
		{"Fragmented", fixtures.Fragmented},
	} {
		b.Run(bb.name, func(b *testing.B) {
			src := fileSource(b, bb.path(b))
			for b.Loop() {
				if _, err := Parse(b.Context(), []Source{src}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// A progressive file with the sample tables of a 60-minute 60 fps
	// recording (tiny samples, so that the file stays small).
	b.Run("Synthetic60min", func(b *testing.B) {
		ix := synthLongIndex(60)
		tracks := make([]synthTrack, 2)
		for i, t := range ix.Tracks {
			st := synthTrack{handler: t.Handler, timescale: t.Timescale, entries: t.SampleEntries, durs: t.Samples.Dur, cto: t.Samples.CTO}
			st.sizes = make([]uint32, t.Samples.Len())
			for j := range st.sizes {
				st.sizes[j] = 4 + uint32(j%8)
			}
			for j, k := range t.Samples.Sync {
				if k {
					st.sync = append(st.sync, uint32(j+1))
				}
			}
			tracks[i] = st
		}
		file := buildProgressive(tracks, 30, 0)
		src := bytesSource("long.mp4", file)
		for b.Loop() {
			if _, err := Parse(b.Context(), []Source{src}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(file)), "file-bytes")
	})
}

// BenchmarkUnmarshalVariants measures Unmarshal of the index of
// BenchmarkUnmarshal decoded sequentially, and of its version 1 encoding.
func BenchmarkUnmarshalVariants(b *testing.B) {
	ix := synthLongIndex(60)
	v2, err := Marshal(ix)
	if err != nil {
		b.Fatal(err)
	}
	v1, err := marshalV1(ix)
	if err != nil {
		b.Fatal(err)
	}
	for _, bb := range []struct {
		name        string
		data        []byte
		parallelMin int
	}{
		{"Sequential", v2, math.MaxInt},
		{"V1", v1, parallelMinSamples},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.SetBytes(int64(len(bb.data)))
			for b.Loop() {
				if _, err := unmarshal(bb.data, bb.parallelMin); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(bb.data)), "index-bytes")
		})
	}
}

// BenchmarkUnmarshalCold measures Unmarshal closer to the first load in a
// fresh process: before each decode, outside the timer, the heap is
// collected and its free memory returned to the OS, so that the decoded
// columns land in pages the process must fault in again. (Unlike in a
// fresh process, the runtime also clears those pages.)
func BenchmarkUnmarshalCold(b *testing.B) {
	ix := synthLongIndex(60)
	data, err := Marshal(ix)
	if err != nil {
		b.Fatal(err)
	}
	for _, bb := range []struct {
		name        string
		parallelMin int
	}{
		{"Parallel", parallelMinSamples},
		{"Sequential", math.MaxInt},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for range b.N {
				b.StopTimer()
				debug.FreeOSMemory()
				b.StartTimer()
				if _, err := unmarshal(data, bb.parallelMin); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
