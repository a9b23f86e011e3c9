package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/jitstream/jitstream/internal/testutil/fixtures"
)

// columnIndex builds an index of one track per column set, over chapters of
// the given sizes. Each Samples needs Offset, Size, Dur, ChapterStart and,
// optionally, CTO and Sync; the rest is filled in.
func columnIndex(chapterSizes []int64, cols ...Samples) *Index {
	ix := &Index{}
	for _, size := range chapterSizes {
		ix.Chapters = append(ix.Chapters, Chapter{Object: "o", Name: "c.mp4", Size: size})
	}
	for i, s := range cols {
		t := &Track{ID: uint32(i + 1), Kind: KindVideo, Handler: "vide", Format: "avc1", Timescale: 90000,
			Language: "und", SampleEntries: [][]byte{avc1Entry(64, 64)}, Samples: s}
		t.Samples.ChapterDesc = make([]uint32, len(chapterSizes))
		for c := range t.Samples.ChapterDesc {
			t.Samples.ChapterDesc[c] = 1
		}
		t.Samples.Derive()
		ix.Tracks = append(ix.Tracks, t)
	}
	return ix
}

// v2Cases are indexes that exercise every column encoding.
func v2Cases() []struct {
	name string
	ix   *Index
} {
	vfr := Samples{ChapterStart: []int{0, 8}}
	var off int64
	for i := range 8 {
		size := uint32(1000 + 37*i)
		vfr.Offset = append(vfr.Offset, off)
		vfr.Size = append(vfr.Size, size)
		vfr.Dur = append(vfr.Dur, uint32(1501+i%3*7-i%2*3)) // no two alike in a row
		off += int64(size)
	}
	huge := int64(math.MaxInt64 - 10)
	return []struct {
		name string
		ix   *Index
	}{
		{"no CTO or Sync", columnIndex([]int64{100}, Samples{
			Offset: []int64{0, 10, 20, 30}, Size: []uint32{10, 10, 10, 10}, Dur: []uint32{1024, 1024, 1024, 1024},
			ChapterStart: []int{0, 4}})},
		{"CTO and Sync", columnIndex([]int64{1000}, Samples{
			Offset: []int64{8, 108, 158, 300}, Size: []uint32{100, 50, 70, 1}, Dur: []uint32{20, 20, 20, 21},
			CTO: []int32{40, -20, 0, 70000}, Sync: []bool{true, false, false, true}, ChapterStart: []int{0, 4}})},
		{"all CTO equal, no sync sample", columnIndex([]int64{1000}, Samples{
			Offset: []int64{0, 1, 2}, Size: []uint32{1, 1, 1}, Dur: []uint32{1, 2, 3},
			CTO: []int32{-7, -7, -7}, Sync: []bool{false, false, false}, ChapterStart: []int{0, 3}})},
		{"chapters, one empty", columnIndex([]int64{500, 0, 300}, Samples{
			Offset: []int64{100, 200, 300, 0, 150, 10}, Size: []uint32{100, 100, 100, 150, 150, 5},
			Dur: []uint32{10, 10, 10, 10, 10, 10}, Sync: []bool{true, false, false, true, true, false},
			ChapterStart: []int{0, 3, 3, 6}})},
		{"gaps and backward offsets", columnIndex([]int64{1 << 40}, Samples{
			Offset: []int64{1 << 39, 5, 6, 1<<40 - 9, 0, 1<<39 + 64}, Size: []uint32{1, 1, 3, 9, 0, 70000},
			Dur: []uint32{1, 1, 1, 1, 1, 1}, ChapterStart: []int{0, 6}})},
		{"offsets near MaxInt64", columnIndex([]int64{math.MaxInt64}, Samples{
			Offset: []int64{huge, 0, huge - 5, huge - 2, math.MaxInt64}, Size: []uint32{10, 0, 3, 2, 0},
			Dur: []uint32{1, 1, 1, 1, 1}, ChapterStart: []int{0, 5}})},
		{"variable durations", columnIndex([]int64{1 << 20}, vfr)},
		{"wide values", columnIndex([]int64{1 << 30}, Samples{
			Offset: []int64{0, 1, 1 << 25}, Size: []uint32{1, 1 << 25, 7}, Dur: []uint32{0, math.MaxUint32, 1 << 24},
			CTO: []int32{math.MinInt32, math.MaxInt32, 0}, ChapterStart: []int{0, 3}})},
		{"no samples", columnIndex([]int64{100}, Samples{
			Offset: []int64{}, Size: []uint32{}, Dur: []uint32{}, CTO: []int32{}, Sync: []bool{},
			ChapterStart: []int{0, 0}})},
		{"synthetic", synthLongIndex(1)},
	}
}

