package mp4build

import (
	"bytes"
	"cmp"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/mediatest"
)

// TestChapterPayload: the span ChapterPayload gives each chapter holds, in
// the built file, exactly the chapter's samples' bytes of its original, in
// offset order with touching and overlapping ranges merged; also when two
// chapters are ranges of one object that touch (two clips of one
// recording end to end), whose pieces the file merges.
func TestChapterPayload(t *testing.T) {
	h264 := mediatest.Index(t, fixtures.H264AAC(t))
	split := func(tb testing.TB) *media.Index {
		a, err := media.Clip(h264, 0, 2*time.Second)
		if err != nil {
			tb.Fatal(err)
		}
		b, err := media.Clip(h264, 2*time.Second, 0)
		if err != nil {
			tb.Fatal(err)
		}
		ix, err := media.Concat([]*media.Index{a, b})
		if err != nil {
			tb.Fatal(err)
		}
		return ix
	}
	for _, tc := range []struct {
		name string
		ix   func(testing.TB) *media.Index
	}{
		{"one chapter", func(testing.TB) *media.Index { return h264 }},
		{"two chapters", func(tb testing.TB) *media.Index { return mediatest.Index(tb, fixtures.TwoChapters(tb)...) }},
		{"one object twice", split},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ix := tc.ix(t)
			f, err := Progressive(ix, Selection{})
			if err != nil {
				t.Fatal(err)
			}
			off, err := ChapterPayload(ix)
			if err != nil {
				t.Fatal(err)
			}
			if len(off) != len(ix.Chapters)+1 {
				t.Fatalf("%d offsets for %d chapters", len(off), len(ix.Chapters))
			}
			file := mediatest.Materialize(t, f)
			base := f.Size - off[len(ix.Chapters)]
			for c, ch := range ix.Chapters {
				orig, err := os.ReadFile(ch.Object)
				if err != nil {
					t.Fatal(err)
				}
				var runs [][2]int64
				for _, tr := range ix.Tracks {
					s := &tr.Samples
					for i := s.ChapterStart[c]; i < s.ChapterStart[c+1]; i++ {
						runs = append(runs, [2]int64{s.Offset[i], s.Offset[i] + int64(s.Size[i])})
					}
				}
				slices.SortFunc(runs, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
				var want []byte
				for i := 0; i < len(runs); {
					a, b := runs[i][0], runs[i][1]
					for i++; i < len(runs) && runs[i][0] <= b; i++ {
						b = max(b, runs[i][1])
					}
					want = append(want, orig[a:b]...)
				}
				if got := file[base+off[c] : base+off[c+1]]; !bytes.Equal(got, want) {
					t.Fatalf("chapter %d: payload [%d, %d) holds %d bytes that are not its samples' %d", c, off[c], off[c+1], len(got), len(want))
				}
			}
		})
	}
}
