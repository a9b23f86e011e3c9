package mp4build

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/testutil/mediatest"
	"github.com/jitstream/jitstream/internal/testutil/probe"
	"github.com/jitstream/jitstream/internal/vfile"
)

// checkTimeline checks the invariants of a builder's timeline: points in
// strictly increasing offsets and non-decreasing times, within the file,
// ending at the file's end with the output's duration, compact.
func checkTimeline(t *testing.T, f *vfile.File, duration float64) {
	t.Helper()
	tl := f.Timeline
	if len(tl) < 2 {
		t.Fatalf("timeline of %d points", len(tl))
	}
	for i, p := range tl {
		if p.Off < 0 || p.Off > f.Size || p.Time < 0 || math.IsNaN(p.Time) {
			t.Fatalf("point %d %+v outside the file (%d bytes)", i, p, f.Size)
		}
		if i > 0 && (p.Off <= tl[i-1].Off || p.Time < tl[i-1].Time) {
			t.Fatalf("points %d %+v and %d %+v out of order", i-1, tl[i-1], i, p)
		}
	}
	last := tl[len(tl)-1]
	if last.Off != f.Size || math.Abs(last.Time-duration) > 0.05 {
		t.Errorf("last point %+v, want offset %d (the size) at %.3f s", last, f.Size, duration)
	}
	if max := int(duration/vfile.TimelineStep(duration)) + 2; len(tl) > max {
		t.Errorf("%d points for %.1f s, want at most %d", len(tl), duration, max)
	}
}

// tlPacket is a packet ffprobe found: its stream, byte position and decode
// time (edit lists applied: samples before a clip's start have negative
// times).
type tlPacket struct {
	stream int
	pos    int64
	dts    float64
}

// tlPackets lists, with ffprobe, the packets of path.
func tlPackets(t *testing.T, path string) []tlPacket {
	t.Helper()
	out, _ := probe.Tool(t, "ffprobe", "-v", "error", "-show_entries", "packet=stream_index,pos,dts_time", "-of", "csv=p=0", path)
	var pkts []tlPacket
	for line := range strings.Lines(out) {
		// Fields in ffprobe's order: stream_index, dts_time, pos.
		f := strings.Split(strings.TrimSpace(line), ",")
		if len(f) < 3 {
			continue
		}
		s, err1 := strconv.Atoi(f[0])
		d, err2 := strconv.ParseFloat(f[1], 64)
		p, err3 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		pkts = append(pkts, tlPacket{s, p, d})
	}
	if len(pkts) == 0 {
		t.Fatalf("ffprobe lists no packets with positions in %s", path)
	}
	return pkts
}

// TestTimelineMatchesPackets checks the timelines of progressive,
// fragmented and clip outputs against the packets ffprobe finds in the
// materialized files: the timeline's time at each packet's position is its
// decode time, within the interleaving of the tracks and a timeline step.
func TestTimelineMatchesPackets(t *testing.T) {
	type build struct {
		name string
		fn   func(*media.Index, Selection) (*vfile.File, error)
		sel  Selection
	}
	builds := []build{
		{"progressive", Progressive, Selection{}},
		{"fragmented", Fragmented, Selection{}},
		{"clip", Progressive, Selection{Start: 2 * time.Second, End: 6 * time.Second}},
		{"fragmented clip", Fragmented, Selection{Start: 1500 * time.Millisecond}},
	}
	for _, fc := range mediatest.Fixtures() {
		t.Run(fc.Name, func(t *testing.T) {
			t.Parallel()
			ix := mediatest.Index(t, fc.Chapters(t)...)
			for _, b := range builds {
				f, err := b.fn(ix, b.sel)
				if err != nil {
					t.Fatal(err)
				}
				dur := ix.Duration().Seconds()
				if b.sel != (Selection{}) {
					end := b.sel.End
					if end == 0 || end > ix.Duration() {
						end = ix.Duration()
					}
					dur = (end - snapStart(ix.Reference(), b.sel.Start)).Seconds()
				}
				checkTimeline(t, f, dur)
				path := mediatest.WriteTemp(t, mediatest.Materialize(t, f), "out.mp4")
				// Per stream: the worst and mean error.
				worst, sum, n := map[int]float64{}, map[int]float64{}, map[int]int{}
				for _, p := range tlPackets(t, path) {
					e := math.Abs(f.Timeline.Time(p.pos) - max(p.dts, 0))
					worst[p.stream] = max(worst[p.stream], e)
					sum[p.stream] += e
					n[p.stream]++
				}
				for s := range n {
					mean := sum[s] / float64(n[s])
					t.Logf("%s: %d points; stream %d: %d packets, mean error %.3f s, worst %.3f s", b.name, len(f.Timeline), s, n[s], mean, worst[s])
					// Video (stream 0) is within about a timeline step. Audio is
					// within the interleaving: at most half a second in
					// the progressive files; a fragment holds its 4 s of
					// video then its 4 s of audio, whose bytes are at the
					// fragment's end time.
					limit := 0.3
					switch {
					case s != 0 && strings.Contains(b.name, "fragmented"):
						limit = 4.5
					case s != 0:
						limit = 0.5
					}
					if worst[s] > limit {
						t.Errorf("%s: stream %d: timeline differs from packet times by %.3f s at worst (mean %.3f s), want at most %.1f s",
							b.name, s, worst[s], mean, limit)
					}
				}
			}
		})
	}
}

// TestTimelineCompact checks that an hour of media gets a few thousand
// points at most, and that the timeline follows the media's bytes.
func TestTimelineCompact(t *testing.T) {
	ix := mediatest.Synth(3600, 30, 60, false)
	for _, fn := range []func(*media.Index, Selection) (*vfile.File, error){Progressive, Fragmented} {
		f, err := fn(ix, Selection{})
		if err != nil {
			t.Fatal(err)
		}
		checkTimeline(t, f, ix.Duration().Seconds())
		if n := len(f.Timeline); n > vfile.MaxTimelinePoints+2 {
			t.Errorf("%d points for an hour", n)
		}
		// Half the bytes are about half the media (the synthetic bit rate
		// is constant).
		if m := f.Timeline.Time(f.Size / 2); math.Abs(m-1800) > 30 {
			t.Errorf("middle byte at %.1f s, want about 1800 s", m)
		}
	}
}
