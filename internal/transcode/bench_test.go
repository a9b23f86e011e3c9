package transcode

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/testutil/fixtures"
)

// BenchmarkSegment720p measures the time to make a never-seen 4 s 720p
// segment (segment 1, 120 frames) of a 1080p30 source: one ffmpeg run that
// decodes 1080p H.264 and encodes 720p at 3 Mbit/s. Every iteration uses
// a new source key, so nothing is cached; the rendition's init segment
// (from segment 0) is made outside the timer.
//
// Metrics: ms/op; x-realtime, the seconds of media made per second of wall
// time; cpu-cores, the CPU time of ffmpeg over the wall time (how many
// cores one run keeps busy); x-realtime/core, the seconds of media per
// second of ffmpeg CPU time.
func BenchmarkSegment720p(b *testing.B) {
	fixtures.RequireTools(b)
	base := newSource(b, fixtures.HD(b, 1080), "bench/hd1080")
	r := rendition(b, DefaultLadder(), base, "720p")
	const n = 1
	seg := base.Segments[n]
	ref := base.Index.Reference()
	segSeconds := float64(seg.End-seg.Start) / float64(ref.Timescale)
	tr := newTranscoder(b, base.Store, Options{})
	ctx := context.Background()
	var wall time.Duration
	var cpu time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		src := base
		src.Key = fmt.Sprintf("bench/hd1080/%d/%d", time.Now().UnixNano(), i)
		if _, err := tr.Init(ctx, src, r); err != nil {
			b.Fatal(err)
		}
		cpu0 := childCPU()
		start := time.Now()
		b.StartTimer()
		if _, err := tr.Segment(ctx, src, r, n); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		wall += time.Since(start)
		cpu += childCPU() - cpu0
		b.StartTimer()
	}
	b.StopTimer()
	per := wall.Seconds() / float64(b.N)
	b.ReportMetric(per*1000, "ms/op")
	b.ReportMetric(segSeconds/per, "x-realtime")
	if cpu > 0 {
		c := cpu.Seconds() / float64(b.N)
		b.ReportMetric(c/per, "cpu-cores")
		b.ReportMetric(segSeconds/c, "x-realtime/core")
	}
}