// unmarshalBoth decodes b in parallel and sequentially, fails unless both
// give the same index or the same error, and returns the result.
func unmarshalBoth(tb testing.TB, b []byte) (*Index, error) {
	tb.Helper()
	par, perr := unmarshal(b, 0)
	seq, serr := unmarshal(b, math.MaxInt)
	if (perr == nil) != (serr == nil) || perr != nil && perr.Error() != serr.Error() {
		tb.Fatalf("parallel: %v, sequential: %v", perr, serr)
	}
	if !reflect.DeepEqual(par, seq) {
		tb.Fatalf("parallel and sequential decoding differ")
	}
	return par, perr
}

func TestMarshalV2RoundTrip(t *testing.T) {
	for _, tt := range v2Cases() {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.ix.Validate(); err != nil {
				t.Fatal(err)
			}
			b, err := Marshal(tt.ix)
			if err != nil {
				t.Fatal(err)
			}
			if b[len(indexMagic)] != indexVersion {
				t.Fatalf("version %d", b[len(indexMagic)])
			}
			got, err := unmarshalBoth(t, b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.ix) {
				t.Fatalf("round trip changed the index:\n got %+v\nwant %+v", got.Tracks[0].Samples, tt.ix.Tracks[0].Samples)
			}
		})
	}
}

// TestUnmarshalV1 checks that version 1 indexes, as stored by earlier
// versions, decode to the same index as version 2.
func TestUnmarshalV1(t *testing.T) {
	cases := v2Cases()
	for _, f := range []struct {
		name  string
		paths func(testing.TB) []string
	}{
		{"H264AAC", func(tb testing.TB) []string { return []string{fixtures.H264AAC(tb)} }},
		{"Fragmented", func(tb testing.TB) []string { return []string{fixtures.Fragmented(tb)} }},
		{"TwoChapters", fixtures.TwoChapters},
	} {
		ix, err := parsePaths(t, f.paths(t)...)
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct {
			name string
			ix   *Index
		}{f.name, ix})
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			v1, err := marshalV1(tt.ix)
			if err != nil {
				t.Fatal(err)
			}
			v2, err := Marshal(tt.ix)
			if err != nil {
				t.Fatal(err)
			}
			from1, err := unmarshalBoth(t, v1)
			if err != nil {
				t.Fatalf("version 1: %v", err)
			}
			from2, err := Unmarshal(v2)
			if err != nil {
				t.Fatalf("version 2: %v", err)
			}
			if !reflect.DeepEqual(from1, tt.ix) || !reflect.DeepEqual(from1, from2) {
				t.Fatalf("version 1 decodes to a different index")
			}
			t.Logf("version 1: %d bytes, version 2: %d bytes", len(v1), len(v2))
		})
	}
}

// setTrackLength returns a copy of the version 2 index b with the column
// length of track ti (0-based) replaced by f of it, and the checksum fixed.
func setTrackLength(tb testing.TB, b []byte, ti int, f func(uint64) uint64) []byte {
	tb.Helper()
	hl, n := binary.Uvarint(b[len(indexMagic)+1:])
	p := len(indexMagic) + 1 + n + int(hl)
	for range ti {
		l, n := binary.Uvarint(b[p:])
		p += n + int(l)
	}
	l, n := binary.Uvarint(b[p:])
	out := append(bytes.Clone(b[:p]), binary.AppendUvarint(nil, f(l))...)
	out = append(out, b[p+n:]...)
	return fixCRC(out)
}

