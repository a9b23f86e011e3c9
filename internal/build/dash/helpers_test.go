package dash

import (
	"strconv"
	"testing"

	"github.com/jitstream/jitstream/internal/build/hls"
	mp4build "github.com/jitstream/jitstream/internal/build/mp4"
	"github.com/jitstream/jitstream/internal/build/trick"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/testutil/cmaftest"
	"github.com/jitstream/jitstream/internal/testutil/mediatest"
)

// fixtureCases are the originals the tests serve.
var fixtureCases = mediatest.Fixtures()

// writeDASH writes the DASH tree of ix under dir/dash as the server would
// serve it: the MPD, and init and media segments of every video and audio
// track and of the trick-play tracks. Segments without samples of a track
// are not written (the MPD does not list them).
func writeDASH(tb testing.TB, ix *media.Index, segs []media.Segment, dir string) {
	tb.Helper()
	mpd, err := MPD(ix, segs, Options{})
	if err != nil {
		tb.Fatal(err)
	}
	mediatest.WriteFile(tb, dir, "dash/manifest.mpd", mpd)
	write := func(name string, t *media.Track) {
		tracks := []*media.Track{t}
		init, err := mp4build.InitSegment(ix, tracks)
		if err != nil {
			tb.Fatal(err)
		}
		mediatest.WriteFile(tb, dir, "dash/"+name+"/init.mp4", init)
		for n, seg := range segs {
			if first, end := hls.SegmentSpan(ix, t, seg); first == end {
				continue
			}
			mediatest.WriteFile(tb, dir, "dash/"+name+"/"+strconv.Itoa(n)+".m4s", mediatest.Materialize(tb, cmaftest.MediaSegment(tb, ix, tracks, segs, n)))
		}
	}
	for _, t := range ix.Tracks {
		switch t.Kind {
		case media.KindVideo:
			write(hls.TrackName(t), t)
			write("trick/"+hls.TrackName(t), trick.Keyframes(t))
		case media.KindAudio:
			write(hls.TrackName(t), t)
		}
	}
}
