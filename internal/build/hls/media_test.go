package hls

import (
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/testutil/mediatest"
)

// checkMedia checks a media playlist of segs (timescale ts) built with opt
// against the rules of RFC 8216 that apply to it.
func checkMedia(t *testing.T, b []byte, segs []media.Segment, ts uint32, opt MediaOptions) {
	t.Helper()
	pl, err := parseMedia(b)
	if err != nil {
		t.Fatalf("malformed playlist: %v\n%s", err, b)
	}
	wantVersion := 7
	if opt.Format == TS {
		wantVersion = 4
	}
	if pl.version != wantVersion {
		t.Errorf("EXT-X-VERSION %d, want %d", pl.version, wantVersion)
	}
	if pl.sequence != 0 || pl.playlistType != "VOD" || !pl.endList || pl.iframesOnly {
		t.Errorf("media sequence %d, type %q, endlist %v, I-frames only %v; want 0, VOD, true, false",
			pl.sequence, pl.playlistType, pl.endList, pl.iframesOnly)
	}
	wantMap := ""
	if opt.Format == FMP4 {
		wantMap = opt.Map
		if wantMap == "" {
			wantMap = "init.mp4"
		}
	}
	if pl.mapURI != wantMap {
		t.Errorf("EXT-X-MAP URI %q, want %q", pl.mapURI, wantMap)
	}
	if len(pl.segments) != len(segs) {
		t.Fatalf("%d segments, want %d", len(pl.segments), len(segs))
	}
	// RFC 8216 4.3.3.1: every EXTINF rounded to the nearest integer is at
	// most the target duration; and the target is not needlessly large.
	var longest, sum float64
	for n, s := range pl.segments {
		if r := int(math.Round(s.dur)); r > pl.target {
			t.Errorf("segment %d: EXTINF %s rounds to %d > EXT-X-TARGETDURATION %d", n, s.durText, r, pl.target)
		}
		want := float64(segs[n].End-segs[n].Start) / float64(ts)
		if math.Abs(s.dur-want) > 0.001 {
			t.Errorf("segment %d: EXTINF %s, duration is %.6f", n, s.durText, want)
		}
		longest = max(longest, s.dur)
		sum += s.dur
		uri := strconv.Itoa(n) + map[Format]string{FMP4: ".m4s", TS: ".ts"}[opt.Format]
		if opt.SegmentURI != nil {
			uri = opt.SegmentURI(n)
		}
		if s.uri != uri {
			t.Errorf("segment %d: URI %q, want %q", n, s.uri, uri)
		}
	}
	if want := max(int(math.Ceil(longest)), 1); pl.target != want {
		t.Errorf("EXT-X-TARGETDURATION %d, want %d (longest EXTINF %.3f)", pl.target, want, longest)
	}
	if len(segs) > 0 {
		// No drift: the durations add up to the timeline within rounding.
		total := float64(segs[len(segs)-1].End-segs[0].Start) / float64(ts)
		if math.Abs(sum-total) > 0.0015 {
			t.Errorf("EXTINF durations add up to %.3f s, the segments last %.6f s", sum, total)
		}
	}
	for n, s := range pl.segments {
		due := !opt.Start.IsZero() && (n == 0 || (opt.DateTimeEvery > 0 && n%opt.DateTimeEvery == 0))
		if !due {
			if !s.pdt.IsZero() {
				t.Errorf("segment %d: unexpected EXT-X-PROGRAM-DATE-TIME", n)
			}
			continue
		}
		want := opt.Start.Add(time.Duration(float64(segs[n].Start) / float64(ts) * float64(time.Second)))
		if d := s.pdt.Sub(want); d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("segment %d: EXT-X-PROGRAM-DATE-TIME %v, want %v", n, s.pdt, want)
		}
	}
}

