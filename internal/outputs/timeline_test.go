package outputs

import (
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/mediatest"
	"github.com/jitstream/jitstream/internal/testutil/probe"
)

// TestOriginalTimeline checks the timelines of original chapters against
// the packets ffprobe finds in them: each packet's position maps to its
// decode time, within a timeline step and the interleaving of the tracks.
func TestOriginalTimeline(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files func(testing.TB) []string
	}{
		{"moov first", mediatest.One(fixtures.H264AAC)},
		{"moov at end", mediatest.One(fixtures.MoovAtEnd)},
		{"two chapters", fixtures.TwoChapters},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := tc.files(t)
			ix := mediatest.Index(t, files...)
			for c, path := range files {
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				tl := OriginalTimeline(ix, c, fi.Size())
				if len(tl) < 2 || tl[len(tl)-1].Off != fi.Size() {
					t.Fatalf("chapter %d: timeline %v does not end at the file's size %d", c, tl, fi.Size())
				}
				if d := ix.Chapters[c].Duration.Seconds(); math.Abs(tl.Duration()-d) > 0.1 {
					t.Errorf("chapter %d: timeline ends at %.3f s, want %.3f s", c, tl.Duration(), d)
				}
				out, _ := probe.Tool(t, "ffprobe", "-v", "error", "-show_entries", "packet=pos,dts_time", "-of", "csv=p=0", path)
				var worst float64
				n := 0
				for line := range strings.Lines(out) {
					f := strings.Split(strings.TrimSpace(line), ",")
					if len(f) < 2 {
						continue
					}
					dts, err1 := strconv.ParseFloat(f[0], 64)
					pos, err2 := strconv.ParseInt(f[1], 10, 64)
					if err1 != nil || err2 != nil {
						continue
					}
					n++
					worst = max(worst, math.Abs(tl.Time(pos)-max(dts, 0)))
				}
				t.Logf("chapter %d: %d points, %d packets, worst error %.3f s", c, len(tl), n, worst)
				if n == 0 || worst > 0.5 {
					t.Errorf("chapter %d: timeline differs from %d packet times by %.3f s at worst", c, n, worst)
				}
			}
		})
	}
}
