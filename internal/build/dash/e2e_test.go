package dash

import (
	"strconv"
	"testing"

	"github.com/jitstream/jitstream/internal/testutil/mediatest"
	"github.com/jitstream/jitstream/internal/testutil/probe"
)

// TestEndToEnd serves the DASH tree of each fixture over HTTP and has
// ffmpeg read the MPD: no errors, the video and audio representations
// carry exactly the original's packets, and the trick-mode representation
// exactly the original's key frames.
//
// ffmpeg's DASH demuxer ends its whole input as soon as the representation
// with the earliest position ends, so with "-map 0" it cuts the streams
// that end later (the trick-mode representation, whose last key frame
// starts a second before the end, ends it early; audio loses its last
// frame to video). Each representation is therefore read on its own with
// "-map 0:N", which it reads to the end.
func TestEndToEnd(t *testing.T) {
	probe.RequireTools(t)
	for _, fc := range fixtureCases {
		t.Run(fc.Name, func(t *testing.T) {
			t.Parallel()
			chapters := fc.Chapters(t)
			ix := mediatest.Index(t, chapters...)
			segs := ix.Segments(0)
			dir := t.TempDir()
			writeDASH(t, ix, segs, dir)
			url := mediatest.Serve(t, dir) + "/dash/manifest.mpd"
			probe.RequireClean(t, url)

			want := mediatest.OriginalMD5s(t, chapters)
			v := ix.Video()
			var keys []string
			for i, md5 := range want[int(v.ID-1)] {
				if v.Samples.IsSync(i) {
					keys = append(keys, md5)
				}
			}
			want[len(want)] = keys
			got := map[int][]string{}
			for st := range probe.Streams(t, url) {
				got[st] = streamMD5s(t, url, st)
			}
			probe.MatchStreams(t, got, want)
		})
	}
}

// streamMD5s returns the MD5 of every packet of stream st of url, read by
// ffmpeg with stream copy (framemd5), failing on any error message.
func streamMD5s(tb testing.TB, url string, st int) []string {
	tb.Helper()
	return probe.MD5s(probe.FrameMD5(tb, "-i", url, "-map", "0:"+strconv.Itoa(st), "-c", "copy"))
}
