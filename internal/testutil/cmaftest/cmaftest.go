// Package cmaftest builds CMAF media segments for the tests of the
// packages that serve them (HLS, DASH, Smooth Streaming). It is apart from
// mediatest because it imports internal/build/mp4, whose own tests use
// mediatest.
package cmaftest

import (
	"testing"
	"time"

	mp4build "github.com/jitstream/jitstream/internal/build/mp4"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/vfile"
)

// MediaSegment builds media segment n of the given tracks with
// mp4build.MediaSegment (sequence number n+1), failing the test on error.
func MediaSegment(tb testing.TB, ix *media.Index, tracks []*media.Track, segs []media.Segment, n int) *vfile.File {
	tb.Helper()
	var b vfile.Builder
	if err := mp4build.MediaSegment(&b, ix, tracks, segs[n], uint32(n+1)); err != nil {
		tb.Fatal(err)
	}
	return b.File("", "", time.Time{}, "")
}