func TestUnmarshalTrackLength(t *testing.T) {
	good, err := Marshal(v2Cases()[1].ix)
	if err != nil {
		t.Fatal(err)
	}
	two, err := Marshal(synthLongIndex(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unmarshalBoth(t, setTrackLength(t, two, 0, func(l uint64) uint64 { return l })); err != nil {
		t.Fatalf("unchanged length: %v", err)
	}
	for _, tt := range []struct {
		name  string
		b     []byte
		track int
		f     func(uint64) uint64
	}{
		{"one too many", good, 0, func(l uint64) uint64 { return l + 1 }},
		{"one too few", good, 0, func(l uint64) uint64 { return l - 1 }},
		{"zero", good, 0, func(uint64) uint64 { return 0 }},
		{"past the end", good, 0, func(l uint64) uint64 { return l + 100 }},
		{"huge", good, 0, func(uint64) uint64 { return math.MaxUint64 }},
		{"first of two too many", two, 0, func(l uint64) uint64 { return l + 3 }},
		{"first of two too few", two, 0, func(l uint64) uint64 { return l - 3 }},
		{"second of two too few", two, 1, func(l uint64) uint64 { return l - 1 }},
		{"second of two too many", two, 1, func(l uint64) uint64 { return l + 1 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := unmarshalBoth(t, setTrackLength(t, tt.b, tt.track, tt.f)); !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

// TestUnmarshalParallelErrors checks that parallel and sequential decoding
// agree on corrupt input too: the same index or the same error.
func TestUnmarshalParallelErrors(t *testing.T) {
	ix := columnIndex([]int64{1000, 400},
		Samples{Offset: []int64{8, 108, 158, 0, 100}, Size: []uint32{100, 50, 70, 100, 300}, Dur: []uint32{20, 20, 20, 21, 19},
			CTO: []int32{40, -20, 0, 7, 1}, Sync: []bool{true, false, false, true, false}, ChapterStart: []int{0, 3, 5}},
		Samples{Offset: []int64{300, 400, 800, 0}, Size: []uint32{100, 400, 10, 1}, Dur: []uint32{1024, 1024, 1024, 1000},
			ChapterStart: []int{0, 3, 4}},
		Samples{Offset: []int64{900, 1}, Size: []uint32{1, 2}, Dur: []uint32{5, 6}, Sync: []bool{false, true},
			ChapterStart: []int{0, 1, 2}})
	b, err := Marshal(ix)
	if err != nil {
		t.Fatal(err)
	}
	hl, n := binary.Uvarint(b[len(indexMagic)+1:])
	cols := len(indexMagic) + 1 + n + int(hl)
	for i := cols; i < len(b)-4; i++ {
		for _, v := range []byte{0, 1, 2, 0x7f, 0x80, 0xff, b[i] + 1, b[i] - 1} {
			c := bytes.Clone(b)
			c[i] = v
			unmarshalBoth(t, fixCRC(c))
			// With a bad checksum, both report the checksum.
			c[len(c)-1]++
			if _, err := unmarshalBoth(t, c); !errors.Is(err, ErrInvalid) {
				t.Fatalf("bad checksum accepted")
			}
		}
	}
}

// TestUnmarshalOutside checks that samples outside their chapter are
// refused wherever they are in a run of samples stored back to back.
func TestUnmarshalOutside(t *testing.T) {
	const n = 11
	for k := range n {
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			s := Samples{ChapterStart: []int{0, n}}
			var off int64 = 5
			for range n {
				s.Offset = append(s.Offset, off)
				s.Size = append(s.Size, 10)
				s.Dur = append(s.Dur, 1)
				off += 10
			}
			// Sample k ends one byte past the chapter.
			ix := columnIndex([]int64{5 + 10*int64(k) + 9}, s)
			b, err := encode(ix)
			if err != nil {
				t.Fatal(err)
			}
			_, err = unmarshalBoth(t, b)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), fmt.Sprintf("sample %d ", k)) {
				t.Fatalf("err = %v, want sample %d outside", err, k)
			}
		})
	}
}
