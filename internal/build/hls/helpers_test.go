package hls

import (
	"strconv"
	"testing"
	"time"

	mp4build "github.com/jitstream/jitstream/internal/build/mp4"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/testutil/cmaftest"
	"github.com/jitstream/jitstream/internal/testutil/mediatest"
)

// fixtureCases are the originals the end-to-end tests serve.
var fixtureCases = mediatest.Fixtures()

// writeHLS writes the fMP4 HLS tree of ix under dir/hls, as the server
// would serve it: the master playlist, and for every video and audio track
// its media playlist, init segment, media segments and (video) I-frame
// playlist.
func writeHLS(tb testing.TB, ix *media.Index, segs []media.Segment, dir string) {
	tb.Helper()
	mediatest.WriteFile(tb, dir, "hls/master.m3u8", Master(ix, segs, MasterOptions{}))
	// The fixtures have no recording time: date the playlists anyway.
	start := ix.Created
	if start.IsZero() {
		start = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	}
	for _, t := range ix.Tracks {
		if t.Kind != media.KindVideo && t.Kind != media.KindAudio {
			continue
		}
		name := "hls/" + TrackName(t) + "/"
		tracks := []*media.Track{t}
		init, err := mp4build.InitSegment(ix, tracks)
		if err != nil {
			tb.Fatal(err)
		}
		mediatest.WriteFile(tb, dir, name+"init.mp4", init)
		for n := range segs {
			mediatest.WriteFile(tb, dir, name+strconv.Itoa(n)+".m4s", mediatest.Materialize(tb, cmaftest.MediaSegment(tb, ix, tracks, segs, n)))
		}
		mediatest.WriteFile(tb, dir, name+"index.m3u8", Media(TrackSegments(ix, t, segs), t.Timescale, MediaOptions{Start: start, DateTimeEvery: 1}))
		if t.Kind == media.KindVideo {
			frames, err := FMP4IFrames(ix, t, segs)
			if err != nil {
				tb.Fatal(err)
			}
			mediatest.WriteFile(tb, dir, name+"iframes.m3u8", IFrames(frames, t.Timescale, MediaOptions{Start: start}))
		}
	}
}
