package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

// sparseReader is a file of size bytes: data, then zeros.
type sparseReader struct {
	data []byte
	size int64
}

func (s sparseReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= s.size {
		return 0, io.EOF
	}
	n := 0
	if off < int64(len(s.data)) {
		n = copy(p, s.data[off:])
	}
	end := min(int64(len(p)), s.size-off)
	clear(p[n:end])
	if end < int64(len(p)) {
		return int(end), io.EOF
	}
	return int(end), nil
}

// allocated runs f and returns the bytes it allocated (all goroutines;
// nothing else runs during the test).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestHostileSampleCounts: tables that claim 10 million samples in a few
// bytes are refused at once, without allocating for the claim (10M samples
// would take about 200 MB of sample columns): the parser checks counts
// against the box sizes (mp4ff) and against its sample budget (one sample
// per bytesPerSample bytes of the file) before allocating for them.
func TestHostileSampleCounts(t *testing.T) {
	const claim = 10_000_000
	put32 := func(b []byte, at int, v uint32) { binary.BigEndian.PutUint32(b[at:], v) }
	video := synthTrack{handler: "vide", timescale: 600, entries: [][]byte{avc1Entry(64, 64)},
		sizes: []uint32{50, 10, 11, 12}, durs: []uint32{20, 20, 20, 20}, sync: []uint32{1}}
	uniform := video
	uniform.uniform = 1
	uniform.sizes = []uint32{1, 1, 1, 1}
	frag, _, _, _, _ := buildFragmented(t)
	// truns returns the offsets of the trun boxes of b.
	truns := func(b []byte) []int {
		var at []int
		for i := 0; ; {
			j := bytes.Index(b[i:], []byte("trun"))
			if j < 0 {
				return at
			}
			at = append(at, i+j-4)
			i += j + 4
		}
	}

	type source struct {
		b    []byte
		size int64 // 0: len(b)
	}
	cases := []struct {
		name string
		src  func() source
		msg  string
	}{
		{"stsz table", func() source {
			b := buildProgressive([]synthTrack{video}, 2, 0)
			put32(b, findBox(t, b, "stsz")+16, claim)
			return source{b: b}
		}, "stsz"},
		{"uniform stsz in a small file", func() source {
			b := buildProgressive([]synthTrack{uniform}, 2, 0)
			put32(b, findBox(t, b, "stsz")+16, claim)
			return source{b: b}
		}, "do not fit"},
		{"uniform stsz in a 16 MB file", func() source {
			// The samples would fit (1 byte each), but the file may
			// describe only 16 MB / bytesPerSample of them.
			b := buildProgressive([]synthTrack{uniform}, 2, 0)
			put32(b, findBox(t, b, "stsz")+16, claim)
			const size = 16 << 20
			b = append(b, u32(uint32(size-len(b)))...)
			b = append(b, "free"...)
			return source{b: b, size: size}
		}, "too many samples"},
		{"stts entries", func() source {
			b := buildProgressive([]synthTrack{video}, 2, 0)
			put32(b, findBox(t, b, "stts")+12, claim)
			return source{b: b}
		}, "stts"},
		{"stco entries", func() source {
			b := buildProgressive([]synthTrack{video}, 2, 0)
			put32(b, findBox(t, b, "stco")+12, claim)
			return source{b: b}
		}, "stco"},
		{"trun with sample fields", func() source {
			b := bytes.Clone(frag)
			put32(b, truns(b)[0]+12, claim)
			return source{b: b}
		}, "trun"},
		{"trun without sample fields", func() source {
			b := bytes.Clone(frag)
			for _, at := range truns(b) {
				if binary.BigEndian.Uint32(b[at+8:])&0xffffff == 0 {
					put32(b, at+12, claim)
					return source{b: b}
				}
			}
			t.Fatal("no trun without sample fields")
			return source{}
		}, "trun"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.src()
			size := s.size
			if size == 0 {
				size = int64(len(s.b))
			}
			src := Source{Object: "assets/x/hostile.mp4", Name: "hostile.mp4", R: sparseReader{s.b, size}, Size: size}
			var err error
			start := time.Now()
			n := allocated(func() { _, err = Parse(context.Background(), []Source{src}) })
			took := time.Since(start)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want ErrInvalid saying %q", err, tc.msg)
			}
			t.Logf("refused in %v, %d bytes allocated: %v", took, n, err)
			if n > 1<<20 {
				t.Errorf("%d bytes allocated to refuse a claim of %d samples", n, claim)
			}
			if took > time.Second {
				t.Errorf("took %v to refuse", took)
			}
			allocs := testing.AllocsPerRun(3, func() { Parse(context.Background(), []Source{src}) })
			if allocs > 2000 {
				t.Errorf("%.0f allocations to refuse", allocs)
			}
		})
	}
}