func TestMedia(t *testing.T) {
	start := time.Date(2024, 5, 1, 10, 0, 0, 0, time.FixedZone("CEST", 2*3600))
	options := []struct {
		name string
		opt  MediaOptions
	}{
		{"default", MediaOptions{}},
		{"date-time", MediaOptions{Start: start}},
		{"date-time every 3", MediaOptions{Start: start, DateTimeEvery: 3}},
		{"ts", MediaOptions{Format: TS, Start: start}},
		{"custom URIs", MediaOptions{Map: "../init.mp4?v=2", SegmentURI: func(n int) string { return "seg-" + strconv.Itoa(n+1) + ".m4s" }}},
	}
	sources := []struct {
		name string
		ix   func(testing.TB) *media.Index
	}{
		{"h264 aac", fixtureIndex(fixtureCases[0].Chapters)},
		{"h265 aac", fixtureIndex(fixtureCases[1].Chapters)},
		{"two chapters", fixtureIndex(fixtureCases[2].Chapters)},
		{"synthetic 60 min", func(testing.TB) *media.Index { return mediatest.Synth(3600, 30, 60, false) }},
		{"synthetic 1 GOP per segment", func(testing.TB) *media.Index { return mediatest.Synth(600, 30, 120, false) }},
		{"synthetic audio only", func(testing.TB) *media.Index { return mediatest.SynthAudioOnly(60) }},
	}
	for _, src := range sources {
		t.Run(src.name, func(t *testing.T) {
			ix := src.ix(t)
			segs := ix.Segments(0)
			for _, tr := range ix.Tracks {
				// The reference track's segments, and every track's own.
				cases := []struct {
					name string
					segs []media.Segment
					ts   uint32
				}{{TrackName(tr), TrackSegments(ix, tr, segs), tr.Timescale}}
				if tr == ix.Reference() {
					cases = append(cases, struct {
						name string
						segs []media.Segment
						ts   uint32
					}{"reference", segs, tr.Timescale})
				}
				for _, c := range cases {
					for _, o := range options {
						t.Run(c.name+"/"+o.name, func(t *testing.T) {
							checkMedia(t, Media(c.segs, c.ts, o.opt), c.segs, c.ts, o.opt)
						})
					}
				}
			}
		})
	}
}

// fixtureIndex returns a function indexing the fixture.
func fixtureIndex(chapters func(testing.TB) []string) func(testing.TB) *media.Index {
	return func(tb testing.TB) *media.Index { return mediatest.Index(tb, chapters(tb)...) }
}

func TestMediaEdgeCases(t *testing.T) {
	// No segments: a valid, empty VOD playlist.
	checkMedia(t, Media(nil, 1000, MediaOptions{}), nil, 1000, MediaOptions{})
	segs := []media.Segment{{Start: 0, End: 4000}, {Start: 4000, End: 8000}, {Start: 8000, End: 12000}}
	checkMedia(t, Media(segs, 1000, MediaOptions{}), segs, 1000, MediaOptions{})
	// 4.0005 s is written 4.001 and needs a target of 5.
	segs = []media.Segment{{Start: 0, End: 40005}, {Start: 40005, End: 80000}}
	if pl, err := parseMedia(Media(segs, 10000, MediaOptions{})); err != nil || pl.target != 5 || pl.segments[0].durText != "4.001" {
		t.Errorf("4.0005 s segment: %+v, %v; want target 5, EXTINF 4.001", pl, err)
	}
	// 4.0001 s is written 4.000: a target of 4 covers it.
	segs = []media.Segment{{Start: 0, End: 40001}, {Start: 40001, End: 80000}}
	pl, err := parseMedia(Media(segs, 10000, MediaOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	// The target covers the durations as written (to the millisecond).
	if pl.target != 4 || pl.segments[0].durText != "4.000" || pl.segments[1].durText != "4.000" {
		t.Errorf("target %d, EXTINF %s and %s; want 4, 4.000, 4.000",
			pl.target, pl.segments[0].durText, pl.segments[1].durText)
	}
	// Milliseconds accumulate without drift: 3 x 1/3 s.
	segs = []media.Segment{{Start: 0, End: 1}, {Start: 1, End: 2}, {Start: 2, End: 3}}
	pl, err = parseMedia(Media(segs, 3, MediaOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	if got := pl.segments[0].durText + " " + pl.segments[1].durText + " " + pl.segments[2].durText; got != "0.333 0.334 0.333" {
		t.Errorf("EXTINF %s, want 0.333 0.334 0.333", got)
	}
}

// BenchmarkMedia900 builds the media playlist of a 60-minute recording in
// 4 s segments.
func BenchmarkMedia900(b *testing.B) {
	ix := mediatest.Synth(3600, 30, 60, false)
	segs := ix.Segments(0)
	if len(segs) != 900 {
		b.Fatalf("%d segments, want 900", len(segs))
	}
	ts := ix.Reference().Timescale
	opt := MediaOptions{Start: ix.Created}
	b.ReportAllocs()
	for b.Loop() {
		Media(segs, ts, opt)
	}
}
